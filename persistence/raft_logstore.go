package persistence

// The raft log store and stable store of a replicated partition, in the
// node's one Pebble under the partition's key prefix (keys.go: p 'L' index,
// p 'S' name). Reads go straight to Pebble; writes go through the node's
// group-commit writer as raftOps, so the fsyncs of every raft group on the
// node (and of the node's own appends) share batches. StoreLogs, DeleteRange
// and Set return once durable.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// errStableNotFound is the stable store's "no such key": raft compares the
// text, "not found", as its own stores answer it.
var errStableNotFound = errors.New("not found")

// raftLogVersion is the first byte of an encoded raft log entry.
const raftLogVersion = 1

// raftStore is partition p's raft.LogStore and raft.StableStore.
type raftStore struct {
	e *pebbleEngine
	p int
}

var (
	_ raft.LogStore    = (*raftStore)(nil)
	_ raft.StableStore = (*raftStore)(nil)
)

func (s *raftStore) FirstIndex() (uint64, error) { return s.edgeIndex(true) }
func (s *raftStore) LastIndex() (uint64, error)  { return s.edgeIndex(false) }

// edgeIndex is the first or last stored index, 0 when the log is empty.
func (s *raftStore) edgeIndex(first bool) (uint64, error) {
	if err := s.e.begin(context.Background()); err != nil {
		return 0, err
	}
	defer s.e.end()
	prefix := raftLogPrefix(s.p)
	it, err := s.e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("persistence: raft log index: %w", err)
	}
	ok := it.Last()
	if first {
		ok = it.First()
	}
	var index uint64
	if ok {
		_, index, err = decodeRaftLogKey(it.Key())
	}
	if err := errors.Join(err, it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("persistence: raft log index: %w", err)
	}
	return index, nil
}

func (s *raftStore) GetLog(index uint64, log *raft.Log) error {
	if err := s.e.begin(context.Background()); err != nil {
		return err
	}
	defer s.e.end()
	found := false
	err := getValue(s.e.db, raftLogKey(s.p, index), func(v []byte) error {
		found = true
		return decodeRaftLog(index, v, log)
	})
	if err != nil {
		return err
	}
	if !found {
		return raft.ErrLogNotFound
	}
	return nil
}

func (s *raftStore) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

func (s *raftStore) StoreLogs(logs []*raft.Log) error {
	o := &raftOp{sets: make([]keyValue, len(logs)), reply: make(chan error, 1)}
	for i, l := range logs {
		o.sets[i] = keyValue{raftLogKey(s.p, l.Index), encodeRaftLog(l)}
	}
	return s.write(o)
}

// DeleteRange deletes the entries from min to max, inclusive.
func (s *raftStore) DeleteRange(min, max uint64) error {
	upper := prefixEnd(raftLogPrefix(s.p))
	if max < ^uint64(0) {
		upper = raftLogKey(s.p, max+1)
	}
	return s.write(&raftOp{deleteLower: raftLogKey(s.p, min), deleteUpper: upper, reply: make(chan error, 1)})
}

func (s *raftStore) Set(key, val []byte) error {
	o := &raftOp{sets: []keyValue{{raftStableKey(s.p, key), append([]byte(nil), val...)}}, reply: make(chan error, 1)}
	return s.write(o)
}

func (s *raftStore) Get(key []byte) ([]byte, error) {
	if err := s.e.begin(context.Background()); err != nil {
		return nil, err
	}
	defer s.e.end()
	var out []byte
	found := false
	err := getValue(s.e.db, raftStableKey(s.p, key), func(v []byte) error {
		found, out = true, append([]byte{}, v...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errStableNotFound
	}
	return out, nil
}

func (s *raftStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

func (s *raftStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("persistence: raft stable value %q of %d bytes", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// write queues o for the node's writer and waits until it is durable. Raft
// has no ctx here; the writer completes every queued op, even at Close.
func (s *raftStore) write(o *raftOp) error {
	if err := s.e.submit(context.Background(), op{raft: o}); err != nil {
		return err
	}
	return <-o.reply
}

// encodeRaftLog is version | type | term | appended_at (unix ns) | data |
// extensions, numbers as uvarints, byte strings length-prefixed. The index
// is the key's.
func encodeRaftLog(l *raft.Log) []byte {
	b := make([]byte, 0, 24+len(l.Data)+len(l.Extensions))
	b = append(b, raftLogVersion, byte(l.Type))
	b = binary.AppendUvarint(b, l.Term)
	var at uint64
	if !l.AppendedAt.IsZero() {
		at = timeToNanos(l.AppendedAt)
	}
	b = binary.AppendUvarint(b, at)
	b = appendBytes(b, l.Data)
	return appendBytes(b, l.Extensions)
}

func decodeRaftLog(index uint64, v []byte, l *raft.Log) error {
	if len(v) < 2 || v[0] != raftLogVersion {
		return fmt.Errorf("persistence: raft log entry %d: bad header", index)
	}
	d := byteDecoder{b: v[2:]}
	l.Index, l.Type = index, raft.LogType(v[1])
	l.Term = d.uvarint()
	at := d.uvarint()
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = nanosToTime(at)
	}
	l.Data = d.bytes()
	l.Extensions = d.bytes()
	if d.bad || len(d.b) != 0 {
		return fmt.Errorf("persistence: raft log entry %d: malformed", index)
	}
	return nil
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// byteDecoder reads uvarints and length-prefixed byte strings; a short read
// sets bad and yields zero values. Byte strings are copies.
type byteDecoder struct {
	b   []byte
	bad bool
}

func (d *byteDecoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	n, size := binary.Uvarint(d.b)
	if size <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[size:]
	return n
}

func (d *byteDecoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || uint64(len(d.b)) < n {
		d.bad = true
		return nil
	}
	if n == 0 {
		return nil
	}
	out := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return out
}

func (d *byteDecoder) string() string { return string(d.bytes()) }

func (d *byteDecoder) byte() byte {
	if d.bad || len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}
