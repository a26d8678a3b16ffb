package actors

// The analytics runner (PROTOCOL section 10): one goroutine per node that
// owns the analytics.Projection of every partition hosted here and feeds it
// the events customers store.
//
// Feed: once a customer's events are durable, its outbox hands them to
// observe (in that customer's seq order), which puts them on a bounded
// queue without waiting: the ingest path never waits for analytics. When
// the queue is full the events are not queued; the customer is remembered
// with the first seq dropped, and its events are read back from the store
// before its next event is applied, or at the next tick (a bounded number
// of customers per tick, so catching up never stalls the runner long). Past
// analyticsDroppedMax customers the partition is marked behind from the
// earliest event dropped instead, and the runner catches up from the store
// (the segment index finds the customers with events since then, and each
// one's events after the seq the projection last applied are read and
// applied). (A catch-up of every customer since a drop, on the runner,
// stalled it for seconds under a 100,000-target broadcast: the queue filled
// again meanwhile, and catching up took a fifth of the node's CPU.) A live event whose customer's earlier events were missed
// (a gap after its last applied seq, or an unknown customer while the
// partition is behind) has them read from the store first, so each
// customer's events reach the projection in seq order, and its
// deduplication by seq makes rereading harmless.
//
// Persistence: every analyticsSaveEvery (longer for a large one), and when a partition leaves this
// node or the runtime stops, each changed projection is pruned and saved
// as the record "state" of the partition's "analytics" collection, with its
// position (the newest recorded_at applied). Hosting a partition loads its
// record and catches up from the position minus analytics.CatchUpMargin;
// a partition with no record backfills analytics.Retention.
//
// Answers: JourneyAnalytics asks the runner for the Part of every hosted
// partition and merges them (analytics.Merge): the same merge works over
// the parts of several nodes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throughline/throughline/actors/remotepb"
	"github.com/throughline/throughline/analytics"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// Limits of the analytics runner.
const (
	// analyticsQueueMax bounds the batches of durable events waiting for
	// the runner; past it they are dropped and read back from the store.
	analyticsQueueMax = 65536
	// analyticsDroppedMax bounds the customers remembered with events
	// dropped; past it their partition catches up as a whole.
	analyticsDroppedMax = 100_000
	// analyticsFillsPerTick bounds the dropped customers read back at one
	// tick (the others wait for the next one, or for their next event).
	analyticsFillsPerTick = 2048
	// analyticsSaveEvery is how often a changed projection is saved; a
	// large one waits analyticsSaveEvery per analyticsSaveBytes of its last
	// encoding, at most analyticsSaveMaxWait (a crash rereads the events
	// since its last save), so saving stays a small share of the disk.
	analyticsSaveEvery   = 10 * time.Second
	analyticsSaveBytes   = 256 << 10
	analyticsSaveMaxWait = 5 * time.Minute
	// analyticsPage is how many events one store read returns; a catch-up
	// reads at most analyticsPagesMax pages of one customer it does not
	// know (the rest, older, is not read).
	analyticsPage     = 256
	analyticsPagesMax = 64
	// analyticsCatchUpSetMax bounds the customers one catch-up remembers
	// having read (past it the set starts over: a customer may be read
	// twice, and is applied once).
	analyticsCatchUpSetMax = 200_000
	// AnalyticsTimeout bounds an answer's wait for the runner.
	analyticsTimeout = 30 * time.Second

	analyticsCollection = "analytics"
	analyticsStateKey   = "state"
)

// analyticsMsg is one item of the runner's queue: durable events of a
// partition, or work to run on the runner's goroutine.
type analyticsMsg struct {
	partition int
	events    []journey.Event
	run       func()
}

// droppedEvents: a customer's events from seq first on may have been
// dropped.
type droppedEvents struct {
	partition int
	first     uint64
}

