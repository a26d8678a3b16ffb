package bench

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Limits of one client connection.
const (
	// readLimitBytes bounds a server frame: an acks frame of BatchSizeMax
	// items is well under it.
	readLimitBytes = 4 << 20
	// latencyBufferLen is how many latencies a reader collects before it
	// takes the shared histogram's lock.
	latencyBufferLen = 512
	// controlTimeout bounds the write of a pong or close frame.
	controlTimeout = time.Second
)

// unscheduled marks a closed-loop frame: its latency counts from its send.
const unscheduled = -1

// clock is the timeline of one drive, in nanoseconds since base (monotonic).
type clock struct {
	base      time.Time
	warmupEnd int64 // the measured period starts
	sendEnd   int64 // the writers stop; the drain starts
}

func (c *clock) now() int64 { return int64(time.Since(c.base)) }

// pendingFrame is a frame sent and not fully answered.
type pendingFrame struct {
	scheduled int64 // when it was meant to go, on the drive's clock
	remaining int   // events not answered yet
}

// readerStats are owned by the reader goroutine until it exits.
type readerStats struct {
	acked, duplicates, failed, measuredAcked, unmatched, malformed int64
	errors                                                         map[string]*int64 // answers by error code
	latencies                                                      []latencySample   // not yet in the histogram
}

// latencySample is one event's ack latency and when it was scheduled (the
// drive's clock), which decides the histogram of a phased drive.
type latencySample struct {
	scheduled, us int64
}

// client is one WebSocket connection of a drive: the writer goroutine sends
// frames, the reader goroutine matches answers to them by event id.
type client struct {
	ws       *websocket.Conn
	bc       *bufConn
	enc      *frameEncoder // writer only
	idPrefix []byte        // immutable copy of enc.idPrefix, for the reader
	batch    int
	window   int
	resumeAt int // a waiting writer resumes once inflight is at most this
	clock    *clock
	hist     *latencyRecorder

	mu            sync.Mutex
	pending       map[uint64]pendingFrame // by frame number
	inflight      int                     // events sent and not answered
	writerWaiting bool
	sending       bool
	drainedClosed bool
	drained       chan struct{} // closed when the writer stopped and nothing is in flight
	wake          chan struct{} // cap 1: room in the window again
	pong          chan string   // cap 1: a ping's payload for the writer to answer

	sent     int64 // writer-owned
	writeErr error // writer-owned
	stats    readerStats
	readErr  error // reader-owned
	closing  atomic.Bool
}

func newClient(ws *websocket.Conn, bc *bufConn, enc *frameEncoder, cfg *Config, clk *clock, hist *latencyRecorder) *client {
	c := &client{
		ws: ws, bc: bc, enc: enc, clock: clk, hist: hist,
		idPrefix: append([]byte(nil), enc.idPrefix...),
		batch:    cfg.batch(),
		window:   cfg.Window,
		pending:  make(map[uint64]pendingFrame, cfg.Window/cfg.batch()+1),
		sending:  true,
		drained:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
		pong:     make(chan string, 1),
		stats: readerStats{
			errors:    map[string]*int64{},
			latencies: make([]latencySample, 0, latencyBufferLen),
		},
	}
	// Resume a blocked writer only once a quarter of the window (at least
	// a frame) is free, so it sends many frames per wake and per flush
	// instead of one.
	c.resumeAt = c.window - max(c.batch, c.window/4)
	ws.SetReadLimit(readLimitBytes)
	// The reader never writes: a write can wait behind the writer's, and a
	// reader that stops reading can deadlock a server that stops reading
	// while its own writes wait. Pongs go through the writer (the latest
	// ping is enough); a close from the server ends the reader, and close()
	// sends ours.
	ws.SetPingHandler(func(data string) error {
		select {
		case c.pong <- data:
		default:
		}
		return nil
	})
	ws.SetCloseHandler(func(int, string) error { return nil })
	return c
}

