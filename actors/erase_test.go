package actors

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// erasePolicy routes payment.failed to billing (offering a callback after
// callbackAfter) and arms a timer rule that tags the customer after
// timerAfter: a queued customer with due work of two kinds.
func erasePolicy(t *testing.T, callbackAfter, timerAfter time.Duration) (*journey.Policy, []journey.QueuePolicy) {
	t.Helper()
	rules, err := journey.CompileRules([]journey.RuleConfig{
		{ID: "to-billing", When: "event.type == 'payment.failed'", Do: []journey.ActionConfig{{Route: &journey.RouteAction{Queue: "billing", BypassBot: true}}}},
		{ID: "nudge", When: "event.type == 'payment.failed'", After: timerAfter, Do: []journey.ActionConfig{{Tag: "nudged"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	queues := []journey.QueuePolicy{{Name: "billing", CallbackAfter: callbackAfter}}
	return &journey.Policy{Rules: rules, Queues: queues}, queues
}

// ingestAs resolves an event's identities and ingests it.
func ingestAs(t *testing.T, rt *Runtime, e journey.Event) Result {
	t.Helper()
	if rej := journey.ValidateInbound(&e); rej != nil {
		t.Fatal(rej)
	}
	customer, linked, err := rt.Resolve(context.Background(), &e)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan Result, 1)
	rt.Ingest(customer, journey.Inbound{Event: e, Linked: linked}, func(r Result) { ch <- r })
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer for %s", e.ID)
		return Result{}
	}
}

func queueWaiting(t *testing.T, rt *Runtime, name string) int {
	t.Helper()
	queues, _, err := rt.Routing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		if q.Name == name {
			return q.Waiting
		}
	}
	t.Fatalf("no queue %s", name)
	return 0
}

// A queued customer with due work (a callback offer, a timer rule) is
// erased: nothing of it fires afterwards, the queue no longer lists it, no
// key of it can be read back, its identity resolves to a new customer, and
// a provider's late retry of one of its event ids answers conflict.
func TestEraseQueuedCustomerWithDueWork(t *testing.T) {
	const callbackAfter, timerAfter = 300 * time.Millisecond, 200 * time.Millisecond
	policy, queues := erasePolicy(t, callbackAfter, timerAfter)
	rt, engine := startTest(t, Config{Policy: policy, Queues: queues})
	ctx := context.Background()
	phone := map[string]string{"phone": "+15551230000"}

	r := ingestAs(t, rt, journey.Event{ID: "pay-1", Identity: phone, Type: "payment.failed"})
	if r.Reject != nil {
		t.Fatal(r.Reject)
	}
	id := r.Ack.Customer
	store := engine.Store(rt.PartitionOf(id))
	waitFor(t, func() bool { return queueWaiting(t, rt, "billing") == 1 }, "the customer queued")
	if n := dueOf(t, store, id); n < 3 { // routed marker, callback, timer
		t.Fatalf("%d due items before the erase, want at least 3", n)
	}

	if err := rt.Erase(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := queueWaiting(t, rt, "billing"); n != 0 {
		t.Fatalf("billing lists %d waiting after the erase", n)
	}
	activations := rt.Activations.Load()
	time.Sleep(callbackAfter + 200*time.Millisecond) // past every due time
	if a := rt.Activations.Load(); a != activations {
		t.Fatalf("the erased customer was activated again %d times", a-activations)
	}
	assertErased(t, store, id)
	if n := dueOf(t, store, id); n != 0 {
		t.Fatalf("%d due items of the erased customer", n)
	}
	if n := queueWaiting(t, rt, "billing"); n != 0 {
		t.Fatalf("billing lists %d waiting after the due times", n)
	}
	if _, exists, err := rt.Context(ctx, id); err != nil || exists {
		t.Fatalf("context after erase: exists=%v %v", exists, err)
	}

	// A late retry naming the customer is refused; its identity makes a
	// new customer.
	late := journey.Event{ID: "pay-1", Customer: id, Type: "payment.failed"}
	if r := ingestAs(t, rt, late); r.Reject == nil || r.Reject.Code != journey.CodeConflict {
		t.Fatalf("late retry answered %+v %v, want conflict", r.Ack, r.Reject)
	}
	r = ingestAs(t, rt, journey.Event{ID: "hello-2", Identity: phone, Text: "hi again"})
	if r.Reject != nil {
		t.Fatal(r.Reject)
	}
	if r.Ack.Customer == id {
		t.Fatal("the erased customer's phone resolved to it again")
	}
}

// An erase of a customer offered to an agent and then assigned frees the
// agent's load and tells its desk (revoked).
func TestEraseAssignedCustomerFreesTheAgent(t *testing.T) {
	policy, queues := erasePolicy(t, 0, time.Hour)
	var mu sync.Mutex
	var frames []journey.DeskMessage
	desk := func(_ string, m journey.DeskMessage) {
		mu.Lock()
		defer mu.Unlock()
		frames = append(frames, m)
	}
	lastFrame := func(typ string) *journey.DeskMessage {
		mu.Lock()
		defer mu.Unlock()
		for i := len(frames) - 1; i >= 0; i-- {
			if frames[i].Type == typ {
				return &frames[i]
			}
		}
		return nil
	}
	rt, engine := startTest(t, Config{Policy: policy, Queues: queues, Desk: desk,
		Agents: []journey.AgentConfig{{ID: "ana", Capacity: journey.Capacity{Total: 2}}}})
	ctx := context.Background()
	presence := make(chan error, 1)
	rt.Presence("ana", journey.AgentAvailable, "", nil, func(_ journey.AgentView, err error) { presence <- err })
	if err := <-presence; err != nil {
		t.Fatal(err)
	}
	r := ingestAs(t, rt, journey.Event{ID: "pay-1", Customer: "c-erase", Type: "payment.failed"})
	if r.Reject != nil {
		t.Fatal(r.Reject)
	}
	waitFor(t, func() bool { return lastFrame("offer") != nil }, "the offer on ana's desk")
	accepted := make(chan *journey.Rejection, 1)
	rt.Desk("c-erase", journey.DeskCommand{Agent: "ana", Type: "accept", Conversation: lastFrame("offer").Conversation},
		func(rej *journey.Rejection) { accepted <- rej })
	if rej := <-accepted; rej != nil {
		t.Fatal(rej)
	}
	waitFor(t, func() bool { return agentLoad(t, rt, "ana") == 1 }, "ana's load 1")

	if err := rt.Erase(ctx, "c-erase"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return agentLoad(t, rt, "ana") == 0 }, "ana's load back to 0")
	rev := lastFrame("revoked")
	if rev == nil || rev.Customer != "c-erase" || rev.Reason != RevokedErased {
		t.Fatalf("ana's desk got %+v, want revoked (erased)", rev)
	}
	assertErased(t, engine.Store(rt.PartitionOf("c-erase")), "c-erase")
}

func agentLoad(t *testing.T, rt *Runtime, agent string) int {
	t.Helper()
	_, agents, err := rt.Routing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if a.ID == agent {
			return a.Load
		}
	}
	t.Fatalf("no agent %s", agent)
	return 0
}

func dueOf(t *testing.T, store persistence.Store, customer string) int {
	t.Helper()
	n := 0
	err := store.ScanDue(context.Background(), persistence.DueWork{}, journey.RoutedKeyAt.Add(time.Hour), func(w persistence.DueWork) bool {
		if w.Customer == customer {
			n++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// assertErased reads back nothing of the customer: no event, no snapshot.
func assertErased(t *testing.T, store persistence.Store, customer string) {
	t.Helper()
	snap, events, err := store.Load(context.Background(), customer)
	if err != nil || snap != nil || len(events) != 0 {
		t.Fatalf("the erased customer loads a snapshot %v and %d events (%v)", snap != nil, len(events), err)
	}
}

// A bot turn still thinking when its customer is erased comes back to
// nothing: its answer does not activate the customer again nor store or
// send anything.
func TestEraseDropsABotAnswerInFlight(t *testing.T) {
	release := make(chan struct{})
	asked := make(chan struct{}, 1)
	sink := newSink()
	rt, engine := startTest(t, Config{
		Policy: botPolicy(), Deliver: sink.deliver,
		Bot: func(ctx context.Context, req journey.BotRequest) journey.BotResult {
			asked <- struct{}{}
			<-release
			return journey.BotResult{Text: "answer", Confidence: 0.9}
		},
	})
	if r := ingest(t, rt, "c-bot", "m-1"); r.Ack == nil {
		t.Fatalf("message: %+v", r)
	}
	<-asked
	if err := rt.Erase(context.Background(), "c-bot"); err != nil {
		t.Fatal(err)
	}
	activations := rt.Activations.Load()
	close(release)
	time.Sleep(100 * time.Millisecond) // the answer's way back
	if a := rt.Activations.Load(); a != activations {
		t.Fatalf("the bot's answer activated the erased customer (%d activations)", a-activations)
	}
	assertErased(t, engine.Store(rt.PartitionOf("c-bot")), "c-bot")
	select {
	case o := <-sink.ch:
		t.Fatalf("an outbound of the erased customer went out: %+v", o)
	default:
	}
}
