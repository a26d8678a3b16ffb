package actors

// Broadcasts (PROTOCOL section 5), worked through partition by partition.
//
// Two roles, so a broadcast runs the same on one node and across a
// cluster:
//
//   - The coordinator is the node hosting partition 0 (its raft leader in a
//     cluster). It keeps the broadcasts' records ("broadcasts" in partition
//     0's store: the plan, recorded durably before the 202, and where it
//     stands), answers the API (other nodes forward to it), and tells every
//     node which broadcasts are active and in which phase (sending, or
//     resolving): at once after a change, and every second in a cluster. A
//     phase is done when every partition reported it done; the coordinator
//     then records the next state.
//   - Every node is a worker: for each active broadcast one runner goes
//     through the partitions this node hosts now (again every
//     broadcastRetryEvery, so a partition that moves here is taken up). For
//     a partition not yet done it reads the partition's marks of the
//     broadcast (the customers already decided), scans its segment index
//     for the event type and window, and asks every customer not yet marked
//     with a BroadcastSend, paced by the node's rate limiter (its share of
//     broadcasts.rate: the rate times the share of partitions it hosts,
//     lowered while the node is overloaded and made up after:
//     broadcast_pace.go) and bounded by the node's count of targets in
//     flight, so live traffic keeps its latency. Each customer decides for itself (journey) and
//     stores its outcome as a mark with its events; a partition worked
//     through is recorded done ("broadcast-parts" in its store), and the
//     runner reports the partitions it found done to the coordinator.
//
// A restart or a failover resumes from the records, the partitions' done
// records and the marks: no customer is asked twice. Progress is the count
// of the marks over every partition, exact and durable; in a cluster each
// node counts the partitions it hosts and the coordinator adds them up.
// Resolve works the same way over the marks of the customers who accepted
// the callback.
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
	// dispatcher's elastic queue for its few workers (dispatcher.go), and
	// every one taken up there is a mailbox run live traffic's goroutines
	// share the CPU with. The targets
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

// broadcasts is the node's broadcast machinery: the coordinator's records
// (while this node hosts broadcastsPartition) and the worker's runners.
type broadcasts struct {
	rt       *Runtime
	rate     int           // broadcasts.rate, for every node together
	limiter  *rate.Limiter // this node's share of it
	pace     *pace         // sets limiter, yielding to live traffic
	inFlight chan struct{} // a token per target asked and not answered
	queued   chan struct{} // a token per target asked and not taken up by its customer

	// pushMu keeps the coordinator's pushes in order: an older list of the
	// active broadcasts never lands after a newer one.
	pushMu sync.Mutex

	mu sync.Mutex
	// The coordinator's part, set while leading.
	leading bool
	term    uint64                      // counts leads and losses, so a late load is dropped
	records map[string]*broadcastRecord // every remembered broadcast, by id
	// progress caches each remembered broadcast's counts per partition
	// hosted here (on every node: the coordinator asks the others).
	progress map[progressKey]cachedProgress
	// doneIn is, per active broadcast, the partitions reported done in its
	// phase.
	doneIn map[string]map[int]bool
	// The worker's part: a runner per active broadcast.
	running map[string]*runner
	wg      sync.WaitGroup
	closed  bool
}

func newBroadcasts(rt *Runtime, perSecond int) *broadcasts {
	// Pace evenly, at most broadcastBurst of targets at once: a runner
	// woken late (a busy node's timers) finds the tokens of that long
	// waiting, not lost.
	burst := broadcastShare(perSecond, broadcastBurst, 1, math.MaxInt)
	return &broadcasts{
		rt: rt, rate: perSecond, limiter: rate.NewLimiter(rate.Limit(perSecond), burst), pace: newPace(rate.Limit(perSecond), rt.engine.Flushing),
		inFlight: make(chan struct{}, broadcastShare(perSecond, broadcastInFlightFor, broadcastInFlightMin, broadcastInFlightMax)),
		queued:   make(chan struct{}, broadcastShare(perSecond, broadcastQueuedFor, broadcastQueuedMin, broadcastQueuedMax)),
		running:  map[string]*runner{}, progress: map[progressKey]cachedProgress{},
	}
}

// broadcastShare is how many targets go out in d at perSecond, between lo
// and hi.
func broadcastShare(perSecond int, d time.Duration, lo, hi int) int {
	n := int(int64(perSecond) * int64(d) / int64(time.Second))
	return min(max(n, lo), hi)
}

// Phases of an active broadcast.
const (
	phaseSend    = "send"
	phaseResolve = "resolve"
)

// activeBroadcast is what a worker needs of a broadcast in progress: its
// plan, and its resolve once it is resolving.
type activeBroadcast struct {
	Plan    journey.BroadcastPlan `json:"plan"`
	Resolve *resolveRequest       `json:"resolve,omitempty"` // nil: sending
}

