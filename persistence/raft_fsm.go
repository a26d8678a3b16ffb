package persistence

// The state machine of a replicated partition: raft hands it committed
// entries (raft_command.go) in order, on raft's FSM goroutine. Consecutive
// entries are applied as one Pebble batch that also records the last applied
// raft index (appliedKey), so an entry at or below the recorded index, seen
// again after a restart, is skipped: applying is idempotent by index. An
// erasure entry commits its own batch (it reads the keys the entries before
// it wrote). The state machine's batches are not synced: the raft log is
// durable first, and a lost tail is applied again from it. Before a snapshot
// is taken the WAL is synced, so the state is never behind a snapshot that
// lets raft compact its log.
//
// It reuses the node writer's code (seq checks, claims, segment and due-work
// keys, erasure) through a writer of its own, used only on the FSM goroutine.
//
// The snapshot streams the partition's state range (keys.go: fsmLower to
// partitionEnd, everything but the raft log and stable keys) from a Pebble
// snapshot taken at the applied index; Restore replaces that range in one
// synced batch.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// snapshotFrameMax bounds one key or value read from a snapshot stream.
const snapshotFrameMax = 64 << 20

// partitionFSM is partition p's raft.FSM.
type partitionFSM struct {
	p       int
	e       *pebbleEngine
	w       *writer
	applied atomic.Uint64 // last raft index whose effects are stored
}

// applyResult is one entry's outcome on the FSM that applied it: per op,
// the claim's owner and the op's error; err, when set, failed every op.
type applyResult struct {
	owners []string
	errs   []error
	err    error
}

var _ raft.BatchingFSM = (*partitionFSM)(nil)

func newPartitionFSM(e *pebbleEngine, p int) (*partitionFSM, error) {
	w := newWriter(e).remembering(min(max(4*e.opts.LastSeqsMax/e.opts.Partitions, lastSeqsPartitionMin), LastSeqsMaxMax))
	w.sync = pebble.NoSync
	f := &partitionFSM{p: p, e: e, w: w}
	err := getValue(e.db, appliedKey(p), func(v []byte) error {
		if len(v) < 8 {
			return fmt.Errorf("persistence: applied index of partition %d: %d bytes", p, len(v))
		}
		f.applied.Store(binary.BigEndian.Uint64(v))
		return nil
	})
	return f, err
}

func (f *partitionFSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// entrySpan is where an entry's ops sit in the pending group.
type entrySpan struct{ i, from, to int }

func (f *partitionFSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	var g *group
	var spans []entrySpan
	var last uint64
	flush := func() {
		if g == nil {
			return
		}
		must(g.batch.Set(appliedKey(f.p), encodeApplied(last), nil))
		err := f.w.commitGroup(g)
		for _, s := range spans {
			out[s.i] = &applyResult{owners: g.owners[s.from:s.to], errs: g.errs[s.from:s.to], err: err}
		}
		if err == nil {
			f.applied.Store(last)
		}
		g, spans = nil, spans[:0]
	}
	for i, l := range logs {
		if l.Type != raft.LogCommand || l.Index <= f.applied.Load() {
			continue
		}
		ops, err := decodeCommand(f.p, l.Data)
		if err != nil {
			// Only the leader encodes commands, with this code: a broken invariant.
			panic(fmt.Sprintf("persistence: partition %d, raft index %d: %v", f.p, l.Index, err))
		}
		if len(ops) == 1 && ops[0].erase != nil {
			flush()
			out[i] = f.applyErase(ops[0].erase, l.Index)
			last = l.Index
			continue
		}
		if g == nil {
			g = f.w.newGroup()
		}
		from := len(g.ops)
		for _, o := range ops {
			f.w.add(g, o)
		}
		spans = append(spans, entrySpan{i, from, len(g.ops)})
		last = l.Index
	}
	flush()
	return out
}

func (f *partitionFSM) applyErase(o *eraseOp, index uint64) *applyResult {
	b, err := f.w.eraseBatch(o)
	if err != nil {
		// A read failed: the replica cannot know the erasure's effects.
		f.e.latch.fail(err)
		return &applyResult{err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	must(b.Set(appliedKey(f.p), encodeApplied(index), nil))
	if err := f.w.apply(b); err != nil {
		return &applyResult{err: f.w.unavailable()}
	}
	_ = b.Close()
	f.applied.Store(index)
	return &applyResult{errs: []error{nil}, owners: []string{""}}
}

func encodeApplied(index uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, index)
}

// Snapshot syncs the WAL (the state machine's batches are not synced, and
// raft may compact its log once the snapshot is stored), then pins a Pebble
// snapshot at the applied index for Persist to stream.
func (f *partitionFSM) Snapshot() (raft.FSMSnapshot, error) {
	err := recoverFatal(func() error { return f.e.db.LogData(nil, pebble.Sync) })
	if err != nil {
		return nil, fmt.Errorf("persistence: sync before snapshot: %w", err)
	}
	return &fsmSnapshot{p: f.p, view: f.e.db.NewSnapshot()}, nil
}

// Restore replaces the partition's state with the snapshot's, in one synced
// batch (its memory is the partition's size), and forgets what the writer
// knew of the old state.
func (f *partitionFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b := f.e.db.NewBatch()
	defer b.Close()
	must(b.DeleteRange(fsmLower(f.p), partitionEnd(f.p), nil))
	lower, upper := fsmLower(f.p), partitionEnd(f.p)
	var applied uint64
	r := bufio.NewReaderSize(rc, 1<<16)
	for {
		k, err := readFrame(r)
		if err != nil {
			return fmt.Errorf("persistence: restore partition %d: %w", f.p, err)
		}
		if len(k) == 0 {
			break
		}
		v, err := readFrame(r)
		if err != nil {
			return fmt.Errorf("persistence: restore partition %d: %w", f.p, err)
		}
		if string(k) < string(lower) || string(k) >= string(upper) {
			return fmt.Errorf("persistence: restore partition %d: key %x outside its state", f.p, k)
		}
		if string(k) == string(appliedKey(f.p)) && len(v) >= 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		must(b.Set(k, v, nil))
	}
	if err := recoverFatal(func() error { return f.e.db.Apply(b, pebble.Sync) }); err != nil {
		f.e.latch.fail(err)
		return fmt.Errorf("%w: restore partition %d: %w", ErrUnavailable, f.p, err)
	}
	clear(f.w.lastSeq)
	clear(f.w.segments)
	f.applied.Store(applied)
	return nil
}

// readFrame reads a uvarint length and that many bytes; length 0 is the end
// of the stream.
func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > snapshotFrameMax {
		return nil, fmt.Errorf("a frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

// fsmSnapshot streams a partition's state range from a Pebble snapshot:
// frames of (key, value), then a zero length.
type fsmSnapshot struct {
	p    int
	view *pebble.Snapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := s.write(sink)
	if err != nil {
		return errors.Join(err, sink.Cancel())
	}
	return sink.Close()
}

func (s *fsmSnapshot) write(sink io.Writer) error {
	w := bufio.NewWriterSize(sink, 1<<16)
	var frame []byte
	err := scan(s.view, fsmLower(s.p), partitionEnd(s.p), func(k, v []byte) error {
		frame = appendBytes(appendBytes(frame[:0], k), v)
		_, err := w.Write(frame)
		return err
	})
	if err != nil {
		return fmt.Errorf("persistence: snapshot partition %d: %w", s.p, err)
	}
	if err := w.WriteByte(0); err != nil {
		return err
	}
	return w.Flush()
}

func (s *fsmSnapshot) Release() { _ = s.view.Close() }
