package actors

// The broadcasts' pace yields to live traffic (see broadcast.go). A
// broadcast is elastic work: its targets can go a little later, a live
// event's ack cannot. So every paceEvery the runners look at how long this
// process's runnable goroutines waited for a CPU (the Go scheduler's
// latency, from runtime/metrics): above paceBusy at the 99th percentile
// the node is overloaded and the broadcasts' rate halves, down to
// paceFloor of it; below paceIdle it comes back by paceStep a look, and
// goes over the rate (up to paceCatchUp) while it makes up what it held
// back, so a broadcast keeps broadcasts.rate on average. While the store
// flushes a memtable (persistence.Engine.Flushing) or the Go collector
// marks (gcMarking) the pace keeps its floor: either holds a core for a
// while, whatever the latency says at its start.
//
// The collector's mark, 0.6-1.4 s with the bench's 100,000 resident
// customers, is the larger of the two: with GOMAXPROCS 2 the runtime marks
// with "fractional" workers that run up to 10-20 ms at a time on one P
// while goroutines readied there wait (an execution trace showed the
// writer's and the gateway's goroutines waiting 13-19 ms behind one), and
// a live ack's p99 rose to 25-30 ms in a mark with no broadcast at all. A
// broadcast allocates ~6 KB per target, so a mark lands in nearly every
// one; a broadcast still running at the latency-halved rate in it made
// its 200 ms windows' p99 35-70 ms. Holding the floor for the whole mark,
// bench broadcast's "during" p99 was over 35 ms in 3 of 22 runs (at most
// 39.6 ms), against 7 of 18 (up to 122 ms) without (docs/benchmarking.md, stop 27).
//
// Why: on the 2-core bench machine a broadcast at 10,000 targets/s and
// 5,000 live events/s keep both cores busy, so the moments when the node
// needs a core of its own (a collection's mark, a 64 MiB memtable's flush,
// an L0 compaction: 0.4 s to a few s of CPU each) queued the live events
// behind the broadcast's work: a live ack's p99 went from ~14 ms to
// 100-250 ms, set by one or two such moments in each broadcast (bench
// broadcast with its samples dumped per 100 ms and the Pebble and GC
// events logged). The scheduler's latency rises within a look of their
// start. CockroachDB's admission control paces its elastic work by the
// same signal.