func (a activeBroadcast) phase() string {
	if a.Resolve != nil {
		return phaseResolve
	}
	return phaseSend
}

// active is the record's work in progress, false when there is none.
func (r *broadcastRecord) active() (activeBroadcast, bool) {
	switch {
	case r.State == BroadcastRunning:
		return activeBroadcast{Plan: r.BroadcastPlan}, true
	case r.Resolve != nil && !r.ResolveDone:
		return activeBroadcast{Plan: r.BroadcastPlan, Resolve: r.Resolve}, true
	}
	return activeBroadcast{}, false
}

// coordinatorPush is how often a coordinator in a cluster tells every node
// the active broadcasts again (a node that missed a change, or joined,
// catches up).
const coordinatorPush = time.Second

// lead makes this node the coordinator (it hosts broadcastsPartition now):
// it loads the records and resumes the active broadcasts. A load that
// fails is tried again every second while this node leads.
func (b *broadcasts) lead() {
	b.mu.Lock()
	b.term++
	term := b.term
	b.mu.Unlock()
	if b.load(term) {
		return
	}
	go func() {
		for range time.Tick(time.Second) {
			b.mu.Lock()
			gone := b.term != term || b.closed
			b.mu.Unlock()
			if gone || b.load(term) {
				return
			}
		}
	}()
}

// load reads the records for the lead of term; true when done (or the lead
// is over).
func (b *broadcasts) load(term uint64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), analyticsTimeout)
	defer cancel()
	records := map[string]*broadcastRecord{}
	err := b.rt.engine.Store(broadcastsPartition).ScanRecords(ctx, broadcastsCollection, "", func(_ string, v []byte) bool {
		var r broadcastRecord
		if json.Unmarshal(v, &r) == nil && r.ID != "" {
			records[r.ID] = &r
		}
		return true
	})
	if err != nil {
		b.rt.cfg.Logger.Error("broadcasts: loading the records", "err", err)
		return false
	}
	b.mu.Lock()
	if b.term != term || b.closed {
		b.mu.Unlock()
		return true
	}
	b.leading, b.records, b.doneIn = true, records, map[string]map[int]bool{}
	b.mu.Unlock()
	b.push()
	if b.rt.cd != nil {
		go func() {
			t := time.NewTicker(coordinatorPush)
			defer t.Stop()
			for range t.C {
				b.mu.Lock()
				on := b.leading && b.term == term && !b.closed
				b.mu.Unlock()
				if !on {
					return
				}
				b.push()
			}
		}()
	}
	return true
}

// unlead: this node no longer hosts broadcastsPartition. Its runners go on
// until the next coordinator says otherwise.
func (b *broadcasts) unlead() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.term++
	b.leading, b.records, b.doneIn = false, nil, nil
}

// coordinatingLocked refuses when this node does not coordinate (yet).
func (b *broadcasts) coordinatingLocked() error {
	if b.closed {
		return unavailable("shutting down")
	}
	if !b.leading {
		return unavailable("the broadcasts' records are loading or moving to another node; send again")
	}
	return nil
}

// push tells every worker (this node first) the active broadcasts.
func (b *broadcasts) push() {
	b.pushMu.Lock()
	defer b.pushMu.Unlock()
	b.mu.Lock()
	if !b.leading {
		b.mu.Unlock()
		return
	}
	active := make([]activeBroadcast, 0, BroadcastsRunningMax)
	for _, r := range b.records {
		if a, ok := r.active(); ok {
			active = append(active, a)
		}
	}
	b.mu.Unlock()
	b.apply(active)
	if b.rt.cd != nil {
		body := bcastActiveBody{From: b.rt.cfg.Node, Active: active}
		for _, addr := range b.rt.cfg.Cluster.Peers() {
			b.rt.tell(addr, fwdBcastActive, body)
		}
	}
}

// partsDone records partitions a worker found done in a broadcast's phase;
// when every partition is, the phase is over: the next state is recorded
// and pushed.
func (b *broadcasts) partsDone(id, phase string, parts []int) {
	b.mu.Lock()
	r, ok := b.records[id]
	if !b.leading || !ok {
		b.mu.Unlock()
		return
	}
	if a, active := r.active(); !active || a.phase() != phase {
		b.mu.Unlock()
		return
	}
	set := b.doneIn[id]
	if set == nil {
		set = map[int]bool{}
		b.doneIn[id] = set
	}
	for _, p := range parts {
		if p >= 0 && p < len(b.rt.parts) {
			set[p] = true
		}
	}
	if len(set) < len(b.rt.parts) {
		b.mu.Unlock()
		return
	}
	next := *r
	if phase == phaseSend {
		next.State = BroadcastDone
	} else {
		next.ResolveDone = true
	}
	if err := b.saveLocked(context.Background(), &next, nil); err != nil {
		b.mu.Unlock()
		b.rt.cfg.Logger.Error("broadcast record not stored; the next report tries again", "broadcast", id, "err", err)
		return
	}
	*r = next
	delete(b.doneIn, id)
	b.mu.Unlock()
	b.push()
}

