package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// paid stores a payment.attempted for each customer, with a phone and a
// profile (consent as given), and waits for the acks.
func paid(t *testing.T, rt *Runtime, n int, profile func(i int) string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		c := fmt.Sprintf("c-%03d", i)
		ids = append(ids, c)
		e := journey.Event{ID: "pay-" + c, Customer: c, Type: "payment.attempted",
			Identity: map[string]string{"phone": fmt.Sprintf("+1555000%04d", i)}}
		if rej := journey.ValidateInbound(&e); rej != nil {
			t.Fatal(rej)
		}
		owner, linked, err := rt.Resolve(context.Background(), &e)
		if err != nil || owner != c {
			t.Fatalf("resolve %s: %s %v", c, owner, err)
		}
		ch := make(chan Result, 1)
		rt.Ingest(c, journey.Inbound{Event: e, Linked: linked}, func(r Result) { ch <- r })
		if r := <-ch; r.Reject != nil {
			t.Fatal(r.Reject)
		}
		if p := profile(i); p != "" {
			done := make(chan Result, 1)
			rt.PatchProfile(c, journey.ProfilePatch{ID: "p-" + c, Patch: json.RawMessage(p)}, func(r Result, _ map[string]any) { done <- r })
			if r := <-done; r.Reject != nil {
				t.Fatal(r.Reject)
			}
		}
	}
	return ids
}

func outage(callback bool) *journey.BroadcastRequest {
	req := &journey.BroadcastRequest{CallbackOffer: callback, CallbackQueue: "callbacks"}
	req.Segment.Event, req.Segment.Within = "payment.attempted", "1h"
	req.Message.Text = "We know about the payment problem."
	return req
}

func waitState(t *testing.T, rt *Runtime, id, state string) BroadcastStatus {
	t.Helper()
	var st BroadcastStatus
	waitFor(t, func() bool {
		var err error
		st, err = rt.BroadcastStatus(context.Background(), id)
		return err == nil && st.State == state
	}, "broadcast "+state)
	return st
}

func broadcastConfig() Config {
	return Config{BroadcastRate: 1000, Queues: []journey.QueuePolicy{{Name: "callbacks"}}}
}

