package actors

// Broadcasts (PROTOCOL section 5), worked through partition by partition.
//
// A broadcast's plan is recorded durably (records "broadcasts" in partition
// 0's store) before it is acknowledged. A runner goroutine per running
// broadcast goes through the partitions this node hosts: it reads the
// partition's marks of the broadcast (the customers already decided), scans
// the partition's segment index for the event type and window, and asks
// every customer not yet marked with a BroadcastSend, paced by one
// node-wide rate limiter and bounded by one node-wide count of targets in
// flight, so live traffic keeps its latency. Each customer decides for
// itself (journey) and stores its outcome as a mark with its events; when a
// partition is worked through, the runner records it done (records
// "broadcast-parts" in that partition's store). A restart resumes every
// running broadcast and skips the customers marked. Progress is the count
// of the marks, exact and durable. Resolve works the same way over the
// marks of the customers who accepted the callback.
//
// The runners are thin: which customer is targeted and what it is sent is
// journey's (BroadcastSend, BroadcastResolve).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
	"golang.org/x/time/rate"
)

// Limits of broadcasts on a node.
const (
	// BroadcastRateDefault is broadcasts.rate: targets asked per second.
	BroadcastRateDefault = 2000
	// BroadcastsRunningMax bounds the broadcasts running (or resolving) at
	// once; a new one past it is refused with unavailable.
	BroadcastsRunningMax = 8
	// BroadcastsKeptMax bounds the broadcasts remembered; past it the oldest
	// finished one is forgotten (its customers keep their events).
	BroadcastsKeptMax = 1000
	// broadcastInFlightMin and broadcastInFlightMax bound the targets
	// asked and not yet answered; between them it is broadcastInFlightFor
	// of targets at the rate. A target is answered once its events are
	// durable (a group commit, a few ms, longer under load), so the count
	// in flight, not the rate, capped a broadcast at 64 in flight to
	// ~6,500 targets/s on the 2-core bench machine.
	broadcastInFlightMin = 64
	broadcastInFlightMax = 1024
	broadcastInFlightFor = 50 * time.Millisecond
	// broadcastQueuedMin and broadcastQueuedMax bound the targets asked
	// and not yet taken up by their customer (between them,
	// broadcastQueuedFor of targets at the rate): those wait in the actor
	// dispatcher's queue, where live traffic waits behind them. The targets
	// in flight beyond these only wait for their commit, which costs live
	// traffic nothing. (16 capped a broadcast at ~8,000 targets/s.)
	broadcastQueuedMin = 16
	broadcastQueuedMax = 256
	broadcastQueuedFor = 10 * time.Millisecond
	// broadcastBurst is how much of the rate the limiter saves up: with
	// 1 ms, a runner whose timer woke later than that (a busy node) lost
	// the rest of the tokens.
	broadcastBurst = 5 * time.Millisecond
	// broadcastPartitionsAtOnce is how many partitions a runner works
	// through at once: while one waits for its last answers, the next one
	// is scanned and asked (one at a time, the rate went unused while each
	// partition's last targets were answered).
	broadcastPartitionsAtOnce = 2
	// broadcastRetryEvery is how long a runner waits before another pass
	// over the targets that could not be asked (a customer unavailable).
	broadcastRetryEvery = 2 * time.Second
)

// Record collections of broadcasts.
const (
	broadcastsCollection = "broadcasts"      // partition 0: id -> broadcastRecord
	partsCollection      = "broadcast-parts" // each partition: id -> partRecord
	broadcastsPartition  = 0
)

// Broadcast states (PROTOCOL section 3).
const (
	BroadcastRunning   = "running"
	BroadcastDone      = "done"
	BroadcastCancelled = "cancelled"
)

// Errors of the broadcast calls; the gateway maps them to PROTOCOL codes.
var (
	ErrBroadcastNotFound = errors.New("broadcast not found")
	ErrBroadcastResolved = errors.New("broadcast already resolved")
	ErrBroadcastsBusy    = errors.New("too many broadcasts running")
)

