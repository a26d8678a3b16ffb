package persistence

// What both engines share: the requests their writer goroutine serializes
// (appends, identity claims, erasures), their validation, the gate that
// refuses work after Close, the failure latch and the counters behind Stats.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throughline/throughline/journey"
)

const (
	// DefaultPartitions is the partition count of a new store.
	DefaultPartitions = 64
	// AppendEventsMax is the most events one Append may carry; a longer
	// request fails with ErrInvalid.
	AppendEventsMax = 1024
	// defaultQueueLength bounds the requests waiting for an engine's writer.
	defaultQueueLength = 8192
)

var (
	errClosed      = fmt.Errorf("%w: closed", ErrUnavailable)
	errNilSnapshot = fmt.Errorf("%w: nil snapshot", ErrInvalid)
)

// op is one request to the writer: exactly one field is set.
type op struct {
	append   *appendOp
	claim    *claimOp
	erase    *eraseOp
	records  *recordsOp
	raft     *raftOp     // raft log and stable store writes (raft_logstore.go)
	snapshot *snapshotOp // replicated SaveSnapshot, applied by a state machine only
}

// raftOp is a write of a replicated partition's raft log or stable store:
// deletes of [lower, upper) first, then sets. It commits in the writer's
// synced group, so the fsyncs of every raft group on a node share batches.
type raftOp struct {
	deleteLower, deleteUpper []byte
	sets                     []keyValue
	reply                    chan error // buffered
}

type keyValue struct {
	key, value []byte
}

// snapshotOp is a customer snapshot carried in a raft entry.
type snapshotOp struct {
	partition int
	customer  string
	seq       uint64
	data      []byte
	reply     chan error // buffered; nil in a decoded entry
}

// recordsOp is a WriteRecords call.
type recordsOp struct {
	partition  int
	collection string
	puts       []Record
	deletes    []string
	reply      chan error // buffered
}

// appendOp is an AppendRequest validated and encoded on the caller's
// goroutine, so the writer only checks seqs and builds keys, and the caller
// may reuse its request as soon as Append returns.
type appendOp struct {
	partition int
	customer  string
	prevSeq   uint64
	events    []storedEvent
	dueAdd    []DueWork
	dueDelete []DueWork
	marks     []Mark
	block     []journey.DedupID // AppendRequest.DedupBlock
	done      func(error)
	// err, when set, is the request's validation error: the writer completes
	// it with err, in its turn, and stores nothing.
	err error
	// one holds events when there is one (most appends): no slice apart;
	// many, when there are more, kept by a recycled op.
	one  [1]storedEvent
	many []storedEvent
	// values holds the events' encodings, one after another: each
	// event's value is a slice of it. A recycled op keeps it (up to
	// appendOpKeepBytes), so an append allocates no buffer of its own.
	values []byte
	// pooled: the op came from appendOps and goes back once completed.
	pooled bool
	// queued is when submit queued it (throughline_store_queue_seconds).
	queued time.Time
}

// appendOps recycles the node writer's append ops (core.appendTo's): an
// op (~300 bytes, and the events of a target's two-event append apart) for
// every append was ~15% of the bytes the server allocated per ingested
// event (docs/benchmarking.md, stop 36). The writer gives an op back once
// it has completed it (writer.report): nothing holds it after its done.
var appendOps = sync.Pool{New: func() any { return new(appendOp) }}

// appendOpKeepEvents is the most events a recycled op's many keeps room
// for, and appendOpKeepBytes the most bytes of encodings its values does.
const (
	appendOpKeepEvents = 8
	appendOpKeepBytes  = 4 << 10
)

// recycle gives a completed op back to appendOps when it came from there.
func (a *appendOp) recycle() {
	if a.pooled {
		a.reset()
		appendOps.Put(a)
	}
}

// reset empties a, keeping room for up to appendOpKeepEvents events and
// appendOpKeepBytes of their encodings.
func (a *appendOp) reset() {
	many, values := a.many, a.values
	if cap(many) > appendOpKeepEvents {
		many = nil
	}
	if cap(values) > appendOpKeepBytes {
		values = nil
	}
	clear(many[:cap(many)])
	clear(values) // nothing of a customer's events stays in the pool
	*a = appendOp{many: many[:0], values: values[:0]}
}

