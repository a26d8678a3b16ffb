package actors

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// ingestMany sends events events to each of n customers (c-<i>), all at
// once, and waits for every answer; each must be stored.
func ingestMany(t *testing.T, rt *Runtime, prefix string, n, events int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed *journey.Rejection
	for i := range n {
		customer := fmt.Sprintf("%s-%d", prefix, i)
		for k := range events {
			e := journey.Event{ID: fmt.Sprintf("%s-e%d", customer, k), Customer: customer, Text: "my card payment failed again"}
			if rej := journey.ValidateInbound(&e); rej != nil {
				t.Fatal(rej)
			}
			wg.Add(1)
			rt.Ingest(customer, journey.Inbound{Event: e}, func(r Result) {
				if r.Reject != nil {
					mu.Lock()
					failed = r.Reject
					mu.Unlock()
				}
				wg.Done()
			})
		}
	}
	wg.Wait()
	if failed != nil {
		t.Fatalf("ingest refused: %v", failed)
	}
}

// heapAfterGC is the live heap after a collection.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A resident customer with 20 events of history holds a few KiB: measured
// as the heap with n customers resident less the heap once they have all
// passivated (the memory store keeps their events either way). The bound
// is generous; the number is logged.
func TestResidentCustomerMemory(t *testing.T) {
	rt, _ := startTest(t, Config{})
	const n = 5000
	ingestMany(t, rt, "c", n, 20)
	resident := heapAfterGC()
	rt.shed(1)
	waitFor(t, func() bool { return rt.ActiveCustomers.Load() == 0 }, "every customer passivated")
	// The hosts let go of their stopped customers just after: the heap
	// settles.
	passivated := heapAfterGC()
	for range 100 {
		time.Sleep(10 * time.Millisecond)
		h := heapAfterGC()
		settled := h+64<<10 > passivated
		passivated = h
		if settled {
			break
		}
	}
	per := (float64(resident) - float64(passivated)) / n
	t.Logf("resident customer with 20 events: %.0f bytes of heap each", per)
	if per > 16<<10 {
		t.Errorf("a resident customer holds %.0f bytes; at most %d", per, 16<<10)
	}
	if got := rt.Evictions.Load(); got != n {
		t.Errorf("%d evictions counted; want %d", got, n)
	}
}

// Past ResidentMax the least recently active customers passivate: the
// latest stay in memory (a message to them activates nothing), the oldest
// are activated again by their next message.
func TestResidentMaxPassivatesLeastRecentlyActive(t *testing.T) {
	const perPartition = 4
	rt, _ := startTest(t, Config{ResidentMax: 8 * perPartition})
	for i := range 200 {
		c := fmt.Sprintf("c-%d", i)
		if r := ingest(t, rt, c, c+"-first"); r.Reject != nil {
			t.Fatal(r.Reject)
		}
	}
	waitFor(t, func() bool { return rt.ActiveCustomers.Load() <= 8*perPartition }, "at most ResidentMax customers in memory")
	// The latest customer of each partition is still in memory.
	latest := map[int]string{}
	for i := range 200 {
		c := fmt.Sprintf("c-%d", i)
		latest[rt.PartitionOf(c)] = c
	}
	before := rt.Activations.Load()
	for _, c := range latest {
		if r := ingest(t, rt, c, c+"-again"); r.Reject != nil {
			t.Fatal(r.Reject)
		}
	}
	if got := rt.Activations.Load() - before; got != 0 {
		t.Errorf("%d of the most recently active customers had passivated", got)
	}
	// The first customer is long gone and comes back with its history.
	if r := ingest(t, rt, "c-0", "c-0-again"); r.Reject != nil || r.Ack.Seq != 2 {
		t.Fatalf("c-0 again: %+v", r)
	}
	if got := rt.Activations.Load() - before; got != 1 {
		t.Errorf("c-0 again: %d activations; want 1", got)
	}
	if rt.Evictions.Load() < 200-8*perPartition {
		t.Errorf("%d evictions; want at least %d", rt.Evictions.Load(), 200-8*perPartition)
	}
}