// broadcastRecord is a broadcast as stored: the plan and where it stands.
type broadcastRecord struct {
	journey.BroadcastPlan
	State   string          `json:"state"`
	Resolve *resolveRequest `json:"resolve,omitempty"`
	// ResolveDone: every accepted callback was resolved.
	ResolveDone bool `json:"resolve_done,omitempty"`
}

type resolveRequest struct {
	Text     string    `json:"text"`
	Callback bool      `json:"callback,omitempty"`
	At       time.Time `json:"at"`
}

// partRecord is a partition's progress of a broadcast.
type partRecord struct {
	Sent     bool `json:"sent,omitempty"`     // every target asked and answered
	Resolved bool `json:"resolved,omitempty"` // every accepted callback resolved
}

// BroadcastStatus answers GET /v1/broadcasts/{id}.
type BroadcastStatus struct {
	ID    string `json:"id"`
	State string `json:"state"`
	journey.BroadcastProgress
	Resolved bool `json:"resolved"`
}

// broadcasts is the node's broadcast machinery.
type broadcasts struct {
	rt       *Runtime
	limiter  *rate.Limiter
	inFlight chan struct{} // a token per target asked and not answered
	queued   chan struct{} // a token per target asked and not taken up by its customer

	mu      sync.Mutex
	records map[string]*broadcastRecord // every remembered broadcast, by id
	// progress caches each remembered broadcast's counts per partition.
	progress map[progressKey]cachedProgress
	running  map[string]*runner
	wg       sync.WaitGroup
	closed   bool
}

func newBroadcasts(rt *Runtime, perSecond int) *broadcasts {
	// Pace evenly, at most broadcastBurst of targets at once: a runner
	// woken late (a busy node's timers) finds the tokens of that long
	// waiting, not lost.
	burst := broadcastShare(perSecond, broadcastBurst, 1, math.MaxInt)
	return &broadcasts{
		rt: rt, limiter: rate.NewLimiter(rate.Limit(perSecond), burst),
		inFlight: make(chan struct{}, broadcastShare(perSecond, broadcastInFlightFor, broadcastInFlightMin, broadcastInFlightMax)),
		queued:   make(chan struct{}, broadcastShare(perSecond, broadcastQueuedFor, broadcastQueuedMin, broadcastQueuedMax)),
		records:  map[string]*broadcastRecord{}, running: map[string]*runner{},
		progress: map[progressKey]cachedProgress{},
	}
}

// broadcastShare is how many targets go out in d at perSecond, between lo
// and hi.
func broadcastShare(perSecond int, d time.Duration, lo, hi int) int {
	n := int(int64(perSecond) * int64(d) / int64(time.Second))
	return min(max(n, lo), hi)
}

// hostsRecords reports whether this node keeps the broadcasts' records.
func (b *broadcasts) hostsRecords() bool { return b.rt.hostOf(broadcastsPartition) != nil }

