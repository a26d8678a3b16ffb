package persistence

// The group-commit writer: one goroutine per DB that makes every write.
//
// Appends of every partition, identity claims and erasures wait in one
// bounded queue (Options.QueueLength; a full queue blocks the caller). The
// writer takes the first waiting request, then everything else already queued,
// up to Options.BatchAppendsMax requests or Options.BatchBytesMax bytes: that
// is a group. There is no linger: an idle writer commits a lone request at
// once, and what arrives while a group is being synced forms the next group.
// A group is ONE pebble.Batch committed with pebble.Sync. The writer applies
// it (memtable and WAL) and goes on to the next group; a completer goroutine
// waits for each group's sync, in order, and reports the outcome of each
// request in queue order, so a store's done callbacks run in the order of
// its Append calls. At most syncingMax groups are applied and not reported.
// An append's wait in the queue is throughline_store_queue_seconds; its
// group's apply and sync, throughline_store_sync_seconds.
//
// Per event the hot path writes one key, the event (a client's event whose
// id goes to a dedup block, AppendRequest.IDsInBlocks; else its dedup key
// too); a dedup block with an append that carries one (one a
// journey.DedupBlockIDs events of a busy customer); a segment key only the
// first time the writer sees its (type, hour, customer) (segmentsMax); and
// the request's due-work deletes and adds.
//
// Seq check: the writer knows each customer's last stored seq from a bounded
// map (lastSeqMax) keyed by a 128-bit hash of the customer (seqKey),
// reading the last event key on a miss; within a
// group, appends of one customer chain (the second's PrevSeq is the first's
// last seq). An append whose PrevSeq is not the last seq fails alone with
// ErrConflict; the rest of the group commits.
//
// Claims read the owner (the group's pending claims first), and claim when
// there is none. An erasure reads the customer's keys, so it is never part of
// a group: it commits its own synced batch after the group before it.
//
// A failed commit is fatal: Pebble may already show the batch to readers,
// so it can be neither acknowledged nor retried. The writer latches the
// engine failed; every request of the group, and every one queued or
// submitted later, fails with ErrUnavailable wrapping the cause.