type analyticsPart struct {
	proj     *analytics.Projection
	store    persistence.Store
	dirty    bool
	behind   time.Time // events since then may have been dropped (zero: none)
	nextSave time.Time // a changed projection is saved from then on
	// saving is closed when the periodic save in flight (saveLater) is
	// written, with its outcome in saveErr; nil: none in flight.
	saving  chan struct{}
	saveErr error
}

// analyticsSpareKeep is the largest array the queue keeps for the next
// items (take): the queue and its spare each kept the capacity they grew to, and
// after a burst of thousands of events that was hundreds of kilobytes for
// good (bench memory at 1,000 customers read it as ~0.5 KiB a customer).
const analyticsSpareKeep = 256

// analyticsQueue is the runner's queue: a slice under a lock that the
// runner takes whole, woken only when it was empty. A channel woke the
// runner for nearly every event (it keeps up, so it was parked): at 93,000
// events/s the sends and wake-ups were 3% of the server's CPU.
type analyticsQueue struct {
	mu     sync.Mutex
	items  []analyticsMsg
	closed bool          // the runner has stopped: nothing more is taken
	room   chan struct{} // closed when the runner takes the items (nil: no one waits)
	wake   chan struct{} // 1: the items went from none to some
}

// push queues m; false when the queue is full or closed.
func (q *analyticsQueue) push(m analyticsMsg) bool {
	q.mu.Lock()
	if q.closed || len(q.items) >= analyticsQueueMax {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, m)
	first := len(q.items) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// pushWait queues m, waiting for room; false when the runner stopped or
// ctx ended first.
func (q *analyticsQueue) pushWait(ctx context.Context, done <-chan struct{}, m analyticsMsg) bool {
	for !q.push(m) {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return false
		}
		if len(q.items) < analyticsQueueMax {
			q.mu.Unlock()
			continue
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-done:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// take swaps the queued items for spare (emptied; let go if a burst grew
// it past analyticsSpareKeep) and returns them.
func (q *analyticsQueue) take(spare []analyticsMsg) []analyticsMsg {
	if cap(spare) > analyticsSpareKeep {
		spare = nil
	}
	q.mu.Lock()
	items := q.items
	q.items = spare[:0]
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return items
}

// close refuses what is pushed from now on.
func (q *analyticsQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

type analyticsRunner struct {
	rt    *Runtime
	queue analyticsQueue
	stop  chan struct{}
	done  chan struct{}

	parts map[int]*analyticsPart // owned by the runner goroutine

	mu      sync.Mutex
	dropped map[int]time.Time // partition -> earliest recorded_at dropped
	// droppedOf are the customers with events dropped: the first seq.
	droppedOf map[string]droppedEvents
	// anyDropped says dropped is not empty, so handle absorbs it before
	// the next event: a customer's later events may be queued before the
	// next tick, and must find their partition behind.
	anyDropped atomic.Bool
}

func newAnalyticsRunner(rt *Runtime) *analyticsRunner {
	a := &analyticsRunner{rt: rt, stop: make(chan struct{}),
		done: make(chan struct{}), parts: map[int]*analyticsPart{}, dropped: map[int]time.Time{}, droppedOf: map[string]droppedEvents{}}
	a.queue.wake = make(chan struct{}, 1)
	go a.loop()
	return a
}

// observe hands a customer's durable events to the runner without
// waiting; it must be called in the customer's seq order.
func (a *analyticsRunner) observe(partition int, events []journey.Event) {
	if len(events) == 0 {
		return
	}
	if !a.queue.push(analyticsMsg{partition: partition, events: events}) {
		a.rt.AnalyticsDropped.Add(int64(len(events)))
		a.mu.Lock()
		customer := events[0].Customer
		if _, ok := a.droppedOf[customer]; ok {
			// Its earlier events were dropped: the first seq stands.
		} else if len(a.droppedOf) < analyticsDroppedMax {
			a.droppedOf[customer] = droppedEvents{partition: partition, first: events[0].Seq}
		} else if t, ok := a.dropped[partition]; !ok || events[0].RecordedAt.Before(t) {
			a.dropped[partition] = events[0].RecordedAt
		}
		a.anyDropped.Store(true)
		a.mu.Unlock()
	}
}

// enqueue queues f to run on the runner goroutine, after the events
// queued before it, without waiting for it to run (a stopped runner runs
// nothing).
func (a *analyticsRunner) enqueue(f func()) {
	a.queue.pushWait(context.Background(), a.done, analyticsMsg{run: f})
}

// do runs f on the runner goroutine, after the events queued before it;
// false when the runner has stopped.
func (a *analyticsRunner) do(ctx context.Context, f func()) bool {
	done := make(chan struct{})
	if !a.queue.pushWait(ctx, a.done, analyticsMsg{run: func() { f(); close(done) }}) {
		return false
	}
	select {
	case <-done:
		return true
	case <-a.done:
		return false
	case <-ctx.Done():
		return false
	}
}

func (a *analyticsRunner) loop() {
	defer close(a.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var spare []analyticsMsg
	handleAll := func() {
		items := a.queue.take(spare)
		for i := range items {
			a.handle(items[i])
		}
		clear(items) // the events are not kept past their handling
		spare = items
	}
	for {
		select {
		case <-a.queue.wake:
			handleAll()
		case <-tick.C:
			a.reconcile()
			now := time.Now()
			for _, pp := range a.parts {
				if pp.dirty && !now.Before(pp.nextSave) && a.settle(pp, false) {
					a.saveLater(pp)
				}
			}
		case <-a.stop:
			a.queue.close()
			handleAll()
			a.fillSomeDropped(math.MaxInt, -1)
			a.reconcile()
			a.saveAll()
			return
		}
	}
}

// close drains the queue, saves every projection and stops the runner;
// the partitions' customers must have stopped before.
func (a *analyticsRunner) close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}

func (a *analyticsRunner) handle(m analyticsMsg) {
	if m.run != nil {
		m.run()
		return
	}
	pp := a.parts[m.partition]
	if pp == nil {
		return // not hosted here (any more)
	}
	if a.anyDropped.Load() && len(m.events) > 0 {
		a.absorbDropped()
		a.mu.Lock()
		d, ok := a.droppedOf[m.events[0].Customer]
		delete(a.droppedOf, m.events[0].Customer)
		a.mu.Unlock()
		if ok {
			a.fillDropped(pp, m.events[0].Customer, d, m.events[0].Seq)
		}
	}
	for i := range m.events {
		e := &m.events[i]
		last, known := pp.proj.LastSeq(e.Customer)
		switch {
		case known && e.Seq > last+1:
			a.fill(pp, e.Customer, last, e.Seq, time.Time{})
		case !known && e.Seq > 1 && !pp.behind.IsZero():
			a.fill(pp, e.Customer, 0, e.Seq, pp.behind.Add(-analytics.CatchUpMargin))
		}
		pp.dirty = pp.proj.Apply(e) || pp.dirty
	}
}

// fill applies a customer's stored events before seq `before`: those after
// `after` (a known customer), or those recorded since `from` (one the
// projection does not remember).
func (a *analyticsRunner) fill(pp *analyticsPart, customer string, after, before uint64, from time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), analyticsTimeout)
	defer cancel()
	events, err := a.storedSince(ctx, pp.store, customer, after, before, from)
	if err != nil {
		a.rt.cfg.Logger.Warn("analytics: reading missed events", "partition", pp.store.Partition(), "err", err)
		return
	}
	for i := range events {
		pp.dirty = pp.proj.Apply(&events[i]) || pp.dirty
	}
}

// storedSince reads a customer's stored events with seq in (after, before)
// (before 0: up to the last), or, when from is set, those of them recorded
// since from, reading back from the newest at most analyticsPagesMax pages.
func (a *analyticsRunner) storedSince(ctx context.Context, st persistence.Store, customer string, after, before uint64, from time.Time) ([]journey.Event, error) {
	if before == 0 {
		last, err := st.LastSeq(ctx, customer)
		if err != nil {
			return nil, err
		}
		before = last + 1
	}
	if from.IsZero() {
		if before <= after+1 {
			return nil, nil
		}
		return st.Events(ctx, customer, after, int(before-after-1))
	}
	var out []journey.Event
	hi := before - 1 // the newest seq still to read
	for range analyticsPagesMax {
		if hi <= after {
			break
		}
		lo := max(after, hi-min(hi, analyticsPage))
		page, err := st.Events(ctx, customer, lo, int(hi-lo))
		if err != nil {
			return nil, err
		}
		out = append(page, out...)
		if len(page) == 0 || page[0].RecordedAt.Before(from) {
			break
		}
		hi = lo
	}
	i := 0
	for i < len(out) && out[i].RecordedAt.Before(from) {
		i++
	}
	return out[i:], nil
}

// fillDropped applies a customer's events dropped from d.first on, up to
// seq before (0: its last stored).
func (a *analyticsRunner) fillDropped(pp *analyticsPart, customer string, d droppedEvents, before uint64) {
	after := d.first - 1
	if last, known := pp.proj.LastSeq(customer); known && last < after {
		after = last
	}
	a.fill(pp, customer, after, before, time.Time{})
}

// fillSomeDropped reads back the events of at most n customers with
// events dropped, of partition p (-1: any).
func (a *analyticsRunner) fillSomeDropped(n, p int) {
	a.mu.Lock()
	batch := make(map[string]droppedEvents, min(len(a.droppedOf), n))
	for c, d := range a.droppedOf {
		if len(batch) == n {
			break
		}
		if p < 0 || d.partition == p {
			batch[c] = d
			delete(a.droppedOf, c)
		}
	}
	if len(a.droppedOf) > 0 || len(a.dropped) > 0 {
		a.anyDropped.Store(true)
	}
	a.mu.Unlock()
	for c, d := range batch {
		if pp := a.parts[d.partition]; pp != nil {
			a.fillDropped(pp, c, d, 0)
		}
	}
}

// absorbDropped marks the partitions whose events were dropped behind
// from the earliest of them.
func (a *analyticsRunner) absorbDropped() {
	a.mu.Lock()
	dropped := a.dropped
	a.dropped = map[int]time.Time{}
	a.anyDropped.Store(len(a.droppedOf) > 0)
	a.mu.Unlock()
	for p, since := range dropped {
		pp := a.parts[p]
		if pp == nil {
			continue
		}
		if pp.behind.IsZero() || since.Before(pp.behind) {
			pp.behind = since
		}
	}
}

// reconcile catches up the partitions whose events were dropped.
func (a *analyticsRunner) reconcile() {
	a.absorbDropped()
	a.fillSomeDropped(analyticsFillsPerTick, -1)
	for _, pp := range a.parts {
		if pp.behind.IsZero() {
			continue
		}
		from := pp.behind.Add(-analytics.CatchUpMargin)
		if err := a.catchUp(pp, from); err != nil {
			a.rt.cfg.Logger.Warn("analytics: catching up", "partition", pp.store.Partition(), "err", err)
			continue // behind stays: the next tick tries again
		}
		pp.behind = time.Time{}
	}
}

// catchUp applies the partition's stored events recorded since from that
// the projection has not applied.
func (a *analyticsRunner) catchUp(pp *analyticsPart, from time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	to := a.rt.cfg.Now().Add(time.Hour)
	read := map[string]struct{}{}
	var readErr error
	for _, typ := range analytics.Types {
		err := pp.store.ScanSegment(ctx, typ, from, to, func(customer string) bool {
			if _, ok := read[customer]; ok {
				return true
			}
			if len(read) >= analyticsCatchUpSetMax {
				clear(read)
			}
			read[customer] = struct{}{}
			last, known := pp.proj.LastSeq(customer)
			var events []journey.Event
			if known {
				events, readErr = a.storedSince(ctx, pp.store, customer, last, 0, time.Time{})
			} else {
				events, readErr = a.storedSince(ctx, pp.store, customer, 0, 0, from)
			}
			for i := range events {
				pp.dirty = pp.proj.Apply(&events[i]) || pp.dirty
			}
			return readErr == nil
		})
		if err := errors.Join(err, readErr); err != nil {
			return fmt.Errorf("analytics: catch up %s: %w", typ, err)
		}
	}
	return nil
}

// host loads a partition's saved projection and catches it up; it runs on
// the runner goroutine, before any event of the partition it queued.
func (a *analyticsRunner) host(p int) {
	st := a.rt.engine.Store(p)
	ctx, cancel := context.WithTimeout(context.Background(), analyticsTimeout)
	defer cancel()
	var saved []byte
	err := st.ScanRecords(ctx, analyticsCollection, "", func(key string, value []byte) bool {
		if key == analyticsStateKey {
			saved = append([]byte(nil), value...)
		}
		return true
	})
	proj := analytics.New()
	from := a.rt.cfg.Now().Add(-analytics.Retention)
	switch {
	case err != nil:
		a.rt.cfg.Logger.Warn("analytics: loading the saved state", "partition", p, "err", err)
	case saved != nil:
		if loaded, err := analytics.Decode(saved); err != nil {
			a.rt.cfg.Logger.Warn("analytics: the saved state is unreadable; rebuilding it", "partition", p, "err", err)
		} else {
			proj = loaded
			from = loaded.Position().Add(-analytics.CatchUpMargin)
		}
	}
	pp := &analyticsPart{proj: proj, store: st, dirty: true, nextSave: time.Now().Add(analyticsSaveEvery)}
	a.parts[p] = pp
	if err := a.catchUp(pp, from); err != nil {
		a.rt.cfg.Logger.Warn("analytics: catching up", "partition", p, "err", err)
		pp.behind = from.Add(analytics.CatchUpMargin)
	}
}

// unhost saves a partition's projection and stops following it.
func (a *analyticsRunner) unhost(p int) {
	if pp := a.parts[p]; pp != nil {
		a.fillSomeDropped(math.MaxInt, p)
		a.save(pp)
		delete(a.parts, p)
	}
}

func (a *analyticsRunner) saveAll() {
	for _, pp := range a.parts {
		a.settle(pp, true) // not written after the store closes
		if pp.dirty {
			a.save(pp)
		}
	}
}

// save writes pp's projection and waits for it (a partition leaving, the
// runtime stopping), after the periodic save in flight, if any: an older
// state never lands after it.
func (a *analyticsRunner) save(pp *analyticsPart) {
	a.settle(pp, true)
	b, ok := a.encode(pp)
	if !ok {
		return
	}
	if err := writeState(pp.store, b); err != nil {
		a.rt.cfg.Logger.Warn("analytics: saving", "partition", pp.store.Partition(), "err", err)
		return
	}
	pp.dirty = false
}

// saveLater is the periodic save: the projection is encoded here and
// written on a goroutine of its own, and the runner goes on. Every
// partition's projection comes due at one tick, and written one after the
// other, each waiting for its commit's sync, they stalled the runner for
// half a second every analyticsSaveEvery under bench ingest --batch 100
// (143,000 events/s): the queue filled, ~20,000 events were dropped each
// time and read back from the store, which took ~3% of the server's CPU.
// The outcome is taken by settle; a failed save leaves pp dirty.
func (a *analyticsRunner) saveLater(pp *analyticsPart) {
	b, ok := a.encode(pp)
	if !ok {
		return
	}
	pp.dirty = false
	done := make(chan struct{})
	pp.saving = done
	go func() {
		defer close(done)
		pp.saveErr = writeState(pp.store, b)
	}()
}

// writeState writes an encoded projection as its partition's state.
func writeState(st persistence.Store, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), analyticsTimeout)
	defer cancel()
	return st.WriteRecords(ctx, analyticsCollection, []persistence.Record{{Key: analyticsStateKey, Value: b}}, nil)
}

