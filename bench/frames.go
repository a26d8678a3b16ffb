package bench

import (
	"bytes"
	"math/rand/v2"
	"strconv"
)

// textPoolSpread is how many different starting points an event's text has
// in the connection's pool of random words, so stored values do not compress
// to nothing.
const textPoolSpread = 1024

// frameEncoder writes the client frames of one connection into one reused
// buffer, with strconv appends and no reflection. Event n of the connection
// has id <nonce>-<connection>-<n>; batch m has id b-<m> and carries events
// m*batch .. m*batch+batch-1, so an event's frame is its number / batch.
// Customers of the connection take turns, one event each.
type frameEncoder struct {
	buf        []byte
	idPrefix   []byte // "<nonce>-<connection>-"
	custPrefix []byte // customer i is <custPrefix><i>; "c-" unless set
	text       []byte // random lowercase words, textPoolSpread longer than an event's text
	// seg, when set, makes the events segment events (segmentShape), one
	// per customer of the connection, and then no more.
	seg *segmentShape

	connection  int // this connection's index
	connections int // customers of this connection: connection + k*connections
	customers   int // customers of this connection
	batch       int // events per frame, at least 1
	textBytes   int

	nextCustomer int    // k of the next event's customer
	nextEvent    uint64 // number of the next event
}

// segmentShape is what a segment's events look like: customer i is
// <customer prefix><i> with the phone <PhonePrefix><i as 7 digits>, and
// its one event is of type Type with a small data object.
type segmentShape struct {
	CustomerPrefix string
	PhonePrefix    string
	Type           string
}

// segmentPhoneDigits is how many digits of a segment customer's number
// are its index: segments have fewer than 10^7 customers.
const segmentPhoneDigits = 7

func newFrameEncoder(nonce string, connection int, cfg *Config) *frameEncoder {
	perConnection := cfg.Customers / cfg.Connections
	if connection < cfg.Customers%cfg.Connections {
		perConnection++
	}
	e := &frameEncoder{
		idPrefix:    []byte(nonce + "-" + strconv.Itoa(connection) + "-"),
		custPrefix:  []byte("c-"),
		connection:  connection,
		connections: cfg.Connections,
		customers:   perConnection,
		batch:       cfg.batch(),
		textBytes:   cfg.EventBytes,
	}
	e.text = randomText(uint64(connection), cfg.EventBytes+textPoolSpread)
	e.buf = make([]byte, 0, e.batch*(cfg.EventBytes+160)+64)
	return e
}

// randomText returns n bytes of lowercase words separated by spaces: JSON
// safe, and not a run of one letter that a store would compress away.
func randomText(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x7468726f75676800))
	b := make([]byte, n)
	for i := range b {
		if r.IntN(6) == 0 {
			b[i] = ' '
		} else {
			b[i] = byte('a' + r.IntN(26))
		}
	}
	return b
}

// segment makes the encoder's events those of a segment: one per customer
// of the connection (its last frame may be short), then no more.
func (e *frameEncoder) segment(shape *segmentShape) {
	e.seg = shape
	e.custPrefix = []byte(shape.CustomerPrefix)
}

// next encodes the connection's next frame (an `event` frame when batch is
// 1, else a `batch` frame) and returns it with its frame number and the
// number of events in it: batch, fewer in a segment's last frame, 0 once a
// segment is all sent (frame is then nil). The bytes are valid until the
// next call.
func (e *frameEncoder) next() (frame []byte, number uint64, events int) {
	events = e.batch
	if e.seg != nil {
		events = min(events, e.customers-int(e.nextEvent))
		if events <= 0 {
			return nil, 0, 0
		}
	}
	b := e.buf[:0]
	if e.batch == 1 {
		number = e.nextEvent
		b = append(b, `{"type":"event","event":`...)
		b = e.appendEvent(b)
		b = append(b, '}')
	} else {
		number = e.nextEvent / uint64(e.batch)
		b = append(b, `{"type":"batch","id":"b-`...)
		b = strconv.AppendUint(b, number, 10)
		b = append(b, `","events":[`...)
		for i := range events {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.appendEvent(b)
		}
		b = append(b, "]}"...)
	}
	e.buf = b
	return b, number, events
}

// appendEvent appends the next event object and advances the counters.
func (e *frameEncoder) appendEvent(b []byte) []byte {
	n := e.nextEvent
	customer := e.connection + e.nextCustomer*e.connections
	b = append(b, `{"id":"`...)
	b = append(b, e.idPrefix...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `","customer":"`...)
	b = append(b, e.custPrefix...)
	b = strconv.AppendInt(b, int64(customer), 10)
	if e.seg != nil {
		b = append(b, `","identity":{"phone":"`...)
		b = append(b, e.seg.PhonePrefix...)
		b = appendPadded(b, customer, segmentPhoneDigits)
		b = append(b, `"},"type":"`...)
		b = append(b, e.seg.Type...)
		b = append(b, `","data":{"amount":`...)
		b = strconv.AppendUint(b, 1+n%500, 10)
		b = append(b, `}}`...)
		e.advance()
		return b
	}
	b = append(b, `","type":"message.received","channel":"chat","text":"`...)
	off := int(n*131) % textPoolSpread
	b = append(b, e.text[off:off+e.textBytes]...)
	b = append(b, `"}`...)
	e.advance()
	return b
}

// appendPadded appends v in decimal, zero-padded to width digits.
func appendPadded(b []byte, v, width int) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(v), 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

// advance moves to the next event and the next customer's turn.
func (e *frameEncoder) advance() {
	e.nextEvent++
	e.nextCustomer++
	if e.nextCustomer == e.customers {
		e.nextCustomer = 0
	}
}

// parseEventID parses the number of an event id <prefix><n>; ok is false
// for an id made by another connection or run.
func parseEventID(id, prefix []byte) (n uint64, ok bool) {
	if !bytes.HasPrefix(id, prefix) {
		return 0, false
	}
	return parseUint(id[len(prefix):])
}

// batchNumber parses a batch id b-<m>.
func batchNumber(id []byte) (m uint64, ok bool) {
	if len(id) < 3 || id[0] != 'b' || id[1] != '-' {
		return 0, false
	}
	return parseUint(id[2:])
}

// parseUint parses a non-empty run of decimal digits without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
