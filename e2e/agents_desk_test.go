package e2e

// The desk's own contract (PROTOCOL sections 3 and 4): gapless
// subscriptions across reconnects, who may read whom, replies once per ref,
// every ref answered, the supervisor's live view of queues and agents.

import (
	"fmt"
	"testing"
	"time"
)

// deskEvents returns the seqs of the customer's event frames among frames.
func deskEvents(t *testing.T, customer string, frames []map[string]any) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, f := range frames {
		if f["type"] != "event" {
			continue
		}
		if f["customer"] != customer {
			t.Fatalf("event frame for another customer: %v", f)
		}
		e := f["event"].(map[string]any)
		seqs = append(seqs, uint64(e["seq"].(float64)))
	}
	return seqs
}

func TestASubscriberThatReconnectsWithAfterMissesNothing(t *testing.T) {
	const customer, first, second = "flow-1", 200, 300
	s := deskServer(t, 1, "")
	ws := dialWS(t, s, tokChannel)
	ws.sendEvent(event{ID: "f-0", Customer: customer, Type: "page.viewed", Channel: "web"})

	sup := dialDesk(t, s, tokSupervisor)
	seen := deskEvents(t, customer, sup.do(map[string]any{"type": "subscribe", "customer": customer, "after": 0}))

	// Events keep coming from the channel while the desk drops and
	// reconnects: a first burst, then a second one that starts once the
	// desk is gone and runs through its reconnect.
	cut := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		for i := 1; i <= first+second; i++ {
			if i == first+1 {
				<-cut
			}
			if err := ws.send(eventFrame(event{ID: fmt.Sprintf("f-%d", i), Customer: customer, Type: "page.viewed", Channel: "web"})); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for len(seen) < 50 {
		seen = append(seen, deskEvents(t, customer, []map[string]any{sup.expect("event")})...)
	}
	sup.conn.Close()
	close(cut)

	last := seen[len(seen)-1]
	again := dialDesk(t, s, tokSupervisor)
	frames := again.do(map[string]any{"type": "subscribe", "customer": customer, "after": last})
	// The replay comes first, then subscribed, then live events.
	var subscribed []map[string]any
	for _, f := range frames {
		if f["type"] == "subscribed" {
			subscribed = append(subscribed, f)
		}
	}
	if len(subscribed) != 1 || subscribed[0]["customer"] != customer || uint64(subscribed[0]["seq"].(float64)) < last {
		t.Fatalf("re-subscribe after %d answered subscribed frames %v", last, subscribed)
	}
	seen = append(seen, deskEvents(t, customer, frames)...)

	if err := <-sent; err != nil {
		t.Fatalf("channel send: %v", err)
	}
	var final uint64
	for range first + second {
		final = max(final, ws.expect("ack").Seq)
	}
	for seen[len(seen)-1] < final {
		seen = append(seen, deskEvents(t, customer, []map[string]any{again.expect("event")})...)
	}
	if final != first+second+1 {
		t.Fatalf("final seq %d, want %d", final, first+second+1)
	}
	for i, seq := range seen {
		if seq != uint64(i+1) {
			t.Fatalf("the desk saw seq %d at %d (cut after %d): every seq once, in order, is wanted", seq, i, last)
		}
	}
	again.quiet("event", 100*time.Millisecond)
}

func TestAnAgentReadsOnlyItsCustomersASupervisorAnyone(t *testing.T) {
	s := deskServer(t, 1, "")
	ws := helloWS(t, s, "chat")
	ws.sendEvent(event{ID: "o-1", Customer: "other-1", Type: "page.viewed", Channel: "web"})
	alice := available(t, s, tokAgent)
	for _, path := range []string{customerPath("other-1"), customerPath("other-1") + "/timeline", customerPath("nobody-1")} {
		s.call("GET", path, tokAgent, nil, nil).wantError(t, 403, "forbidden")
	}
	e := alice.doErr(map[string]any{"type": "subscribe", "customer": "other-1", "after": 0})
	if e["code"] != "forbidden" || e["id"] != "other-1" {
		t.Fatalf("subscribe to an unassigned customer answered %v", e)
	}
	sup := dialDesk(t, s, tokSupervisor)
	if seqs := deskEvents(t, "other-1", sup.do(map[string]any{"type": "subscribe", "customer": "other-1", "after": 0})); len(seqs) != 1 {
		t.Fatalf("the supervisor's replay %v", seqs)
	}
	// Once assigned, alice may read and follow the customer.
	askForAPerson(t, ws, "mine-1", "m-1")
	conv := alice.expectOffer("mine-1")["conversation"]
	if e := alice.doErr(map[string]any{"type": "subscribe", "customer": "mine-1"}); e["code"] != "forbidden" {
		t.Fatalf("subscribe to a customer only offered answered %v", e)
	}
	alice.do(map[string]any{"type": "accept", "conversation": conv})
	s.call("GET", customerPath("mine-1"), tokAgent, nil, nil).wantStatus(t, 200)
	alice.do(map[string]any{"type": "subscribe", "customer": "mine-1", "after": 0})
}

func TestAReplyResentWithItsRefAfterAReconnectIsSentOnce(t *testing.T) {
	s := deskServer(t, 1, "")
	first := available(t, s, tokAgent)
	ws := helloWS(t, s, "chat")
	askForAPerson(t, ws, "once-1", "o-1")
	conv := first.expectOffer("once-1")["conversation"]
	first.do(map[string]any{"type": "accept", "conversation": conv})
	reply := map[string]any{"type": "reply", "customer": "once-1", "conversation": conv, "text": "Checking your card now.", "ref": "reply-7"}
	// The desk sends and drops before it hears ok. The reply usually
	// reaches the server first; it may also be lost with the socket (a
	// write of the server's to the dropped desk can close the connection
	// before the reader took the frame), and then the resend is what
	// sends it. Either way the customer hears it once, then the next.
	if err := first.conn.WriteJSON(reply); err != nil {
		t.Fatal(err)
	}
	first.conn.Close()
	again := dialDesk(t, s, tokAgent)
	again.do(reply)
	again.do(map[string]any{"type": "reply", "customer": "once-1", "conversation": conv, "text": "Done: a new card is on its way.", "ref": "reply-8"})
	if out := ws.expect("outbound"); out.Text != "Checking your card now." {
		t.Fatalf("outbound %s", out.raw)
	}
	if out := ws.expect("outbound"); out.Text != "Done: a new card is on its way." {
		t.Fatalf("after the resent reply the customer got %s", out.raw)
	}
	var sent int
	for _, e := range eventsOf(s.timeline("once-1", 100), "message.sent") {
		if e.Actor == "agent:alice" {
			sent++
		}
	}
	if sent != 2 {
		t.Fatalf("%d message.sent by alice, want 2", sent)
	}
}

func TestEveryDeskRefIsAnswered(t *testing.T) {
	s := deskServer(t, 1, "offer_timeout: 1m")
	alice := available(t, s, tokAgent)
	sup := dialDesk(t, s, tokSupervisor)
	for _, c := range []struct {
		d    *desk
		f    map[string]any
		code string
	}{
		{alice, map[string]any{"type": "dance"}, "bad_request"},
		{alice, map[string]any{"type": "presence", "status": "asleep"}, "bad_request"},
		{alice, map[string]any{"type": "presence", "status": "available", "capacity": -1}, "bad_request"},
		{alice, map[string]any{"type": "accept"}, "bad_request"},
		{alice, map[string]any{"type": "accept", "conversation": "no-such-conversation"}, "bad_request"},
		{alice, map[string]any{"type": "reply", "text": "hi"}, "bad_request"},
		{alice, map[string]any{"type": "subscribe", "customer": ""}, "bad_request"},
		{alice, map[string]any{"type": "subscribe", "customer": "ref-1", "after": "the start"}, "bad_request"},
		{alice, map[string]any{"type": "reply", "customer": 42, "text": "hi"}, "bad_request"},
		{sup, map[string]any{"type": "presence", "status": "available"}, "forbidden"},
		{sup, map[string]any{"type": "reply", "customer": "ref-1", "text": "hi"}, "forbidden"},
	} {
		if e := c.d.doErr(c.f); e["code"] != c.code {
			t.Fatalf("%v answered %v, want %s", c.f, e, c.code)
		}
	}
	alice.do(map[string]any{"type": "unsubscribe", "customer": "ref-1"})

	// With bob there, a declined offer goes to him, not back to alice.
	bob := available(t, s, tokBob)
	ws := helloWS(t, s, "chat")
	askForAPerson(t, ws, "ref-1", "r-1")
	conv := alice.expectOffer("ref-1")["conversation"].(string)
	alice.do(map[string]any{"type": "decline", "conversation": conv})
	bob.expectOffer("ref-1")
	if e := alice.doErr(map[string]any{"type": "accept", "conversation": conv}); e["code"] != "conflict" {
		t.Fatalf("accept after the offer was revoked answered %v", e)
	}

	askForAPerson(t, ws, "ref-2", "r-2")
	conv = alice.expectOffer("ref-2")["conversation"].(string)
	alice.do(map[string]any{"type": "accept", "conversation": conv})
	alice.do(map[string]any{"type": "wrapup", "customer": "ref-2", "conversation": conv, "disposition": "resolved"})
	for _, f := range []map[string]any{
		{"type": "reply", "customer": "ref-2", "conversation": conv, "text": "one more thing"},
		{"type": "transfer", "customer": "ref-2", "conversation": conv, "queue": "general"},
		{"type": "wrapup", "customer": "ref-2", "conversation": conv, "disposition": "resolved"},
	} {
		if e := alice.doErr(f); e["code"] != "conflict" {
			t.Fatalf("%v on a wrapped-up conversation answered %v", f["type"], e)
		}
	}
}

func TestQueuesAndAgentsAreLive(t *testing.T) {
	s := deskServer(t, 1, "")
	alice := available(t, s, tokAgent)
	ws := helloWS(t, s, "chat")
	askForAPerson(t, ws, "live-1", "l-1")
	conv := alice.expectOffer("live-1")["conversation"]
	alice.do(map[string]any{"type": "accept", "conversation": conv})
	askForAPerson(t, ws, "live-2", "l-2") // alice is full, bob away: it waits
	pause(300 * time.Millisecond)

	q := s.queues()
	if g := q["general"]; g.Waiting != 1 || g.LongestWaitMS < 250 || g.AgentsAvailable != 0 {
		t.Fatalf("general %+v", g)
	}
	if v := q["vip"]; v.Waiting != 0 || v.LongestWaitMS != 0 {
		t.Fatalf("vip %+v", v)
	}
	a := s.agents()
	if a["alice"].Status != "available" || a["alice"].Load != 1 || a["alice"].Capacity != 1 || len(a["alice"].Skills) != 1 {
		t.Fatalf("alice %+v", a["alice"])
	}
	if a["bob"].Status != "offline" || a["bob"].Load != 0 {
		t.Fatalf("bob %+v", a["bob"])
	}

	bob := available(t, s, tokBob)
	conv2 := bob.expectOffer("live-2")["conversation"]
	if g := s.queues()["general"]; g.Waiting != 1 {
		t.Fatalf("with its offer out, general %+v", g)
	}
	bob.do(map[string]any{"type": "accept", "conversation": conv2})
	if g := s.queues()["general"]; g.Waiting != 0 || g.LongestWaitMS != 0 {
		t.Fatalf("all taken, general %+v", g)
	}
	if b := s.agents()["bob"]; b.Status != "available" || b.Load != 1 {
		t.Fatalf("bob %+v", b)
	}
	alice.do(map[string]any{"type": "presence", "status": "not_ready", "reason": "lunch"})
	if a := s.agents()["alice"]; a.Status != "not_ready" || a.Load != 1 {
		t.Fatalf("alice at lunch %+v", a)
	}
	for _, path := range []string{"/v1/queues", "/v1/agents"} {
		s.call("GET", path, tokAgent, nil, nil).wantError(t, 403, "forbidden")
		s.call("GET", path, tokChannel, nil, nil).wantError(t, 403, "forbidden")
		s.call("GET", path, "", nil, nil).wantError(t, 401, "unauthorized")
	}
}

type queueView struct {
	Name            string `json:"name"`
	Waiting         int    `json:"waiting"`
	LongestWaitMS   int64  `json:"longest_wait_ms"`
	AgentsAvailable int    `json:"agents_available"`
}

type agentView struct {
	ID       string   `json:"id"`
	Status   string   `json:"status"`
	Capacity int      `json:"capacity"`
	Load     int      `json:"load"`
	Skills   []string `json:"skills"`
	Offers   int      `json:"offers"`
}

// queues is GET /v1/queues by name.
func (s *server) queues() map[string]queueView {
	s.t.Helper()
	var body struct{ Queues []queueView }
	s.call("GET", "/v1/queues", tokSupervisor, nil, nil).wantStatus(s.t, 200).decode(s.t, &body)
	out := map[string]queueView{}
	for _, q := range body.Queues {
		out[q.Name] = q
	}
	return out
}

// agents is GET /v1/agents by id.
func (s *server) agents() map[string]agentView {
	s.t.Helper()
	var body struct{ Agents []agentView }
	s.call("GET", "/v1/agents", tokSupervisor, nil, nil).wantStatus(s.t, 200).decode(s.t, &body)
	out := map[string]agentView{}
	for _, a := range body.Agents {
		out[a.ID] = a
	}
	return out
}
