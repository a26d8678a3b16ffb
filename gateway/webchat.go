package gateway

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/channels"
	"github.com/throughline/throughline/journey"
)

// Web chat (PROTOCOL 9): the site's backend asks for a visitor token; the
// visitor's browser holds a WebSocket (Origin in allowed_origins) that
// carries its messages in and every outbound on web to that customer out,
// with the earlier messages of both sides when it connects again.

// Limits of web chat.
const (
	webchatHistoryMax  = 50  // messages sent on (re)connect
	webchatHistoryScan = 500 // latest events read to find them
	webchatSeenMax     = 100_000
	webchatFrameMax    = journey.WebchatFrameMaxBytes
	webchatWriteWait   = 10 * time.Second
	webchatBodyMax     = journey.WebchatBodyMaxBytes
	// webchatQueueMax bounds the frames waiting for a visitor's socket:
	// a reconnect's history and then some. A visitor whose socket is
	// that far behind is too slow: it is closed, and its next connection
	// gets the history.
	webchatQueueMax = 2 * webchatHistoryMax
	// webchatSocketsMax bounds a customer's open visitor sockets (tabs,
	// devices): every outbound is written to each. One more is refused
	// (429 rate_limited), not put in place of the oldest: the widget
	// reconnects half a second after a close, so evicting would have a
	// customer's tabs take each other's place for as long as they are open.
	webchatSocketsMax = 8
)

//go:embed webchat/widget.js
var widgetJS []byte

//go:embed webchat/shop.html
var shopHTML []byte

type webchatHub struct {
	mu    sync.Mutex
	conns map[string][]*visitorConn // customer -> open visitor sockets
	seen  map[string]struct{}       // customers who chatted since start (bounded)
}

func newWebchatHub() *webchatHub {
	return &webchatHub{conns: map[string][]*visitorConn{}, seen: map[string]struct{}{}}
}

// knows: the customer chats through web chat (outbounds on web are then
// Throughline's to deliver).
func (h *webchatHub) knows(customer string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.seen[customer]
	return ok || len(h.conns[customer]) > 0
}

// full says the customer has webchatSocketsMax sockets open.
func (h *webchatHub) full(customer string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns[customer]) >= webchatSocketsMax
}

// add puts a visitor's socket on the hub; false, and not put, when the
// customer has webchatSocketsMax already (one that opened since full).
func (h *webchatHub) add(c *visitorConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns[c.customer]) >= webchatSocketsMax {
		return false
	}
	h.conns[c.customer] = append(h.conns[c.customer], c)
	if len(h.seen) >= webchatSeenMax {
		clear(h.seen) // forgotten customers' outbounds go to gateways until they chat again
	}
	h.seen[c.customer] = struct{}{}
	return true
}

func (h *webchatHub) remove(c *visitorConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := slices.DeleteFunc(h.conns[c.customer], func(x *visitorConn) bool { return x == c })
	if len(cs) == 0 {
		delete(h.conns, c.customer)
	} else {
		h.conns[c.customer] = cs
	}
}

// deliver shows an outbound in the customer's open chats (delivered), or
// keeps it for the history of the next one (accepted). It never blocks:
// the outbound router calls it for the customer's actor. Each socket's
// writer shows it, and the receipt comes once every one of them has
// written it or failed to.
func (h *webchatHub) deliver(o journey.Outbound, receipt func(journey.Receipt)) {
	h.mu.Lock()
	cs := slices.Clone(h.conns[o.Customer])
	h.mu.Unlock()
	if len(cs) == 0 {
		receipt(journey.Receipt{Outbound: o.ID, Kind: journey.ReceiptAccepted})
		return
	}
	frame, err := json.Marshal(webchatMessage{Type: "message", ID: o.ID, From: fromOf(o.Actor), Text: o.Text, Seq: o.Seq})
	if err != nil {
		panic("gateway: a web chat message does not encode: " + err.Error()) // strings and a number
	}
	var left atomic.Int32
	var shown atomic.Bool
	left.Store(int32(len(cs)))
	done := func(ok bool) {
		if ok {
			shown.Store(true)
		}
		if left.Add(-1) == 0 {
			kind := journey.ReceiptAccepted
			if shown.Load() {
				kind = journey.ReceiptDelivered
			}
			receipt(journey.Receipt{Outbound: o.ID, Kind: kind})
		}
	}
	for _, c := range cs {
		c.post(frame, done)
	}
}

func (h *webchatHub) closeAll() {
	h.mu.Lock()
	var all []*visitorConn
	for _, cs := range h.conns {
		all = append(all, cs...)
	}
	h.mu.Unlock()
	for _, c := range all {
		_ = c.ws.Close()
	}
}

// webchatMessage is a message frame to the browser.
type webchatMessage struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	From    string `json:"from"` // visitor, bot, agent or system
	Text    string `json:"text"`
	Seq     uint64 `json:"seq,omitempty"`
	History bool   `json:"history,omitempty"`
}