// write sends frames until stop is closed, the send period ends, the
// encoder has no more (a segment) or a write fails. framePeriod 0 is closed loop: a frame whenever the window has room,
// its latency counted from when it was sent. Otherwise frame k is scheduled
// at phase + k*framePeriod and its latency counts from that time however
// late it actually leaves (a full window, a slow write), so the server's
// stalls are not hidden (no coordinated omission).
func (c *client) write(stop <-chan struct{}, framePeriod float64, phase int64) {
	defer c.stopSending()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for k := int64(0); ; k++ {
		scheduled := int64(unscheduled)
		if framePeriod > 0 {
			scheduled = phase + int64(float64(k)*framePeriod)
			if scheduled >= c.clock.sendEnd {
				return
			}
			if wait := scheduled - c.clock.now(); wait > 0 {
				if !c.flush() {
					return
				}
				timer.Reset(time.Duration(wait))
				if !waitFor(c, timer.C, stop) {
					return
				}
			}
		}
		select {
		case <-stop:
			return
		case data := <-c.pong:
			if !c.sendPong(data) {
				return
			}
		default:
		}
		frame, number, events := c.enc.next()
		if events == 0 {
			return
		}
		if !c.reserve(stop, number, scheduled, events) {
			return
		}
		if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			c.setWriteErr(err)
			c.unreserve(number)
			return
		}
		c.sent += int64(events)
	}
}

// reserve waits for room for one frame of events in the window and records
// it as pending; false when stop came first. Before waiting it flushes, so
// what was sent reaches the server.
func (c *client) reserve(stop <-chan struct{}, number uint64, scheduled int64, events int) bool {
	c.mu.Lock()
	for c.inflight+events > c.window {
		c.writerWaiting = true
		c.mu.Unlock()
		if !c.flush() || !waitFor(c, c.wake, stop) {
			return false
		}
		c.mu.Lock()
	}
	if scheduled == unscheduled {
		scheduled = c.clock.now()
	}
	c.inflight += events
	c.pending[number] = pendingFrame{scheduled: scheduled, remaining: events}
	c.mu.Unlock()
	return true
}

// waitFor waits for ready, answering pings meanwhile; false when stop came
// first or a pong could not be sent.
func waitFor[T any](c *client, ready <-chan T, stop <-chan struct{}) bool {
	for {
		select {
		case <-ready:
			return true
		case <-stop:
			return false
		case data := <-c.pong:
			if !c.sendPong(data) || !c.flush() {
				return false
			}
		}
	}
}

// sendPong answers a ping. No deadline: one would stay on the socket and
// cut the writer's next flush short while the server is slow to read.
func (c *client) sendPong(data string) bool {
	if err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Time{}); err != nil {
		c.setWriteErr(err)
		return false
	}
	return true
}

// unreserve forgets a frame whose write failed.
func (c *client) unreserve(number uint64) {
	c.mu.Lock()
	if p, ok := c.pending[number]; ok {
		c.inflight -= p.remaining
		delete(c.pending, number)
	}
	c.mu.Unlock()
}

func (c *client) flush() bool {
	if err := c.bc.Flush(); err != nil {
		c.setWriteErr(err)
		return false
	}
	return true
}

// setWriteErr keeps the writer's first error, unless the drive is closing
// the connection itself.
func (c *client) setWriteErr(err error) {
	if c.writeErr == nil && !c.closing.Load() {
		c.writeErr = err
	}
}

// stopSending flushes what is left and lets the drain finish.
func (c *client) stopSending() {
	c.flush()
	c.mu.Lock()
	c.sending = false
	c.checkDrainedLocked()
	c.mu.Unlock()
}

func (c *client) checkDrainedLocked() {
	if !c.sending && c.inflight == 0 && !c.drainedClosed {
		c.drainedClosed = true
		close(c.drained)
	}
}

// read matches the server's answers to pending frames until the connection
// closes.
func (c *client) read() {
	defer c.readerDone()
	var f serverFrame
	buf := make([]byte, 0, 4096)
	for {
		var err error
		if buf, err = nextMessage(c.ws, buf); err != nil {
			if !c.closing.Load() {
				c.readErr = err
			}
			return
		}
		now := c.clock.now()
		if decodeFrame(buf, &f) != nil {
			c.stats.malformed++
			continue
		}
		c.account(&f, now)
	}
}

