package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// Limits of agent desks.
const (
	// ReplayBufferMax bounds the live events a subscription holds while its
	// stored events are replayed; past it the desk is too slow and is
	// disconnected (it reconnects with after and misses nothing).
	ReplayBufferMax = 10000
	// DeskSubscriptionsMax bounds one desk's subscriptions.
	DeskSubscriptionsMax = 256
	// DeskCredit bounds a desk's frames in flight (sent to a customer or
	// routing and not yet answered); past it the reader stops reading, as
	// a channel connection's credit does.
	DeskCredit = 256
	replayPage = 1000
)

var subscriptionIDs atomic.Uint64

// agentConn is one agent desk's WebSocket (PROTOCOL section 4): presence,
// offers and assignments, replies, transfers and wrap-ups, and
// subscriptions to customers' live timelines with no gaps.
type agentConn struct {
	*wsPeer
	agent      string // "" for a supervisor
	supervisor bool
	credit     chan struct{} // one token per frame in flight
	mu         struct {
		sync.Mutex
		subs map[string]*subscription // customer -> its subscription
	}
	sent sentEvents // the event frames sent, to send each once
}

// sentEvents remembers, per customer, the seqs of the latest event frames
// a desk connection was sent, so that an event that reaches it twice is
// sent once: an agent assigned to a customer it also subscribes to gets
// the customer's events as desk pushes (Desks.Deliver) and through the
// subscription, its replay included (TestClusterDeskAcrossNodes saw seq 13
// twice after a failover: pushed to the new connection before its
// subscribe was read, and replayed).
type sentEvents struct {
	mu sync.Mutex
	by map[string]*[sentSeqsKept]uint64 // slot seq % sentSeqsKept
}

const (
	// sentSeqsKept is how many of a customer's latest seqs are kept: the
	// two ways an event comes are a few events apart at most.
	sentSeqsKept = 16
	// sentCustomersMax bounds the customers remembered; past it they are
	// forgotten (an event could then come twice again).
	sentCustomersMax = 1024
)

// first reports whether the customer's event seq was not sent yet, and
// records it as sent.
func (s *sentEvents) first(customer string, seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.by[customer]
	if r == nil {
		if s.by == nil || len(s.by) >= sentCustomersMax {
			s.by = map[string]*[sentSeqsKept]uint64{}
		}
		r = new([sentSeqsKept]uint64)
		s.by[customer] = r
	}
	slot := &r[seq%sentSeqsKept]
	if *slot == seq {
		return false
	}
	*slot = seq
	return true
}

// forget drops what was sent of a customer: an erased customer's id may
// name a new customer, whose seqs start again.
func (s *sentEvents) forget(customer string) {
	s.mu.Lock()
	delete(s.by, customer)
	s.mu.Unlock()
}

// sendEvent queues an event frame unless the event was sent already.
func (a *agentConn) sendEvent(customer string, e *journey.Event) {
	if a.sent.first(customer, e.Seq) {
		a.enqueue(eventFrame(customer, e))
	}
}

// pushEvent sends an assigned customer's event pushed to the desk
// (Desks.Deliver). While a subscription to the customer replays from the
// store, the push waits with the subscription's live events and goes out
// after the replay, in seq order: sent at once it could overtake the
// replay.
func (a *agentConn) pushEvent(customer string, e *journey.Event, frame []byte) {
	a.mu.Lock()
	sub := a.mu.subs[customer]
	a.mu.Unlock()
	if sub != nil {
		sub.mu.Lock()
		if sub.replay {
			if len(sub.buf)+len(sub.pushed) >= ReplayBufferMax {
				sub.mu.Unlock()
				a.close()
				return
			}
			sub.pushed = append(sub.pushed, *e)
			sub.mu.Unlock()
			return
		}
		sub.mu.Unlock()
	}
	if a.sent.first(customer, e.Seq) {
		a.enqueue(frame)
	}
}

// subscription is one customer followed by a desk: live events wait in buf,
// and the assigned customer's pushes in pushed, while the stored ones are
// replayed.
type subscription struct {
	id       uint64
	customer string
	mu       sync.Mutex
	replay   bool
	buf      []journey.Event
	pushed   []journey.Event
}

