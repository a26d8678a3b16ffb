package e2e

// The outage journey end to end (PROTOCOL section 5): a broadcast to the
// customers who tried to pay, their governance deciding, a yes, the resolve,
// callbacks on an agent's desk; and a broadcast surviving kill -9.

import (
	"fmt"
	"testing"
	"time"
)

const broadcastSections = `queues:
  - {name: callbacks}
agents:
  - {id: alice, skills: [], capacity: 5}
broadcasts: {rate: 500}
`

// broadcastStatus is GET /v1/broadcasts/{id}.
type broadcastStatus struct {
	ID                string         `json:"id"`
	State             string         `json:"state"`
	Targeted          int            `json:"targeted"`
	Sent              int            `json:"sent"`
	Held              int            `json:"held"`
	Suppressed        map[string]int `json:"suppressed"`
	CallbacksAccepted int            `json:"callbacks_accepted"`
	Resolved          bool           `json:"resolved"`
}

func (s *server) broadcast(body map[string]any) string {
	s.t.Helper()
	var out struct{ ID string }
	s.call("POST", "/v1/broadcasts", tokSupervisor, body, nil).wantStatus(s.t, 202).decode(s.t, &out)
	if out.ID == "" {
		s.t.Fatal("broadcast answered without an id")
	}
	return out.ID
}

func (s *server) broadcastStatus(id string) broadcastStatus {
	s.t.Helper()
	var st broadcastStatus
	s.call("GET", "/v1/broadcasts/"+id, tokSupervisor, nil, nil).wantStatus(s.t, 200).decode(s.t, &st)
	return st
}

func (s *server) waitBroadcast(id, state string) broadcastStatus {
	s.t.Helper()
	var st broadcastStatus
	eventually(s.t, 30*time.Second, "broadcast "+state, func() bool {
		st = s.broadcastStatus(id)
		return st.State == state
	})
	return st
}

func outageBroadcast() map[string]any {
	return map[string]any{
		"segment":        map[string]any{"event": "payment.attempted", "within": "1h"},
		"message":        map[string]any{"text": "We know about the payment problem. Reply YES for a callback."},
		"callback_offer": true, "callback_queue": "callbacks",
	}
}

func TestOutageBroadcastCallbacksAndResolve(t *testing.T) {
	s := startServer(t, serverOptions{sections: broadcastSections})
	gw := helloWS(t, s, "sms", "email")
	phone := func(i int) map[string]string { return map[string]string{"phone": fmt.Sprintf("+1555010000%d", i)} }
	sms1 := s.postEvent(event{ID: "pay-1", Identity: phone(1), Type: "payment.attempted", Channel: "sms"}).Customer
	s.postEvent(event{ID: "pay-2", Identity: phone(2), Type: "payment.attempted", Channel: "sms"})
	s.postEvent(event{ID: "pay-3", Identity: map[string]string{"email": "ana@example.com"}, Type: "payment.attempted"})
	optedOut := s.postEvent(event{ID: "pay-4", Identity: phone(4), Type: "payment.attempted", Channel: "sms"}).Customer
	s.call("PATCH", customerPath(optedOut)+"/profile", tokChannel, map[string]any{"consent": map[string]any{"sms": false}}, nil).wantStatus(t, 200)
	s.postEvent(event{ID: "browse-5", Identity: phone(5), Type: "page.viewed"}) // not in the segment

	id := s.broadcast(outageBroadcast())
	st := s.waitBroadcast(id, "done")
	if st.Targeted != 4 || st.Sent != 3 || st.Held != 0 || st.Suppressed["no_consent"] != 1 || st.Suppressed["no_channel"] != 0 || st.Resolved {
		t.Fatalf("progress %+v", st)
	}
	// The gateway gets the three messages, each on the customer's channel.
	channels := map[string]int{}
	for range 3 {
		out := gw.expect("outbound")
		channels[out.Channel]++
	}
	if channels["sms"] != 2 || channels["email"] != 1 {
		t.Fatalf("outbounds by channel %v", channels)
	}
	sent := eventsOf(s.timeline(sms1, 100), "proactive.sent")
	if len(sent) != 1 || dataOf(t, sent[0])["broadcast"] != id {
		t.Fatalf("proactive.sent of %s: %+v", sms1, sent)
	}
	if sup := eventsOf(s.timeline(optedOut, 100), "proactive.suppressed"); len(sup) != 1 || dataOf(t, sup[0])["reason"] != "no_consent" {
		t.Fatalf("the opted-out customer: %+v", sup)
	}

	// A yes schedules the broadcast's callback; it waits for the resolve.
	s.postEvent(event{ID: "yes-1", Identity: phone(1), Channel: "sms", Text: "YES"})
	cb := eventsOf(s.timeline(sms1, 100), "journey.callback_scheduled")
	if len(cb) != 1 || dataOf(t, cb[0])["broadcast"] != id {
		t.Fatalf("callback_scheduled: %+v", cb)
	}
	if st := s.broadcastStatus(id); st.CallbacksAccepted != 1 {
		t.Fatalf("callbacks accepted %d", st.CallbacksAccepted)
	}

	alice := dialDesk(t, s, tokAgent)
	alice.do(map[string]any{"type": "presence", "status": "available"})
	s.call("POST", "/v1/broadcasts/"+id+"/resolve", tokSupervisor, map[string]any{
		"message": map[string]any{"text": "Payments work again."}, "callback": true,
	}, nil).wantStatus(t, 202)
	if out := gw.expect("outbound"); out.Text != "Payments work again." || out.Customer != sms1 {
		t.Fatalf("follow-up %s", out.raw)
	}
	offer := alice.expect("offer")
	if offer["kind"] != "callback" || offer["customer"] != sms1 || offer["queue"] != "callbacks" {
		t.Fatalf("callback offer %v", offer)
	}
	s.call("POST", "/v1/broadcasts/"+id+"/resolve", tokSupervisor, map[string]any{
		"message": map[string]any{"text": "again"},
	}, nil).wantError(t, 409, "conflict")
	if st := s.broadcastStatus(id); !st.Resolved || st.State != "done" {
		t.Fatalf("after the resolve %+v", st)
	}
}