// readerDone flushes the reader's latencies and, as no answer can come any
// more, ends the drain of this connection.
func (c *client) readerDone() {
	c.hist.record(&c.stats)
	c.mu.Lock()
	if !c.drainedClosed {
		c.drainedClosed = true
		close(c.drained)
	}
	c.mu.Unlock()
}

// nextMessage reads the connection's next message into buf (reused).
func nextMessage(ws *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := ws.NextReader()
	if err != nil {
		return buf, err
	}
	return readAll(r, buf[:0])
}

// readAll reads r to its end into buf, growing it as needed.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// account settles the events a server frame answers.
func (c *client) account(f *serverFrame, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch f.kind {
	case kindAck:
		c.settleEventLocked(f.id, now, f.duplicate, false)
	case kindAcks:
		for i := range f.items {
			it := &f.items[i]
			if it.failed {
				c.countError(it.code, 1)
			}
			c.settleEventLocked(it.id, now, it.duplicate, it.failed)
		}
	case kindError:
		c.countError(f.code, 1)
		if number, ok := batchNumber(f.id); ok && c.batch > 1 {
			// A whole batch refused: every event of it failed.
			if p, ok := c.pending[number]; ok {
				c.countError(f.code, int64(p.remaining-1))
				for p.remaining > 0 {
					p = c.settleLocked(number, p, now, false, true)
				}
				break
			}
		}
		c.settleEventLocked(f.id, now, false, true)
	}
	if c.writerWaiting && c.inflight <= c.resumeAt {
		c.writerWaiting = false
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.checkDrainedLocked()
}

// settleEventLocked settles one event by its id; an id that names no event
// in flight is counted as unmatched.
func (c *client) settleEventLocked(id []byte, now int64, duplicate, failed bool) {
	n, ok := parseEventID(id, c.idPrefix)
	number := n / uint64(c.batch)
	p, found := c.pending[number]
	if !ok || !found {
		c.stats.unmatched++
		return
	}
	c.settleLocked(number, p, now, duplicate, failed)
}

// settleLocked settles one event of frame number and returns the frame as
// it is left.
func (c *client) settleLocked(number uint64, p pendingFrame, now int64, duplicate, failed bool) pendingFrame {
	p.remaining--
	if p.remaining == 0 {
		delete(c.pending, number)
	} else {
		c.pending[number] = p
	}
	c.inflight--
	s := &c.stats
	if failed {
		s.failed++
		return p
	}
	s.acked++
	if duplicate {
		s.duplicates++
	}
	if now >= c.clock.warmupEnd && now < c.clock.sendEnd {
		s.measuredAcked++
	}
	if p.scheduled >= c.clock.warmupEnd {
		s.latencies = append(s.latencies, latencySample{scheduled: p.scheduled, us: (now - p.scheduled) / int64(time.Microsecond)})
		if len(s.latencies) == cap(s.latencies) {
			c.hist.record(s)
		}
	}
	return p
}

func (c *client) countError(code []byte, n int64) {
	if n <= 0 {
		return
	}
	p := c.stats.errors[string(code)]
	if p == nil {
		p = new(int64)
		c.stats.errors[string(code)] = p
	}
	*p += n
}

// close ends the connection: a close frame, then the socket, which ends
// the reader and a writer blocked on a server that stopped reading. The
// close frame waits at most controlTimeout.
func (c *client) close() {
	c.closing.Store(true)
	c.mu.Lock()
	stuck := c.sending
	c.mu.Unlock()
	if stuck {
		// The writer is blocked in a write: the server is not reading,
		// and a close frame would only wait behind it.
		_ = c.ws.Close()
		return
	}
	deadline := time.Now().Add(controlTimeout)
	_ = c.bc.SetWriteDeadline(deadline)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if c.ws.WriteControl(websocket.CloseMessage, msg, deadline) == nil {
		_ = c.bc.Flush()
	}
	_ = c.ws.Close()
}