// agentFrame is a desk's frame.
type agentFrame struct {
	Type         string          `json:"type"`
	Ref          string          `json:"ref"`
	Status       string          `json:"status"`
	Reason       string          `json:"reason"`
	Capacity     json.RawMessage `json:"capacity"`
	Conversation string          `json:"conversation"`
	Customer     string          `json:"customer"`
	Text         string          `json:"text"`
	Queue        string          `json:"queue"`
	Agent        string          `json:"agent"`
	Disposition  string          `json:"disposition"`
	Note         string          `json:"note"`
	After        *uint64         `json:"after"`
}

// serveAgentWS is GET /v1/agents/ws.
func (s *Server) serveAgentWS(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	if rej := s.admitConn(); rej != nil {
		writeError(w, rej)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.releaseReservation()
		return
	}
	a := &agentConn{wsPeer: newPeer(s, "agent", ws, p, s.cfg.SendQueue), agent: p.agent, supervisor: p.may(RoleSupervisor),
		credit: make(chan struct{}, DeskCredit)}
	a.mu.subs = map[string]*subscription{}
	if rej := s.registerPeer(a); rej != nil {
		refuseUpgraded(ws, rej)
		return
	}
	s.metrics.connections.WithLabelValues("agent").Inc()
	defer s.metrics.connections.WithLabelValues("agent").Dec()
	defer s.wg.Done()
	if a.agent != "" {
		s.desks.add(a)
		s.rt.DeskConnected(a.agent, true)
	}
	a.startPinging()
	a.readLoop()
	a.close()
	if a.agent != "" {
		s.desks.remove(a)
		s.rt.DeskConnected(a.agent, false)
	}
	a.unsubscribeAll()
	s.deregisterPeer(a)
	a.finished() // the writer has sent the close frame and closed the socket
}

func (a *agentConn) drainAndClose(context.Context) { a.close() }

func (a *agentConn) readLoop() { a.readBursts(a.frame, func() bool { return false }) }

// frame handles one frame the desk sent; false when the connection is to
// end.
func (a *agentConn) frame(data []byte) bool {
	if !a.spend(1) { // the token's rate: one a frame
		return false
	}
	var f agentFrame
	if err := json.Unmarshal(data, &f); err != nil || f.Type == "" {
		// A frame whose fields have the wrong types still carries its
		// ref, and the desk waits for the answer to it.
		var only struct {
			Ref string `json:"ref"`
		}
		_ = json.Unmarshal(data, &only)
		a.enqueue(errorFrameRef("", only.Ref, journey.Rejectf(journey.CodeBadRequest, "frame is not a JSON object with a type and fields of their types: %v", fieldError(err))))
		return true
	}
	a.handle(f)
	return true
}

// handle carries out one frame; its answer (ok or error, with the ref)
// comes once the effect is durable. It holds a credit until then.
func (a *agentConn) handle(f agentFrame) {
	select {
	case a.credit <- struct{}{}:
	case <-a.closed:
		return
	}
	switch f.Type {
	case "presence":
		a.presence(f)
	case "accept", "decline":
		customer, _, ok := journey.ParseConversationID(f.Conversation)
		if !ok {
			a.fail(f, journey.Rejectf(journey.CodeBadRequest, "%s needs a conversation", f.Type))
			return
		}
		a.desk(f, customer)
	case "reply", "transfer", "wrapup":
		if rej := journey.ValidateID("customer", f.Customer); rej != nil {
			a.fail(f, rej)
			return
		}
		a.desk(f, f.Customer)
	case "subscribe":
		a.subscribe(f)
	case "unsubscribe":
		a.unsubscribe(f.Customer)
		a.ok(f)
	default:
		a.fail(f, journey.Rejectf(journey.CodeBadRequest, "unknown frame type %q", f.Type))
	}
}

