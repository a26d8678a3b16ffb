package gateway

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

var upgrader = websocket.Upgrader{
	// A request that is not a WebSocket handshake gets the JSON error of
	// every other endpoint, not gorilla's plain-text page.
	Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
		code := journey.CodeBadRequest
		if status == http.StatusForbidden {
			code = journey.CodeForbidden
		}
		writeError(w, journey.Rejectf(code, "websocket handshake: %v", reason))
	},
	// gorilla answers the handshake only: frames are read by wsreader.go
	// and written by wswriter.go. No read buffer of its own (it takes
	// net/http's, which the handshake had allocated anyway, and which goes
	// with gorilla's Conn), a write buffer from the pool for the handshake.
	ReadBufferSize:  0,
	WriteBufferSize: 4096,
	WriteBufferPool: &sync.Pool{},
	// The route table checks the Origin of the token WebSockets against
	// auth.allowed_origins before authenticating (routes.go).
	CheckOrigin: func(*http.Request) bool { return true },
	// A browser that carries its token in a bearer subprotocol also
	// offers this one, which the server picks (never echoing the token).
	Subprotocols: []string{subprotocol},
}

// serveChannelWS is GET /v1/channels/ws (PROTOCOL section 2).
func (s *Server) serveChannelWS(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	if rej := s.admitConn(); rej != nil {
		writeError(w, rej)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.releaseReservation()
		return // the upgrader has answered
	}
	c, rej := s.register(ws, p)
	if rej != nil {
		refuseUpgraded(ws, rej)
		return
	}
	s.metrics.connections.WithLabelValues("channel").Inc()
	// The writer starts when there is something to write (wspeer.go).
	c.startPinging()
	// The reader gets a goroutine of its own and the handler returns, so
	// net/http lets go of what it keeps for a request (its 4 KiB write
	// buffer, the request, the connection state): ~5 KiB per idle
	// connection.
	go c.serve()
}

// serve reads the connection until it ends. register counted it in the
// server's goroutines.
func (c *channelConn) serve() {
	defer c.s.wg.Done()
	defer c.s.metrics.connections.WithLabelValues("channel").Dec()
	c.readLoop()
	if c.draining.Load() {
		<-c.closed // Shutdown answers what is in flight, then closes
	}
	c.close()
	c.s.deregister(c)
	c.finished() // the writer has sent the close frame and closed the socket
}

// admitConn refuses an upgrade when shutting down or at the connection
// limit, and otherwise reserves a slot before the upgrade answers, so a
// client that has seen its upgrade succeed is already counted.
func (s *Server) admitConn() *journey.Rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closing {
		return journey.Rejectf(journey.CodeUnavailable, "shutting down")
	}
	if len(s.mu.conns)+s.mu.reserved >= s.cfg.MaxConnections {
		return journey.Rejectf(journey.CodeUnavailable, "too many connections")
	}
	if rej := s.memoryRefusal("connect again"); rej != nil {
		return rej
	}
	s.mu.reserved++
	return nil
}

// releaseReservation gives back the slot of an upgrade that failed.
func (s *Server) releaseReservation() {
	s.mu.Lock()
	s.mu.reserved--
	s.mu.Unlock()
}

// register turns the reservation admitConn made into a connection.
func (s *Server) register(ws *websocket.Conn, p principal) (*channelConn, *journey.Rejection) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.reserved--
	if s.mu.closing {
		return nil, journey.Rejectf(journey.CodeUnavailable, "shutting down")
	}
	if revokedBy(p, s.auth.Load()) { // revoked since the upgrade authenticated
		return nil, s.refuseRevoked(p)
	}
	s.connIDs++
	c := &channelConn{
		wsPeer: newPeer(s, "channel", ws, p, s.cfg.SendQueue), id: s.connIDs,
		credit:   make(chan struct{}, s.cfg.ConnCredit),
		resolveQ: newQueue[pendingEvent](s.cfg.ConnCredit),
	}
	s.mu.conns[c] = struct{}{}
	s.wg.Add(1) // under the lock: Shutdown cannot be waiting yet
	s.outbound.add(c)
	return c, nil
}

// refuseUpgraded closes a WebSocket that register refused after its
// upgrade: 4001 "token revoked" when its token went meanwhile (as a live
// connection's would), else 1013 try again later (shutting down).
func refuseUpgraded(ws *websocket.Conn, rej *journey.Rejection) {
	code := websocket.CloseTryAgainLater
	if rej.Code == journey.CodeUnauthorized {
		code = CloseTokenRevoked
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, rej.Message), time.Now().Add(time.Second))
	_ = ws.Close()
}