// A customer with a desk subscribed declines to go: the cap passes it over
// and passivates the next least recently active.
func TestEvictionSparesSubscribedCustomers(t *testing.T) {
	rt, _ := startTest(t, Config{ResidentMax: 8})
	// One partition's customers, the first of them subscribed to.
	var same []string
	for i := 0; len(same) < 5; i++ {
		c := fmt.Sprintf("c-%d", i)
		if rt.PartitionOf(c) == rt.PartitionOf("c-0") {
			same = append(same, c)
		}
	}
	if r := ingest(t, rt, same[0], "sub-first"); r.Reject != nil {
		t.Fatal(r.Reject)
	}
	subscribed := make(chan *journey.Rejection, 1)
	rt.Subscribe(same[0], Subscriber{ID: 1, Supervisor: true, Send: func(journey.Event) bool { return true }},
		func(_ uint64, rej *journey.Rejection) { subscribed <- rej })
	if rej := <-subscribed; rej != nil {
		t.Fatal(rej)
	}
	for _, c := range same[1:] {
		if r := ingest(t, rt, c, c+"-first"); r.Reject != nil {
			t.Fatal(r.Reject)
		}
	}
	// The share per partition is 1: every other customer of it passivated.
	waitFor(t, func() bool { return rt.ActiveCustomers.Load() == 1 }, "only the subscribed customer in memory")
	before := rt.Activations.Load()
	if r := ingest(t, rt, same[0], "sub-again"); r.Reject != nil {
		t.Fatal(r.Reject)
	}
	if got := rt.Activations.Load() - before; got != 0 {
		t.Errorf("the subscribed customer was passivated")
	}
}

func TestShedShare(t *testing.T) {
	for _, c := range []struct {
		used, low uint64
		round     int
		want      float64
	}{
		{used: 100, low: 100, round: 1, want: 0},
		{used: 100, low: 80, round: 1, want: 0.25},
		{used: 100, low: 80, round: 2, want: 0.5},
		{used: 100, low: 80, round: 3, want: 1},
		{used: 100, low: 10, round: 1, want: 1},
	} {
		if got := shedShare(c.used, c.low, c.round); got != c.want {
			t.Errorf("shedShare(%d, %d, %d) = %v; want %v", c.used, c.low, c.round, got, c.want)
		}
	}
}

// A node over its budget whatever it sheds (a 1-byte budget) stays under
// pressure and passivates every customer that can go, round after round.
func TestMemoryGuardShedsWhileOverBudget(t *testing.T) {
	rt, _ := startTest(t, Config{Memory: MemoryConfig{Limit: 1, Interval: 5 * time.Millisecond, Round: 50 * time.Millisecond}})
	waitFor(t, rt.MemoryPressure, "pressure")
	ingestMany(t, rt, "c", 200, 2)
	waitFor(t, func() bool { return rt.ActiveCustomers.Load() == 0 }, "every customer passivated")
	if !rt.MemoryPressure() {
		t.Error("the pressure ended over the budget")
	}
	if got := rt.Evictions.Load(); got < 200 {
		t.Errorf("%d evictions; want at least 200", got)
	}
	if used, limit := rt.MemoryUsed(); used == 0 || limit != 1 {
		t.Errorf("MemoryUsed = %d, %d", used, limit)
	}
}

// An event forwarded here by another node (this one leads its partition)
// is refused while this node is past its budget: the sender checked only
// its own; a local one is the gateway's to refuse.
func TestForwardedIngestRefusedUnderMemoryPressure(t *testing.T) {
	rt, _ := startTest(t, Config{Memory: MemoryConfig{Limit: 1, Interval: 5 * time.Millisecond, Round: time.Hour}})
	waitFor(t, rt.MemoryPressure, "pressure")
	e := journey.Event{ID: "f-1", Customer: "fwd", Text: "hello"}
	if rej := journey.ValidateInbound(&e); rej != nil {
		t.Fatal(rej)
	}
	ch := make(chan Result, 1)
	rt.ingest("fwd", journey.Inbound{Event: e}, 0, true, func(r Result) { ch <- r })
	if r := <-ch; r.Reject == nil || r.Reject.Code != journey.CodeUnavailable {
		t.Fatalf("forwarded under pressure: %+v, want unavailable", r)
	}
	rt.ingest("fwd", journey.Inbound{Event: e}, 0, false, func(r Result) { ch <- r })
	if r := <-ch; r.Ack == nil {
		t.Fatalf("local (the gateway's to refuse): %+v, want an ack", r)
	}
}