func (a *agentConn) desk(f agentFrame, customer string) {
	if a.agent == "" {
		a.fail(f, journey.Rejectf(journey.CodeForbidden, "only an agent may %s", f.Type))
		return
	}
	cmd := journey.DeskCommand{
		Agent: a.agent, Type: f.Type, Conversation: f.Conversation, Text: f.Text, Ref: f.Ref,
		Queue: f.Queue, ToAgent: f.Agent, Disposition: f.Disposition, Note: f.Note,
	}
	a.s.rt.Desk(customer, cmd, func(rej *journey.Rejection) {
		if rej != nil {
			a.fail(f, rej)
			return
		}
		a.ok(f)
	})
}

func (a *agentConn) presence(f agentFrame) {
	if a.agent == "" {
		a.fail(f, journey.Rejectf(journey.CodeForbidden, "a supervisor has no presence"))
		return
	}
	switch f.Status {
	case journey.AgentAvailable, journey.AgentNotReady, journey.AgentOffline:
	default:
		a.fail(f, journey.Rejectf(journey.CodeBadRequest, "status %q is not available, not_ready or offline", f.Status))
		return
	}
	capacity, err := parseCapacity(f.Capacity)
	if err != nil {
		a.fail(f, journey.Rejectf(journey.CodeBadRequest, "capacity: %v", err))
		return
	}
	a.s.rt.Presence(a.agent, f.Status, f.Reason, capacity, func(v journey.AgentView, err error) {
		if err != nil {
			a.fail(f, journey.Rejectf(journey.CodeBadRequest, "%v", err))
			return
		}
		a.enqueue(mustJSON(presenceFrame{Type: "presence", Status: v.Status, Reason: v.Reason, Capacity: v.Capacity, Load: v.Load}))
		a.ok(f)
	})
}

// presenceFrame answers a presence frame (PROTOCOL 4).
type presenceFrame struct {
	Type     string           `json:"type"`
	Status   string           `json:"status"`
	Reason   string           `json:"reason,omitempty"`
	Capacity journey.Capacity `json:"capacity"`
	Load     int              `json:"load"`
}

