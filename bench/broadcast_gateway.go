package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// outboundAcceptsMax bounds the accepted frames waiting for the gateway's
// writer; past it an outbound is not confirmed (counted) and the server
// sends it again after 30 s.
const outboundAcceptsMax = 1 << 16

// outboundGateway is a channel gateway connection that says hello for sms
// and takes every outbound over (accepted), as a provider connector does,
// counting what arrives and when. The reader never writes: it hands
// outbound ids and pings to the writer.
type outboundGateway struct {
	ws            *websocket.Conn
	bc            *bufConn
	segmentPrefix []byte
	accepts       chan string
	pong          chan string
	done          chan struct{}
	closing       atomic.Bool
	wg            sync.WaitGroup

	mu struct {
		sync.Mutex
		start        time.Time // the broadcast's 202; zero before
		seen         map[string]struct{}
		stats        outboundStats
		first, last  time.Time // segment outbounds, first and last new one
		errorsByCode map[string]int64
	}
	writeErr, readErr error // writer-owned, reader-owned
}

// outboundStats are the gateway's counts.
type outboundStats struct {
	frames, unique, redelivered, segment, foreign, malformed, dropped int64
	errors                                                            map[string]int64
	arrived                                                           bool          // a segment outbound came after markStart
	firstAfter, lastAfter                                             time.Duration // since the 202 (the first may come before it)
}

// dialOutboundGateway connects, says hello for sms, waits for ready and
// starts the reader and writer.
func dialOutboundGateway(ctx context.Context, wsURL, token, segmentPrefix string) (*outboundGateway, error) {
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	ws, bc, err := dial(ctx, wsURL, header)
	if err != nil {
		return nil, fmt.Errorf("bench: sms gateway: %w", err)
	}
	ws.SetReadLimit(readLimitBytes)
	if err := helloFor(ws, bc, broadcastChannel); err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("bench: sms gateway: %w", err)
	}
	g := &outboundGateway{
		ws: ws, bc: bc, segmentPrefix: []byte(segmentPrefix),
		accepts: make(chan string, outboundAcceptsMax),
		pong:    make(chan string, 1),
		done:    make(chan struct{}),
	}
	g.mu.seen = map[string]struct{}{}
	g.mu.errorsByCode = map[string]int64{}
	ws.SetPingHandler(func(data string) error {
		select {
		case g.pong <- data:
		default:
		}
		return nil
	})
	ws.SetCloseHandler(func(int, string) error { return nil })
	g.wg.Go(g.read)
	g.wg.Go(g.write)
	return g, nil
}

// helloFor says hello for channel on a buffered connection and waits for
// ready.
func helloFor(ws *websocket.Conn, bc *bufConn, channel string) error {
	deadline := time.Now().Add(handshakeTimeout)
	_ = bc.SetWriteDeadline(deadline)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","channels":["`+channel+`"]}`)); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if err := bc.Flush(); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	_ = ws.SetReadDeadline(deadline)
	var f serverFrame
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("waiting for ready: %w", err)
		}
		if err := decodeFrame(msg, &f); err == nil && f.kind == kindReady {
			break
		} else if err == nil && f.kind == kindError {
			return fmt.Errorf("hello refused: %s", f.code)
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	_ = bc.SetWriteDeadline(time.Time{})
	return nil
}

// markStart sets the time outbound arrivals are reported from.
func (g *outboundGateway) markStart(t time.Time) {
	g.mu.Lock()
	g.mu.start = t
	g.mu.Unlock()
}

// read counts outbounds and hands their ids to the writer.
func (g *outboundGateway) read() {
	var f serverFrame
	buf := make([]byte, 0, 4096)
	for {
		var err error
		if buf, err = nextMessage(g.ws, buf); err != nil {
			if !g.closing.Load() {
				g.readErr = err
			}
			return
		}
		now := time.Now()
		if decodeFrame(buf, &f) != nil {
			g.count(func(s *outboundStats) { s.malformed++ })
			continue
		}
		switch f.kind {
		case kindOutbound:
			g.outbound(f.id, f.customer, now)
		case kindError:
			g.count(func(s *outboundStats) { g.mu.errorsByCode[string(f.code)]++ })
		}
	}
}

func (g *outboundGateway) count(fn func(s *outboundStats)) {
	g.mu.Lock()
	fn(&g.mu.stats)
	g.mu.Unlock()
}

// outbound counts one outbound frame and queues its accepted.
func (g *outboundGateway) outbound(id, customer []byte, now time.Time) {
	g.mu.Lock()
	s := &g.mu.stats
	s.frames++
	if _, ok := g.mu.seen[string(id)]; ok {
		s.redelivered++
	} else {
		g.mu.seen[string(id)] = struct{}{}
		s.unique++
		if bytes.HasPrefix(customer, g.segmentPrefix) {
			s.segment++
			if g.mu.first.IsZero() {
				g.mu.first = now
			}
			g.mu.last = now
		} else {
			s.foreign++
		}
	}
	g.mu.Unlock()
	select {
	case g.accepts <- string(id):
	default:
		g.count(func(s *outboundStats) { s.dropped++ })
	}
}

// write sends an accepted per outbound, flushing whenever none is waiting,
// and the pongs.
func (g *outboundGateway) write() {
	for {
		select {
		case id := <-g.accepts:
			// Outbound ids are written back as they came: raw JSON string
			// contents.
			if err := g.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"accepted","id":"`+id+`"}`)); err != nil {
				g.setWriteErr(err)
				return
			}
			if len(g.accepts) > 0 {
				continue
			}
		case data := <-g.pong:
			if err := g.ws.WriteControl(websocket.PongMessage, []byte(data), time.Time{}); err != nil {
				g.setWriteErr(err)
				return
			}
		case <-g.done:
			return
		}
		if err := g.bc.Flush(); err != nil {
			g.setWriteErr(err)
			return
		}
	}
}

func (g *outboundGateway) setWriteErr(err error) {
	if !g.closing.Load() {
		g.writeErr = err
	}
}

// uniqueOutbounds is how many different outbounds arrived.
func (g *outboundGateway) uniqueOutbounds() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.stats.unique
}

// snapshot returns the counts, with the first and last segment outbound's
// arrival since the broadcast's 202: the first may come before the 202
// does, so it may be negative.
func (g *outboundGateway) snapshot() outboundStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.mu.stats
	s.errors = make(map[string]int64, len(g.mu.errorsByCode))
	for code, n := range g.mu.errorsByCode {
		s.errors[code] = n
	}
	if !g.mu.first.IsZero() && !g.mu.start.IsZero() {
		s.arrived = true
		s.firstAfter, s.lastAfter = g.mu.first.Sub(g.mu.start), g.mu.last.Sub(g.mu.start)
	}
	return s
}

// close ends the connection and its goroutines.
func (g *outboundGateway) close() {
	if g.closing.Swap(true) {
		return
	}
	close(g.done)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if g.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(controlTimeout)) == nil {
		_ = g.bc.Flush()
	}
	_ = g.ws.Close()
	g.wg.Wait()
}