import (
	"fmt"
	"hash/maphash"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

type writer struct {
	e    *pebbleEngine
	db   *pebble.DB
	opts *Options
	// lastSeq remembers customers' last stored seqs (and last segment
	// keys: seqMemo), once their append is in a group: a group that
	// fails to commit latches the engine failed, so nothing reads a memo
	// ahead of the store. At most lastSeqMax (Options.LastSeqsMax) plus a
	// group's appends: a group that finds it past lastSeqMax clears it
	// first (forgetMemos), and misses read the DB. Never within a group,
	// whose appends are not in the DB yet. segments are the segment
	// keys the writer knows it has written (segmentHash, ~32 B each), at
	// most segmentsMax (2x lastSeqMax, at least segmentsMin); past it the
	// set is cleared and keys are written again, which is harmless.
	lastSeq                 map[seqKey]seqMemo
	segments                map[segmentHash]struct{}
	lastSeqMax, segmentsMax int
	seeds                   [2]maphash.Seed
	carry                   *op // an erasure that ended the previous group
	// slots holds a token per group applied and not reported, at most
	// syncingMax; synced takes the groups to the completer; spare
	// gives reported groups back to collect (emptied), small ones only
	// (groupKeep): a group keeps the capacity of its largest commit, and
	// five large ones kept were 2.5 MB of bench memory's 1,000-customer
	// heap.
	slots         chan struct{}
	synced        chan *group
	spare         chan *group
	completerDone chan struct{}
	key, val      []byte // scratch for keys and small values: Batch.Set copies
	// sync is how the writer commits: pebble.Sync for the node's writer,
	// pebble.NoSync for a replicated partition's state machine, whose
	// entries are durable in the raft log first.
	sync *pebble.WriteOptions
}

// group is the requests of one commit and their pending effects.
type group struct {
	batch      *pebble.Batch
	ops        []op
	owners     []string
	errs       []error
	identities map[string]string // identity key -> owner, claimed in the group
	bytes      int
	events     int
	start      time.Time // applied
	applied    bool      // handed to Pebble (a large batch is empty after)
	err        error     // not applied, or the apply failed: every request fails
}

func newWriter(e *pebbleEngine) *writer {
	w := &writer{
		e:        e,
		db:       e.db,
		opts:     &e.opts,
		lastSeq:  make(map[seqKey]seqMemo),
		segments: make(map[segmentHash]struct{}),
		seeds:    [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		sync:     pebble.Sync,
	}
	return w.remembering(e.opts.LastSeqsMax)
}

// remembering sets how many customers' last seqs w remembers, and twice as
// many segment keys, at least segmentsMin.
func (w *writer) remembering(customers int) *writer {
	w.lastSeqMax, w.segmentsMax = customers, max(2*customers, segmentsMin)
	return w
}

// segmentsMin is the least number of segment keys a writer remembers (the
// fixed number before LastSeqsMax).
const segmentsMin = 1 << 20

// syncingMax bounds the groups applied and not yet reported: past it the
// writer waits before it collects, and what is queued meanwhile joins the
// next group. An append that waits for a slot waits for a sync before it
// is applied and then for the next sync: two of Pebble's syncs (each up to
// WALMinSyncInterval after the one before, then the fdatasync). With 4,
// during bench broadcast (a WAL sync every 2 ms then, 10 MB/s of WAL) an
// append's p99 wait for the writer was 12.8 ms (docs/benchmarking.md, stop
// 30); with 16 an append is applied at once unless sixteen groups wait. A
// group holds its batch until reported, so this bounds that memory too: at
// most syncingMax * Options.BatchBytesMax.
const syncingMax = 16

func (w *writer) run() {
	defer close(w.e.writerDone)
	w.slots = make(chan struct{}, syncingMax)
	w.synced = make(chan *group, syncingMax)
	w.spare = make(chan *group, syncingMax)
	w.completerDone = make(chan struct{})
	go w.complete()
	defer func() {
		close(w.synced)
		<-w.completerDone
	}()
	for {
		o, ok := w.next()
		if !ok {
			return
		}
		switch {
		case o.erase != nil:
			// An erasure reads the store and commits on its own, after the
			// groups before it, and not once a sync of theirs failed.
			w.drain()
			if w.e.latch.Err() != nil {
				o.complete("", w.unavailable())
			} else {
				o.complete("", w.erase(o.erase))
			}
		case w.e.latch.Err() != nil:
			w.drain() // the groups before it are reported first
			o.complete("", w.unavailable())
		default:
			// A slot first: while the pipeline is full, what is queued
			// meanwhile joins this group.
			w.slots <- struct{}{}
			w.commit(w.collect(o))
		}
	}
}

// next is the carried request or the next queued one (false: closed and empty).
func (w *writer) next() (op, bool) {
	if w.carry != nil {
		o := *w.carry
		w.carry = nil
		return o, true
	}
	o, ok := <-w.e.queue
	return o, ok
}

func (w *writer) newGroup() *group {
	w.forgetMemos()
	return &group{
		batch:      w.db.NewBatch(),
		identities: make(map[string]string),
	}
}

// forgetMemos clears the memos when they are lastSeqMax or more; a new
// group calls it, before its first append.
func (w *writer) forgetMemos() {
	if len(w.lastSeq) >= w.lastSeqMax {
		clear(w.lastSeq)
	}
}

// groupKeep is the most requests, customers and identities of a group
// kept for reuse. With one group kept (any size), the writer made a new
// group for most commits at a live load (several groups wait for their
// syncs at once): the groups, their maps and slices were a quarter of the
// bytes the server allocated per event at 5,000 events/s (docs/benchmarking.md,
// stop 36). Up to syncingMax kept of at most this size are
// a few hundred KB.
const groupKeep = 128

// small reports whether g is small enough to keep for reuse: a map keeps
// the room of the most entries it held, so a group that held more than
// groupKeep is let go.
func (g *group) small() bool {
	return cap(g.ops) <= groupKeep && len(g.identities) <= groupKeep
}

// emptied is a group for the node writer's next commit: a reported one,
// emptied, when there is one (a new group's slices and maps for every
// commit were a tenth of the bytes the writer allocated). Only collect
// reuses groups: a raft apply's results keep parts of theirs.
func (w *writer) emptied() *group {
	var g *group
	select {
	case g = <-w.spare:
	default:
		return w.newGroup()
	}
	w.forgetMemos()
	g.batch = w.db.NewBatch()
	return g
}

// empty readies a reported group for reuse: it keeps the room of its
// slices and maps and nothing they held. (A closed batch went back to
// Pebble's pool with its buffer, and the ops' append ops to appendOps: a
// kept group holding either kept them past collections.)
func (g *group) empty() {
	clear(g.ops)
	clear(g.owners)
	clear(g.errs)
	clear(g.identities)
	*g = group{ops: g.ops[:0], owners: g.owners[:0], errs: g.errs[:0], identities: g.identities}
}

// collect makes a group of first and what is already queued.
//
// The group's slices get room for what is queued now at once: grown by
// append from a new (or a kept, groupKeep) group's, a group of hundreds
// of ops copied them eight times and more (with 100,000 customers, where
// groups of 512 to 1,024 ops are common, the growth was ~2% of the
// server's CPU in bench ingest).
func (w *writer) collect(first op) *group {
	g := w.emptied()
	if n := min(len(w.e.queue)+1, w.opts.BatchAppendsMax); cap(g.ops) < n {
		g.ops = slices.Grow(g.ops, n)
		g.owners = slices.Grow(g.owners, n)
		g.errs = slices.Grow(g.errs, n)
	}
	w.add(g, first)
	for len(g.ops) < w.opts.BatchAppendsMax && g.bytes < w.opts.BatchBytesMax {
		select {
		case o, ok := <-w.e.queue:
			if !ok {
				return g
			}
			if o.erase != nil {
				carry := o // not &o, which put every op received here on the heap
				w.carry = &carry
				return g
			}
			w.add(g, o)
		default:
			return g
		}
	}
	return g
}

func (w *writer) add(g *group, o op) {
	var owner string
	var err error
	switch {
	case o.append != nil:
		if !o.append.queued.IsZero() {
			w.e.metrics.queueSeconds.Observe(time.Since(o.append.queued).Seconds())
		}
		err = w.addAppend(g, o.append)
	case o.claim != nil:
		owner, err = w.addClaim(g, o.claim)
	case o.records != nil:
		w.addRecords(g, o.records)
	case o.raft != nil:
		w.addRaft(g, o.raft)
	case o.snapshot != nil:
		s := o.snapshot
		w.key = appendSnapshotKey(w.key[:0], s.partition, s.customer)
		w.set(g.batch, w.key, encodeSnapshot(&Snapshot{Seq: s.seq, Data: s.data}))
		g.bytes += len(w.key) + len(s.data)
	}
	g.ops = append(g.ops, o)
	g.owners = append(g.owners, owner)
	g.errs = append(g.errs, err)
}

func (w *writer) addAppend(g *group, a *appendOp) error {
	if a.err != nil {
		return a.err
	}
	ck := w.seqKey(a.partition, a.customer)
	memo, err := w.storedMemo(ck, a.partition, a.customer)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if a.prevSeq != memo.seq {
		w.e.counters.conflicts.Add(1)
		return conflict(a.prevSeq, memo.seq)
	}
	b, p := g.batch, a.partition
	for i := range a.events {
		ev := &a.events[i]
		w.key = appendEventKey(w.key[:0], p, a.customer, ev.seq)
		w.set(b, w.key, ev.value)
		if ev.dedup {
			w.key = appendDedupKey(w.key[:0], p, a.customer, ev.id)
			w.val = appendDedup(w.val[:0], ev.seq, ev.recordedAt)
			w.set(b, w.key, w.val)
		}
		w.key = appendSegmentKey(w.key[:0], p, ev.eventType, hourOf(ev.recordedAt), a.customer)
		if h := w.segmentHash(w.key); h != memo.seg {
			if !w.segmentSeen(h) {
				w.val = appendTime(w.val[:0], ev.recordedAt)
				w.set(b, w.key, w.val)
			}
			memo.seg = h
		}
	}
	if len(a.block) > 0 {
		w.key = appendFilteredBlockKey(w.key[:0], p, a.customer, a.block)
		w.val = appendDedupBlock(w.val[:0], a.block)
		w.set(b, w.key, w.val)
	}
	// Deletes first: a request that deletes and adds one key keeps it.
	for _, d := range a.dueDelete {
		w.key = appendDueKey(w.key[:0], p, timeToNanos(d.At), d.Customer, d.Kind, d.Ref)
		must(b.Delete(w.key, nil))
	}
	for _, d := range a.dueAdd {
		w.key = appendDueKey(w.key[:0], p, timeToNanos(d.At), d.Customer, d.Kind, d.Ref)
		w.set(b, w.key, nil)
	}
	for _, m := range a.marks {
		w.key = appendMarkKey(w.key[:0], p, m.Broadcast, a.customer)
		w.set(b, w.key, m.Value)
	}
	memo.seq = a.lastSeq()
	w.lastSeq[ck] = memo
	g.events += len(a.events)
	g.bytes += a.size()
	return nil
}

func (w *writer) addRecords(g *group, r *recordsOp) {
	for _, k := range r.deletes {
		w.key = appendRecordKey(w.key[:0], r.partition, r.collection, k)
		must(g.batch.Delete(w.key, nil))
		g.bytes += len(w.key)
	}
	for _, rec := range r.puts {
		w.key = appendRecordKey(w.key[:0], r.partition, r.collection, rec.Key)
		w.set(g.batch, w.key, rec.Value)
		g.bytes += len(w.key) + len(rec.Value)
	}
}

func (w *writer) addRaft(g *group, r *raftOp) {
	if r.deleteLower != nil {
		must(g.batch.DeleteRange(r.deleteLower, r.deleteUpper, nil))
	}
	for _, kv := range r.sets {
		w.set(g.batch, kv.key, kv.value)
		g.bytes += len(kv.key) + len(kv.value)
	}
}

// set writes k, which may be w.key: Batch.Set copies it.
func (w *writer) set(b *pebble.Batch, k, v []byte) {
	must(b.Set(k, v, nil))
}

// seqKey is a customer's key in the writer's seq maps: a 128-bit hash of
// its partition and id, as the segment set's. A map keyed by the id string
// compared the id's bytes on every look-up, one more cache miss an append
// with 100,000 customers (~1% of the server's CPU in bench ingest).
type seqKey [2]uint64

func (w *writer) seqKey(partition int, customer string) seqKey {
	p := uint64(partition)
	return seqKey{maphash.String(w.seeds[0], customer) ^ p, maphash.String(w.seeds[1], customer) + p*0x9e3779b97f4a7c15}
}

// seqMemo is what the writer remembers of a customer: its last committed
// seq, and the hash of the segment key its last append wrote or found
// written (zero: none). A customer's run of events of one type within the
// hour finds its segment key in the memo and skips the segment set, a
// look-up that missed the CPU's caches with 100,000 customers (bench
// ingest: ~2% of the server's CPU).
type seqMemo struct {
	seq uint64
	seg segmentHash
}

// storedMemo is the customer's memo: from the map, or its last committed
// seq from the DB.
func (w *writer) storedMemo(ck seqKey, partition int, customer string) (seqMemo, error) {
	if m, ok := w.lastSeq[ck]; ok {
		return m, nil
	}
	w.e.counters.seqReads.Add(1)
	w.e.metrics.seqReads.Inc()
	s, err := readLastSeq(w.db, partition, customer)
	return seqMemo{seq: s}, err
}

func (w *writer) addClaim(g *group, c *claimOp) (string, error) {
	k := identityKey(c.partition, c.kind, c.value)
	owner, ok := g.identities[string(k)]
	if !ok {
		var err error
		if owner, err = readIdentity(w.db, k); err != nil {
			return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	if owner == "" {
		owner = c.customer
		w.set(g.batch, k, []byte(owner))
		g.identities[string(k)] = owner
		g.bytes += len(k) + len(owner)
	}
	return owner, nil
}

// commit applies the group's batch and hands it to the completer, which
// waits for its sync and reports every request's outcome in queue order.
// The writer does not wait for the sync: it builds and applies the next
// group meanwhile, and Pebble's WAL syncs what is queued together. (One
// group at a time, a group's requests waited for the previous group's
// sync and completions, then their own; under a broadcast's load that
// made the commit stage most of an ack's latency.) The WAL is written in
// order, so a group synced means every group before it is synced too.
func (w *writer) commit(g *group) {
	g.start = time.Now()
	switch {
	case w.e.latch.Err() != nil:
		// A sync failed since the group was collected: nothing more is
		// applied, so nothing more can become durable unreported.
		g.err = w.unavailable()
	case !g.batch.Empty():
		// Recorded now: Pebble empties a large batch as it applies it.
		g.applied = true
		err := recoverFatal(func() error { return w.db.ApplyNoSyncWait(g.batch, w.sync) })
		if err != nil {
			w.failed(err)
			g.err = w.unavailable()
		}
	}
	w.synced <- g // never blocks: the group holds a slot
}

// complete runs beside the writer: for each applied group, in order, it
// waits for the sync and reports the outcomes, then gives the group and its
// slot back.
func (w *writer) complete() {
	defer close(w.completerDone)
	for g := range w.synced {
		err := g.err
		// A batch Pebble never took, or took and synced, is closed; one
		// whose apply or sync failed is left to it.
		closeable := !g.applied
		if err == nil && g.applied {
			if serr := g.batch.SyncWait(); serr != nil {
				w.failed(serr)
			} else {
				closeable = true
				took := time.Since(g.start)
				w.e.counters.commit(g.events, took)
				w.e.metrics.commit(g.events, took)
			}
		}
		if err == nil && w.e.latch.Err() != nil {
			// A sync failed, this group's or one before it: nothing after
			// the failure is known durable.
			err = w.unavailable()
		}
		w.report(g, err)
		if closeable {
			_ = g.batch.Close()
		}
		<-w.slots
		if g.small() {
			g.empty()
			select {
			case w.spare <- g:
			default:
			}
		}
	}
}

// report completes the group's requests in queue order: each with its own
// outcome, or all with err.
func (w *writer) report(g *group, err error) {
	for i, o := range g.ops {
		if err != nil {
			o.complete("", err)
		} else {
			if o.append != nil && g.errs[i] == nil {
				w.e.counters.appends.Add(1)
			}
			o.complete(g.owners[i], g.errs[i])
		}
		if o.append != nil {
			o.append.recycle() // completed: nothing reads it again
		}
	}
}

// drain waits until every group handed to the completer is reported (it
// holds every slot once, then gives them back): an erasure reads and
// commits on its own, after the groups before it.
func (w *writer) drain() {
	for range syncingMax {
		w.slots <- struct{}{}
	}
	for range syncingMax {
		<-w.slots
	}
}

// commitGroup commits the group's batch, waiting for its sync, and counts
// it (a raft partition's state machine); the error is the latch's
// (ErrUnavailable).
func (w *writer) commitGroup(g *group) error {
	if !g.batch.Empty() {
		start := time.Now()
		if err := w.apply(g.batch); err != nil {
			return w.unavailable()
		}
		took := time.Since(start)
		w.e.counters.commit(g.events, took)
		w.e.metrics.commit(g.events, took)
	}
	_ = g.batch.Close()
	for i, o := range g.ops {
		if o.append != nil && g.errs[i] == nil {
			w.e.counters.appends.Add(1)
		}
	}
	return nil
}

// apply commits b durably. A failure latches the engine failed; the batch is
// then left to Pebble, which may still hold it.
func (w *writer) apply(b *pebble.Batch) error {
	err := recoverFatal(func() error { return w.db.Apply(b, w.sync) })
	if err != nil {
		w.failed(err)
	}
	return err
}

// failed latches the engine failed by a commit's error.
func (w *writer) failed(err error) {
	w.e.latch.fail(fmt.Errorf("persistence: commit failed: %w", err))
	w.e.log.Error("commit failed: store latched failed", "err", err)
}

func (w *writer) unavailable() error {
	return fmt.Errorf("%w: %w", ErrUnavailable, w.e.latch.Err())
}

// segmentHash is a segment key's 128-bit hash, for the segment set and the
// customers' memos.
type segmentHash [2]uint64

func (w *writer) segmentHash(k []byte) segmentHash {
	return segmentHash{maphash.Bytes(w.seeds[0], k), maphash.Bytes(w.seeds[1], k)}
}

// segmentSeen reports whether the writer knows the segment key of hash h
// written, and remembers it from now on.
func (w *writer) segmentSeen(h segmentHash) bool {
	if _, ok := w.segments[h]; ok {
		return true
	}
	if len(w.segments) >= w.segmentsMax {
		clear(w.segments)
	}
	w.segments[h] = struct{}{}
	return false
}

func (w *writer) forgetSegment(k []byte) {
	delete(w.segments, w.segmentHash(k))
}