func TestBroadcastRefusals(t *testing.T) {
	s := startServer(t, serverOptions{sections: broadcastSections})
	bad := outageBroadcast()
	bad["segment"] = map[string]any{"event": "payment.attempted", "within": "1h", "where": "customer.profile.tier =="}
	s.call("POST", "/v1/broadcasts", tokSupervisor, bad, nil).wantError(t, 400, "bad_request")
	s.call("POST", "/v1/broadcasts", tokSupervisor, map[string]any{"message": map[string]any{"text": "x"}}, nil).wantError(t, 400, "bad_request")
	s.call("POST", "/v1/broadcasts", tokSupervisor, "not json", nil).wantError(t, 400, "bad_request")
	s.call("POST", "/v1/broadcasts", tokChannel, outageBroadcast(), nil).wantError(t, 403, "forbidden")
	s.call("GET", "/v1/broadcasts/bc-unknown", tokSupervisor, nil, nil).wantError(t, 404, "not_found")
	s.call("DELETE", "/v1/broadcasts/bc-unknown", tokSupervisor, nil, nil).wantError(t, 404, "not_found")
	s.call("POST", "/v1/broadcasts/bc-unknown/resolve", tokSupervisor, map[string]any{"message": map[string]any{"text": "x"}}, nil).wantError(t, 404, "not_found")
}

// A broadcast killed in the middle resumes after the restart: everyone in
// the segment is reached, nobody twice.
func TestBroadcastSurvivesKill(t *testing.T) {
	sections := "broadcasts: {rate: 25}\n"
	s := startServer(t, serverOptions{sections: sections})
	const n = 60
	customers := make([]string, n)
	for i := range n {
		customers[i] = s.postEvent(event{ID: fmt.Sprintf("pay-%d", i), Identity: map[string]string{"phone": fmt.Sprintf("+155502%05d", i)},
			Type: "payment.attempted", Channel: "sms"}).Customer
	}
	body := outageBroadcast()
	delete(body, "callback_offer")
	delete(body, "callback_queue")
	id := s.broadcast(body)
	eventually(t, 20*time.Second, "some targets reached", func() bool { return s.broadcastStatus(id).Targeted >= 10 })
	s.kill()
	s = startServer(t, serverOptions{dataDir: s.dataDir, sections: "broadcasts: {rate: 500}\n"})
	st := s.waitBroadcast(id, "done")
	if st.Targeted != n || st.Sent != n {
		t.Fatalf("after the restart %+v", st)
	}
	for _, c := range customers {
		got := 0
		for _, e := range s.timeline(c, 100) {
			if e.Type == "proactive.sent" || e.Type == "proactive.suppressed" || e.Type == "proactive.held" {
				if dataOf(t, e)["broadcast"] == id {
					got++
				}
			}
		}
		if got != 1 {
			t.Fatalf("%s has %d proactive events of the broadcast", c, got)
		}
	}
}

// Cancel stops the targets not yet reached; a second cancel is harmless.
func TestBroadcastCancel(t *testing.T) {
	s := startServer(t, serverOptions{sections: "broadcasts: {rate: 5}\n"})
	for i := range 30 {
		s.postEvent(event{ID: fmt.Sprintf("pay-%d", i), Identity: map[string]string{"phone": fmt.Sprintf("+155503%05d", i)},
			Type: "payment.attempted", Channel: "sms"})
	}
	body := outageBroadcast()
	delete(body, "callback_offer")
	delete(body, "callback_queue")
	id := s.broadcast(body)
	s.call("DELETE", "/v1/broadcasts/"+id, tokSupervisor, nil, nil).wantStatus(t, 204)
	st := s.waitBroadcast(id, "cancelled")
	pause(time.Second) // at 5/s, five more would have been reached by now
	if again := s.broadcastStatus(id); again.Targeted > st.Targeted+1 || again.Targeted >= 30 {
		t.Fatalf("cancelled at %d targeted, then %d", st.Targeted, again.Targeted)
	}
	s.call("DELETE", "/v1/broadcasts/"+id, tokSupervisor, nil, nil).wantStatus(t, 204)
}

// A second broadcast the same day meets the frequency cap: counted as
// suppressed by frequency_cap, and nobody hears twice.
func TestASecondBroadcastIsCapped(t *testing.T) {
	s := startServer(t, serverOptions{sections: "broadcasts: {rate: 500}\ngovernance:\n  frequency_cap: {max: 1, per: 24h}\n"})
	for i := range 5 {
		s.postEvent(event{ID: fmt.Sprintf("pay-%d", i), Identity: map[string]string{"phone": fmt.Sprintf("+155504%05d", i)},
			Type: "payment.attempted", Channel: "sms"})
	}
	body := outageBroadcast()
	delete(body, "callback_offer")
	delete(body, "callback_queue")
	first := s.waitBroadcast(s.broadcast(body), "done")
	second := s.waitBroadcast(s.broadcast(body), "done")
	if first.Sent != 5 || second.Targeted != 5 || second.Sent != 0 || second.Suppressed["frequency_cap"] != 5 {
		t.Fatalf("first %+v\nsecond %+v", first, second)
	}
}
