package journey_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// broadcastRun is a customer with a phone (sms) whose governance caps at one
// proactive message a day, with quiet hours 21:00-08:00 UTC.
func broadcastRun(t *testing.T, profile string, withBot bool) *journeyRun {
	t.Helper()
	p := journey.Policy{Governance: &journey.Governance{
		FrequencyCap: &journey.FrequencyCap{Max: 1, Per: 24 * time.Hour},
		QuietHours:   &journey.QuietHours{From: "21:00", To: "08:00"},
	}, Queues: []journey.QueuePolicy{{Name: "callbacks"}}}
	if withBot {
		p.Bot = botPolicy().Bot
	}
	r := newRun(t, p)
	r.event("payment.attempted", "", "", `{"amount":12}`)
	if profile != "" {
		r.profile(profile)
	}
	return r
}

func withPhone(r *journeyRun) {
	e := journey.Event{ID: "rt-id", Customer: "c-42", Type: journey.TypeIdentityLinked, Seq: r.c.Seq + 1, Actor: journey.ActorSystem,
		RecordedAt: r.now, Data: json.RawMessage(`{"identities":[{"kind":"phone","value":"+15551230000"}]}`)}
	r.c.Apply(&e)
	r.all = append(r.all, e)
}

func send(id string, callback bool) *journey.BroadcastSend {
	return &journey.BroadcastSend{Broadcast: id, Text: "We know about the payment problem.", Expires: t0.Add(24 * time.Hour), CallbackOffer: callback}
}

// markOf is the decision's only mark, decoded.
func markOf(t *testing.T, d journey.Decision) journey.BroadcastState {
	t.Helper()
	if len(d.Marks) != 1 {
		t.Fatalf("marks %+v, want one", d.Marks)
	}
	st, err := journey.DecodeMark(d.Marks[len(d.Marks)-1].Value)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBroadcastGovernanceOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		profile string
		phone   bool
		at      time.Duration // after t0 (10:00 UTC)
		expires time.Duration // after t0; 0: 24h
		want    string        // event type
		reason  string
		mark    string
	}{
		{"sent by sms", "", true, 0, 0, journey.TypeProactiveSent, "", "sent"},
		{"sms without consent", `{"consent":{"sms":false}}`, true, 0, 0, journey.TypeProactiveSuppressed, journey.ReasonNoConsent, "suppressed:no_consent"},
		{"no channel at all", "", false, 0, 0, journey.TypeProactiveSuppressed, journey.ReasonNoChannel, "suppressed:no_channel"},
		{"quiet hours hold", "", true, 12 * time.Hour, 0, journey.TypeProactiveHeld, "", "held"},
		{"quiet hours past expiry", "", true, 11 * time.Hour, 12 * time.Hour, journey.TypeProactiveSuppressed, journey.ReasonQuietHours, "suppressed:quiet_hours"},
		{"preferred channel email without identity still chosen", `{"preferred_channel":"email"}`, true, 0, 0, journey.TypeProactiveSent, "", "sent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := broadcastRun(t, tc.profile, false)
			if tc.phone {
				withPhone(r)
			}
			r.at(tc.at)
			in := send("bc-1", true)
			if tc.expires > 0 {
				in.Expires = t0.Add(tc.expires)
			}
			d := r.step(in)
			e := eventOf(t, d, tc.want)
			data := dataOf(t, e)
			if data["broadcast"] != "bc-1" || e.Actor != journey.ActorSystem {
				t.Errorf("%s data %s actor %s", e.Type, e.Data, e.Actor)
			}
			if tc.reason != "" && data["reason"] != tc.reason {
				t.Errorf("reason %v, want %s", data["reason"], tc.reason)
			}
			if got := string(d.Marks[len(d.Marks)-1].Value); got != tc.mark {
				t.Errorf("mark %q, want %q", got, tc.mark)
			}
			if tc.want == journey.TypeProactiveSent && len(d.Outbounds) != 1 {
				t.Errorf("outbounds %+v", d.Outbounds)
			}
		})
	}
}