type storedEvent struct {
	id string
	// dedup: the id is an idempotency key (a client's event, actor
	// customer) and gets a dedup key; the runtime's own events do not.
	// inBlock: it is such a key, kept in a dedup block later instead
	// (AppendRequest.IDsInBlocks).
	dedup, inBlock bool
	eventType      string
	seq            uint64
	recordedAt     time.Time
	value          []byte // a slice of the op's values
}

// lastSeq is the seq the customer's stored events end at once op is stored.
func (a *appendOp) lastSeq() uint64 {
	return a.prevSeq + uint64(len(a.events))
}

// size approximates the bytes op adds to a batch.
func (a *appendOp) size() int {
	n := 64 * (len(a.dueAdd) + len(a.dueDelete) + len(a.marks))
	for i := range a.events {
		n += len(a.events[i].value) + 2*(len(a.customer)+len(a.events[i].id)) + 64
	}
	n += 24 * len(a.block)
	return n
}

type claimOp struct {
	partition int // the identity's
	kind      string
	value     string
	customer  string
	reply     chan claimReply // buffered: the writer never blocks on it
}

type claimReply struct {
	owner string
	err   error
}

type eraseOp struct {
	partition  int
	customer   string
	identities []IdentityKey
	// identitiesOnly: release the identities that still belong to the
	// customer and touch nothing else (a replicated erasure's identities
	// of other partitions, proposed to their groups).
	identitiesOnly bool
	// idTombstones: also write each erased id's id-only tombstone in its
	// own partition (erasedIDKey), in the same batch. The Pebble and memory
	// engines do; a replicated partition writes only its own keys.
	idTombstones bool
	reply        chan error // buffered
}

func prepareAppend(p int, req *AppendRequest, done func(error)) *appendOp {
	return prepareAppendInto(new(appendOp), p, req, done)
}

// prepareAppendInto is prepareAppend into a, an empty op (new, or from
// appendOps).
func prepareAppendInto(a *appendOp, p int, req *AppendRequest, done func(error)) *appendOp {
	if done == nil {
		panic("persistence: Append with a nil done")
	}
	a.partition, a.done = p, done
	if req == nil {
		a.err = fmt.Errorf("%w: nil append request", ErrInvalid)
		return a
	}
	a.customer, a.prevSeq = req.Customer, req.PrevSeq
	if a.err = validateAppend(req); a.err != nil {
		return a
	}
	switch n := len(req.Events); {
	case n == 1:
		a.events = a.one[:]
	case n <= cap(a.many):
		a.events = a.many[:n]
	default:
		a.many = make([]storedEvent, n)
		a.events = a.many
	}
	// Room for every encoding first, so that the values' array does not
	// move under the slices taken of it (EventRecordSize is at least an
	// encoding's size; were it not, a value would keep the array before).
	size := 0
	for i := range req.Events {
		size += journey.EventRecordSize(&req.Events[i])
	}
	a.values = slices.Grow(a.values[:0], size)
	for i := range req.Events {
		ev := &req.Events[i]
		from := len(a.values)
		var err error
		if a.values, err = appendEncodedEvent(a.values, ev); err != nil {
			a.err = fmt.Errorf("%w: %w", ErrInvalid, err)
			return a
		}
		client := ev.Actor == journey.ActorCustomer
		a.events[i] = storedEvent{
			id: ev.ID, dedup: client && !req.IDsInBlocks, inBlock: client && req.IDsInBlocks,
			eventType: ev.Type, seq: ev.Seq, recordedAt: ev.RecordedAt, value: a.values[from:len(a.values):len(a.values)],
		}
	}
	if len(req.DedupBlock) > 0 {
		a.block = slices.Clone(req.DedupBlock)
	}
	a.dueAdd = normalizeDue(req.DueAdd)
	a.dueDelete = normalizeDue(req.DueDelete)
	if len(req.Marks) > 0 {
		a.marks = make([]Mark, len(req.Marks))
		for i, m := range req.Marks {
			a.marks[i] = Mark{Broadcast: m.Broadcast, Value: append([]byte(nil), m.Value...)}
		}
	}
	return a
}

