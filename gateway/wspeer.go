package gateway

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/journey"
)

// wsPeer is what every WebSocket of the server shares: a writer goroutine
// fed by a bounded queue of frames (a client that lets it fill is
// disconnected), a small queue of pongs, a ping every
// WSPingInterval, and a close that the writer turns into a close frame.
//
// The writer runs while there is something to write: it ends after
// writerIdle with nothing to write, and the next frame, ping or close
// starts another (kick). An idle connection keeps only its reader's
// goroutine and a timer for its next ping: a writer goroutine of its own
// and a ticker were ~5 KB of the ~20 KB of RSS an idle channel WebSocket
// cost (10,000 idle connections).
type wsPeer struct {
	s      *Server
	kind   string    // "channel" or "agent", for logs and metrics
	who    principal // the token it authenticated with
	conn   net.Conn
	rd     wsReader        // the client's frames
	keep   *keepalive      // the read deadline
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc

	send      *queue[outFrame] // frames for the writer; full: the client is too slow
	pongs     *queue[[]byte]   // pong payloads; signals send's ready
	closed    chan struct{}
	closeOnce sync.Once
	// closeCode and closeReason are the close frame's; set once, before
	// closed is closed. 0: going away, "closing".
	closeCode   int
	closeReason string

	pingDue atomic.Bool // the writer sends a ping
	wmu     sync.Mutex
	pinger  *time.Timer   // under wmu: sets pingDue every WSPingInterval
	writing bool          // under wmu: a writer runs (for good once closing)
	done    chan struct{} // closed when the writer has closed the socket
}

// writerIdle is how long a writer waits with nothing to write before it
// ends: long enough that a connection with a frame every few milliseconds
// keeps its writer (under load it never waits that long), short enough
// that a burst of connections saying hello does not hold a writer each
// (at 1 s, 10,000 connections opened in ~3 s held a third of theirs at
// once). A variable for tests.
var writerIdle = 100 * time.Millisecond

// newPeer takes over an upgraded connection: gorilla's Conn is not kept
// (its read buffer neither); frames are read by wsreader.go and written by
// wswriter.go.
func newPeer(s *Server, kind string, ws *websocket.Conn, who principal, queue int) *wsPeer {
	ctx, cancel := context.WithCancel(context.Background())
	conn := ws.NetConn()
	c := &wsPeer{
		s: s, kind: kind, who: who, conn: conn, keep: newKeepalive(conn, s.cfg.WSIdleTimeout), ctx: ctx, cancel: cancel,
		send: newQueue[outFrame](queue), closed: make(chan struct{}), done: make(chan struct{}),
	}
	c.pongs = newQueueOn[[]byte](pongQueue, c.send.ready)
	c.rd.init(conn, s.cfg.FrameMaxBytes)
	c.rd.ping = func(p []byte) {
		c.keep.alive()
		c.queuePong(slices.Clone(p))
	}
	c.rd.pong = c.keep.alive
	c.rd.close = func(code int) { c.closeWith(code, "") } // the close frame answers it
	return c
}

// frameBufs hold client frames while they are handled: a frame's bytes
// are not kept past its handling (decodeEvent copies what it keeps), so the
// buffers go round, and an idle connection holds none. One read with
// io.ReadAll per frame was a tenth of the bytes an ingested event
// allocated. A buffer grown past 64 KiB (a large batch) is left to the
// collector.
var frameBufs = newBytePool(0, 64<<10)

// readFrame reads the client's next frame into a buffer from frameBufs and
// hands it to handle; false when reading ended.
func (c *wsPeer) readFrame(handle func([]byte) bool) bool {
	c.keep.alive() // a wait below (credit, rate) is not the client's silence
	if err := c.rd.wait(); err != nil {
		c.readEnded(err)
		return false
	}
	buf := frameBufs.get()
	msg, err := c.rd.next(*buf)
	switch {
	case err == errNoMessage:
		frameBufs.put(buf)
		return true
	case err != nil:
		c.readEnded(err)
	}
	ok := err == nil && handle(msg)
	*buf = msg
	frameBufs.put(buf)
	return ok
}

// readBursts waits for the client's bytes, and hands each burst of them to
// a runner (runBurst, burst), which reads and handles frames while bytes
// wait in the reader's buffer. Handling a frame grows a goroutine's stack
// to 4 KiB or more, and Go never halves it again for a goroutine blocked
// in the poller (wsreader.go): this one waits with the 2 KiB it started
// with, and an idle connection costs ~1.6 KB less RSS (bench idle). It
// returns when reading ended, or stop says so between bursts.
func (c *wsPeer) readBursts(handle func([]byte) bool, stop func() bool) {
	done := make(chan bool, 1)
	for !stop() {
		c.keep.alive()
		if err := c.rd.wait(); err != nil {
			c.readEnded(err)
			return
		}
		runBurst(burstJob{c: c, handle: handle, stop: stop, done: done})
		if !<-done {
			return
		}
	}
}

