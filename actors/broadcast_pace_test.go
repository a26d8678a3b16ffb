package actors

import (
	"math"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestPaceYieldsUnderLoadAndMakesUpAfter(t *testing.T) {
	const base = 10000.0
	factor, owed := 1.0, 0.0
	sent := 0.0
	step := func(p99 time.Duration) {
		sent += factor * base * paceEvery.Seconds()
		factor, owed = nextPace(factor, owed, p99, false, paceEvery, base)
	}
	// Overloaded: the rate halves each look down to the floor, and stays.
	want := []float64{0.5, 0.25, 0.125, paceFloor, paceFloor}
	for i, w := range want {
		step(20 * time.Millisecond)
		if math.Abs(factor-w) > 1e-9 {
			t.Fatalf("busy look %d: factor %v, want %v", i, factor, w)
		}
	}
	// Between idle and busy: held.
	step(paceIdle + time.Millisecond)
	if factor != paceFloor {
		t.Fatalf("between idle and busy: factor %v, want %v held", factor, paceFloor)
	}
	// Idle: it comes back by a step a look, past the rate while it owes.
	over := false
	for range 1000 {
		step(time.Millisecond)
		if factor > paceCatchUp+1e-9 {
			t.Fatalf("factor %v past the catch-up %v", factor, paceCatchUp)
		}
		over = over || factor > 1
	}
	if !over || owed != 0 || factor != 1 {
		t.Fatalf("after catching up: factor %v owed %v (went over the rate: %v), want 1 and 0", factor, owed, over)
	}
	// What was held back was made up: the targets sent are the rate's.
	elapsed := float64(len(want)+1+1000) * paceEvery.Seconds()
	if got := sent / (base * elapsed); math.Abs(got-1) > 0.01 {
		t.Fatalf("sent %.0f targets in %.2fs at %v/s: %.3f of the rate", sent, elapsed, base, got)
	}
}

func TestPaceOwesAtMostItsCap(t *testing.T) {
	const base = 1000.0
	factor, owed := 1.0, 0.0
	for range 10000 { // 100 s overloaded
		factor, owed = nextPace(factor, owed, time.Second, false, paceEvery, base)
	}
	if max := base * paceOwedMax.Seconds(); owed != max {
		t.Fatalf("owed %v after a long overload, want the cap %v", owed, max)
	}
}

func TestP99SinceCountsOnlyTheNewSamples(t *testing.T) {
	h := &metrics.Float64Histogram{
		Buckets: []float64{math.Inf(-1), 0.001, 0.005, 0.010, math.Inf(1)},
		Counts:  []uint64{0, 0, 0, 0},
	}
	prev := make([]uint64, 4)
	if p := p99Since(h, prev); p != 0 {
		t.Fatalf("nothing counted: p99 %v, want 0", p)
	}
	// 99 waits under 1 ms and one over 10 ms: the 99th is under 1 ms.
	h.Counts = []uint64{99, 0, 0, 1}
	if p := p99Since(h, prev); p != 0 {
		t.Fatalf("p99 %v, want 0 (the first bucket)", p)
	}
	// Since then 90 more waits of 1-5 ms and 10 of 5-10 ms: p99 is 5 ms.
	h.Counts = []uint64{99, 90, 10, 1}
	if p := p99Since(h, prev); p != 5*time.Millisecond {
		t.Fatalf("p99 %v, want 5ms", p)
	}
	// Nothing new: 0 again.
	if p := p99Since(h, prev); p != 0 {
		t.Fatalf("nothing new: p99 %v, want 0", p)
	}
}

func TestPaceSetsTheLimiterToItsShare(t *testing.T) {
	l := rate.NewLimiter(1000, 1)
	p := newPace(1000, nil)
	p.look(l, time.Now()) // the first look only reads the scheduler
	if l.Limit() != 1000 {
		t.Fatalf("limit %v after the first look, want 1000", l.Limit())
	}
	p.setBase(l, 250) // the node hosts a quarter of the partitions
	if l.Limit() != 250 {
		t.Fatalf("limit %v after the share changed, want 250", l.Limit())
	}
	p.factor = 0.5
	p.setBase(l, 500)
	if l.Limit() != 250 {
		t.Fatalf("limit %v at half of a share of 500, want 250", l.Limit())
	}
}

// TestPaceHoldsBackDuringAFlush: while a memtable flush (or a collection's
// mark) runs the broadcasts keep the floor of the rate, however idle the scheduler
// looks, and make it up after.
func TestPaceHoldsBackDuringAFlush(t *testing.T) {
	const base = 10000.0
	factor, owed := 1.0, 0.0
	for range 40 { // a 0.4 s flush
		factor, owed = nextPace(factor, owed, 0, true, paceEvery, base)
		if factor != paceFloor {
			t.Fatalf("during a flush: factor %v, want the floor %v", factor, paceFloor)
		}
	}
	if owed <= 0 {
		t.Fatal("nothing owed after a flush held the broadcasts back")
	}
	for range 1000 {
		factor, owed = nextPace(factor, owed, 0, false, paceEvery, base)
	}
	if owed != 0 || factor != 1 {
		t.Fatalf("after the flush: factor %v owed %v, want 1 and 0", factor, owed)
	}
}

// TestGCMarkingSeesACollection: gcMarking reports a collection while it
// marks, and none once it is done. The heap holds enough pointers that a
// mark takes milliseconds, so a goroutine reading all along sees it.
func TestGCMarkingSeesACollection(t *testing.T) {
	live := make([][]*[4]int, 64)
	for i := range live {
		live[i] = make([]*[4]int, 16<<10)
		for j := range live[i] {
			live[i][j] = new([4]int)
		}
	}
	var g gcMarking
	seen := false
	for try := 0; try < 5 && !seen; try++ {
		done := make(chan struct{})
		go func() { runtime.GC(); close(done) }()
	poll:
		for {
			select {
			case <-done:
				break poll
			default:
				seen = seen || g.marking()
			}
		}
	}
	if !seen {
		t.Fatal("five collections and marking never true")
	}
	// Done once runtime.GC returns (another collection may start after it,
	// but does not mark for a second).
	for end := time.Now().Add(time.Second); g.marking(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("marking still true a second after runtime.GC returned")
		}
	}
	runtime.KeepAlive(live)
}