func TestBroadcastOnceAndCapped(t *testing.T) {
	r := broadcastRun(t, "", false)
	withPhone(r)
	d := r.step(send("bc-1", false))
	eventOf(t, d, journey.TypeProactiveSent)
	// Asked again (a resumed broadcast): nothing new.
	if d := r.step(send("bc-1", false)); len(d.Events) != 0 || len(d.Outbounds) != 0 || len(d.Marks) != 0 {
		t.Errorf("second ask of the same broadcast: %v %+v", types(d.Events), d.Marks)
	}
	// A second broadcast the same day: capped.
	r.at(time.Hour)
	d = r.step(send("bc-2", false))
	if e := eventOf(t, d, journey.TypeProactiveSuppressed); dataOf(t, e)["reason"] != journey.ReasonFrequencyCap {
		t.Errorf("second broadcast %s", e.Data)
	}
	if st := markOf(t, d); st.Outcome != journey.BroadcastSuppressed || st.Reason != journey.ReasonFrequencyCap {
		t.Errorf("mark %+v", st)
	}
}

func TestBroadcastWhere(t *testing.T) {
	vip, err := journey.CompileCondition("has(customer.profile.tier) && customer.profile.tier == 'vip'")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		profile string
		want    string
	}{{`{"tier":"vip"}`, "sent"}, {`{"tier":"basic"}`, "skipped"}, {"", "skipped"}} {
		r := broadcastRun(t, tc.profile, false)
		withPhone(r)
		in := send("bc-1", false)
		in.Where = vip
		d := r.step(in)
		if st := markOf(t, d); st.Outcome != tc.want {
			t.Errorf("profile %s: outcome %s, want %s", tc.profile, st.Outcome, tc.want)
		}
		if tc.want == "skipped" && len(d.Events) != 0 {
			t.Errorf("a skipped customer recorded %v", types(d.Events))
		}
	}
	for _, bad := range []string{"", "customer.profile.tier ==", "1 + 2", "event.type == 'x'", string(make([]byte, journey.BroadcastWhereMaxChars+1))} {
		if _, err := journey.CompileCondition(bad); err == nil {
			t.Errorf("where %.20q compiled", bad)
		}
	}
}

func TestBroadcastHeldThenReleased(t *testing.T) {
	r := broadcastRun(t, "", false)
	withPhone(r)
	r.at(12 * time.Hour) // 22:00 UTC
	d := r.step(send("bc-1", true))
	held := eventOf(t, d, journey.TypeProactiveHeld)
	due := dueOf(t, d.DueAdd, journey.DueProactiveRelease)
	r.now = due.At
	d = r.due(due)
	sent := eventOf(t, d, journey.TypeProactiveSent)
	if data := dataOf(t, sent); data["broadcast"] != "bc-1" || data["held"] != float64(held.Seq) {
		t.Errorf("released %s", sent.Data)
	}
	if st := markOf(t, d); st.Outcome != journey.BroadcastSent {
		t.Errorf("mark after release %+v", st)
	}
	// The callback offer rode with the hold: a yes now schedules it.
	r.at(22 * time.Hour)
	d = r.msg("yes")
	if e := eventOf(t, d, journey.TypeCallbackScheduled); dataOf(t, e)["broadcast"] != "bc-1" {
		t.Errorf("callback %s", e.Data)
	}
}

func TestBroadcastCallbackAndResolve(t *testing.T) {
	r := broadcastRun(t, "", true)
	withPhone(r)
	r.step(send("bc-1", true))
	r.at(time.Minute)
	d := r.msg("YES!")
	cb := eventOf(t, d, journey.TypeCallbackScheduled)
	if dataOf(t, cb)["broadcast"] != "bc-1" || len(d.Bot) != 0 || r.c.Conversation != nil {
		t.Errorf("yes: %s, bot %+v, conversation %+v", cb.Data, d.Bot, r.c.Conversation)
	}
	if st := markOf(t, d); !st.Callback || st.Outcome != journey.BroadcastSent {
		t.Errorf("mark %+v", st)
	}
	// A second yes: the offer is taken; the bot answers it as a message.
	if d := r.msg("yes"); slices.Contains(types(d.Events), journey.TypeCallbackScheduled) {
		t.Error("a second yes scheduled again")
	}
	r.c.Conversation = nil // as if the bot's conversation closed
	// Resolve at night: a service message goes out anyway, and a callback
	// task is queued.
	r.at(12 * time.Hour)
	d = r.step(&journey.BroadcastResolve{Broadcast: "bc-1", Text: "Payments work again.", Callback: true, Queue: "callbacks"})
	if got := types(d.Events); !slices.Equal(got, []string{journey.TypeBroadcastResolved, journey.TypeMessageSent,
		journey.TypeConversationOpened, journey.TypeRoutingDecided}) {
		t.Fatalf("resolve events %v", got)
	}
	sent := eventOf(t, d, journey.TypeMessageSent)
	if sent.Text != "Payments work again." || sent.Channel != "sms" || dataOf(t, sent)["proactive"] == true {
		t.Errorf("follow-up %+v %s", sent, sent.Data)
	}
	rd := dataOf(t, eventOf(t, d, journey.TypeRoutingDecided))
	if rd["kind"] != journey.KindCallback || rd["queue"] != "callbacks" || rd["reason"] != journey.ReasonBroadcastCallback || rd["broadcast"] != "bc-1" {
		t.Errorf("routing.decided %v", rd)
	}
	if cv := r.c.Conversation; cv == nil || cv.State != journey.StateQueued || cv.Kind != journey.KindCallback {
		t.Errorf("conversation %+v", cv)
	}
	if len(d.Routing) != 1 || d.Routing[0].Op != journey.RouteEnqueue || d.Routing[0].Waiting.Kind != journey.KindCallback {
		t.Errorf("routing effects %+v", d.Routing)
	}
	if st, _ := r.c.Broadcast("bc-1"); !st.Resolved {
		t.Errorf("state %+v", st)
	}
	// Resolve again (a resumed resolve): nothing.
	if d := r.step(&journey.BroadcastResolve{Broadcast: "bc-1", Text: "x", Callback: true, Queue: "callbacks"}); len(d.Events) != 0 {
		t.Errorf("second resolve %v", types(d.Events))
	}
}