import (
	"runtime/metrics"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const (
	// paceEvery is how often the pace looks at the scheduler's latency.
	paceEvery = 10 * time.Millisecond
	// paceBusy and paceIdle are the scheduler's p99 latency above which
	// the broadcasts slow down, and below which they speed up again. (At
	// 5 ms the pace halved every second or so of a broadcast the node
	// kept up with: the broadcast took 13-17 s instead of 10.)
	paceBusy = 10 * time.Millisecond
	paceIdle = 3 * time.Millisecond
	// paceFloor is the least share of the rate the broadcasts keep.
	paceFloor = 0.1
	// paceStep is the share of the rate recovered a look (from the floor
	// to the rate in under 0.2 s).
	paceStep = 0.05
	// paceCatchUp is the most of the rate while making up what the pace
	// held back, and paceOwedMax the most it makes up (of the rate's
	// time): a broadcast held back by a collection still ends about when
	// the rate says.
	paceCatchUp = 1.5
	paceOwedMax = 3 * time.Second
	// paceStale is a gap between looks after which the scheduler's latency
	// since the last one says nothing of now (no broadcast ran).
	paceStale = time.Second
)

// schedLatencyMetric is the Go scheduler's histogram of how long runnable
// goroutines waited to run.
const schedLatencyMetric = "/sched/latencies:seconds"

// pace sets the broadcasts' limiter to the node's share of the rate times
// a factor that follows the scheduler's latency.
type pace struct {
	mu     sync.Mutex
	base   rate.Limit // the node's share of broadcasts.rate
	factor float64    // of base
	owed   float64    // targets held back and not made up yet
	last   time.Time  // of the last look
	sched  schedLatency
	gc     gcMarking
	// flushing reports a memtable flush running (nil: never).
	flushing func() bool
}

func newPace(base rate.Limit, flushing func() bool) *pace {
	return &pace{base: base, factor: 1, flushing: flushing}
}

// setBase sets the node's share of the rate.
func (p *pace) setBase(l *rate.Limiter, base rate.Limit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.base != base {
		p.base = base
		l.SetLimit(p.limit())
	}
}

func (p *pace) limit() rate.Limit {
	return max(p.base*rate.Limit(p.factor), 1)
}

// look adjusts l at most every paceEvery, after the scheduler's latency
// since the last look.
func (p *pace) look(l *rate.Limiter, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dt := now.Sub(p.last)
	if dt < paceEvery {
		return
	}
	p99, ok := p.sched.p99()
	p.last = now
	if !ok || dt > paceStale {
		p.factor, p.owed = 1, 0
	} else {
		hold := p.gc.marking() || p.flushing != nil && p.flushing()
		p.factor, p.owed = nextPace(p.factor, p.owed, p99, hold, dt, float64(p.base))
	}
	l.SetLimit(p.limit())
}

// nextPace is the factor and the targets owed after a look that saw the
// scheduler's p99 latency (and a memtable flush or a collection's mark
// running or not: hold), dt after the last one, at base targets/s. While
// they run the broadcasts keep only paceFloor of the rate, and make it up
// after.
func nextPace(factor, owed float64, p99 time.Duration, hold bool, dt time.Duration, base float64) (float64, float64) {
	owed += (1 - factor) * base * dt.Seconds()
	owed = min(max(owed, 0), base*paceOwedMax.Seconds())
	switch {
	case hold:
		factor = paceFloor
	case p99 > paceBusy:
		factor = max(paceFloor, factor/2)
	case p99 < paceIdle:
		top := 1.0
		if owed > 0 {
			top = paceCatchUp
		}
		factor = min(top, factor+paceStep)
	}
	if owed == 0 {
		factor = min(factor, 1)
	}
	return factor, owed
}

// gcMarking reads whether the Go collector is marking: each cycle stops
// the world twice, once as its mark starts and once as it ends, and counts
// itself done at the second; so a cycle is marking while the collector's
// stops number more than twice its cycles. (runtime/metrics says nothing
// more direct.)
type gcMarking struct {
	sample []metrics.Sample
}

const (
	gcCyclesMetric = "/gc/cycles/total:gc-cycles"
	gcPausesMetric = "/sched/pauses/total/gc:seconds"
)

func (g *gcMarking) marking() bool {
	if g.sample == nil {
		g.sample = []metrics.Sample{{Name: gcCyclesMetric}, {Name: gcPausesMetric}}
	}
	metrics.Read(g.sample)
	if g.sample[0].Value.Kind() != metrics.KindUint64 || g.sample[1].Value.Kind() != metrics.KindFloat64Histogram {
		return false
	}
	var stops uint64
	for _, c := range g.sample[1].Value.Float64Histogram().Counts {
		stops += c
	}
	return stops > 2*g.sample[0].Value.Uint64()
}

// schedLatency reads the scheduler's latency since its last read.
type schedLatency struct {
	sample []metrics.Sample
	prev   []uint64
}

// p99 is the 99th percentile of the scheduler's latency since the last
// call; false on the first call, or when the runtime has no such metric.
func (s *schedLatency) p99() (time.Duration, bool) {
	if s.sample == nil {
		s.sample = []metrics.Sample{{Name: schedLatencyMetric}}
	}
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0, false
	}
	h := s.sample[0].Value.Float64Histogram()
	first := len(s.prev) != len(h.Counts)
	if first {
		s.prev = make([]uint64, len(h.Counts))
	}
	return p99Since(h, s.prev), !first
}

// p99Since is the 99th percentile of what h counted since prev (the lower
// bound of its bucket; 0 when h counted nothing more), and makes prev h's
// counts.
func p99Since(h *metrics.Float64Histogram, prev []uint64) time.Duration {
	var n uint64
	for i, c := range h.Counts {
		n += c - prev[i]
	}
	p, seen := time.Duration(0), uint64(0)
	for i, c := range h.Counts {
		d := c - prev[i]
		prev[i] = c
		if d == 0 || seen*100 >= n*99 {
			continue
		}
		if seen += d; seen*100 >= n*99 {
			p = time.Duration(max(h.Buckets[i], 0) * float64(time.Second))
		}
	}
	return p
}
