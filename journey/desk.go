package journey

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode"
)

// The customer's side of routing (PROTOCOL sections 3 and 4). The customer
// holds the durable truth of its conversation: queued, offered to an agent
// (a lease with an expiry), assigned, transferred, wrapped up. The routing
// actor's Router only holds what it needs to choose agents, and is told of
// every change through RouteEffects once the events behind them are
// durable; agents' desks are told through DeskMessages.

// TypeRoutingRevoked records an offer taken back: declined, timed out, or
// its agent went offline.
const TypeRoutingRevoked = "routing.revoked"

// Due work of routing.
const (
	DueOfferExpiry = "routing.offer"    // Ref: conversation id; the offer lease ends
	DueCallback    = "routing.callback" // Ref: conversation id; offer a callback if still waiting
	DueRouted      = "routing"          // Ref: conversation id; at RoutedKeyAt: marks a routed conversation so a restart finds it
)

// RoutedKeyAt is the time of the key that marks a routed conversation: far
// past any due scan, found by the scan a host makes at start.
var RoutedKeyAt = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// Revocation reasons (PROTOCOL 4 revoked).
const (
	RevokedTimeout  = "timeout"
	RevokedDeclined = "declined"
	RevokedOffline  = "agent_offline"
)

// RouteEffect tells the routing actor of a change the customer made durable.
type RouteEffect struct {
	Op           string // RouteEnqueue, RouteOfferTo, RouteAccepted, RouteRevoked, RouteReleased, RouteAssigned, RouteOffered, RouteRemove
	Waiting      Waiting
	Conversation string
	Agent        string
	Requeue      bool // RouteRevoked: back to the queue without that agent
	Wrapup       bool // RouteReleased: the agent wrapped up (after_work)
}

// Operations of RouteEffect.
const (
	RouteEnqueue  = "enqueue"
	RouteOfferTo  = "offer_to"
	RouteAccepted = "accepted"
	RouteRevoked  = "revoked"
	RouteReleased = "released"
	RouteAssigned = "assigned"
	RouteOffered  = "offered"
	RouteRemove   = "remove"
)

// DeskMessage is a frame for an agent's desk (PROTOCOL 4): offer, assigned
// or revoked.
type DeskMessage struct {
	Agent        string    `json:"-"`
	Type         string    `json:"type"`
	Conversation string    `json:"conversation,omitempty"`
	Customer     string    `json:"customer"`
	Queue        string    `json:"queue,omitempty"`
	Kind         string    `json:"kind,omitempty"`
	Expires      time.Time `json:"expires,omitzero"`
	Reason       string    `json:"reason,omitempty"`
	Context      *Context  `json:"context,omitempty"`
	Event        *Event    `json:"event,omitempty"` // Type "event": a new event of an assigned customer
}

// RouteOffer is the routing actor's decision to offer the conversation to
// an agent; the customer records it (agent.offered) or refuses it (the
// conversation moved on), and the routing actor drops the reservation.
type RouteOffer struct {
	Offer Offer
}

// DeskCommand is an agent's frame about this customer (PROTOCOL 4).
type DeskCommand struct {
	Agent        string // the agent; "" for a supervisor
	Type         string // accept, decline, reply, transfer, wrapup
	Conversation string // optional except for accept and decline
	Text         string
	Ref          string // reply: its idempotency key
	Queue        string // transfer
	ToAgent      string // transfer
	Disposition  string
	Note         string
}

func (*RouteOffer) isInput()  {}
func (*DeskCommand) isInput() {}

// Limits of the desk.
const (
	NoteMaxChars  = 2000 // a wrap-up note
	ReplyMaxBytes = 4096 // an agent's reply text
)

// Data of the routing events.
type agentOffered struct {
	Conversation string      `json:"conversation"`
	Agent        string      `json:"agent"`
	Queue        string      `json:"queue"`
	Kind         string      `json:"kind"`
	Expires      time.Time   `json:"expires"`
	Reason       string      `json:"reason"`
	Priority     int         `json:"priority"`
	Candidates   []Candidate `json:"candidates,omitempty"`
}

type routingRevoked struct {
	Conversation string `json:"conversation"`
	Agent        string `json:"agent"`
	Reason       string `json:"reason"`
}

