package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsPeer is what every WebSocket of the server shares: one writer
// goroutine fed by a bounded queue of frames (a client that lets it fill is
// disconnected), a small queue of control frames, and a close that the
// writer turns into a close frame.
type wsPeer struct {
	s      *Server
	kind   string // "channel" or "agent", for logs and metrics
	ws     *websocket.Conn
	keep   *keepalive      // the read deadline
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc

	send      chan []byte // frames for the writer; full: the client is too slow
	control   chan controlFrame
	closed    chan struct{}
	closeOnce sync.Once
}

func newPeer(s *Server, kind string, ws *websocket.Conn, queue int) *wsPeer {
	ctx, cancel := context.WithCancel(context.Background())
	return &wsPeer{
		s: s, kind: kind, ws: ws, keep: newKeepalive(ws, s.cfg.WSIdleTimeout), ctx: ctx, cancel: cancel,
		send: make(chan []byte, queue), control: make(chan controlFrame, controlQueue), closed: make(chan struct{}),
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
	select {
	case c.send <- frame:
	default:
		c.s.metrics.slowClosed.Inc()
		c.s.log.Warn(c.kind+" connection too slow: closing", "queued", len(c.send))
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
			w.buf = appendFrame(w.buf, opPing, nil)
		case f := <-c.send:
			w.buf = appendFrame(w.buf, opText, f)
		case cf := <-c.control:
			w.buf = appendFrame(w.buf, cf.opcode, cf.payload)
		case <-c.closed:
			w.buf = appendFrame(w.buf[:0], opClose, websocket.FormatCloseMessage(websocket.CloseGoingAway, "closing"))
			w.timeout = time.Second
			_ = w.flush()
			return
		}
	drain:
		for len(w.buf) < writeBatchBytes {
			select {
			case f := <-c.send:
				w.buf = appendFrame(w.buf, opText, f)
			case cf := <-c.control:
				w.buf = appendFrame(w.buf, cf.opcode, cf.payload)
			default:
				break drain
			}
		}
		if err := w.flush(); err != nil {
			c.close()
			return
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
func (c *wsPeer) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		close(c.closed)
	})
}