func TestBroadcastYesRules(t *testing.T) {
	// No offer, an expired offer, a yes before the message: not a callback.
	r := broadcastRun(t, "", false)
	withPhone(r)
	r.step(send("bc-1", false))
	if d := r.msg("yes"); slices.Contains(types(d.Events), journey.TypeCallbackScheduled) {
		t.Error("a broadcast without a callback offer scheduled one")
	}
	r = broadcastRun(t, "", false)
	withPhone(r)
	r.step(send("bc-1", true))
	r.at(25 * time.Hour)
	if d := r.msg("yes"); slices.Contains(types(d.Events), journey.TypeCallbackScheduled) {
		t.Error("a yes after the broadcast expired scheduled a callback")
	}
	r = broadcastRun(t, "", false)
	withPhone(r)
	r.step(send("bc-1", true))
	if d := r.msg("no thanks"); slices.Contains(types(d.Events), journey.TypeCallbackScheduled) {
		t.Error("a no scheduled a callback")
	}
	// Resolve for a customer who did not accept: nothing.
	if d := r.step(&journey.BroadcastResolve{Broadcast: "bc-1", Text: "x", Callback: true, Queue: "callbacks"}); len(d.Events) != 0 {
		t.Errorf("resolve without a callback: %v", types(d.Events))
	}
}

func TestBroadcastStateSurvivesSnapshotAndRebuild(t *testing.T) {
	r := broadcastRun(t, "", false)
	withPhone(r)
	r.step(send("bc-1", true))
	r.at(time.Minute)
	r.msg("yes")
	snap := r.c.EncodeSnapshot()
	back := rebuild(t, "c-42", snap, nil)
	if st, ok := back.Broadcast("bc-1"); !ok || !st.Callback || st.Outcome != journey.BroadcastSent {
		t.Errorf("from snapshot: %+v %v", st, ok)
	}
	replayed := rebuild(t, "c-42", nil, r.all)
	if st, ok := replayed.Broadcast("bc-1"); !ok || !st.Callback || !st.CallbackOffer || st.Channel != "sms" {
		t.Errorf("from events: %+v %v", st, ok)
	}
}

func TestBroadcastsKeptBounded(t *testing.T) {
	r := broadcastRun(t, "", false)
	for i := range journey.BroadcastsKeptMax + 5 {
		r.step(send(fmt.Sprintf("bc-%d", i), false))
	}
	if n := len(r.c.Broadcasts); n != journey.BroadcastsKeptMax {
		t.Errorf("%d broadcasts kept, want %d", n, journey.BroadcastsKeptMax)
	}
	if _, ok := r.c.Broadcast("bc-0"); ok {
		t.Error("the oldest broadcast was kept")
	}
}