func validateAppend(req *AppendRequest) error {
	if req.Customer == "" {
		return fmt.Errorf("%w: append without a customer", ErrInvalid)
	}
	if len(req.Events) > AppendEventsMax {
		return fmt.Errorf("%w: append of %d events (max %d)", ErrInvalid, len(req.Events), AppendEventsMax)
	}
	if err := checkParts(req.Customer); err != nil {
		return err
	}
	for i := range req.Events {
		if err := validateEvent(req, i); err != nil {
			return err
		}
	}
	if err := validateDedupBlock(req); err != nil {
		return err
	}
	for _, due := range [][]DueWork{req.DueAdd, req.DueDelete} {
		for _, w := range due {
			if w.Customer == "" {
				return fmt.Errorf("%w: due work without a customer", ErrInvalid)
			}
			if err := checkParts(w.Customer, w.Kind, w.Ref); err != nil {
				return err
			}
		}
	}
	for _, m := range req.Marks {
		if m.Broadcast == "" {
			return fmt.Errorf("%w: a mark without a broadcast", ErrInvalid)
		}
		if err := checkParts(m.Broadcast); err != nil {
			return err
		}
	}
	return nil
}

func validateEvent(req *AppendRequest, i int) error {
	ev := &req.Events[i]
	switch {
	case ev.ID == "":
		return fmt.Errorf("%w: event %d without an id", ErrInvalid, i)
	case ev.Seq != req.PrevSeq+1+uint64(i):
		return fmt.Errorf("%w: event %d has seq %d after prev seq %d", ErrInvalid, i, ev.Seq, req.PrevSeq)
	case ev.Customer != req.Customer:
		return fmt.Errorf("%w: event %d names another customer than its append", ErrInvalid, i)
	}
	return checkParts(ev.ID, ev.Type)
}

// normalizeDue copies due work with At as stored (unix nanoseconds), so both
// engines hand back the same times.
func normalizeDue(in []DueWork) []DueWork {
	if len(in) == 0 {
		return nil
	}
	out := make([]DueWork, len(in))
	for i, w := range in {
		w.At = nanosToTime(timeToNanos(w.At))
		out[i] = w
	}
	return out
}

func checkIdentity(p, partitions int, kind, value string) error {
	if kind == "" || value == "" {
		return fmt.Errorf("%w: identity without a kind or value", ErrInvalid)
	}
	if err := checkParts(kind, value); err != nil {
		return err
	}
	if owner := identityPartition(kind, value, partitions); owner != p {
		return fmt.Errorf("%w: identity of partition %d asked of partition %d", ErrInvalid, owner, p)
	}
	return nil
}

// core is the front half of an engine: callers enter through the gate and
// hand ops to the writer through the bounded queue.
type core struct {
	partitions int
	// queue holds the ops waiting for the writer, at most its capacity
	// (Options.QueueLength). When it is full, Append, ClaimIdentity and Erase
	// block their caller until there is room or their ctx is done: admission
	// upstream keeps it from filling.
	queue    chan op
	gate     gate
	latch    latch
	counters counters
}

func newCore(partitions, queueLength int) core {
	return core{partitions: partitions, queue: make(chan op, queueLength), latch: newLatch()}
}

func (c *core) checkPartition(p int) {
	if p < 0 || p >= c.partitions {
		panic(fmt.Sprintf("persistence: partition %d of %d", p, c.partitions))
	}
}