// burst reads and handles frames while bytes wait in the reader's buffer
// (a pong alone ends it: errNoMessage), and tells done whether to go on.
func (c *wsPeer) burst(handle func([]byte) bool, stop func() bool, done chan<- bool) {
	for {
		if !c.readFrame(handle) {
			done <- false
			return
		}
		if c.rd.buf == nil || stop() {
			done <- true
			return
		}
	}
}

// burstJob is a connection's burst for a runner (runBurst).
type burstJob struct {
	c      *wsPeer
	handle func([]byte) bool
	stop   func() bool
	done   chan<- bool
}

// burstJobs hands a burst to a runner that waits for one: unbuffered, so
// a send goes through only to a runner waiting.
var burstJobs = make(chan burstJob)

// runnerIdle is how long a burst runner waits for the next burst before
// it ends.
const runnerIdle = time.Second

// runBurst runs j on a runner: one that waits, or a new one. Runners are
// goroutines shared by every connection and kept while bursts come: a
// goroutine started for each burst grew its stack from 2 KiB to what
// handling a frame takes every time (runtime.newstack, ~1% of the server's
// CPU in bench ingest), where a runner keeps the stack it grew. Bursts
// run at most one a connection, so the runners are at most the
// connections reading at once, and end when idle.
func runBurst(j burstJob) {
	select {
	case burstJobs <- j:
	default:
		go burstRunner(j)
	}
}

func burstRunner(j burstJob) {
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		j.c.burst(j.handle, j.stop, j.done)
		j = burstJob{} // holds no connection while it waits
		idle.Reset(runnerIdle)
		select {
		case j = <-burstJobs:
		case <-idle.C:
			return
		}
	}
}

// readEnded is told the error that ended reading: a client that broke the
// protocol is closed with the failure's code, and a client silent past the
// idle timeout is counted.
func (c *wsPeer) readEnded(err error) {
	c.rd.discard()
	if f, ok := readFailure(err); ok {
		c.closeWith(f.code, f.reason)
	}
	c.keep.ended(c.s.metrics, c.kind, err)
}

// startPinging arms the pings, once the connection is registered (a
// refused one is closed through gorilla, with no writer of ours).
func (c *wsPeer) startPinging() {
	c.wmu.Lock() // the timer's goroutine reads it
	defer c.wmu.Unlock()
	select {
	case <-c.closed: // closed meanwhile
	default:
		c.pinger = time.AfterFunc(c.s.cfg.WSPingInterval, c.ping)
	}
}

// ping arms the next ping and has the writer send one: the running
// writer, or this timer's goroutine as the writer (one goroutine less to
// start for every idle connection every WSPingInterval).
func (c *wsPeer) ping() {
	c.wmu.Lock()
	select {
	case <-c.closed: // stopped for good
		c.wmu.Unlock()
		return
	default:
		c.pinger.Reset(c.s.cfg.WSPingInterval)
	}
	c.pingDue.Store(true)
	start := c.claimWriter()
	c.wmu.Unlock()
	c.send.signal() // wakes the writer
	if start {
		c.writeLoop()
	}
}

// claimWriter, under wmu, marks a writer running and reports whether the
// caller is to run it (none ran).
func (c *wsPeer) claimWriter() bool {
	start := !c.writing
	c.writing = true
	return start
}

// stopPinging stops the pings for good.
func (c *wsPeer) stopPinging() {
	c.wmu.Lock()
	if c.pinger != nil {
		c.pinger.Stop()
	}
	c.wmu.Unlock()
}

// kick starts the writer unless it runs.
func (c *wsPeer) kick() {
	c.wmu.Lock()
	start := c.claimWriter()
	c.wmu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// idleStop ends the writer (true) unless something waits for it: under
// wmu, so a kick after a push either sees it running or starts another.
func (c *wsPeer) idleStop() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		return false
	default:
	}
	if c.send.len() > 0 || c.pongs.len() > 0 || c.pingDue.Load() {
		return false
	}
	c.writing = false
	return true
}

// finished waits for the writer to close the socket (after close).
func (c *wsPeer) finished() { <-c.done }

// enqueue queues a frame for the writer without blocking; a client that
// lets its queue fill is disconnected rather than allowed to block a
// customer.
func (c *wsPeer) enqueue(frame []byte) { c.enqueueFrame(outFrame{b: frame}) }

