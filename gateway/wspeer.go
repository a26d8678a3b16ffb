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
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc

	send      *queue[[]byte] // frames for the writer; full: the client is too slow
	control   chan controlFrame
	closed    chan struct{}
	closeOnce sync.Once
}

func newPeer(s *Server, kind string, ws *websocket.Conn, queue int) *wsPeer {
	ctx, cancel := context.WithCancel(context.Background())
	return &wsPeer{
		s: s, kind: kind, ws: ws, ctx: ctx, cancel: cancel,
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
// waiting (up to writeBatchBytes), then a close frame when the connection
// ends.
func (c *wsPeer) writeLoop() {
	w := &frameWriter{conn: c.ws.NetConn(), timeout: c.s.cfg.WriteTimeout}
	defer c.ws.NetConn().Close()
	for {
		select {
		case <-c.send.ready:
		case cf := <-c.control:
			w.add(cf.opcode, cf.payload)
		case <-c.closed:
			w.add(opClose, websocket.FormatCloseMessage(websocket.CloseGoingAway, "closing"))
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
func (c *wsPeer) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		close(c.closed)
	})
}