// begin admits a read or a write: it fails once the engine is closed or
// failed. Every successful begin is paired with end.
func (c *core) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.gate.enter(); err != nil {
		return err
	}
	if err := c.latch.Err(); err != nil {
		c.gate.leave()
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

func (c *core) end() { c.gate.leave() }

// submit queues o for the writer. Ops queued before a failure are failed by
// the writer, in order; submit itself fails only when the engine is closed or
// ctx is done before there is room.
func (c *core) submit(ctx context.Context, o op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.gate.enter(); err != nil {
		return err
	}
	defer c.gate.leave()
	if o.append != nil {
		o.append.queued = time.Now()
	}
	select {
	case c.queue <- o:
		return nil
	default:
	}
	select {
	case c.queue <- o:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("persistence: not queued: %w", ctx.Err())
	}
}

// appendTo is Append: an append that cannot be queued (closed, ctx done while
// the queue is full) is completed at once, on the caller's goroutine, before
// Append returns; every queued one is completed by the writer in queue order.
func (c *core) appendTo(ctx context.Context, p int, req *AppendRequest, done func(error)) {
	c.checkPartition(p)
	a := prepareAppendInto(appendOps.Get().(*appendOp), p, req, done)
	a.pooled = true
	if err := c.submit(ctx, op{append: a}); err != nil {
		done(err)
	}
}

func (c *core) claim(ctx context.Context, p int, kind, value, customer string) (string, error) {
	c.checkPartition(p)
	o, err := newClaimOp(p, c.partitions, kind, value, customer)
	if err != nil {
		return "", err
	}
	if err := c.submit(ctx, op{claim: o}); err != nil {
		return "", err
	}
	return o.wait(ctx)
}

// newClaimOp validates a ClaimIdentity of partition p's store.
func newClaimOp(p, partitions int, kind, value, customer string) (*claimOp, error) {
	if err := checkIdentity(p, partitions, kind, value); err != nil {
		return nil, err
	}
	if customer == "" {
		return nil, fmt.Errorf("%w: claim without a customer", ErrInvalid)
	}
	if err := checkParts(customer); err != nil {
		return nil, err
	}
	return &claimOp{partition: p, kind: kind, value: value, customer: customer, reply: make(chan claimReply, 1)}, nil
}

func (o *claimOp) wait(ctx context.Context) (string, error) {
	select {
	case r := <-o.reply:
		return r.owner, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("persistence: claim outcome unknown: %w", ctx.Err())
	}
}

func (c *core) erase(ctx context.Context, p int, customer string, identities []IdentityKey) error {
	c.checkPartition(p)
	o, err := newEraseOp(p, customer, identities)
	if err != nil {
		return err
	}
	o.idTombstones = true
	if err := c.submit(ctx, op{erase: o}); err != nil {
		return err
	}
	return waitReply(ctx, o.reply, "erase")
}

// newEraseOp validates an Erase of partition p's store.
func newEraseOp(p int, customer string, identities []IdentityKey) (*eraseOp, error) {
	if customer == "" {
		return nil, fmt.Errorf("%w: erase without a customer", ErrInvalid)
	}
	if err := checkParts(customer); err != nil {
		return nil, err
	}
	for _, id := range identities {
		if err := checkParts(id.Kind, id.Value); err != nil {
			return nil, err
		}
	}
	return &eraseOp{partition: p, customer: customer, identities: append([]IdentityKey(nil), identities...), reply: make(chan error, 1)}, nil
}

// waitReply waits for a blocking request's outcome, or ctx.
func waitReply(ctx context.Context, reply chan error, what string) error {
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("persistence: %s outcome unknown: %w", what, ctx.Err())
	}
}

func (c *core) writeRecords(ctx context.Context, p int, collection string, puts []Record, deletes []string) error {
	c.checkPartition(p)
	o, err := newRecordsOp(p, collection, puts, deletes)
	if err != nil {
		return err
	}
	if err := c.submit(ctx, op{records: o}); err != nil {
		return err
	}
	return waitReply(ctx, o.reply, "records")
}

// newRecordsOp validates a WriteRecords of partition p's store and copies
// its arguments.
func newRecordsOp(p int, collection string, puts []Record, deletes []string) (*recordsOp, error) {
	if collection == "" {
		return nil, fmt.Errorf("%w: records without a collection", ErrInvalid)
	}
	if err := checkParts(collection); err != nil {
		return nil, err
	}
	o := &recordsOp{partition: p, collection: collection, reply: make(chan error, 1)}
	for _, r := range puts {
		if err := checkParts(r.Key); err != nil {
			return nil, err
		}
		o.puts = append(o.puts, Record{Key: r.Key, Value: append([]byte(nil), r.Value...)})
	}
	for _, k := range deletes {
		if err := checkParts(k); err != nil {
			return nil, err
		}
	}
	o.deletes = append([]string(nil), deletes...)
	return o, nil
}

// complete reports an op's outcome to its caller (claims: owner).
func (o op) complete(owner string, err error) {
	switch {
	case o.append != nil:
		o.append.done(err)
	case o.claim != nil:
		o.claim.reply <- claimReply{owner: owner, err: err}
	case o.erase != nil:
		o.erase.reply <- err
	case o.records != nil:
		o.records.reply <- err
	case o.raft != nil:
		o.raft.reply <- err
	case o.snapshot != nil:
		o.snapshot.reply <- err
	}
}

// gate admits callers until it is closed, then waits for those inside.
type gate struct {
	mu     sync.Mutex
	closed bool
	inside sync.WaitGroup
}

