package persistence

// The value codec: every value of the store is built and parsed here. Events
// are journey's binary event record; the index values are fixed-width
// big-endian numbers.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/throughline/throughline/journey"
)

var errValue = errors.New("persistence: malformed value")

// Events are stored as journey's binary event record (journey/codec.go),
// which snapshots share.

func encodeEvent(ev *journey.Event) ([]byte, error) {
	return appendEncodedEvent(make([]byte, 0, journey.EventRecordSize(ev)), ev)
}

// appendEncodedEvent appends ev's stored encoding to b.
func appendEncodedEvent(b []byte, ev *journey.Event) ([]byte, error) {
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		return nil, errors.New("persistence: encode event: data is not JSON")
	}
	return journey.AppendEventRecord(b, ev), nil
}

func decodeEvent(b []byte) (journey.Event, error) {
	ev, err := journey.DecodeEventRecord(b)
	if err != nil {
		return ev, fmt.Errorf("%w: event: %w", errValue, err)
	}
	return ev, nil
}

// eventHead is the part of a stored event the segment index needs.
type eventHead struct {
	Type       string
	RecordedAt time.Time
}

func decodeEventHead(b []byte) (eventHead, error) {
	t, at, err := journey.DecodeEventHead(b)
	if err != nil {
		return eventHead{}, fmt.Errorf("%w: event: %w", errValue, err)
	}
	return eventHead{Type: t, RecordedAt: at}, nil
}

// Times are stored as unix nanoseconds; times before 1970 as 0.
func timeToNanos(t time.Time) uint64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	return uint64(t.UnixNano())
}

func nanosToTime(n uint64) time.Time {
	return time.Unix(0, int64(n))
}

// hourOf is the segment index's bucket of t: the unix hour (0 before 1970).
func hourOf(t time.Time) uint64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	return uint64(t.Unix() / 3600)
}

func hourStart(h uint64) time.Time {
	return time.Unix(int64(h)*3600, 0)
}

// encodeTime is the value of segment and tombstone keys.
func encodeTime(t time.Time) []byte { return appendTime(nil, t) }

// appendTime appends t's stored form to b (the writer's scratch: a batch
// copies what it is given).
func appendTime(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, timeToNanos(t))
}

func decodeTime(b []byte) (time.Time, error) {
	if len(b) != 8 {
		return time.Time{}, fmt.Errorf("%w: time of %d bytes", errValue, len(b))
	}
	return nanosToTime(binary.BigEndian.Uint64(b)), nil
}

// The dedup value: seq | recorded_at.
func encodeDedup(seq uint64, recordedAt time.Time) []byte {
	return appendDedup(make([]byte, 0, 16), seq, recordedAt)
}

func appendDedup(b []byte, seq uint64, recordedAt time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, seq)
	return binary.BigEndian.AppendUint64(b, timeToNanos(recordedAt))
}

func decodeDedup(b []byte) (seq uint64, recordedAt time.Time, err error) {
	if len(b) != 16 {
		return 0, time.Time{}, fmt.Errorf("%w: dedup of %d bytes", errValue, len(b))
	}
	return binary.BigEndian.Uint64(b), nanosToTime(binary.BigEndian.Uint64(b[8:])), nil
}

// The dedup block value: the first seq, the count, then each id's digest
// (two big-endian uint64s: the first 16 bytes of its SHA-256), its seq
// after the previous one's (uvarint; the first's after the first seq) and
// its recorded_at (unix ns, uvarint). Ids are in seq order. ~20 bytes an
// id; 64 ids a block (journey.DedupBlockIDs).
func appendDedupBlock(b []byte, ids []journey.DedupID) []byte {
	b = binary.AppendUvarint(b, ids[0].Seq)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	prev := ids[0].Seq
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id.Digest[0])
		b = binary.BigEndian.AppendUint64(b, id.Digest[1])
		b = binary.AppendUvarint(b, id.Seq-prev)
		b = binary.AppendUvarint(b, uint64(max(id.RecordedAt, 0)))
		prev = id.Seq
	}
	return b
}

// dedupBlockFirst is the seq of a dedup block's first id.
func dedupBlockFirst(b []byte) (uint64, error) {
	first, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, fmt.Errorf("%w: dedup block", errValue)
	}
	return first, nil
}

// findInDedupBlock looks digest up in a dedup block's ids.
func findInDedupBlock(b []byte, digest [2]uint64) (seq uint64, found bool, err error) {
	d := byteDecoder{b: b}
	seq = d.uvarint()
	for n := d.count(); n > 0 && !d.bad; n-- {
		if len(d.b) < 16 {
			d.bad = true
			break
		}
		d0, d1 := binary.BigEndian.Uint64(d.b), binary.BigEndian.Uint64(d.b[8:])
		d.b = d.b[16:]
		seq += d.uvarint()
		d.uvarint() // recorded_at
		if d0 == digest[0] && d1 == digest[1] && !d.bad {
			return seq, true, nil
		}
	}
	if d.bad || len(d.b) != 0 {
		return 0, false, fmt.Errorf("%w: dedup block", errValue)
	}
	return 0, false, nil
}

// The snapshot value: seq | data.
func encodeSnapshot(s *Snapshot) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(s.Data)), s.Seq)
	return append(b, s.Data...)
}

func decodeSnapshot(b []byte) (*Snapshot, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: snapshot of %d bytes", errValue, len(b))
	}
	return &Snapshot{Seq: binary.BigEndian.Uint64(b), Data: append([]byte(nil), b[8:]...)}, nil
}

// The meta value: the partition count.
func encodePartitions(n int) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(n))
}

func decodePartitions(b []byte) (int, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: partition count of %d bytes", errValue, len(b))
	}
	return int(binary.BigEndian.Uint32(b)), nil
}

// noteBroadcast adds to set the broadcast a stored event names, for the
// event types that mark a customer (journey.MarksBroadcast).
func noteBroadcast(set map[string]struct{}, eventType string, value []byte) error {
	if !journey.MarksBroadcast(eventType) {
		return nil
	}
	ev, err := decodeEvent(value)
	if err != nil {
		return err
	}
	if bc := journey.BroadcastOf(&ev); bc != "" {
		set[bc] = struct{}{}
	}
	return nil
}
