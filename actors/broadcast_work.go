package actors

// The worker's part of broadcasts (see broadcast.go): a runner per active
// broadcast works through the partitions this node hosts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
	"golang.org/x/time/rate"
)

// runner is an active broadcast's goroutine on this node, in one phase:
// cancel stops it, done closes when it has left.
type runner struct {
	phase   string
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool // cancelled (under broadcasts.mu)
}

// apply makes this node's runners those of the active broadcasts: a
// runner no longer wanted (or in another phase) is cancelled, and one
// starts for each new broadcast or phase, after the one it replaces has
// left.
func (b *broadcasts) apply(active []activeBroadcast) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	want := make(map[string]activeBroadcast, len(active))
	for _, a := range active {
		want[a.Plan.ID] = a
	}
	for id, run := range b.running {
		if a, ok := want[id]; (!ok || a.phase() != run.phase) && !run.stopped {
			run.stopped = true
			run.cancel()
		}
	}
	for id, a := range want {
		prev := b.running[id]
		if prev != nil && !prev.stopped {
			continue
		}
		b.startLocked(a, prev)
	}
}

// startLocked starts a runner for a; it begins once prev (if any) has
// left, so a customer never has the same broadcast's two phases asked at
// once.
func (b *broadcasts) startLocked(a activeBroadcast, prev *runner) {
	ctx, cancel := context.WithCancel(context.Background())
	run := &runner{phase: a.phase(), cancel: cancel, done: make(chan struct{})}
	id := a.Plan.ID
	b.running[id] = run
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(run.done)
		defer func() {
			b.mu.Lock()
			if b.running[id] == run {
				delete(b.running, id)
				if !b.leading {
					for k := range b.progress {
						if k.broadcast == id {
							delete(b.progress, k)
						}
					}
				}
			}
			b.mu.Unlock()
		}()
		if prev != nil {
			select {
			case <-prev.done:
			case <-ctx.Done():
				return
			}
		}
		b.work(ctx, a)
	}()
}

// work goes through the hosted partitions again and again until the
// coordinator says the phase is over: each round works the partitions not
// yet done and reports those that are.
func (b *broadcasts) work(ctx context.Context, a activeBroadcast) {
	id := a.Plan.ID
	// While it runs the store spaces its WAL syncs further apart: the
	// targets' commits would otherwise sync about every 0.5 ms, and the
	// syncs' CPU comes out of live traffic's.
	b.rt.engine.Elastic(1)
	defer b.rt.engine.Elastic(-1)
	var work func(p int) bool
	field := func(pr *partRecord) *bool { return &pr.Sent }
	if a.Resolve == nil {
		var where *journey.Condition
		if a.Plan.Where != "" {
			var err error
			if where, err = journey.CompileCondition(a.Plan.Where); err != nil {
				b.rt.cfg.Logger.Error("broadcast where no longer compiles", "broadcast", id, "err", err)
				return
			}
		}
		in := &journey.BroadcastSend{Broadcast: id, Text: a.Plan.Text, Where: where, Expires: a.Plan.Expires, CallbackOffer: a.Plan.CallbackOffer}
		work = func(p int) bool { return b.sendPartition(ctx, &a.Plan, p, in) }
	} else {
		in := &journey.BroadcastResolve{Broadcast: id, Text: a.Resolve.Text, Callback: a.Resolve.Callback, Queue: a.Plan.CallbackQueue}
		work = func(p int) bool { return b.resolvePartition(ctx, id, p, in) }
		field = func(pr *partRecord) *bool { return &pr.Resolved }
	}
	for ctx.Err() == nil {
		done := b.round(ctx, id, work, field)
		if ctx.Err() != nil {
			return
		}
		b.report(id, a.phase(), done)
		select {
		case <-ctx.Done():
		case <-time.After(broadcastRetryEvery):
		}
	}
}