type agentAssigned struct {
	Conversation string `json:"conversation"`
	Agent        string `json:"agent"`
	Queue        string `json:"queue"`
}

type agentTransferred struct {
	Conversation string `json:"conversation"`
	Agent        string `json:"agent"` // who transferred
	Queue        string `json:"queue,omitempty"`
	ToAgent      string `json:"to_agent,omitempty"`
	Reason       string `json:"reason,omitempty"` // when the runtime took it back (agent_offline)
}

type agentWrappedUp struct {
	Conversation string `json:"conversation"`
	Agent        string `json:"agent"`
	Disposition  string `json:"disposition"`
	Note         string `json:"note,omitempty"`
}

// applyRouting keeps the conversation's routing in step with the events.
func (c *Customer) applyRouting(e *Event) {
	cv := c.Conversation
	switch e.Type {
	case TypeRoutingDecided:
		var d RoutingDecided
		if json.Unmarshal(e.Data, &d) == nil && !d.Deferred && cv.Open() && cv.ID == d.Conversation && cv.State == StateQueued {
			if cv.QueuedAt.IsZero() {
				cv.QueuedAt = e.RecordedAt
			}
			cv.Kind, cv.Routed = KindConversation, true
			if d.Kind == KindCallback {
				cv.Kind = KindCallback
			}
		}
	case TypeAgentOffered:
		var d agentOffered
		if json.Unmarshal(e.Data, &d) == nil && c.moveConversation(e, StateOffered) {
			cv.OfferedTo, cv.OfferExpires = d.Agent, d.Expires
		}
	case TypeRoutingRevoked:
		var d routingRevoked
		if json.Unmarshal(e.Data, &d) == nil && cv.Open() && cv.State == StateOffered && c.moveConversation(e, StateQueued) {
			cv.OfferedTo, cv.OfferExpires = "", time.Time{}
			if !contains(cv.Excluded, d.Agent) {
				cv.Excluded = pushBounded(cv.Excluded, d.Agent, ExcludedMax)
			}
		}
	case TypeAgentAssigned:
		if c.moveConversation(e, StateAgent) {
			cv.Agent = agentOf(e)
			c.LastAgent = cv.Agent
			cv.OfferedTo, cv.OfferExpires = "", time.Time{}
		}
	case TypeAgentTransferred:
		var d agentTransferred
		if json.Unmarshal(e.Data, &d) == nil && c.moveConversation(e, StateQueued) {
			// The agent who handed it over is not offered it again, not
			// even as its last agent, unless no one else can take it.
			cv.Agent, cv.Excluded = "", nil
			if d.Agent != "" {
				cv.Excluded = []string{d.Agent}
			}
			if d.Queue != "" {
				cv.Queue = d.Queue
			}
			cv.QueuedAt = e.RecordedAt
		}
	case TypeCallbackScheduled:
		if c.moveConversation(e, StateQueued) {
			cv.Kind = KindCallback
		}
	case TypeCallbackOffered:
		c.moveConversation(e, StateCallback)
	case TypeAgentWrappedUp:
		c.moveConversation(e, StateClosed)
	}
}

// waiting is the open conversation as a queue entry.
func (c *Customer) waiting() Waiting {
	cv := c.Conversation
	kind := cv.Kind
	if kind == "" {
		kind = KindConversation
	}
	return Waiting{
		Conversation: cv.ID, Customer: c.ID, Queue: cv.Queue, Priority: cv.Priority, Since: cv.QueuedAt,
		Channel: cv.Channel, LastAgent: c.LastAgent, Kind: kind, Excluded: slices.Clone(cv.Excluded),
	}
}

