package gateway

import (
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// Server-to-client frames are written here, not through gorilla's writer:
// gorilla writes every message with its own syscall, and under load most of
// the gateway's CPU went to those writes (one per ack). The writer drains
// what is queued and writes it in one syscall. gorilla does the handshake;
// frames are read by wsreader.go, which queues pongs and the close reply
// here, so that every byte written to the socket goes through this writer.

// Frame opcodes (RFC 6455 section 5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// writeBatchBytes bounds one write: frames queued beyond it go in the next.
const writeBatchBytes = 64 << 10

// appendFrame appends one unmasked, unfragmented server frame.
func appendFrame(b []byte, opcode byte, payload []byte) []byte {
	b = append(b, 0x80|opcode)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// frameWriter writes batches of frames to a connection.
type frameWriter struct {
	conn    net.Conn
	buf     []byte
	timeout time.Duration
	texts   int // text frames in buf
	// The acks in buf (addAck), added to stats as the batch is written.
	stats *ackStats
	tally ackTally
	ack   []byte // an ack's payload, formatted before its frame's header
}

// write sends the frames in one syscall (for a batch under writeBatchBytes).
func (w *frameWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.tally.n > 0 {
		w.stats.add(&w.tally) // before the client may read them
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.conn.Write(w.buf)
	if cap(w.buf) <= 4*writeBatchBytes { // a huge acks frame's is not kept
		writeBufs.Put(w.buf[:0])
	}
	w.buf, w.texts = nil, 0 // an idle connection holds no buffer
	return err
}

// add appends a frame to the batch, in a buffer from writeBufs.
func (w *frameWriter) add(opcode byte, payload []byte) {
	if w.buf == nil {
		if b, ok := writeBufs.Get().([]byte); ok {
			w.buf = b
		}
	}
	w.buf = appendFrame(w.buf, opcode, payload)
	if opcode == opText {
		w.texts++
	}
}

// addAck appends the frame of an ack whose event arrived at (monoOf), and
// counts it: now is monoNow() as the writer took its batch.
func (w *frameWriter) addAck(a *journey.Ack, at, now time.Duration) {
	w.ack = appendAckFrame(w.ack[:0], a.ID, actors.Result{Ack: a})
	w.add(opText, w.ack)
	w.tally.ack(a.Duplicate, now-at)
}

// outFrame is a frame queued for a connection's writer. owned, when set,
// is the frame's buffer from outBufs, given back once the writer has
// copied the frame into its batch: the frames written per event (an ack,
// a broadcast target's outbound) were ~8% of the bytes the server
// allocated per event (docs/benchmarking.md, stop 36), each one garbage
// as soon as it was written. A frame shared by several connections (a
// desk's event frames) is never owned.
//
// An event frame's ack is queued as the ack itself (ack, and at: when its
// event arrived, monoOf), and the writer formats it into its batch and
// counts it: formatting it in an owned buffer on the core that answered,
// and counting it in the metrics there, cost a buffer from outBufs that the
// writer's core gave back, and atomic adds on the metrics' lines, shared
// by both cores, for every ack.
type outFrame struct {
	b     []byte
	owned *[]byte
	ack   *journey.Ack
	at    time.Duration
}

// monoBase is the origin of monoOf: an outFrame keeps an event's arrival
// as 8 bytes of the monotonic clock, not a time.Time's 24.
var monoBase = time.Now()

// monoOf is t on the monotonic clock, from monoBase.
func monoOf(t time.Time) time.Duration { return t.Sub(monoBase) }

// monoNow is now on the monotonic clock, from monoBase.
func monoNow() time.Duration { return time.Since(monoBase) }

// outBufs recycles owned frames' buffers of up to 4 KiB.
var outBufs = newBytePool(256, 4<<10)

// writeBufs are the writers' batch buffers, shared by every connection:
// one kept per connection cost up to 256 KiB per idle connection after a
// large acks frame.
var writeBufs sync.Pool
