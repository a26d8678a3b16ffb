package journey_test

import (
	"slices"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// deskPolicy is botPolicy with the billing queue (callbacks after 5m) and
// a retention queue.
func deskPolicy() journey.Policy {
	p := botPolicy()
	p.Queues = []journey.QueuePolicy{
		{Name: "billing", OfferTimeout: 20 * time.Second, CallbackAfter: 5 * time.Minute},
		{Name: "retention", OfferTimeout: 20 * time.Second},
	}
	return p
}

// queued runs a customer to a conversation queued in billing.
func queued(t *testing.T) (*journeyRun, journey.Decision) {
	t.Helper()
	r := newRun(t, deskPolicy())
	d := r.msg("I want to talk to a person")
	if r.c.Conversation.State != journey.StateQueued {
		t.Fatalf("not queued: %+v", r.c.Conversation)
	}
	return r, d
}

// offer has the routing actor offer the conversation to agent.
func (r *journeyRun) offer(agent string, expiresIn time.Duration) journey.Decision {
	r.t.Helper()
	w := journey.Waiting{Conversation: r.c.Conversation.ID, Customer: "c-42", Queue: r.c.Conversation.Queue}
	if a := journey.Announce(r.c); len(a) == 1 {
		w = a[0].Waiting
	}
	return r.step(&journey.RouteOffer{Offer: journey.Offer{Waiting: w, Agent: agent, Expires: r.now.Add(expiresIn), Reason: journey.OfferLongestIdle,
		Candidates: []journey.Candidate{{Agent: agent, Eligible: true, Why: "chosen: longest idle"}}}})
}

func (r *journeyRun) deskDo(cmd journey.DeskCommand) journey.Decision {
	r.t.Helper()
	return r.step(&cmd)
}

func TestDeskQueuedAnnouncesAndArmsTheCallback(t *testing.T) {
	r, d := queued(t)
	if len(d.Routing) != 1 || d.Routing[0].Op != journey.RouteEnqueue || d.Routing[0].Waiting.Queue != "billing" || d.Routing[0].Waiting.Since.IsZero() {
		t.Fatalf("routing %+v", d.Routing)
	}
	dueOf(t, d.DueAdd, journey.DueRouted)
	cb := dueOf(t, d.DueAdd, journey.DueCallback)
	if !cb.At.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("callback due at %v", cb.At)
	}
	// A due at year 2200 is a marker, never work.
	if d := r.due(journey.Due{At: journey.RoutedKeyAt, Kind: journey.DueRouted, Ref: r.c.Conversation.ID}); len(d.DueDone) != 0 || len(d.Events) != 0 {
		t.Errorf("marker discharged: %+v", d)
	}
}

func TestDeskOfferIsALease(t *testing.T) {
	r, _ := queued(t)
	cv := r.c.Conversation.ID
	d := r.offer("alice", 20*time.Second)
	wantTypes(t, d, journey.TypeAgentOffered)
	if data := dataOf(t, d.Events[0]); data["agent"] != "alice" || data["queue"] != "billing" || data["kind"] != "conversation" || data["candidates"] == nil {
		t.Errorf("agent.offered %s", d.Events[0].Data)
	}
	if len(d.Desk) != 1 || d.Desk[0].Type != "offer" || d.Desk[0].Agent != "alice" || d.Desk[0].Context == nil || d.Desk[0].Customer != "c-42" {
		t.Fatalf("desk %+v", d.Desk)
	}
	lease := dueOf(t, d.DueAdd, journey.DueOfferExpiry)
	// A second offer while one is outstanding is refused.
	if d := r.offer("bob", 20*time.Second); d.Reject == nil || d.Reject.Code != journey.CodeConflict {
		t.Errorf("second offer: %+v", d)
	}
	// The lease runs out: revoked, back in the queue without alice.
	r.at(21 * time.Second)
	d = r.due(lease)
	wantTypes(t, d, journey.TypeRoutingRevoked)
	if data := dataOf(t, d.Events[0]); data["reason"] != journey.RevokedTimeout || data["agent"] != "alice" {
		t.Errorf("revoked %s", d.Events[0].Data)
	}
	if len(d.Desk) != 1 || d.Desk[0].Type != "revoked" || d.Desk[0].Reason != "timeout" || d.Desk[0].Customer != "c-42" {
		t.Errorf("desk %+v", d.Desk)
	}
	if len(d.Routing) != 1 || d.Routing[0].Op != journey.RouteRevoked || !d.Routing[0].Requeue || d.Routing[0].Waiting.Excluded[0] != "alice" || !d.Routing[0].Waiting.Since.Equal(t0) {
		t.Errorf("routing %+v", d.Routing)
	}
	// Accepting after the revocation is a conflict.
	if d := r.deskDo(journey.DeskCommand{Agent: "alice", Type: "accept", Conversation: cv}); d.Reject == nil || d.Reject.Code != journey.CodeConflict {
		t.Errorf("late accept: %+v", d)
	}
	// The same lease's due again records nothing.
	if d := r.due(lease); len(d.Events) != 0 {
		t.Errorf("second due: %v", types(d.Events))
	}
}

