package persistence

// The value codec: every value of the store is built and parsed here. Events
// are JSON (encoding/json of journey.Event, the same form readers get over the
// wire); the index values are fixed-width big-endian numbers.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/throughline/throughline/journey"
)

var errValue = errors.New("persistence: malformed value")

// eventFormat is the first byte of a stored event: the binary layout below.
// Stored events are read on every activation and written on every append,
// so they are a compact binary record rather than JSON:
//
//	format byte (1)
//	seq uvarint, recorded_at varint unix nanos (UTC)
//	type, id, customer, channel, actor, text: uvarint length + bytes each
//	time: 0, or 1 + varint unix nanos + varint zone offset seconds
//	identity: uvarint count, then kind and value strings, kinds sorted
//	data: uvarint length + the JSON bytes as sent
//
// Type and recorded_at come first so the segment index reads only those.
const eventFormat byte = 1

// eventMaxParts bounds an identity count read back, so a corrupt value
// cannot make decodeEvent allocate without limit.
const eventMaxParts = 1024

func encodeEvent(ev *journey.Event) ([]byte, error) {
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		return nil, errors.New("persistence: encode event: data is not JSON")
	}
	n := 32 + len(ev.Type) + len(ev.ID) + len(ev.Customer) + len(ev.Channel) + len(ev.Actor) + len(ev.Text) + len(ev.Data)
	for k, v := range ev.Identity {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, eventFormat)
	b = binary.AppendUvarint(b, ev.Seq)
	b = binary.AppendVarint(b, ev.RecordedAt.UnixNano())
	for _, s := range [...]string{ev.Type, ev.ID, ev.Customer, ev.Channel, ev.Actor, ev.Text} {
		b = appendPart(b, s)
	}
	if ev.Time == nil {
		b = append(b, 0)
	} else {
		_, offset := ev.Time.Zone()
		b = append(b, 1)
		b = binary.AppendVarint(b, ev.Time.UnixNano())
		b = binary.AppendVarint(b, int64(offset))
	}
	kinds := make([]string, 0, len(ev.Identity))
	for k := range ev.Identity {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	b = binary.AppendUvarint(b, uint64(len(kinds)))
	for _, k := range kinds {
		b = appendPart(b, k)
		b = appendPart(b, ev.Identity[k])
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Data)))
	return append(b, ev.Data...), nil
}

func appendPart(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// valueReader reads a binary value; the first problem sticks.
type valueReader struct {
	b   []byte
	err error
}

func (r *valueReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *valueReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *valueReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail("part longer than the value")
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *valueReader) str() string { return string(r.bytes()) }

func (r *valueReader) byte() byte {
	if len(r.b) == 0 {
		r.fail("value ends early")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *valueReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: event: %s", errValue, what)
	}
}

func decodeEvent(b []byte) (journey.Event, error) {
	var ev journey.Event
	r := valueReader{b: b}
	if f := r.byte(); f != eventFormat {
		return ev, fmt.Errorf("%w: event format %d", errValue, f)
	}
	ev.Seq = r.uvarint()
	ev.RecordedAt = time.Unix(0, r.varint()).UTC()
	ev.Type, ev.ID, ev.Customer, ev.Channel, ev.Actor, ev.Text = r.str(), r.str(), r.str(), r.str(), r.str(), r.str()
	if r.byte() == 1 {
		at, offset := r.varint(), r.varint()
		t := time.Unix(0, at).In(time.FixedZone("", int(offset)))
		if offset == 0 {
			t = t.UTC()
		}
		ev.Time = &t
	}
	if n := r.uvarint(); n > 0 {
		if n > eventMaxParts {
			return ev, fmt.Errorf("%w: event: %d identities", errValue, n)
		}
		ev.Identity = make(map[string]string, n)
		for range n {
			k := r.str()
			ev.Identity[k] = r.str()
		}
	}
	if data := r.bytes(); len(data) > 0 {
		ev.Data = append(json.RawMessage(nil), data...)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	return ev, r.err
}

// eventHead is the part of a stored event the segment index needs.
type eventHead struct {
	Type       string
	RecordedAt time.Time
}

func decodeEventHead(b []byte) (eventHead, error) {
	r := valueReader{b: b}
	if r.byte() != eventFormat {
		return eventHead{}, fmt.Errorf("%w: event format", errValue)
	}
	r.uvarint()
	h := eventHead{RecordedAt: time.Unix(0, r.varint()).UTC()}
	h.Type = r.str()
	return h, r.err
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
func encodeTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, timeToNanos(t))
}

func decodeTime(b []byte) (time.Time, error) {
	if len(b) != 8 {
		return time.Time{}, fmt.Errorf("%w: time of %d bytes", errValue, len(b))
	}
	return nanosToTime(binary.BigEndian.Uint64(b)), nil
}

// The dedup value: seq | recorded_at.
func encodeDedup(seq uint64, recordedAt time.Time) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), seq)
	return binary.BigEndian.AppendUint64(b, timeToNanos(recordedAt))
}

func decodeDedup(b []byte) (seq uint64, recordedAt time.Time, err error) {
	if len(b) != 16 {
		return 0, time.Time{}, fmt.Errorf("%w: dedup of %d bytes", errValue, len(b))
	}
	return binary.BigEndian.Uint64(b), nanosToTime(binary.BigEndian.Uint64(b[8:])), nil
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