// routingEffects reacts to a routing event the stepper recorded: what the routing
// actor and the desks must be told, and the due work of leases and
// callbacks.
func (s *stepper) routingEffects(e *Event) {
	cv := s.c.Conversation
	if cv == nil {
		return
	}
	ref := cv.ID
	switch e.Type {
	case TypeRoutingDecided:
		if cv.State != StateQueued || !cv.Routed {
			return
		}
		s.d.DueAdd = append(s.d.DueAdd, Due{At: RoutedKeyAt, Kind: DueRouted, Ref: ref})
		s.routeEffect(RouteEffect{Op: RouteEnqueue, Waiting: s.c.waiting()})
		if q, ok := s.p.queue(cv.Queue); ok && q.CallbackAfter > 0 {
			s.d.DueAdd = append(s.d.DueAdd, Due{At: s.at.Add(q.CallbackAfter), Kind: DueCallback, Ref: ref})
		}
	case TypeCallbackScheduled:
		s.routeEffect(RouteEffect{Op: RouteEnqueue, Waiting: s.c.waiting()})
	case TypeConversationClosed, TypeAgentWrappedUp:
		if cv.Routed {
			s.d.DueDone = append(s.d.DueDone, Due{At: RoutedKeyAt, Kind: DueRouted, Ref: ref})
			if e.Type == TypeConversationClosed {
				s.routeEffect(RouteEffect{Op: RouteRemove, Conversation: ref})
			}
		}
	}
}

func (s *stepper) routeEffect(r RouteEffect) { s.d.Routing = append(s.d.Routing, r) }

func (s *stepper) desk(m DeskMessage) {
	if m.Type == "offer" || m.Type == "assigned" {
		ctx := s.c.Context(s.c.Seq)
		m.Context = &ctx
	}
	s.d.Desk = append(s.d.Desk, m)
}

// routeOffer records the routing actor's offer, or refuses it.
func (s *stepper) routeOffer(o *RouteOffer) {
	cv := s.c.Conversation
	w := o.Offer.Waiting
	if !cv.Open() || cv.ID != w.Conversation || (cv.State != StateQueued && cv.State != StateCallback) {
		s.d.Reject = reject(CodeConflict, "conversation %s is no longer waiting", w.Conversation)
		return
	}
	kind := cv.Kind
	if kind == "" {
		kind = KindConversation
	}
	cands := o.Offer.Candidates
	s.record(TypeAgentOffered, ActorSystem, agentOffered{
		Conversation: cv.ID, Agent: o.Offer.Agent, Queue: cv.Queue, Kind: kind, Expires: o.Offer.Expires,
		Reason: o.Offer.Reason, Priority: o.Offer.Priority, Candidates: cands,
	}, "", "")
	s.d.DueAdd = append(s.d.DueAdd, Due{At: o.Offer.Expires, Kind: DueOfferExpiry, Ref: cv.ID})
	s.desk(DeskMessage{Agent: o.Offer.Agent, Type: "offer", Conversation: cv.ID, Customer: s.c.ID, Queue: cv.Queue, Kind: kind, Expires: o.Offer.Expires})
}

// revoke takes an outstanding offer back.
func (s *stepper) revoke(reason string) {
	cv := s.c.Conversation
	agent, expires := cv.OfferedTo, cv.OfferExpires
	s.record(TypeRoutingRevoked, ActorSystem, routingRevoked{Conversation: cv.ID, Agent: agent, Reason: reason}, "", "")
	s.d.DueDone = append(s.d.DueDone, Due{At: expires, Kind: DueOfferExpiry, Ref: cv.ID})
	s.desk(DeskMessage{Agent: agent, Type: "revoked", Conversation: cv.ID, Customer: s.c.ID, Reason: reason})
	s.routeEffect(RouteEffect{Op: RouteRevoked, Conversation: cv.ID, Agent: agent, Requeue: true, Waiting: s.c.waiting()})
}

// dueOfferExpiry revokes an offer not accepted in time.
func (s *stepper) dueOfferExpiry(in *Due) {
	cv := s.c.Conversation
	if cv.Open() && cv.ID == in.Ref && cv.State == StateOffered && cv.OfferExpires.Equal(in.At) {
		s.revoke(RevokedTimeout)
	}
}

// dueCallback offers a callback to a customer still waiting.
func (s *stepper) dueCallback(in *Due) {
	cv := s.c.Conversation
	if cv.Open() && cv.ID == in.Ref && cv.State == StateQueued && cv.Kind != KindCallback {
		s.offerCallback(ActorSystem)
	}
}