func TestDeskAcceptDeclineAndAnExpiredLease(t *testing.T) {
	r, _ := queued(t)
	cv := r.c.Conversation.ID
	r.offer("alice", 20*time.Second)
	d := r.deskDo(journey.DeskCommand{Agent: "alice", Type: "decline", Conversation: cv})
	wantTypes(t, d, journey.TypeRoutingRevoked)
	if dataOf(t, d.Events[0])["reason"] != journey.RevokedDeclined || r.c.Conversation.State != journey.StateQueued {
		t.Errorf("decline %s, state %s", d.Events[0].Data, r.c.Conversation.State)
	}
	r.offer("bob", 20*time.Second)
	// Only the agent offered may accept.
	if d := r.deskDo(journey.DeskCommand{Agent: "alice", Type: "accept", Conversation: cv}); d.Reject == nil {
		t.Error("alice accepted bob's offer")
	}
	// Past the lease, an accept is refused even before the due comes.
	r.at(30 * time.Second)
	if d := r.deskDo(journey.DeskCommand{Agent: "bob", Type: "accept", Conversation: cv}); d.Reject == nil || d.Reject.Code != journey.CodeConflict {
		t.Errorf("accept after expiry: %+v", d)
	}
}

func TestDeskAssignmentReplyTransferWrapup(t *testing.T) {
	r, _ := queued(t)
	cv := r.c.Conversation.ID
	r.offer("alice", 20*time.Second)
	d := r.deskDo(journey.DeskCommand{Agent: "alice", Type: "accept", Conversation: cv})
	wantTypes(t, d, journey.TypeAgentAssigned)
	if d.Events[0].Actor != "agent:alice" || r.c.Conversation.State != journey.StateAgent || r.c.LastAgent != "alice" || !r.c.CanRead("alice") || r.c.CanRead("bob") {
		t.Fatalf("after accept: %+v", r.c.Conversation)
	}
	if len(d.Desk) != 1 || d.Desk[0].Type != "assigned" || d.Desk[0].Context == nil || len(d.Routing) != 1 || d.Routing[0].Op != journey.RouteAccepted {
		t.Errorf("accept effects: desk %+v routing %+v", d.Desk, d.Routing)
	}
	if a := journey.Announce(r.c); len(a) != 1 || a[0].Op != journey.RouteAssigned || a[0].Agent != "alice" {
		t.Errorf("announce %+v", a)
	}
	// A reply goes out on the conversation's channel, once per ref.
	d = r.deskDo(journey.DeskCommand{Agent: "alice", Type: "reply", Conversation: cv, Text: "Hi, Alice here", Ref: "k1"})
	wantTypes(t, d, journey.TypeMessageSent)
	if d.Events[0].Actor != "agent:alice" || d.Events[0].Channel != "sms" || len(d.Outbounds) != 1 {
		t.Errorf("reply %+v", d)
	}
	if d := r.deskDo(journey.DeskCommand{Agent: "alice", Type: "reply", Conversation: cv, Text: "Hi, Alice here", Ref: "k1"}); len(d.Events) != 0 || d.Reject != nil {
		t.Errorf("resent reply: %+v", d)
	}
	// Only the assigned agent may act on it.
	if d := r.deskDo(journey.DeskCommand{Agent: "bob", Type: "reply", Text: "hi"}); d.Reject == nil || d.Reject.Code != journey.CodeConflict {
		t.Errorf("bob's reply: %+v", d)
	}
	if d := r.deskDo(journey.DeskCommand{Agent: "alice", Type: "reply", Conversation: "cv-1-other", Text: "hi"}); d.Reject == nil || d.Reject.Code != journey.CodeConflict {
		t.Errorf("reply to another conversation: %+v", d)
	}
	// Transfer to a queue: queued again there, alice released.
	d = r.deskDo(journey.DeskCommand{Agent: "alice", Type: "transfer", Conversation: cv, Queue: "retention"})
	wantTypes(t, d, journey.TypeAgentTransferred)
	if r.c.Conversation.State != journey.StateQueued || r.c.Conversation.Queue != "retention" || len(d.Routing) != 2 ||
		d.Routing[0].Op != journey.RouteReleased || d.Routing[1].Op != journey.RouteEnqueue || d.Routing[1].Waiting.Queue != "retention" {
		t.Fatalf("transfer: %+v routing %+v", r.c.Conversation, d.Routing)
	}
	if d := r.deskDo(journey.DeskCommand{Agent: "alice", Type: "transfer", Queue: "nowhere"}); d.Reject == nil {
		t.Error("transfer by an agent no longer assigned")
	}
	r.offer("bob", 20*time.Second)
	r.deskDo(journey.DeskCommand{Agent: "bob", Type: "accept", Conversation: cv})
	r.step(&journey.Inbound{Event: journey.Event{ID: "case-ev", Customer: "c-42", Type: "payment.failed"}})
	d = r.deskDo(journey.DeskCommand{Agent: "bob", Type: "wrapup", Conversation: cv, Disposition: "resolved", Note: "done"})
	wantTypes(t, d, journey.TypeAgentWrappedUp)
	if r.c.Conversation.State != journey.StateClosed || len(d.Routing) != 1 || d.Routing[0].Op != journey.RouteReleased || !d.Routing[0].Wrapup {
		t.Errorf("wrapup: %+v routing %+v", r.c.Conversation, d.Routing)
	}
	dueOf(t, d.DueDone, journey.DueRouted)
	if len(journey.Announce(r.c)) != 0 {
		t.Error("a closed conversation is announced")
	}
}