func fromOf(actor string) string {
	switch {
	case actor == journey.ActorCustomer:
		return "visitor"
	case actor == journey.ActorAI:
		return "bot"
	case strings.HasPrefix(actor, journey.ActorAgentPrefix):
		return "agent"
	}
	return "system"
}

// visitorConn is a visitor's socket. Its writer goroutine writes the
// frames queued for it in order, so that no caller waits for a slow
// browser: an outbound's delivery posts (never blocks; a full queue closes
// the socket), the visitor's own reader queues its acks and waits for
// room.
type visitorConn struct {
	ws       *websocket.Conn
	customer string

	mu     sync.Mutex // closed, and post's sends on out (done is told once)
	closed bool
	out    chan visitorFrame
	quit   chan struct{} // closed by stop
	ended  chan struct{} // closed by the writer as it returns
}

// visitorFrame is an encoded frame and who waits to hear it was written.
type visitorFrame struct {
	b    []byte
	done func(written bool) // nil: nobody
}

func newVisitorConn(ws *websocket.Conn, customer string) *visitorConn {
	c := &visitorConn{ws: ws, customer: customer, out: make(chan visitorFrame, webchatQueueMax),
		quit: make(chan struct{}), ended: make(chan struct{})}
	go c.writer()
	return c
}

// writer writes the queued frames until stop. After a failed write it
// writes no more (the socket is closed); every frame's done is told.
func (c *visitorConn) writer() {
	defer close(c.ended)
	failed := false
	for {
		select {
		case f := <-c.out:
			if !failed {
				_ = c.ws.SetWriteDeadline(time.Now().Add(webchatWriteWait))
				if err := c.ws.WriteMessage(websocket.TextMessage, f.b); err != nil {
					failed = true
					_ = c.ws.Close() // the reader ends, and the handler stops this writer
				}
			}
			if f.done != nil {
				f.done(!failed)
			}
		case <-c.quit:
			for {
				select {
				case f := <-c.out:
					if f.done != nil {
						f.done(false)
					}
				default:
					return
				}
			}
		}
	}
}

// post queues a frame without waiting. A socket closed, or too slow to
// have room, does not show it: done(false), and a slow one is closed.
func (c *visitorConn) post(b []byte, done func(bool)) {
	c.mu.Lock()
	queued := false
	if !c.closed {
		select {
		case c.out <- visitorFrame{b: b, done: done}:
			queued = true
		default:
		}
	}
	closed := c.closed
	c.mu.Unlock()
	if queued {
		return
	}
	if !closed {
		_ = c.ws.Close() // too slow
	}
	if done != nil {
		done(false)
	}
}

// send queues v's frame, waiting for room: the visitor's own goroutines
// (the reader's acks, a reconnect's history) wait for its socket. False:
// the socket is closed. (A frame queued as the writer stops is dropped
// with the connection: nobody waits for it.)
func (c *visitorConn) send(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		panic("gateway: a web chat frame does not encode: " + err.Error())
	}
	select {
	case c.out <- visitorFrame{b: b}:
		return true
	case <-c.quit:
		return false
	}
}

// stop ends the writer once the socket is closed (a write in progress
// ends with it), and tells the frames still queued that they were not
// written.
func (c *visitorConn) stop() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.quit)
	}
	c.mu.Unlock()
	<-c.ended
}

// serveWidget is GET /v1/webchat/widget.js.
func serveWidget(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(widgetJS)
}

// serveShop is GET /demo/shop: the built-in demo's shop page.
func serveShop(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(shopHTML)
}