// refuseRevoked is the refusal of a connection whose token was revoked
// between its upgrade and its registration, logged as SetTokens logs the
// connections it closes (a reload that raced a dial logged nothing).
func (s *Server) refuseRevoked(p principal) *journey.Rejection {
	s.log.Info("token revoked: closing its connection", "token", p.auditName())
	s.metrics.revoked.Inc()
	return journey.Rejectf(journey.CodeUnauthorized, tokenRevoked)
}

// registerPeer tracks an agent desk like register a channel connection.
func (s *Server) registerPeer(d drainer) *journey.Rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.reserved--
	if s.mu.closing {
		return journey.Rejectf(journey.CodeUnavailable, "shutting down")
	}
	if p := d.principal(); revokedBy(p, s.auth.Load()) {
		return s.refuseRevoked(p)
	}
	s.mu.conns[d] = struct{}{}
	s.wg.Add(1)
	return nil
}

func (s *Server) deregisterPeer(d drainer) {
	s.mu.Lock()
	delete(s.mu.conns, d)
	s.mu.Unlock()
}

func (s *Server) deregister(c *channelConn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	s.mu.Unlock()
	s.outbound.remove(c)
}

// helloChannelsMax bounds the channels one hello may name.
const helloChannelsMax = journey.HelloChannelsMax

// pongQueue bounds the pongs waiting for the writer.
const pongQueue = 16

// channelConn is one channel gateway's WebSocket.
type channelConn struct {
	*wsPeer
	id       uint64        // names it to the customer actors (outbounds come back to it)
	credit   chan struct{} // one token per event in flight
	draining atomic.Bool
	frameBuf clientFrame // the frame being handled (the reading goroutine's own)

	// Events that need resolving, and every event behind one, go through
	// the resolver in order; resolving counts them.
	resolveQ     *queue[pendingEvent]
	resolving    atomic.Int64
	resolverOnce sync.Once

	mu struct {
		sync.Mutex
		channels []string                    // from hello: outbound channels served
		batches  []*batchWait                // batches not yet answered, in frame order
		inflight map[string]journey.Outbound // outbounds sent, not yet accepted or confirmed
	}
}

type pendingEvent struct {
	event journey.Event
	done  func(actors.Result)
}

// batchWait collects the results of one batch frame.
type batchWait struct {
	id        string
	ids       []string
	results   []actors.Result
	remaining int
}

func (c *channelConn) readLoop() { c.readBursts(c.frame, c.draining.Load) }

// frame handles one frame the gateway sent; false when the connection is
// to end.
func (c *channelConn) frame(data []byte) bool {
	start := time.Now()
	if w, ok := decodeFrameOnePass(data); ok {
		defer w.release()
		events := w.events()
		if !c.spend(len(events)) {
			return false
		}
		var b *batchWait
		if w.batch {
			b = c.newBatch(strings.Clone(w.b.ID), len(events))
		}
		for i := range events {
			e := events[i].event()
			rej := journey.ValidateInbound(&e) // before e is passed: it sets fields
			c.handleEvent(e, rej, b, i, start)
		}
		return true
	}
	f := &c.frameBuf
	// The frame's events point into data: not kept past its handling (a
	// large batch's data is not pooled, and an idle connection would hold it).
	defer func() { f.Event = nil; clear(f.Events) }()
	rej := decodeFrameInto(data, f)
	if rej != nil {
		c.enqueue(errorFrame("", rej))
		return true
	}
	// The token's rate: an event counts one, a batch its events,
	// any other frame one. Over it the reader waits here, and what
	// the client sends next waits in the socket.
	cost := 1
	if f.Type == "batch" {
		cost = max(1, min(len(f.Events), journey.BatchMaxEvents))
	}
	if !c.spend(cost) {
		return false
	}
	switch f.Type {
	case "hello":
		c.hello(*f)
	case "event":
		if len(f.Event) == 0 {
			c.enqueue(errorFrame("", journey.Rejectf(journey.CodeBadRequest, "event frame without event")))
			return true
		}
		c.handle(f.Event, nil, 0, start)
	case "batch":
		c.batch(*f, start)
	case journey.ReceiptAccepted, journey.ReceiptDelivered, journey.ReceiptFailed:
		c.receipt(*f)
	default:
		c.enqueue(errorFrame(f.ID, journey.Rejectf(journey.CodeBadRequest, "unknown frame type %q", f.Type)))
	}
	return true
}

func (c *channelConn) hello(f clientFrame) {
	for _, ch := range f.Channels {
		probe := journey.Event{ID: "hello", Customer: "hello", Type: "hello", Channel: ch}
		if rej := journey.ValidateInbound(&probe); rej != nil {
			c.enqueue(errorFrame(f.ID, rej))
			return
		}
	}
	if len(f.Channels) > helloChannelsMax {
		c.enqueue(errorFrame(f.ID, journey.Rejectf(journey.CodeTooLarge, "hello with %d channels; at most %d", len(f.Channels), helloChannelsMax)))
		return
	}
	// ready first: outbounds that waited for these channels follow it.
	c.enqueue([]byte(`{"type":"ready"}`))
	c.s.outbound.serve(c, slices.Compact(slices.Sorted(slices.Values(f.Channels))))
}