// settle takes the outcome of pp's save in flight once it is written,
// waiting for it when wait is set; false when it is still in flight.
func (a *analyticsRunner) settle(pp *analyticsPart, wait bool) bool {
	if pp.saving == nil {
		return true
	}
	if wait {
		<-pp.saving
	} else {
		select {
		case <-pp.saving:
		default:
			return false
		}
	}
	pp.saving = nil
	if err := pp.saveErr; err != nil {
		pp.saveErr = nil
		pp.dirty = true
		a.rt.cfg.Logger.Warn("analytics: saving", "partition", pp.store.Partition(), "err", err)
	}
	return true
}

// encode prunes pp's projection and encodes it, and says when it is next
// due to be saved; false when it cannot be encoded.
func (a *analyticsRunner) encode(pp *analyticsPart) ([]byte, bool) {
	pp.proj.Prune(a.rt.cfg.Now())
	b, err := pp.proj.Encode()
	wait := analyticsSaveEvery * time.Duration(max(1, len(b)/analyticsSaveBytes))
	pp.nextSave = time.Now().Add(min(wait, analyticsSaveMaxWait))
	if err != nil {
		a.rt.cfg.Logger.Warn("analytics: saving", "partition", pp.store.Partition(), "err", err)
		return nil, false
	}
	return b, true
}