func (g *gate) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errClosed
	}
	g.inside.Add(1)
	return nil
}

func (g *gate) leave() { g.inside.Done() }

// close refuses new callers and waits for those inside to leave.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.inside.Wait()
}

// latch is the engine's failed state: set once, never cleared.
type latch struct {
	once   sync.Once
	failed chan struct{}
	err    atomic.Pointer[error]
}

func newLatch() latch { return latch{failed: make(chan struct{})} }

func (l *latch) fail(cause error) {
	l.once.Do(func() {
		l.err.Store(&cause)
		close(l.failed)
	})
}

func (l *latch) Err() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Stats are an engine's writer counters since open.
type Stats struct {
	Commits        uint64        // synced batches committed
	Appends        uint64        // appends acknowledged durable
	Events         uint64        // events in those appends
	Conflicts      uint64        // appends refused with ErrConflict
	SeqReads       uint64        // last seqs the writer read from Pebble, not remembering them (Options.LastSeqsMax)
	BatchEventsMax uint64        // most events in one commit
	SyncTotal      time.Duration // summed commit+sync latency of the commits
	SyncMax        time.Duration // longest commit+sync
	WriteStalls    uint64        // Pebble write stalls begun
	WriteStallTime time.Duration // time spent in ended write stalls
	QueueLength    int           // requests waiting for the writer now
	L0Sublevels    int           // Pebble: L0 read amplification now (0 for memory)
	L0Files        int64         // Pebble: files in L0 now
}

type counters struct {
	commits, appends, events, conflicts, batchEventsMax atomic.Uint64
	seqReads                                            atomic.Uint64
	syncNanos, syncMaxNanos                             atomic.Int64
	stalls                                              atomic.Uint64
	stallNanos, stallBegin                              atomic.Int64
	flushes                                             atomic.Int64 // memtable flushes running
}

// commit counts one committed batch of events; acknowledged appends are
// counted apart (an append of no events may need no commit).
func (c *counters) commit(events int, took time.Duration) {
	c.commits.Add(1)
	c.events.Add(uint64(events))
	c.syncNanos.Add(int64(took))
	for cur := c.batchEventsMax.Load(); uint64(events) > cur; cur = c.batchEventsMax.Load() {
		if c.batchEventsMax.CompareAndSwap(cur, uint64(events)) {
			break
		}
	}
	for cur := c.syncMaxNanos.Load(); int64(took) > cur; cur = c.syncMaxNanos.Load() {
		if c.syncMaxNanos.CompareAndSwap(cur, int64(took)) {
			break
		}
	}
}

func (c *counters) stats(queued int) Stats {
	return Stats{
		Commits:        c.commits.Load(),
		Appends:        c.appends.Load(),
		Events:         c.events.Load(),
		Conflicts:      c.conflicts.Load(),
		SeqReads:       c.seqReads.Load(),
		BatchEventsMax: c.batchEventsMax.Load(),
		SyncTotal:      time.Duration(c.syncNanos.Load()),
		SyncMax:        time.Duration(c.syncMaxNanos.Load()),
		WriteStalls:    c.stalls.Load(),
		WriteStallTime: time.Duration(c.stallNanos.Load()),
		QueueLength:    queued,
	}
}

// conflict is the error of an append whose PrevSeq is not the stored last seq.
func conflict(prev, last uint64) error {
	return fmt.Errorf("%w: append after seq %d, customer's last stored seq is %d", ErrConflict, prev, last)
}

// limitReached reports that a read of up to limit events (limit <= 0: all)
// has enough.
func limitReached(events []journey.Event, limit int) bool {
	return limit > 0 && len(events) >= limit
}

// validateDedupBlock: a block's ids are of events stored before this
// append, in seq order, at most DedupBlockMax.
func validateDedupBlock(req *AppendRequest) error {
	ids := req.DedupBlock
	if len(ids) > DedupBlockMax {
		return fmt.Errorf("%w: dedup block of %d ids (max %d)", ErrInvalid, len(ids), DedupBlockMax)
	}
	for i, id := range ids {
		if id.Seq == 0 || id.Seq > req.PrevSeq || (i > 0 && id.Seq <= ids[i-1].Seq) {
			return fmt.Errorf("%w: dedup block id of seq %d (stored up to %d, in seq order)", ErrInvalid, id.Seq, req.PrevSeq)
		}
	}
	return nil
}