func TestDeskCallbackOfferedThenScheduled(t *testing.T) {
	r, d := queued(t)
	cb := dueOf(t, d.DueAdd, journey.DueCallback)
	r.at(5 * time.Minute)
	d = r.due(cb)
	wantTypes(t, d, journey.TypeCallbackOffered, journey.TypeMessageSent)
	if r.c.Conversation.State != journey.StateCallback || d.Outbounds[0].Text != journey.CallbackOfferText {
		t.Fatalf("callback offer: %+v", r.c.Conversation)
	}
	// Anything but yes keeps it waiting; yes schedules it.
	if d := r.msg("hmm, maybe later"); len(d.Events) != 1 || r.c.Conversation.State != journey.StateCallback {
		t.Errorf("not yes: %v", types(d.Events))
	}
	d = r.msg("Yes!")
	wantTypes(t, d, journey.TypeMessageReceived, journey.TypeCallbackScheduled)
	if r.c.Conversation.State != journey.StateQueued || len(d.Routing) != 1 || d.Routing[0].Waiting.Kind != journey.KindCallback {
		t.Errorf("scheduled: %+v routing %+v", r.c.Conversation, d.Routing)
	}
	// The offer that follows is a callback task.
	if d := r.offer("alice", 20*time.Second); d.Desk[0].Kind != journey.KindCallback {
		t.Errorf("offer kind %q", d.Desk[0].Kind)
	}
}

func TestDeskCallbackNotOfferedOnceOffered(t *testing.T) {
	r, d := queued(t)
	cb := dueOf(t, d.DueAdd, journey.DueCallback)
	r.offer("alice", 10*time.Minute)
	r.at(5 * time.Minute)
	if d := r.due(cb); len(d.Events) != 0 {
		t.Errorf("callback offered to a customer being offered: %v", types(d.Events))
	}
}

func TestDeskAgentGoneReleasesAndRevokes(t *testing.T) {
	r, _ := queued(t)
	cv := r.c.Conversation.ID
	r.offer("alice", 20*time.Second)
	d := r.step(&journey.RevokeOffer{Conversation: cv, Agent: "alice", Reason: journey.RevokedOffline})
	wantTypes(t, d, journey.TypeRoutingRevoked)
	r.offer("bob", 20*time.Second)
	r.deskDo(journey.DeskCommand{Agent: "bob", Type: "accept", Conversation: cv})
	if d := r.step(&journey.ReleaseAgent{Conversation: cv, Agent: "alice", Reason: journey.RevokedOffline}); len(d.Events) != 0 {
		t.Errorf("released from an agent that does not hold it: %v", types(d.Events))
	}
	d = r.step(&journey.ReleaseAgent{Conversation: cv, Agent: "bob", Reason: journey.RevokedOffline})
	wantTypes(t, d, journey.TypeAgentTransferred)
	if r.c.Conversation.State != journey.StateQueued || r.c.Conversation.Queue != "billing" || len(d.Routing) != 2 {
		t.Errorf("after release: %+v routing %+v", r.c.Conversation, d.Routing)
	}
}

func TestDeskStateSurvivesASnapshot(t *testing.T) {
	r, _ := queued(t)
	r.offer("alice", 20*time.Second)
	c, err := journey.DecodeSnapshot(r.c.EncodeSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	cv := c.Conversation
	if cv.State != journey.StateOffered || cv.OfferedTo != "alice" || !cv.Routed || cv.QueuedAt.IsZero() || !cv.OfferExpires.Equal(r.c.Conversation.OfferExpires) {
		t.Errorf("after a snapshot: %+v", cv)
	}
}

func TestDeskAudience(t *testing.T) {
	ev := func(typ, data string) journey.Event { return journey.Event{Type: typ, Data: []byte(data)} }
	events := []journey.Event{
		ev("message.received", ""),
		ev(journey.TypeAgentAssigned, `{"agent":"bob"}`),
		ev("message.received", ""),
		ev(journey.TypeAgentWrappedUp, `{"agent":"bob"}`),
		ev("message.received", ""),
	}
	got, after := journey.DeskAudience(events, "alice")
	if want := []string{"alice", "bob", "bob", "bob", ""}; !slices.Equal(got, want) || after != "" {
		t.Errorf("audience %q then %q, want %q then none", got, after, want)
	}
	if got, after := journey.DeskAudience(events[:2], ""); !slices.Equal(got, []string{"", "bob"}) || after != "bob" {
		t.Errorf("audience %q then %q", got, after)
	}
}