// The recency orders threaded through a host's children: most recent
// first, a customer in one of them once, moved to the brief order while
// only broadcasts and receipts reach it, out of them when forgotten, asked
// counted once.
func TestResidencyOrder(t *testing.T) {
	var r residency
	a, b, c := &child{id: "a"}, &child{id: "b"}, &child{id: "c"}
	list := func(o *order) string {
		var s, back string
		for x := o.front; x != nil; x = x.next {
			s += x.id
			if x.in != o {
				t.Fatalf("%s in the wrong order", x.id)
			}
		}
		for x := o.back; x != nil; x = x.prev {
			back = x.id + back
		}
		if s != back || len(s) != o.n {
			t.Fatalf("front to back %q, back to front %q, n %d", s, back, o.n)
		}
		return s
	}
	expect := func(main, brief string) {
		t.Helper()
		if m, br := list(&r.main), list(&r.brief); m != main || br != brief {
			t.Fatalf("main %q brief %q, want %q %q", m, br, main, brief)
		}
	}
	for _, x := range []*child{a, b, c} {
		r.routed(x, &ingestMsg{})
	}
	expect("cba", "")
	r.touch(a)
	r.touch(a)
	expect("acb", "")
	b.declined = true
	r.moveToFront(b)
	expect("bac", "")
	if !b.declined {
		t.Fatal("moveToFront cleared declined")
	}
	// A fresh activation by a broadcast is brief until asked something
	// else than broadcasts and receipts.
	d := &child{id: "d", firstPending: true}
	r.routed(d, &broadcastMsg{})
	r.routed(d, &receiptMsg{})
	r.routed(d, &broadcastMsg{})
	expect("bac", "d")
	r.routed(d, &ingestMsg{})
	expect("dbac", "")
	// Asked something else first, it is never brief.
	e := &child{id: "e", firstPending: true}
	r.routed(e, &receiptMsg{})
	r.routed(e, &broadcastMsg{})
	expect("edbac", "")
	r.setAsked(c, true)
	r.setAsked(c, true)
	if r.asked != 1 {
		t.Fatalf("asked %d, want 1", r.asked)
	}
	for _, x := range []*child{c, c, e, d, b, a} {
		r.forget(x)
	}
	expect("", "")
	if r.asked != 0 || r.main.front != nil || r.main.back != nil {
		t.Fatalf("asked %d after forgetting everyone", r.asked)
	}
}

// Idle passivation follows elapsed time, not Config.Now: a wall clock
// stepped back does not keep idle customers in memory.
func TestIdlePassivationIgnoresAClockSteppedBack(t *testing.T) {
	var back atomic.Int64
	now := func() time.Time { return time.Now().Add(-time.Duration(back.Load())) }
	rt, _ := startTest(t, Config{IdleTimeout: 100 * time.Millisecond, Now: now})
	if r := ingest(t, rt, "c-1", "e-1"); r.Reject != nil {
		t.Fatal(r.Reject)
	}
	back.Store(int64(time.Hour))
	waitFor(t, func() bool { return rt.ActiveCustomers.Load() == 0 }, "the idle customer passivated")
}

// A partition may hold an eighth more than its share of ResidentMax while
// the node is an eighth or more under it: customers hash unevenly, and one
// past its exact share evicted while the others had room. Past the eighth,
// or once the node is at its cap, it goes back to its share.
func TestResidentShareHasSlackWhileTheNodeHasRoom(t *testing.T) {
	const share = 64 // ResidentMax 512 over 8 partitions
	rt, _ := startTest(t, Config{ResidentMax: 8 * share})
	next := make([]int, rt.Partitions()) // the next customer number tried, by partition
	add := func(p, n int) {
		t.Helper()
		for ; n > 0; n-- {
			for {
				c := fmt.Sprintf("p%d-c%d", p, next[p])
				next[p]++
				if rt.PartitionOf(c) == p {
					if r := ingest(t, rt, c, c+"-first"); r.Reject != nil {
						t.Fatal(r.Reject)
					}
					break
				}
			}
		}
	}
	add(0, share+share/8) // 72: within the slack
	if got, ev := rt.ActiveCustomers.Load(), rt.Evictions.Load(); got != share+share/8 || ev != 0 {
		t.Fatalf("%d resident, %d evicted; want %d, none", got, ev, share+share/8)
	}
	add(0, 1) // 73: past it
	waitFor(t, func() bool { return rt.ActiveCustomers.Load() == share }, "partition 0 back to its share")
	for p := 1; p < rt.Partitions(); p++ {
		add(p, share)
	}
	add(0, 4) // 68 in partition 0, within the slack, but the node is past its cap
	waitFor(t, func() bool { return rt.ActiveCustomers.Load() == 8*share }, "the node back to its cap")
}
