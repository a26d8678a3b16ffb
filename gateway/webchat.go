package gateway

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
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

func (h *webchatHub) add(c *visitorConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns[c.customer] = append(h.conns[c.customer], c)
	if len(h.seen) >= webchatSeenMax {
		clear(h.seen) // forgotten customers' outbounds go to gateways until they chat again
	}
	h.seen[c.customer] = struct{}{}
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
// keeps it for the history of the next one (accepted).
func (h *webchatHub) deliver(o journey.Outbound, receipt func(journey.Receipt)) {
	h.mu.Lock()
	cs := slices.Clone(h.conns[o.Customer])
	h.mu.Unlock()
	f := webchatMessage{Type: "message", ID: o.ID, From: fromOf(o.Actor), Text: o.Text, Seq: o.Seq}
	shown := false
	for _, c := range cs {
		if c.write(f) == nil {
			shown = true
		}
	}
	kind := journey.ReceiptAccepted
	if shown {
		kind = journey.ReceiptDelivered
	}
	receipt(journey.Receipt{Outbound: o.ID, Kind: kind})
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

type visitorConn struct {
	ws       *websocket.Conn
	customer string
	mu       sync.Mutex // one writer
}

func (c *visitorConn) write(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(webchatWriteWait))
	return c.ws.WriteJSON(v)
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
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, CheckOrigin: p.originAllowed}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(webchatFrameMax)
	keep, stopPings := p.keepWebchatAlive(ws)
	defer stopPings()
	c := &visitorConn{ws: ws, customer: customer}
	p.webchat.add(c)
	defer func() {
		p.webchat.remove(c)
		_ = ws.Close()
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
			_ = c.write(map[string]string{"type": "error", "code": string(journey.CodeBadRequest), "message": err.Error()})
			continue
		}
		res := p.ingest(r.Context(), channels.WebchatEvent(v, f))
		if res.Reject != nil {
			_ = c.write(map[string]string{"type": "error", "id": f.ID, "code": string(res.Reject.Code), "message": res.Reject.Message})
			continue
		}
		_ = c.write(map[string]any{"type": "ack", "id": f.ID, "seq": res.Ack.Seq, "duplicate": res.Ack.Duplicate})
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
		if c.write(m) != nil {
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