func TestBroadcastMarksAndProgress(t *testing.T) {
	marks := []string{"sent", "sent|c", "sent|c|r", "held", "suppressed:no_consent", "suppressed:frequency_cap", "skipped"}
	p := journey.NewBroadcastProgress()
	for _, m := range marks {
		st, err := journey.DecodeMark([]byte(m))
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if got := string(st.Mark()); got != m {
			t.Errorf("round trip %q -> %q", m, got)
		}
		if err := p.Count([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	want := `{"targeted":6,"sent":3,"held":1,"suppressed":{"frequency_cap":1,"no_channel":0,"no_consent":1,"quiet_hours":0},"callbacks_accepted":2}`
	if got := mustJSON(t, p); got != want {
		t.Errorf("progress %s\nwant %s", got, want)
	}
	q := journey.NewBroadcastProgress()
	q.Merge(p)
	q.Merge(p)
	if q.Targeted != 12 || q.Suppressed[journey.ReasonNoConsent] != 2 {
		t.Errorf("merged %+v", q)
	}
	for _, bad := range []string{"", "gone", "sent|x"} {
		if _, err := journey.DecodeMark([]byte(bad)); err == nil {
			t.Errorf("mark %q decoded", bad)
		}
	}
}

func TestPlanBroadcast(t *testing.T) {
	good := func() *journey.BroadcastRequest {
		r := &journey.BroadcastRequest{CallbackOffer: true}
		r.Segment.Event, r.Segment.Within, r.Segment.Where = "payment.attempted", "1h", "customer.profile.tier == 'vip'"
		r.Message.Text = "We know."
		return r
	}
	queues := []string{"general", "vip"}
	p, where, rej := journey.PlanBroadcast(good(), "bc-1", t0, queues, "general")
	if rej != nil || where == nil {
		t.Fatalf("good request refused: %v", rej)
	}
	if p.Within != time.Hour || !p.Expires.Equal(t0.Add(journey.BroadcastExpiresDefault)) || p.CallbackQueue != "general" || !p.Created.Equal(t0) {
		t.Errorf("plan %+v", p)
	}
	bad := map[string]func(*journey.BroadcastRequest){
		"no event":         func(r *journey.BroadcastRequest) { r.Segment.Event = "" },
		"reserved-looking": func(r *journey.BroadcastRequest) { r.Segment.Event = "Payment Failed" },
		"no window":        func(r *journey.BroadcastRequest) { r.Segment.Within = "" },
		"window too long":  func(r *journey.BroadcastRequest) { r.Segment.Within = "721h" },
		"bad where":        func(r *journey.BroadcastRequest) { r.Segment.Where = "customer.profile.tier ==" },
		"where too long": func(r *journey.BroadcastRequest) {
			r.Segment.Where = "true || " + strings.Repeat("true || ", journey.BroadcastWhereMaxChars/8) + "true"
		},
		"no text": func(r *journey.BroadcastRequest) { r.Message.Text = " " },
		"text too long": func(r *journey.BroadcastRequest) {
			r.Message.Text = strings.Repeat("x", journey.BroadcastTextMaxBytes+1)
		},
		"bad expiry":    func(r *journey.BroadcastRequest) { r.Expires = "8d" },
		"unknown queue": func(r *journey.BroadcastRequest) { r.CallbackQueue = "nowhere" },
	}
	for name, spoil := range bad {
		r := good()
		spoil(r)
		if _, _, rej := journey.PlanBroadcast(r, "bc-1", t0, queues, "general"); rej == nil || rej.Code != journey.CodeBadRequest {
			t.Errorf("%s: %v, want bad_request", name, rej)
		}
	}
	// Without ai.default_queue the callback queue is the first configured
	// one; with no queue at all the offer stands, and only a resolve asking
	// for callbacks is refused.
	r := good()
	if p, _, rej := journey.PlanBroadcast(r, "bc-1", t0, queues, ""); rej != nil || p.CallbackQueue != "general" {
		t.Errorf("no default queue: %+v %v", p, rej)
	}
	p, _, rej = journey.PlanBroadcast(r, "bc-1", t0, nil, "")
	if rej != nil || p.CallbackQueue != "" {
		t.Fatalf("no queue at all: %+v %v", p, rej)
	}
	res := &journey.ResolveRequest{Callback: true}
	res.Message.Text = "fixed"
	if rej := journey.CheckResolve(res, p); rej == nil || rej.Code != journey.CodeBadRequest {
		t.Errorf("a resolve with callbacks and no queue: %v", rej)
	}
	res.Callback = false
	if rej := journey.CheckResolve(res, p); rej != nil {
		t.Errorf("a resolve without callbacks: %v", rej)
	}
}