// callbackReply schedules the callback a customer said yes to.
func (s *stepper) callbackReply(e Event) {
	cv := s.c.Conversation
	if !cv.Open() || cv.State != StateCallback || e.Type != TypeMessageReceived || !isYes(e.Text) {
		return
	}
	s.record(TypeCallbackScheduled, ActorSystem, map[string]string{"conversation": cv.ID}, "", "")
}

// isYes: "yes", "y", "ok", any case, with punctuation around.
// Every message a customer writes is asked, so it neither lowers nor
// copies a long text: it trims, and only a short rest is compared.
func isYes(text string) bool {
	t := strings.TrimFunc(text, func(r rune) bool { return !unicode.IsLetter(r) })
	if len(t) > len("yes please") {
		return false
	}
	for _, yes := range [...]string{"yes", "y", "ok", "okay", "yes please"} {
		if strings.EqualFold(t, yes) {
			return true
		}
	}
	return false
}

// deskCommand carries out an agent's frame, or refuses it.
func (s *stepper) deskCommand(m *DeskCommand) {
	cv := s.c.Conversation
	if m.Conversation != "" && (!cv.Open() || cv.ID != m.Conversation) {
		s.d.Reject = reject(CodeConflict, "conversation %s is not this customer's open conversation", m.Conversation)
		return
	}
	switch m.Type {
	case "accept", "decline":
		if !cv.Open() || cv.State != StateOffered || cv.OfferedTo != m.Agent || !s.now.Before(cv.OfferExpires) {
			s.d.Reject = reject(CodeConflict, "no offer of conversation %s to %s", m.Conversation, m.Agent)
			return
		}
		if m.Type == "decline" {
			s.revoke(RevokedDeclined)
			return
		}
		s.record(TypeAgentAssigned, ActorAgentPrefix+m.Agent, agentAssigned{Conversation: cv.ID, Agent: m.Agent, Queue: cv.Queue}, "", "")
		s.d.DueDone = append(s.d.DueDone, Due{At: cv.OfferExpires, Kind: DueOfferExpiry, Ref: cv.ID})
		s.routeEffect(RouteEffect{Op: RouteAccepted, Conversation: cv.ID, Agent: m.Agent})
		s.desk(DeskMessage{Agent: m.Agent, Type: "assigned", Conversation: cv.ID, Customer: s.c.ID})
		return
	}
	if !cv.Open() || cv.State != StateAgent || (m.Agent != "" && cv.Agent != m.Agent) {
		s.d.Reject = reject(CodeConflict, "the conversation is not assigned to %s", m.Agent)
		return
	}
	agent := cv.Agent
	actor := ActorAgentPrefix + agent
	switch m.Type {
	case "reply":
		s.deskReply(m, actor)
	case "transfer":
		d := agentTransferred{Conversation: cv.ID, Agent: agent, Queue: m.Queue, ToAgent: m.ToAgent}
		if (m.Queue == "") == (m.ToAgent == "") {
			s.d.Reject = reject(CodeBadRequest, "transfer needs a queue or an agent")
			return
		}
		if _, ok := s.p.queue(m.Queue); m.Queue != "" && !ok {
			s.d.Reject = reject(CodeBadRequest, "unknown queue %q", m.Queue)
			return
		}
		s.record(TypeAgentTransferred, actor, d, "", "")
		s.routeEffect(RouteEffect{Op: RouteReleased, Conversation: cv.ID, Agent: agent})
		if m.ToAgent != "" {
			s.routeEffect(RouteEffect{Op: RouteOfferTo, Waiting: s.c.waiting(), Agent: m.ToAgent})
		} else {
			s.routeEffect(RouteEffect{Op: RouteEnqueue, Waiting: s.c.waiting()})
		}
	case "wrapup":
		if m.Disposition == "" {
			s.d.Reject = reject(CodeBadRequest, "wrapup needs a disposition")
			return
		}
		s.record(TypeAgentWrappedUp, actor, agentWrappedUp{Conversation: cv.ID, Agent: agent, Disposition: cut(m.Disposition, 64), Note: cut(m.Note, NoteMaxChars)}, "", "")
		if m.Disposition == "resolved" {
			for _, k := range s.c.Cases {
				if k.Status == "open" {
					s.record(TypeCaseResolved, actor, caseData{Case: k.ID}, "", "")
				}
			}
		}
		s.routeEffect(RouteEffect{Op: RouteReleased, Conversation: cv.ID, Agent: agent, Wrapup: true})
	default:
		s.d.Reject = reject(CodeBadRequest, "unknown desk frame %q", m.Type)
	}
}