// issueToken is POST /v1/webchat/token (role channel) and the demo shop's
// POST /demo/shop/token: a signed visitor token.
func (p *providers) issueToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Visitor  string            `json:"visitor"`
		Identity map[string]string `json:"identity"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, webchatBodyMax)).Decode(&req); err != nil {
		writeError(w, journey.Rejectf(journey.CodeBadRequest, "body: %v", err))
		return
	}
	if rej := journey.ValidateID("visitor", req.Visitor); rej != nil {
		writeError(w, rej)
		return
	}
	if len(req.Identity) > journey.IdentitiesPerEvent-1 {
		writeError(w, journey.Rejectf(journey.CodeBadRequest, "too many identities"))
		return
	}
	for k, v := range req.Identity {
		n, rej := journey.NormalizeIdentity(k, v)
		if rej != nil || k == "web" {
			writeError(w, journey.Rejectf(journey.CodeBadRequest, "identity %q: not usable", k))
			return
		}
		req.Identity[k] = n
	}
	exp := time.Now().Add(p.cfg.Webchat.TokenTTL)
	tok := channels.SignVisitor(p.cfg.Webchat.Secret, channels.Visitor{ID: req.Visitor, Identity: req.Identity, Expires: exp.Unix()})
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires": exp.UTC().Format(time.RFC3339)})
}

func (p *providers) originAllowed(r *http.Request) bool {
	return slices.Contains(p.cfg.Webchat.AllowedOrigins, r.Header.Get("Origin"))
}

// serveWebchatWS is GET /v1/webchat/ws?token=...
func (p *providers) serveWebchatWS(w http.ResponseWriter, r *http.Request) {
	if !p.originAllowed(r) {
		forbidden(w, "Origin is not in channels.webchat.allowed_origins")
		return
	}
	v, err := channels.VerifyVisitor(p.cfg.Webchat.Secret, r.URL.Query().Get("token"), time.Now())
	if err != nil {
		writeError(w, journey.Rejectf(journey.CodeUnauthorized, "visitor token is missing, wrong or expired"))
		return
	}
	if rej := p.s.memoryRefusal("connect again"); rej != nil {
		writeError(w, rej)
		return
	}
	ids := channels.VisitorIdentity(v)
	for k, val := range ids {
		n, rej := journey.NormalizeIdentity(k, val)
		if rej != nil {
			writeError(w, rej)
			return
		}
		ids[k] = n
	}
	customer, _, err := p.s.rt.Resolve(r.Context(), &journey.Event{ID: "webchat", Identity: ids})
	if err != nil {
		writeError(w, err)
		return
	}
	if p.webchat.full(customer) {
		writeError(w, journey.Rejectf(journey.CodeRateLimited, "this visitor has %d web chat sockets open already", webchatSocketsMax))
		return
	}
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, CheckOrigin: p.originAllowed}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(webchatFrameMax)
	c := newVisitorConn(ws, customer)
	if !p.webchat.add(c) {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "too many web chat sockets"), time.Now().Add(webchatWriteWait))
		_ = ws.Close()
		c.stop()
		return
	}
	keep, stopPings := p.keepWebchatAlive(ws)
	defer stopPings()
	defer func() {
		p.webchat.remove(c)
		_ = ws.Close()
		c.stop()
	}()
	p.sendHistory(r.Context(), c, v.ID)
	for {
		keep.alive() // the time spent storing the last message is not the visitor's silence
		_, raw, err := ws.ReadMessage()
		if err != nil {
			keep.ended(p.s.metrics, "webchat", err)
			return
		}
		f, err := channels.DecodeWebchatFrame(raw)
		if rej := journey.CheckJSONUTF8("", raw); err == nil && rej != nil {
			err = rej
		}
		if err != nil {
			c.send(map[string]string{"type": "error", "code": string(journey.CodeBadRequest), "message": err.Error()})
			continue
		}
		res := p.ingest(r.Context(), channels.WebchatEvent(v, f))
		if res.Reject != nil {
			c.send(map[string]string{"type": "error", "id": f.ID, "code": string(res.Reject.Code), "message": res.Reject.Message})
			continue
		}
		c.send(map[string]any{"type": "ack", "id": f.ID, "seq": res.Ack.Seq, "duplicate": res.Ack.Duplicate})
	}
}

// sendHistory sends the latest messages of both sides on web.
func (p *providers) sendHistory(ctx context.Context, c *visitorConn, visitor string) {
	jc, exists, err := p.s.rt.Context(ctx, c.customer)
	if err != nil || !exists {
		return
	}
	after := uint64(0)
	if jc.Seq > webchatHistoryScan {
		after = jc.Seq - webchatHistoryScan
	}
	events, _, _, err := p.s.rt.Timeline(ctx, c.customer, after, webchatHistoryScan)
	if err != nil {
		return
	}
	var msgs []webchatMessage
	own := eventIDPrefix(visitor)
	for _, e := range events {
		if e.Channel != channels.ChannelWeb {
			continue
		}
		switch {
		case e.Type == journey.TypeMessageReceived && e.Actor == journey.ActorCustomer:
			msgs = append(msgs, webchatMessage{Type: "message", ID: strings.TrimPrefix(e.ID, own), From: "visitor", Text: e.Text, Seq: e.Seq, History: true})
		case e.Type == journey.TypeMessageSent:
			msgs = append(msgs, webchatMessage{Type: "message", ID: journey.OutboundID(c.customer, e.Seq), From: fromOf(e.Actor), Text: e.Text, Seq: e.Seq, History: true})
		}
	}
	if len(msgs) > webchatHistoryMax {
		msgs = msgs[len(msgs)-webchatHistoryMax:]
	}
	for _, m := range msgs {
		if !c.send(m) {
			return
		}
	}
}

// eventIDPrefix is the prefix of a visitor's event ids (channels.WebchatEvent).
func eventIDPrefix(visitor string) string { return "wc:" + visitor + ":" }

// keepWebchatAlive pings a visitor's socket every WSPingInterval and closes
// it when nothing came back within WSIdleTimeout; stop ends the pings.
// gorilla's WriteControl may be called beside the connection's writer.
func (p *providers) keepWebchatAlive(ws *websocket.Conn) (keep *keepalive, stop func()) {
	keep = newKeepalive(ws.NetConn(), p.s.cfg.WSIdleTimeout)
	ws.SetPongHandler(func(string) error { keep.alive(); return nil })
	ws.SetPingHandler(func(data string) error {
		keep.alive()
		_ = ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(webchatWriteWait))
		return nil
	})
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(p.s.cfg.WSPingInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(webchatWriteWait)) != nil {
					return
				}
			case <-done:
				return
			}
		}
	}()
	return keep, func() { close(done) }
}