func (c *channelConn) batch(f clientFrame, start time.Time) {
	n := len(f.Events)
	switch {
	case n == 0:
		c.enqueue(errorFrame(f.ID, journey.Rejectf(journey.CodeBadRequest, "batch without events")))
		return
	case n > journey.BatchMaxEvents:
		c.enqueue(errorFrame(f.ID, journey.Rejectf(journey.CodeTooLarge, "batch of %d events; at most %d", n, journey.BatchMaxEvents)))
		return
	}
	b := c.newBatch(f.ID, n)
	for i, raw := range f.Events {
		c.handle(raw, b, i, start)
	}
}

// newBatch is a batch of n events to answer in one frame, in order with
// the connection's other batches.
func (c *channelConn) newBatch(id string, n int) *batchWait {
	b := &batchWait{id: id, ids: make([]string, n), results: make([]actors.Result, n), remaining: n}
	c.mu.Lock()
	c.mu.batches = append(c.mu.batches, b)
	c.mu.Unlock()
	return b
}

// handle decodes one event, takes a credit and hands it on, keeping the
// connection's order while earlier events resolve.
func (c *channelConn) handle(raw []byte, b *batchWait, i int, start time.Time) {
	e, rej := decodeEvent(raw)
	c.handleEvent(e, rej, b, i, start)
}

// handleEvent is handle for an event decoded (rej: refused, e as far as
// it was read).
func (c *channelConn) handleEvent(e journey.Event, rej *journey.Rejection, b *batchWait, i int, start time.Time) {
	if rej != nil {
		c.result(b, i, e.ID, actors.Result{Reject: rej}, start)
		return
	}
	if !c.takeCredit() {
		return
	}
	id := e.ID
	done := func(r actors.Result) {
		c.result(b, i, id, r, start)
		<-c.credit // after the answer is queued: drainAndClose waits for both
	}
	if needsResolve(&e) || c.resolving.Load() > 0 {
		c.resolving.Add(1)
		c.resolverOnce.Do(func() { c.s.goTracked(c.resolveLoop) })
		if !c.resolveQ.push(pendingEvent{event: e, done: done}) {
			panic("gateway: resolve queue over the connection's credit")
		}
		return
	}
	c.s.deliver(c.ctx, e, c.id, false, done)
}

// takeCredit takes a token of the connection's credit, waiting while it
// has none; false once the connection closed. Most events find credit: a
// send alone locks one channel, where a select locks both.
func (c *channelConn) takeCredit() bool {
	select {
	case <-c.closed:
		return false
	default:
	}
	select {
	case c.credit <- struct{}{}:
		return true
	default:
	}
	select {
	case c.credit <- struct{}{}:
		return true
	case <-c.closed:
		return false
	}
}

// resolveLoop resolves events one at a time, in the order they arrived.
func (c *channelConn) resolveLoop() {
	for {
		select {
		case <-c.resolveQ.ready:
			for p, ok := c.resolveQ.pop(); ok; p, ok = c.resolveQ.pop() {
				c.s.deliver(c.ctx, p.event, c.id, false, p.done)
				c.resolving.Add(-1)
			}
		case <-c.closed:
			return
		}
	}
}

func (c *channelConn) result(b *batchWait, i int, id string, r actors.Result, start time.Time) {
	if b == nil && r.Reject == nil {
		// The writer writes and counts it (outFrame.ack).
		if !c.enqueueFrame(outFrame{ack: r.Ack, at: monoOf(start)}) {
			c.s.count(r, start)
		}
		return
	}
	c.s.count(r, start)
	if b == nil {
		buf := outBufs.get()
		*buf = appendAckFrame(*buf, id, r)
		c.enqueueOwned(buf)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b.ids[i], b.results[i] = id, r
	b.remaining--
	// acks frames go out in the order of the batch frames.
	for len(c.mu.batches) > 0 && c.mu.batches[0].remaining == 0 {
		head := c.mu.batches[0]
		c.mu.batches[0] = nil
		c.mu.batches = c.mu.batches[1:]
		c.enqueue(acksFrame(head.id, head.ids, head.results))
	}
}

// drainAndClose stops reading, waits (up to ctx) until every event in flight
// is answered and written, then closes.
func (c *channelConn) drainAndClose(ctx context.Context) {
	c.draining.Store(true)
	c.keep.stopReading()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(c.credit) > 0 || c.send.len() > 0 {
		select {
		case <-ctx.Done():
			c.close()
			return
		case <-c.closed:
			return
		case <-tick.C:
		}
	}
	c.close()
}