// Start records a broadcast and starts working through it; the plan is
// durable when it returns.
func (b *broadcasts) Start(ctx context.Context, req *journey.BroadcastRequest) (string, error) {
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
	if err := b.coordinatingLocked(); err != nil {
		b.mu.Unlock()
		return "", err
	}
	active := 0
	for _, r := range b.records {
		if _, ok := r.active(); ok {
			active++
		}
	}
	if active >= BroadcastsRunningMax {
		b.mu.Unlock()
		return "", fmt.Errorf("%w (%d)", ErrBroadcastsBusy, BroadcastsRunningMax)
	}
	if err := b.saveLocked(ctx, r, b.forgetLocked()); err != nil {
		b.mu.Unlock()
		return "", err
	}
	b.records[r.ID] = r
	b.mu.Unlock()
	b.push()
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
		if _, busy := r.active(); !busy && (oldest == nil || r.Created.Before(oldest.Created)) {
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

// Status is a broadcast's state and progress: the count of its marks on
// every partition, those hosted here counted here and, in a cluster, the
// others by the nodes hosting them. A partition no node counted (its
// leadership moving) makes the answer unavailable rather than short.
func (b *broadcasts) Status(ctx context.Context, id string) (BroadcastStatus, error) {
	b.mu.Lock()
	if err := b.coordinatingLocked(); err != nil {
		b.mu.Unlock()
		return BroadcastStatus{}, err
	}
	r, ok := b.records[id]
	var st BroadcastStatus
	if ok {
		st = BroadcastStatus{ID: id, State: r.State, Resolved: r.Resolve != nil}
	}
	b.mu.Unlock()
	if !ok {
		return st, ErrBroadcastNotFound
	}
	running := st.State == BroadcastRunning
	counted, err := b.localProgress(ctx, id, running)
	if err != nil {
		return st, err
	}
	if b.rt.cd != nil && len(counted) < len(b.rt.parts) {
		for p, part := range b.peersProgress(ctx, id, running) {
			if _, ok := counted[p]; !ok {
				counted[p] = part
			}
		}
	}
	if len(counted) < len(b.rt.parts) {
		return st, unavailable(fmt.Sprintf("%d of %d partitions counted (leaderships moving); send again", len(counted), len(b.rt.parts)))
	}
	st.BroadcastProgress = journey.NewBroadcastProgress()
	for _, part := range counted {
		st.Merge(part)
	}
	return st, nil
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
func (b *broadcasts) List(limit int) ([]BroadcastSummary, error) {
	b.mu.Lock()
	if err := b.coordinatingLocked(); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	out := make([]BroadcastSummary, 0, len(b.records))
	for _, r := range b.records {
		out = append(out, BroadcastSummary{ID: r.ID, State: r.State, Event: r.Event, Text: r.Text, Created: r.Created, Resolved: r.Resolve != nil})
	}
	b.mu.Unlock()
	slices.SortFunc(out, func(x, y BroadcastSummary) int { return y.Created.Compare(x.Created) })
	return out[:min(limit, len(out))], nil
}

// Cancel stops a running broadcast: the targets not yet asked are not.
func (b *broadcasts) Cancel(ctx context.Context, id string) error {
	b.mu.Lock()
	if err := b.coordinatingLocked(); err != nil {
		b.mu.Unlock()
		return err
	}
	r, ok := b.records[id]
	if !ok {
		b.mu.Unlock()
		return ErrBroadcastNotFound
	}
	if r.State != BroadcastRunning {
		b.mu.Unlock()
		return nil
	}
	next := *r
	next.State = BroadcastCancelled
	if err := b.saveLocked(ctx, &next, nil); err != nil {
		b.mu.Unlock()
		return err
	}
	*r = next
	b.mu.Unlock()
	b.push()
	return nil
}

// Resolve records a broadcast's resolve and sends it to every customer who
// accepted the callback. A broadcast still running stops sending first (the
// incident is over): it is done with the customers reached so far.
func (b *broadcasts) Resolve(ctx context.Context, id string, req *journey.ResolveRequest) error {
	b.mu.Lock()
	if err := b.coordinatingLocked(); err != nil {
		b.mu.Unlock()
		return err
	}
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
	delete(b.doneIn, id)
	b.mu.Unlock()
	b.push()
	return nil
}

func newBroadcastID() string {
	var r [10]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic("actors: crypto/rand: " + err.Error())
	}
	return "bc-" + hex.EncodeToString(r[:])
}