// enqueueOwned queues the frame in *buf, a buffer from outBufs that
// the writer gives back once the frame is in its batch: the caller lets go
// of it.
func (c *wsPeer) enqueueOwned(buf *[]byte) { c.enqueueFrame(outFrame{b: *buf, owned: buf}) }

// enqueueFrame is false when the frame was not queued: the connection
// closed, or closes now, too slow.
func (c *wsPeer) enqueueFrame(frame outFrame) bool {
	select {
	case <-c.closed:
		return false
	default:
	}
	if !c.send.push(frame) {
		select {
		case <-c.closed:
			return false // the writer closed the queue as it ended
		default:
		}
		c.s.metrics.slowClosed.Inc()
		c.s.log.Warn(c.kind+" connection too slow: closing", "queued", c.send.len())
		c.close()
		return false
	}
	c.kick()
	return true
}

// writeLoop writes what is queued, as many frames per syscall as are
// waiting (up to writeBatchBytes), and the pings due, until it has waited
// writerIdle for more; when the connection ends it writes a close frame
// and closes the socket.
func (c *wsPeer) writeLoop() {
	w := &frameWriter{conn: c.conn, timeout: c.s.cfg.WriteTimeout, stats: c.s.metrics.acks}
	idle := time.NewTimer(writerIdle)
	defer idle.Stop()
	for {
		select {
		case <-c.send.ready:
		case <-c.closed:
			// Acks left unwritten are counted: their events were stored.
			// The queue is closed as it is drained, so an answer queued
			// after this is refused, and counted by its answerer.
			now := monoNow()
			c.send.drainClosed(func(f outFrame) {
				if f.ack != nil {
					w.tally.ack(f.ack.Duplicate, now-f.at)
				}
			})
			code, reason := websocket.CloseGoingAway, "closing"
			if c.closeCode != 0 {
				code, reason = c.closeCode, c.closeReason
			}
			w.add(opClose, websocket.FormatCloseMessage(code, reason))
			w.timeout = time.Second
			_ = w.flush()
			_ = c.conn.Close()
			c.stopPinging()
			close(c.done)
			return // writing stays true: no writer after this one
		case <-idle.C:
			if c.idleStop() {
				return
			}
			// Something waits: write it below.
		}
		if c.pingDue.Swap(false) {
			w.add(opPing, nil)
		}
		for p, ok := c.pongs.pop(); ok; p, ok = c.pongs.pop() {
			w.add(opPong, p)
		}
		now := monoNow()
		for len(w.buf) < writeBatchBytes {
			f, ok := c.send.pop()
			if !ok {
				break
			}
			if f.ack != nil {
				w.addAck(f.ack, f.at, now)
				continue
			}
			w.add(opText, f.b)
			if f.owned != nil {
				outBufs.put(f.owned)
			}
		}
		texts := w.texts
		if err := w.flush(); err != nil {
			c.close() // the loop closes the socket
			continue
		}
		if c.send.len() > 0 {
			c.send.signal() // a full batch left frames waiting
		}
		// Only pings and pongs: the connection is idle, the writer ends
		// now rather than a writerIdle later (every idle connection's
		// writer at once at each round of pings was ~1 KB more RSS each).
		if texts == 0 && c.idleStop() {
			return
		}
		idle.Reset(writerIdle)
	}
}

// queuePong queues a pong; the queue is small and a peer that floods pings
// it cannot drain is disconnected. (The close reply is the close frame.)
func (c *wsPeer) queuePong(payload []byte) {
	if !c.pongs.push(payload) {
		c.close()
		return
	}
	c.kick()
}

// close ends the connection: the writer sends a close frame and closes the
// socket, which ends the reader.
func (c *wsPeer) close() { c.closeWith(0, "") }

// closeWith is close with the close frame's code and reason (a reason is
// at most 123 bytes).
func (c *wsPeer) closeWith(code int, reason string) {
	if len(reason) > 123 {
		reason = strings.ToValidUTF8(reason[:123], "")
	}
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		c.cancel()
		close(c.closed)
		c.kick()
	})
}

// principal is the token the connection authenticated with.
func (c *wsPeer) principal() principal { return c.who }

// spend takes n from the token's rate, the reader waiting for room; over
// the rate the client is told once (an error frame rate_limited, id
// empty) and its frames wait in the socket. It reports false when the
// connection closed meanwhile.
func (c *wsPeer) spend(n int) bool {
	return c.who.waitSpend(n, c.closed, func(wait time.Duration) {
		c.s.metrics.rateLimited.Inc()
		c.enqueue(errorFrame("", journey.Rejectf(journey.CodeRateLimited,
			"over this token's rate of %d a second: reading resumes in %s", c.who.limit.Burst(), wait.Round(time.Millisecond))))
	})
}
