package journey

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The binary record of a stored event. Events are written on every append
// and read on every activation, so the store keeps this compact record
// rather than JSON; snapshots hold their timeline in the same form.
//
//	format byte (1)
//	seq uvarint, recorded_at varint unix nanos (UTC)
//	type, id, customer, channel, actor, text: uvarint length + bytes each
//	time: 0; or 1 + varint unix nanos + varint zone offset seconds; or,
//	      for a time unix nanos cannot hold (before 1678, after 2261),
//	      2 + varint unix seconds + uvarint nanoseconds + varint zone offset
//	identity: uvarint count, then kind and value strings, kinds sorted
//	data: uvarint length + the JSON bytes as sent
//
// Type and recorded_at come first so an index can read only those.
const eventRecordFormat byte = 1

// recordPartsMax bounds a count read back (identities, timeline events,
// ids), so a corrupt record cannot make a decoder allocate without limit.
const recordPartsMax = 1 << 16

// ErrRecord: a binary record (event or snapshot) is malformed.
var ErrRecord = errors.New("journey: malformed record")

// AppendEventRecord appends the binary record of a stored event. The data
// must be JSON; the caller checks it (json.Valid) when it is not sure.
func AppendEventRecord(b []byte, ev *Event) []byte {
	b = append(b, eventRecordFormat)
	b = binary.AppendUvarint(b, ev.Seq)
	b = binary.AppendVarint(b, unixNanos(ev.RecordedAt))
	for _, s := range [...]string{ev.Type, ev.ID, ev.Customer, ev.Channel, ev.Actor, ev.Text} {
		b = appendRecordString(b, s)
	}
	if ev.Time == nil {
		b = append(b, 0)
	} else if _, offset := ev.Time.Zone(); nanosHold(*ev.Time) {
		b = append(b, 1)
		b = binary.AppendVarint(b, ev.Time.UnixNano())
		b = binary.AppendVarint(b, int64(offset))
	} else {
		b = append(b, 2)
		b = binary.AppendVarint(b, ev.Time.Unix())
		b = binary.AppendUvarint(b, uint64(ev.Time.Nanosecond()))
		b = binary.AppendVarint(b, int64(offset))
	}
	var room [8]string // kinds sorted on the stack: most events have a few
	kinds := room[:0]
	for k := range ev.Identity {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	b = binary.AppendUvarint(b, uint64(len(kinds)))
	for _, k := range kinds {
		b = appendRecordString(b, k)
		b = appendRecordString(b, ev.Identity[k])
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Data)))
	return append(b, ev.Data...)
}

// nanosHold: t's unix nanoseconds fit an int64 (1678 to 2261, with a
// margin).
func nanosHold(t time.Time) bool {
	y := t.Year()
	return y >= 1678 && y <= 2261
}

// EventRecordSize is about the size of an event's record, for buffers.
func EventRecordSize(ev *Event) int {
	n := 32 + len(ev.Type) + len(ev.ID) + len(ev.Customer) + len(ev.Channel) + len(ev.Actor) + len(ev.Text) + len(ev.Data)
	for k, v := range ev.Identity {
		n += len(k) + len(v) + 4
	}
	return n
}

// DecodeEventRecord decodes a whole event record.
func DecodeEventRecord(b []byte) (Event, error) {
	r := recordReader{b: b}
	ev := r.event()
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	return ev, r.err
}

// DecodeEventHead reads only the type and recorded_at of an event record.
func DecodeEventHead(b []byte) (eventType string, recordedAt time.Time, err error) {
	r := recordReader{b: b}
	if f := r.byte(); f != eventRecordFormat {
		return "", time.Time{}, fmt.Errorf("%w: event format %d", ErrRecord, f)
	}
	r.uvarint()
	recordedAt = fromUnixNanos(r.varint())
	eventType = r.str()
	return eventType, recordedAt, r.err
}

func appendRecordString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRecordBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// recordReader reads a binary record; the first problem sticks and later
// reads return zero values.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) event() Event {
	var ev Event
	if f := r.byte(); f != eventRecordFormat {
		r.fail(fmt.Sprintf("event format %d", f))
		return ev
	}
	ev.Seq = r.uvarint()
	ev.RecordedAt = fromUnixNanos(r.varint())
	// The six strings in one allocation (a resident customer keeps its
	// timeline's events: each string apart was an object to mark).
	region := r.b
	var ends [6]int
	for i := range ends {
		r.bytes()
		ends[i] = len(region) - len(r.b)
	}
	if r.err != nil {
		return ev
	}
	all, from := string(region[:ends[5]]), 0
	for i, f := range [...]*string{&ev.Type, &ev.ID, &ev.Customer, &ev.Channel, &ev.Actor, &ev.Text} {
		_, n := binary.Uvarint(region[from:])
		*f, from = all[from+n:ends[i]], ends[i]
	}
	switch tag := r.byte(); tag {
	case 0:
	case 1, 2:
		var t time.Time
		if tag == 1 {
			t = time.Unix(0, r.varint())
		} else {
			t = time.Unix(r.varint(), int64(r.uvarint()))
		}
		if offset := r.varint(); offset != 0 {
			t = t.In(time.FixedZone("", int(offset)))
		} else {
			t = t.UTC()
		}
		ev.Time = &t
	default:
		r.fail(fmt.Sprintf("time tag %d", tag))
	}
	if n := r.count(); n > 0 {
		ev.Identity = make(map[string]string, n)
		for range n {
			k := r.str()
			ev.Identity[k] = r.str()
		}
	}
	if data := r.bytes(); len(data) > 0 {
		ev.Data = append(json.RawMessage(nil), data...)
	}
	return ev
}

func (r *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of parts, bounded by recordPartsMax.
func (r *recordReader) count() int {
	n := r.uvarint()
	if n > recordPartsMax {
		r.fail("count over the limit")
		return 0
	}
	return int(n)
}

func (r *recordReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail("part longer than the record")
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *recordReader) str() string { return string(r.bytes()) }

func (r *recordReader) uint64() uint64 {
	if len(r.b) < 8 {
		r.fail("record ends early")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *recordReader) byte() byte {
	if len(r.b) == 0 {
		r.fail("record ends early")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *recordReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrRecord, what)
		r.b = nil
	}
}