// JourneyAnalytics answers GET /v1/analytics/journeys for the partitions
// hosted here: each computes its part, and the parts are merged.
//
// In a cluster each node computes the part of the partitions it leads and
// the answering node merges them (a node that does not answer in time is
// left out: the answer's partitions count says how many were merged).
func (r *Runtime) JourneyAnalytics(ctx context.Context, since, until time.Time) (analytics.Journeys, error) {
	ctx, cancel := context.WithTimeout(ctx, analyticsTimeout)
	defer cancel()
	var answers chan *remotepb.Reply
	var peers []string
	if r.cd != nil {
		peers = r.cfg.Cluster.Peers()
		answers = make(chan *remotepb.Reply, len(peers))
		for _, addr := range peers {
			if !r.request(addr, fwdAnalytics, analyticsWindow{Since: since, Until: until}, func(rep *remotepb.Reply) { answers <- rep }) {
				answers <- &remotepb.Reply{Code: string(journey.CodeUnavailable)}
			}
		}
	}
	parts, err := r.localAnalytics(ctx, since, until)
	if err != nil {
		return analytics.Journeys{}, err
	}
	for range peers {
		select {
		case rep := <-answers:
			var part analytics.Part
			if rep.Code == "" && json.Unmarshal(rep.Body, &part) == nil {
				parts = append(parts, part)
			}
		case <-ctx.Done():
		}
	}
	return analytics.Merge(parts...).Answer(since, until), nil
}

// analyticsWindow is a forwarded analytics request's window.
type analyticsWindow struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// localAnalytics are the parts of the partitions this node hosts.
func (r *Runtime) localAnalytics(ctx context.Context, since, until time.Time) ([]analytics.Part, error) {
	now := r.cfg.Now()
	stuckAfter := map[string]time.Duration{}
	for _, q := range r.cfg.Queues {
		stuckAfter[q.Name] = q.CallbackAfter
	}
	var parts []analytics.Part
	ok := r.analytics.do(ctx, func() {
		for _, pp := range r.analytics.parts {
			parts = append(parts, pp.proj.Part(since, until, now, func(q string) time.Duration { return stuckAfter[q] }))
		}
	})
	if !ok {
		return nil, unavailable("analytics are not available now")
	}
	return parts, nil
}