// parseCapacity reads `capacity`: a number or {"voice":1,"chat":3}; nil
// when absent.
func parseCapacity(raw json.RawMessage) (*journey.Capacity, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c journey.Capacity
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// subscribe follows a customer: the stored events after f.After first,
// then subscribed, then live events, none skipped or repeated.
func (a *agentConn) subscribe(f agentFrame) {
	if rej := journey.ValidateID("customer", f.Customer); rej != nil {
		a.fail(f, rej)
		return
	}
	a.mu.Lock()
	if _, ok := a.mu.subs[f.Customer]; ok || len(a.mu.subs) >= DeskSubscriptionsMax {
		a.mu.Unlock()
		a.fail(f, journey.Rejectf(journey.CodeConflict, "already subscribed to %s, or too many subscriptions", f.Customer))
		return
	}
	sub := &subscription{id: subscriptionIDs.Add(1), customer: f.Customer, replay: true}
	a.mu.subs[f.Customer] = sub
	a.mu.Unlock()
	a.s.rt.Subscribe(f.Customer, actors.Subscriber{
		ID: sub.id, Agent: a.agent, Supervisor: a.supervisor,
		Send: func(e journey.Event) bool { return a.live(sub, e) },
		// The customer's node stopped leading it (a failover): the desk
		// reconnects and resumes from its last seq, as after any drop.
		Ended: a.close,
	}, func(seq uint64, rej *journey.Rejection) {
		if rej != nil {
			a.mu.Lock()
			delete(a.mu.subs, f.Customer)
			a.mu.Unlock()
			a.fail(f, rej)
			return
		}
		// Reading the store must not hold the customer's goroutine.
		a.s.goTracked(func() { a.replay(f, sub, seq) })
	})
}

// replay sends the stored events in (after, seq], then subscribed, then
// what arrived live meanwhile past seq (a live event at or below seq was
// in the replay: across nodes, a proxy subscription may deliver the event
// the subscription's seq already counts).
func (a *agentConn) replay(f agentFrame, sub *subscription, seq uint64) {
	if f.After != nil {
		for after := *f.After; after < seq; {
			ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
			events, err := a.s.rt.StoredEvents(ctx, sub.customer, after, min(replayPage, int(seq-after)))
			cancel()
			if err != nil || len(events) == 0 {
				a.close() // the desk reconnects and subscribes again
				return
			}
			// An event this connection was sent already (pushed before
			// the subscribe was read) is not sent again: every event past
			// after reaches the desk, once.
			for i := range events {
				a.sendEvent(sub.customer, &events[i])
			}
			after = events[len(events)-1].Seq
		}
	}
	a.enqueue(mustJSON(map[string]any{"type": "subscribed", "customer": sub.customer, "seq": seq}))
	sub.mu.Lock()
	a.afterReplay(sub, seq, f.After)
	sub.mu.Unlock()
	a.ok(f)
}

// afterReplay, under sub.mu, sends what waited during the replay in seq
// order: the live events past the subscription's seq, and the pushes past
// what the desk said it has (a push the replay sent goes once).
func (a *agentConn) afterReplay(sub *subscription, seq uint64, after *uint64) {
	waited := sub.buf[:0:0]
	for _, e := range sub.buf {
		if e.Seq > seq {
			waited = append(waited, e)
		}
	}
	for _, e := range sub.pushed {
		if after == nil || e.Seq > *after {
			waited = append(waited, e)
		}
	}
	slices.SortStableFunc(waited, func(x, y journey.Event) int { return cmp.Compare(x.Seq, y.Seq) })
	for i := range waited {
		a.sendEvent(sub.customer, &waited[i])
	}
	sub.buf, sub.pushed, sub.replay = nil, nil, false
}

// live is a subscription's Send: called on the customer's goroutine, it
// must not block.
func (a *agentConn) live(sub *subscription, e journey.Event) bool {
	select {
	case <-a.closed:
		return false
	default:
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.replay {
		if len(sub.buf)+len(sub.pushed) >= ReplayBufferMax {
			a.close()
			return false
		}
		sub.buf = append(sub.buf, e)
		return true
	}
	a.sendEvent(sub.customer, &e)
	return true
}

func (a *agentConn) unsubscribe(customer string) {
	a.mu.Lock()
	sub, ok := a.mu.subs[customer]
	delete(a.mu.subs, customer)
	a.mu.Unlock()
	if ok {
		a.s.rt.Unsubscribe(customer, sub.id)
	}
}

func (a *agentConn) unsubscribeAll() {
	a.mu.Lock()
	subs := a.mu.subs
	a.mu.subs = map[string]*subscription{}
	a.mu.Unlock()
	for c, sub := range subs {
		a.s.rt.Unsubscribe(c, sub.id)
	}
}

// ok answers a frame and returns its credit.
func (a *agentConn) ok(f agentFrame) {
	if f.Ref != "" {
		a.enqueue(mustJSON(map[string]string{"type": "ok", "ref": f.Ref}))
	}
	<-a.credit
}

// fail answers a frame with an error and returns its credit.
func (a *agentConn) fail(f agentFrame, rej *journey.Rejection) {
	id := f.Customer
	if id == "" {
		id = f.Conversation
	}
	a.enqueue(errorFrameRef(id, f.Ref, rej))
	<-a.credit
}

// fieldError says what was wrong with a frame that did not decode, without
// echoing its content.
func fieldError(err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return "no type"
	case errors.As(err, &te):
		return te.Field + " is not a " + te.Type.String()
	}
	return "not JSON"
}

// errorFrameRef is an error frame that carries the ref of the frame it
// answers.
func errorFrameRef(id, ref string, r *journey.Rejection) []byte {
	if ref == "" {
		return errorFrame(id, r)
	}
	return mustJSON(map[string]string{"type": "error", "id": id, "ref": ref, "code": string(r.Code), "message": r.Message})
}

func eventFrame(customer string, e *journey.Event) []byte {
	return mustJSON(struct {
		Type     string         `json:"type"`
		Customer string         `json:"customer"`
		Event    *journey.Event `json:"event"`
	}{"event", customer, e})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("gateway: frame: " + err.Error())
	}
	return b
}