// round works every partition hosted here now through (a few at once) and
// returns those done.
func (b *broadcasts) round(ctx context.Context, id string, work func(p int) bool, field func(*partRecord) *bool) []int {
	hosted := b.rt.Hosted()
	b.share(len(hosted))
	var (
		mu   sync.Mutex
		done []int
		wg   sync.WaitGroup
	)
	slots := make(chan struct{}, broadcastPartitionsAtOnce)
	for _, p := range hosted {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if b.pass(ctx, id, p, work, field) {
				mu.Lock()
				done = append(done, p)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return done
}

// share sets this node's rate to its share of broadcasts.rate: the share
// of the partitions it hosts (all of them on a single node).
func (b *broadcasts) share(hosted int) {
	b.pace.setBase(b.limiter, rate.Limit(max(1, float64(b.rate)*float64(hosted)/float64(len(b.rt.parts)))))
}

// report tells the coordinator the partitions done in a broadcast's phase.
func (b *broadcasts) report(id, phase string, parts []int) {
	if len(parts) == 0 {
		return
	}
	if addr, ok := b.rt.leaderAddr(broadcastsPartition); ok {
		b.rt.tell(addr, fwdBcastDone, bcastDoneBody{ID: id, Phase: phase, Partitions: parts})
		return
	}
	b.partsDone(id, phase, parts)
}

// pass works partition p through unless it is done, and records it done;
// false when it is not.
func (b *broadcasts) pass(ctx context.Context, id string, p int, work func(p int) bool, field func(*partRecord) *bool) bool {
	pr := b.part(ctx, p, id)
	if *field(&pr) {
		return true
	}
	if !work(p) || ctx.Err() != nil {
		return false
	}
	*field(&pr) = true
	return b.savePart(ctx, p, id, pr) == nil
}

func (b *broadcasts) part(ctx context.Context, p int, id string) partRecord {
	var pr partRecord
	_ = b.rt.engine.Store(p).ScanRecords(ctx, partsCollection, "", func(k string, v []byte) bool {
		if k == id {
			_ = json.Unmarshal(v, &pr)
			return false
		}
		return k < id
	})
	return pr
}

func (b *broadcasts) savePart(ctx context.Context, p int, id string, pr partRecord) error {
	v, _ := json.Marshal(pr)
	return b.rt.engine.Store(p).WriteRecords(ctx, partsCollection, []persistence.Record{{Key: id, Value: v}}, nil)
}

// sendPartition asks every unmarked customer of the partition's segment;
// true when every one answered.
func (b *broadcasts) sendPartition(ctx context.Context, plan *journey.BroadcastPlan, p int, in *journey.BroadcastSend) bool {
	store := b.rt.engine.Store(p)
	marked := map[string]struct{}{}
	if err := store.ScanMarks(ctx, plan.ID, func(c string, _ []byte) bool {
		marked[c] = struct{}{}
		return true
	}); err != nil {
		return false
	}
	t := b.newTargets()
	err := store.ScanSegment(ctx, plan.Event, plan.Created.Add(-plan.Within), plan.Created, func(c string) bool {
		if _, ok := marked[c]; ok {
			return true
		}
		return t.ask(ctx, c, in)
	})
	return t.wait() && err == nil && ctx.Err() == nil
}

// resolvePartition asks every customer of the partition who accepted the
// callback and was not resolved yet.
func (b *broadcasts) resolvePartition(ctx context.Context, id string, p int, in *journey.BroadcastResolve) bool {
	var customers []string
	err := b.rt.engine.Store(p).ScanMarks(ctx, id, func(c string, v []byte) bool {
		if st, err := journey.DecodeMark(v); err == nil && st.Callback && !st.Resolved {
			customers = append(customers, c)
		}
		return true
	})
	t := b.newTargets()
	for _, c := range customers {
		if !t.ask(ctx, c, in) {
			break
		}
	}
	return t.wait() && err == nil && ctx.Err() == nil
}

// targets tracks one pass's customers asked and not answered.
type targets struct {
	b      *broadcasts
	wg     sync.WaitGroup
	failed atomic.Bool
	timer  *time.Timer // waits for the rate (waitRate), made once for the pass
}

func (b *broadcasts) newTargets() *targets { return &targets{b: b} }

// waitRate waits for the limiter's next token, false when ctx ended first
// (the token is then given back). It is the limiter's Wait with one timer
// for the whole pass: Wait made a timer for every target it held back, a
// few percent of the bytes a broadcast allocated (docs/benchmarking.md,
// stop 36).
func (t *targets) waitRate(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	r := t.b.limiter.Reserve()
	if !r.OK() {
		return false // a burst of 0: never, newBroadcasts' is at least 1
	}
	d := r.Delay()
	if d <= 0 {
		return true
	}
	if t.timer == nil {
		t.timer = time.NewTimer(d)
	} else {
		t.timer.Reset(d)
	}
	select {
	case <-t.timer.C:
		return true
	case <-ctx.Done():
		t.timer.Stop()
		r.Cancel()
		return false
	}
}

// ask waits for the rate and for a slot in flight and one queued, then asks
// the customer; false when ctx ended.
func (t *targets) ask(ctx context.Context, customer string, in journey.Input) bool {
	t.b.pace.look(t.b.limiter, time.Now())
	if !t.waitRate(ctx) {
		return false
	}
	select {
	case t.b.inFlight <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	select {
	case t.b.queued <- struct{}{}:
	case <-ctx.Done():
		<-t.b.inFlight
		return false
	}
	t.wg.Add(1)
	var takenUp atomic.Bool
	take := func() {
		if takenUp.CompareAndSwap(false, true) {
			<-t.b.queued
		}
	}
	done := func(rej *journey.Rejection) {
		take() // a refusal may come before the customer took it up
		if rej != nil {
			t.failed.Store(true)
		}
		<-t.b.inFlight
		t.wg.Done()
	}
	if !t.b.rt.toCustomer(&broadcastMsg{customer: customer, input: in, taken: take, done: done}) {
		done(unavailable("not hosted"))
	}
	return true
}

// wait waits for every answer; true when none failed.
func (t *targets) wait() bool {
	t.wg.Wait()
	return !t.failed.Load()
}

// localProgress counts a broadcast's marks on every partition hosted here.
func (b *broadcasts) localProgress(ctx context.Context, id string, running bool) (map[int]journey.BroadcastProgress, error) {
	out := map[int]journey.BroadcastProgress{}
	for _, p := range b.rt.Hosted() {
		part, err := b.partProgress(ctx, id, p, running)
		if err != nil {
			return nil, err
		}
		out[p] = part
	}
	return out, nil
}

// progressStale is how old a running broadcast's counts may be: counting
// a partition's marks is a scan, and dashboards poll.
const progressStale = 500 * time.Millisecond

// cachedProgress is a partition's count of a broadcast's marks as of a
// version of the partition's marks.
type cachedProgress struct {
	version  uint64
	at       time.Time
	progress journey.BroadcastProgress
}

// partProgress counts the broadcast's marks of partition p: again when the
// partition's marks changed since the last count (for a running
// broadcast, at most every progressStale), else from the cache.
func (b *broadcasts) partProgress(ctx context.Context, id string, p int, running bool) (journey.BroadcastProgress, error) {
	key := progressKey{id, p}
	v := b.rt.marksVersion[p].Load()
	b.mu.Lock()
	c, ok := b.progress[key]
	b.mu.Unlock()
	if ok && (c.version == v || (running && time.Since(c.at) < progressStale)) {
		return c.progress, nil
	}
	part := journey.NewBroadcastProgress()
	var bad error
	err := b.rt.engine.Store(p).ScanMarks(ctx, id, func(_ string, mark []byte) bool {
		bad = part.Count(mark)
		return bad == nil
	})
	if err = errors.Join(err, bad); err != nil {
		return part, fmt.Errorf("broadcast progress: %w", err)
	}
	b.mu.Lock()
	// Cached for the broadcasts remembered here (the coordinator) or
	// worked here (a runner forgets them when it leaves), so the cache is
	// bounded by the broadcasts kept times the partitions.
	_, known := b.records[id]
	if _, working := b.running[id]; known || working {
		b.progress[key] = cachedProgress{version: v, at: time.Now(), progress: part}
	}
	b.mu.Unlock()
	return part, nil
}

type progressKey struct {
	broadcast string
	partition int
}

// stop ends every runner and waits for the targets in flight.
func (b *broadcasts) stop() {
	b.mu.Lock()
	b.closed = true
	b.term++
	b.leading = false
	for _, run := range b.running {
		run.stopped = true
		run.cancel()
	}
	b.mu.Unlock()
	b.wg.Wait()
}