func TestBroadcastReachesTheSegmentOnce(t *testing.T) {
	rt, engine := startTest(t, broadcastConfig())
	paid(t, rt, 30, func(i int) string {
		if i%10 == 0 {
			return `{"consent":{"sms":false}}`
		}
		return ""
	})
	id, err := rt.StartBroadcast(context.Background(), outage(false))
	if err != nil {
		t.Fatal(err)
	}
	st := waitState(t, rt, id, BroadcastDone)
	if st.Targeted != 30 || st.Sent != 27 || st.Suppressed[journey.ReasonNoConsent] != 3 {
		t.Errorf("progress %+v", st)
	}
	// Each customer has exactly one proactive event naming the broadcast.
	for i := range 30 {
		c := fmt.Sprintf("c-%03d", i)
		evs, _ := engine.Store(rt.PartitionOf(c)).Events(context.Background(), c, 0, 0)
		n := 0
		for _, e := range evs {
			if journey.BroadcastOf(&e) == id {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s has %d events of the broadcast", c, n)
		}
	}
	if list, _ := rt.Broadcasts(context.Background(), 10); len(list) != 1 || list[0].ID != id || list[0].State != BroadcastDone {
		t.Errorf("list %+v", list)
	}
	if _, err := rt.BroadcastStatus(context.Background(), "bc-none"); !errors.Is(err, ErrBroadcastNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestBroadcastResumesAfterRestart(t *testing.T) {
	engine := persistence.NewMemory(8)
	defer engine.Close()
	cfg := broadcastConfig()
	cfg.BroadcastRate = 20
	rt, err := Start(cfg, engine)
	if err != nil {
		t.Fatal(err)
	}
	paid(t, rt, 40, func(int) string { return "" })
	id, err := rt.StartBroadcast(context.Background(), outage(false))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		st, _ := rt.BroadcastStatus(context.Background(), id)
		return st.Sent >= 5
	}, "some sent")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.BroadcastRate = 1000
	rt, err = Start(cfg, engine)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(ctx)
	st := waitState(t, rt, id, BroadcastDone)
	if st.Targeted != 40 || st.Sent != 40 {
		t.Errorf("after the restart: %+v", st)
	}
}

func TestBroadcastCancelStopsTheRest(t *testing.T) {
	cfg := broadcastConfig()
	cfg.BroadcastRate = 5
	rt, _ := startTest(t, cfg)
	paid(t, rt, 30, func(int) string { return "" })
	id, err := rt.StartBroadcast(context.Background(), outage(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.CancelBroadcast(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	waitState(t, rt, id, BroadcastCancelled)
	time.Sleep(300 * time.Millisecond) // a target in flight at the cancel is answered
	st, _ := rt.BroadcastStatus(context.Background(), id)
	time.Sleep(600 * time.Millisecond) // at 5/s, three more would be asked by now
	again, _ := rt.BroadcastStatus(context.Background(), id)
	if again.Targeted != st.Targeted || st.Targeted >= 30 {
		t.Errorf("cancelled: %d targeted, then %d", st.Targeted, again.Targeted)
	}
}

func TestBroadcastResolveQueuesCallbacks(t *testing.T) {
	rt, _ := startTest(t, broadcastConfig())
	ids := paid(t, rt, 6, func(int) string { return "" })
	id, err := rt.StartBroadcast(context.Background(), outage(true))
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, rt, id, BroadcastDone)
	for _, c := range ids[:3] {
		e := journey.Event{ID: "yes-" + c, Customer: c, Text: "yes"}
		_ = journey.ValidateInbound(&e)
		ch := make(chan Result, 1)
		rt.Ingest(c, journey.Inbound{Event: e}, func(r Result) { ch <- r })
		if r := <-ch; r.Reject != nil {
			t.Fatal(r.Reject)
		}
	}
	if st, _ := rt.BroadcastStatus(context.Background(), id); st.CallbacksAccepted != 3 {
		t.Errorf("callbacks accepted %d", st.CallbacksAccepted)
	}
	req := &journey.ResolveRequest{Callback: true}
	req.Message.Text = "Payments work again."
	if err := rt.ResolveBroadcast(context.Background(), id, req); err != nil {
		t.Fatal(err)
	}
	if err := rt.ResolveBroadcast(context.Background(), id, req); !errors.Is(err, ErrBroadcastResolved) {
		t.Errorf("second resolve: %v", err)
	}
	waitFor(t, func() bool {
		q, _, err := rt.Routing(context.Background())
		if err != nil {
			return false
		}
		for _, v := range q {
			if v.Name == "callbacks" && v.Waiting == 3 {
				return true
			}
		}
		return false
	}, "three callbacks queued")
	if st, _ := rt.BroadcastStatus(context.Background(), id); !st.Resolved {
		t.Errorf("not resolved: %+v", st)
	}
}

// Customers a broadcast activates, and that are asked nothing else, go out
// of memory within seconds instead of after IdleTimeout; one that is asked
// something else stays.
func TestCustomersActivatedByABroadcastPassivateSoon(t *testing.T) {
	engine := persistence.NewMemory(8)
	defer engine.Close()
	cfg := broadcastConfig()
	cfg.IdleTimeout = time.Minute
	rt, err := Start(cfg, engine)
	if err != nil {
		t.Fatal(err)
	}
	ids := paid(t, rt, 20, func(int) string { return "" })
	if err := rt.Stop(context.Background()); err != nil { // passivates everyone
		t.Fatal(err)
	}
	rt, err = Start(cfg, engine)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(context.Background())
	id, err := rt.StartBroadcast(context.Background(), outage(false))
	if err != nil {
		t.Fatal(err)
	}
	if st := waitState(t, rt, id, BroadcastDone); st.Sent != 20 {
		t.Fatalf("sent %d of 20", st.Sent)
	}
	if r := ingest(t, rt, ids[0], "after-the-broadcast"); r.Reject != nil {
		t.Fatal(r.Reject)
	}
	// Within waitFor's 10 s, against an IdleTimeout of a minute.
	waitFor(t, func() bool { return rt.ActiveCustomers.Load() == 1 }, "the broadcast's customers passivated")
	time.Sleep(broadcastIdleTimeout)
	if n := rt.ActiveCustomers.Load(); n != 1 {
		t.Fatalf("%d customers active, want the one asked after the broadcast", n)
	}
}