// load reads the remembered broadcasts and resumes those still running or
// resolving.
func (b *broadcasts) load(ctx context.Context) error {
	if !b.hostsRecords() {
		return nil
	}
	err := b.rt.engine.Store(broadcastsPartition).ScanRecords(ctx, broadcastsCollection, "", func(_ string, v []byte) bool {
		var r broadcastRecord
		if json.Unmarshal(v, &r) == nil && r.ID != "" {
			b.records[r.ID] = &r
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("broadcasts: load: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.records {
		if r.State == BroadcastRunning || (r.Resolve != nil && !r.ResolveDone) {
			b.startLocked(r)
		}
	}
	return nil
}

// Start records a broadcast and starts working through it; the plan is
// durable when it returns.
func (b *broadcasts) Start(ctx context.Context, req *journey.BroadcastRequest) (string, error) {
	if !b.hostsRecords() {
		return "", unavailable("broadcasts are kept by another node")
	}
	var queues []string
	for _, q := range b.rt.cfg.Queues {
		queues = append(queues, q.Name)
	}
	defaultQueue := ""
	if bot := b.rt.cfg.Policy.Bot; bot != nil {
		defaultQueue = bot.DefaultQueue
	}
	plan, _, rej := journey.PlanBroadcast(req, newBroadcastID(), b.rt.cfg.Now().UTC(), queues, defaultQueue)
	if rej != nil {
		return "", rej
	}
	r := &broadcastRecord{BroadcastPlan: *plan, State: BroadcastRunning}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return "", unavailable("shutting down")
	}
	if len(b.running) >= BroadcastsRunningMax {
		return "", fmt.Errorf("%w (%d)", ErrBroadcastsBusy, BroadcastsRunningMax)
	}
	if err := b.saveLocked(ctx, r, b.forgetLocked()); err != nil {
		return "", err
	}
	b.records[r.ID] = r
	b.startLocked(r)
	return r.ID, nil
}

// forgetLocked picks the oldest finished broadcast to forget when the kept
// ones are at their limit.
func (b *broadcasts) forgetLocked() []string {
	if len(b.records) < BroadcastsKeptMax {
		return nil
	}
	var oldest *broadcastRecord
	for _, r := range b.records {
		if _, busy := b.running[r.ID]; !busy && (oldest == nil || r.Created.Before(oldest.Created)) {
			oldest = r
		}
	}
	if oldest == nil {
		return nil
	}
	delete(b.records, oldest.ID)
	for k := range b.progress {
		if k.broadcast == oldest.ID {
			delete(b.progress, k)
		}
	}
	return []string{oldest.ID}
}

// saveLocked writes the record durably (and deletes forgotten ones).
func (b *broadcasts) saveLocked(ctx context.Context, r *broadcastRecord, forget []string) error {
	v, err := json.Marshal(r)
	if err != nil {
		panic("actors: broadcast record: " + err.Error())
	}
	err = b.rt.engine.Store(broadcastsPartition).WriteRecords(ctx, broadcastsCollection,
		[]persistence.Record{{Key: r.ID, Value: v}}, forget)
	if err != nil {
		return unavailableFrom(err)
	}
	return nil
}

// runner is a running broadcast's goroutine: cancel stops it, done closes
// when it has left.
type runner struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startLocked starts the runner of a broadcast.
func (b *broadcasts) startLocked(r *broadcastRecord) {
	if _, ok := b.running[r.ID]; ok || b.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &runner{cancel: cancel, done: make(chan struct{})}
	b.running[r.ID] = run
	plan, resolve := r.BroadcastPlan, r.Resolve
	sending := r.State == BroadcastRunning
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(run.done)
		b.run(ctx, plan, sending, resolve)
	}()
}

// run works a broadcast through: its targets while it is running, then
// the resolve when there is one.
func (b *broadcasts) run(ctx context.Context, plan journey.BroadcastPlan, sending bool, resolve *resolveRequest) {
	defer func() {
		b.mu.Lock()
		delete(b.running, plan.ID)
		b.mu.Unlock()
	}()
	if sending {
		var where *journey.Condition
		if plan.Where != "" {
			var err error
			if where, err = journey.CompileCondition(plan.Where); err != nil {
				b.rt.cfg.Logger.Error("broadcast where no longer compiles", "broadcast", plan.ID, "err", err)
				return
			}
		}
		in := &journey.BroadcastSend{Broadcast: plan.ID, Text: plan.Text, Where: where, Expires: plan.Expires, CallbackOffer: plan.CallbackOffer}
		if !b.passes(ctx, plan.ID, func(p int) bool { return b.sendPartition(ctx, &plan, p, in) }, func(pr *partRecord) *bool { return &pr.Sent }) {
			return
		}
		if !b.finish(plan.ID, func(r *broadcastRecord) {
			if r.State == BroadcastRunning {
				r.State = BroadcastDone
			}
		}) {
			return
		}
		b.mu.Lock()
		resolve = b.records[plan.ID].Resolve
		b.mu.Unlock()
	}
	if resolve == nil {
		return
	}
	in := &journey.BroadcastResolve{Broadcast: plan.ID, Text: resolve.Text, Callback: resolve.Callback, Queue: plan.CallbackQueue}
	if !b.passes(ctx, plan.ID, func(p int) bool { return b.resolvePartition(ctx, plan.ID, p, in) }, func(pr *partRecord) *bool { return &pr.Resolved }) {
		return
	}
	b.finish(plan.ID, func(r *broadcastRecord) { r.ResolveDone = true })
}

// passes works every hosted partition through with work (true: every
// target answered), again and again until each is done or ctx ends, and
// records each partition done (the flag field picks which part).
func (b *broadcasts) passes(ctx context.Context, id string, work func(p int) bool, field func(*partRecord) *bool) bool {
	pending := b.rt.Hosted()
	for ctx.Err() == nil {
		var (
			mu   sync.Mutex
			left []int
			wg   sync.WaitGroup
		)
		slots := make(chan struct{}, broadcastPartitionsAtOnce)
		for _, p := range pending {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Go(func() {
				defer func() { <-slots }()
				if !b.pass(ctx, id, p, work, field) {
					mu.Lock()
					left = append(left, p)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return false
		}
		if pending = left; len(pending) == 0 {
			return true
		}
		select {
		case <-ctx.Done():
		case <-time.After(broadcastRetryEvery):
		}
	}
	return false
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

// finish updates a broadcast's record once a phase is done; false when it
// could not be stored (the runner stops; a restart resumes it).
func (b *broadcasts) finish(id string, change func(*broadcastRecord)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.records[id]
	if !ok {
		return false
	}
	next := *r
	change(&next)
	if err := b.saveLocked(context.Background(), &next, nil); err != nil {
		b.rt.cfg.Logger.Error("broadcast record not stored", "broadcast", id, "err", err)
		return false
	}
	*r = next
	return true
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
}

func (b *broadcasts) newTargets() *targets { return &targets{b: b} }

// ask waits for the rate and for a slot in flight and one queued, then asks
// the customer; false when ctx ended.
func (t *targets) ask(ctx context.Context, customer string, in journey.Input) bool {
	if t.b.limiter.Wait(ctx) != nil {
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

// Status is a broadcast's state and progress: the count of its marks on
// every partition this node hosts.
func (b *broadcasts) Status(ctx context.Context, id string) (BroadcastStatus, error) {
	b.mu.Lock()
	r, ok := b.records[id]
	var st BroadcastStatus
	if ok {
		st = BroadcastStatus{ID: id, State: r.State, Resolved: r.Resolve != nil}
	}
	b.mu.Unlock()
	if !ok {
		return st, ErrBroadcastNotFound
	}
	st.BroadcastProgress = journey.NewBroadcastProgress()
	for _, p := range b.rt.Hosted() {
		part, err := b.partProgress(ctx, id, p, st.State == BroadcastRunning)
		if err != nil {
			return st, err
		}
		st.Merge(part)
	}
	return st, nil
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
	if _, known := b.records[id]; known {
		b.progress[key] = cachedProgress{version: v, at: time.Now(), progress: part}
	}
	b.mu.Unlock()
	return part, nil
}

type progressKey struct {
	broadcast string
	partition int
}

// BroadcastSummary is one remembered broadcast in a list.
type BroadcastSummary struct {
	ID       string    `json:"id"`
	State    string    `json:"state"`
	Event    string    `json:"event"`
	Text     string    `json:"text"`
	Created  time.Time `json:"created"`
	Resolved bool      `json:"resolved"`
}

// List is the remembered broadcasts, newest first, at most limit.
func (b *broadcasts) List(limit int) []BroadcastSummary {
	b.mu.Lock()
	out := make([]BroadcastSummary, 0, len(b.records))
	for _, r := range b.records {
		out = append(out, BroadcastSummary{ID: r.ID, State: r.State, Event: r.Event, Text: r.Text, Created: r.Created, Resolved: r.Resolve != nil})
	}
	b.mu.Unlock()
	slices.SortFunc(out, func(x, y BroadcastSummary) int { return y.Created.Compare(x.Created) })
	return out[:min(limit, len(out))]
}

// Cancel stops a running broadcast: the targets not yet asked are not.
func (b *broadcasts) Cancel(ctx context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.records[id]
	if !ok {
		return ErrBroadcastNotFound
	}
	if r.State != BroadcastRunning {
		return nil
	}
	next := *r
	next.State = BroadcastCancelled
	if err := b.saveLocked(ctx, &next, nil); err != nil {
		return err
	}
	*r = next
	if run, ok := b.running[id]; ok && r.Resolve == nil {
		run.cancel()
	}
	return nil
}

// Resolve records a broadcast's resolve and sends it to every customer who
// accepted the callback. A broadcast still running stops sending first (the
// incident is over): it is done with the customers reached so far.
func (b *broadcasts) Resolve(ctx context.Context, id string, req *journey.ResolveRequest) error {
	b.mu.Lock()
	r, ok := b.records[id]
	if !ok {
		b.mu.Unlock()
		return ErrBroadcastNotFound
	}
	if rej := journey.CheckResolve(req, &r.BroadcastPlan); rej != nil {
		b.mu.Unlock()
		return rej
	}
	if r.Resolve != nil {
		b.mu.Unlock()
		return ErrBroadcastResolved
	}
	next := *r
	next.Resolve = &resolveRequest{Text: req.Message.Text, Callback: req.Callback, At: b.rt.cfg.Now().UTC()}
	if next.State == BroadcastRunning {
		next.State = BroadcastDone
	}
	if err := b.saveLocked(ctx, &next, nil); err != nil {
		b.mu.Unlock()
		return err
	}
	*r = next
	run, wasRunning := b.running[id]
	b.mu.Unlock()
	if wasRunning {
		run.cancel()
		<-run.done
	}
	b.mu.Lock()
	b.startLocked(r)
	b.mu.Unlock()
	return nil
}

// stop ends every runner and waits for the targets in flight.
func (b *broadcasts) stop() {
	b.mu.Lock()
	b.closed = true
	for _, run := range b.running {
		run.cancel()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func newBroadcastID() string {
	var r [10]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic("actors: crypto/rand: " + err.Error())
	}
	return "bc-" + hex.EncodeToString(r[:])
}

// StartBroadcast validates and records a broadcast (durable when it
// returns) and starts working through its targets; it returns the id.
func (r *Runtime) StartBroadcast(ctx context.Context, req *journey.BroadcastRequest) (string, error) {
	if r.stopping.Load() {
		return "", unavailable("shutting down")
	}
	if r.cd != nil {
		// A broadcast works through the partitions its node hosts; across
		// nodes that is not built yet: refused rather than half done.
		return "", journey.Rejectf(journey.CodeConflict, "broadcasts are not available in a cluster yet (this version runs them on a single node)")
	}
	return r.bcast.Start(ctx, req)
}

// BroadcastStatus is a broadcast's state and progress
// (ErrBroadcastNotFound for an unknown id).
func (r *Runtime) BroadcastStatus(ctx context.Context, id string) (BroadcastStatus, error) {
	return r.bcast.Status(ctx, id)
}

// CancelBroadcast stops a running broadcast (ErrBroadcastNotFound).
func (r *Runtime) CancelBroadcast(ctx context.Context, id string) error {
	return r.bcast.Cancel(ctx, id)
}

// ResolveBroadcast records and sends a broadcast's resolve
// (ErrBroadcastNotFound, ErrBroadcastResolved).
func (r *Runtime) ResolveBroadcast(ctx context.Context, id string, req *journey.ResolveRequest) error {
	if r.stopping.Load() {
		return unavailable("shutting down")
	}
	return r.bcast.Resolve(ctx, id, req)
}

// Broadcasts lists the remembered broadcasts, newest first, at most limit.
func (r *Runtime) Broadcasts(limit int) []BroadcastSummary { return r.bcast.List(limit) }
