package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/journey"
)

// wsPeer is what every WebSocket of the server shares: one writer
// goroutine fed by a bounded queue of frames (a client that lets it fill is
// disconnected), a small queue of control frames, and a close that the
// writer turns into a close frame.
type wsPeer struct {
	s      *Server
	kind   string    // "channel" or "agent", for logs and metrics
	who    principal // the token it authenticated with
	ws     *websocket.Conn
	keep   *keepalive      // the read deadline
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc

	send      *queue[[]byte] // frames for the writer; full: the client is too slow
	control   chan controlFrame
	closed    chan struct{}
	closeOnce sync.Once
	// closeCode and closeReason are the close frame's; set once, before
	// closed is closed. 0: going away, "closing".
	closeCode   int
	closeReason string
}

func newPeer(s *Server, kind string, ws *websocket.Conn, who principal, queue int) *wsPeer {
	ctx, cancel := context.WithCancel(context.Background())
	return &wsPeer{
		s: s, kind: kind, who: who, ws: ws, keep: newKeepalive(ws, s.cfg.WSIdleTimeout), ctx: ctx, cancel: cancel,
		send: newQueue[[]byte](queue), control: make(chan controlFrame, controlQueue), closed: make(chan struct{}),
	}
}

// enqueue queues a frame for the writer without blocking; a client that
// lets its queue fill is disconnected rather than allowed to block a
// customer.
func (c *wsPeer) enqueue(frame []byte) {
	select {
	case <-c.closed:
		return
	default:
	}
	if !c.send.push(frame) {
		c.s.metrics.slowClosed.Inc()
		c.s.log.Warn(c.kind+" connection too slow: closing", "queued", c.send.len())
		c.close()
	}
}

// writeLoop writes what is queued, as many frames per syscall as are
// waiting (up to writeBatchBytes), a ping every WSPingInterval, then a close
// frame when the connection ends.
func (c *wsPeer) writeLoop() {
	w := &frameWriter{conn: c.ws.NetConn(), timeout: c.s.cfg.WriteTimeout}
	defer c.ws.NetConn().Close()
	ping := time.NewTicker(c.s.cfg.WSPingInterval)
	defer ping.Stop()
	for {
		select {
		case <-ping.C:
			w.add(opPing, nil)
		case <-c.send.ready:
		case cf := <-c.control:
			w.add(cf.opcode, cf.payload)
		case <-c.closed:
			code, reason := websocket.CloseGoingAway, "closing"
			if c.closeCode != 0 {
				code, reason = c.closeCode, c.closeReason
			}
			w.add(opClose, websocket.FormatCloseMessage(code, reason))
			w.timeout = time.Second
			_ = w.flush()
			return
		}
	drain:
		for len(w.buf) < writeBatchBytes {
			if f, ok := c.send.pop(); ok {
				w.add(opText, f)
				continue
			}
			select {
			case cf := <-c.control:
				w.add(cf.opcode, cf.payload)
			default:
				break drain
			}
		}
		if err := w.flush(); err != nil {
			c.close()
			return
		}
		if c.send.len() > 0 {
			c.send.signal() // a full batch left frames waiting
		}
	}
}

// queueControl queues a pong or close reply; the control queue is small and
// a peer that floods pings it cannot drain is disconnected.
func (c *wsPeer) queueControl(cf controlFrame) {
	select {
	case c.control <- cf:
	default:
		c.close()
	}
}

// close ends the connection: the writer sends a close frame and closes the
// socket, which ends the reader.
func (c *wsPeer) close() { c.closeWith(0, "") }

// closeWith is close with the close frame's code and reason (a reason is
// at most 123 bytes).
func (c *wsPeer) closeWith(code int, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		c.cancel()
		close(c.closed)
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