// deskReply sends an agent's reply once per ref: a desk that resends after a
// reconnect does not send the customer a duplicate.
func (s *stepper) deskReply(m *DeskCommand, actor string) {
	cv := s.c.Conversation
	if strings.TrimSpace(m.Text) == "" || len(m.Text) > ReplyMaxBytes {
		s.d.Reject = reject(CodeBadRequest, "reply text must be 1 to %d bytes", ReplyMaxBytes)
		return
	}
	key := replyKey(cv.Agent, m.Ref)
	if m.Ref != "" {
		if _, dup := s.c.recent.lookup(key); dup {
			return // sent already: answered ok, nothing sent again
		}
	}
	s.send(actor, cv.Channel, m.Text, messageSent{Conversation: cv.ID, Ref: m.Ref})
}

// replyKey is a reply's idempotency key in the customer's window: no
// client event id can be equal to it (ids are printable; it is not).
func replyKey(agent, ref string) string { return "\x00reply\x00" + agent + "\x00" + ref }

func (p *Policy) queue(name string) (QueuePolicy, bool) {
	for _, q := range p.Queues {
		if q.Name == name {
			return q, true
		}
	}
	return QueuePolicy{}, false
}

// Announce is what a customer tells the routing actor when it activates:
// its routed conversation, waiting or assigned, so that a restarted node
// rebuilds its queues and agents' loads from what customers hold. An offer
// outstanding at a restart holds its agent's room and counts as waiting
// until its lease ends: its due work revokes it and puts the conversation
// back in its queue.
func Announce(c *Customer) []RouteEffect {
	cv := c.Conversation
	if !cv.Open() || !cv.Routed {
		return nil
	}
	switch cv.State {
	case StateQueued, StateCallback:
		return []RouteEffect{{Op: RouteEnqueue, Waiting: c.waiting()}}
	case StateAgent:
		return []RouteEffect{{Op: RouteAssigned, Conversation: cv.ID, Agent: cv.Agent, Waiting: c.waiting()}}
	case StateOffered:
		return []RouteEffect{{Op: RouteOffered, Conversation: cv.ID, Agent: cv.OfferedTo, Waiting: c.waiting()}}
	}
	return nil
}

// RevokeOffer takes back an offer whose agent went offline.
type RevokeOffer struct {
	Conversation string
	Agent        string
	Reason       string
}

func (*RevokeOffer) isInput() {}

// revokeOffer revokes the offer if it is still outstanding to that agent.
func (s *stepper) revokeOffer(r *RevokeOffer) {
	cv := s.c.Conversation
	if cv.Open() && cv.ID == r.Conversation && cv.State == StateOffered && cv.OfferedTo == r.Agent {
		s.revoke(r.Reason)
	}
}

// CanRead reports whether an agent may read and subscribe to the customer:
// the open conversation is assigned to it (PROTOCOL 4).
func (c *Customer) CanRead(agent string) bool { return c.Conversation.AssignedTo(agent) }

// AssignedTo reports whether the conversation is open and assigned to the
// agent: what lets an agent read its customer (PROTOCOL 4).
func (cv *Conversation) AssignedTo(agent string) bool {
	return agent != "" && cv.Open() && cv.State == StateAgent && cv.Agent == agent
}

// DeskAudience says which agent's desk gets each event as a live event of
// an assigned customer: agent is the one the conversation was assigned to
// before the events; an assignment names the next one (its own event
// included), a wrap-up or transfer ends it (after its own event). It
// returns the agent per event ("" none) and the one after them.
func DeskAudience(events []Event, agent string) ([]string, string) {
	out := make([]string, len(events))
	for i := range events {
		e := &events[i]
		if e.Type == TypeAgentAssigned {
			var d agentAssigned
			if json.Unmarshal(e.Data, &d) == nil {
				agent = d.Agent
			}
		}
		out[i] = agent
		if e.Type == TypeAgentWrappedUp || e.Type == TypeAgentTransferred {
			agent = ""
		}
	}
	return out, agent
}
