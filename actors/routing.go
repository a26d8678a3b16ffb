package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/throughline/throughline/journey"
)

// routingActor owns the node's journey.Router: the queues' waiting
// conversations and the agents' presence, capacity and load. Customers
// tell it of every routing change once durable (journey.RouteEffect); it
// answers with offers, which the customers record (agent.offered) or
// refuse. Agents' desks tell it their presence. It keeps one timer, for
// the Router's next tick (after-work ends, sticky waits), and one per
// disconnected agent, for the reconnect grace.
type routingActor struct {
	rt     *Runtime
	router *journey.Router
	timer  *time.Timer
	next   time.Time
	grace  map[string]*time.Timer // agent -> its grace timer while disconnected
	conns  map[string]int         // agent -> open desk connections
}

// Messages of the routing actor.
type (
	routeMsg     struct{ effect journey.RouteEffect }
	offerRefused struct{ conversation, agent string }
	presenceMsg  struct {
		agent, status, reason string
		capacity              *journey.Capacity
		reply                 func(journey.AgentView, error)
	}
	deskConnMsg struct {
		agent     string
		connected bool
	}
	graceOver   struct{ agent string }
	routingTick struct{}
	routingView struct{ reply chan routingViewReply }
)

type routingViewReply struct {
	queues []journey.QueueView
	agents []journey.AgentView
}

func (a *routingActor) Receive(ctx actor.Context) {
	now := a.rt.cfg.Now()
	var offers []journey.Offer
	switch m := ctx.Message().(type) {
	case *routeMsg:
		offers = a.effect(m.effect, now)
	case *offerRefused:
		offers = a.router.Revoked(m.conversation, m.agent, false, now)
	case *presenceMsg:
		var err error
		offers, err = a.router.Presence(m.agent, m.status, m.reason, m.capacity, now)
		if m.status == journey.AgentOffline {
			a.revokeOutstanding(m.agent)
		}
		view, _ := a.router.Agent(m.agent)
		m.reply(view, err)
	case *deskConnMsg:
		offers = a.deskConn(ctx, m, now)
	case *graceOver:
		if a.conns[m.agent] == 0 {
			delete(a.grace, m.agent)
			offers, _ = a.router.Presence(m.agent, journey.AgentOffline, "disconnected", nil, now)
			a.revokeOutstanding(m.agent)
			a.releaseAssignments(m.agent)
		}
	case *routingTick:
		a.next = time.Time{}
		offers = a.router.Tick(now)
	case *routingView:
		m.reply <- routingViewReply{queues: a.router.Queues(now), agents: a.router.Agents()}
	case *actor.Stopping:
		if a.timer != nil {
			a.timer.Stop()
		}
		for _, t := range a.grace {
			t.Stop()
		}
		return
	default:
		return
	}
	a.send(offers)
	a.arm(ctx)
}

// effect applies a customer's routing change.
func (a *routingActor) effect(e journey.RouteEffect, now time.Time) []journey.Offer {
	r := a.router
	switch e.Op {
	case journey.RouteEnqueue:
		offers, err := r.Enqueue(e.Waiting, now)
		if err != nil {
			a.rt.cfg.Logger.Warn("routing: enqueue refused", "queue", e.Waiting.Queue, "err", err)
		}
		return offers
	case journey.RouteOfferTo:
		o, err := r.OfferTo(e.Waiting, e.Agent, now)
		if err != nil {
			// The agent cannot take it now: it waits in its queue instead.
			offers, _ := r.Enqueue(e.Waiting, now)
			return offers
		}
		return []journey.Offer{o}
	case journey.RouteAccepted:
		return r.Accepted(e.Conversation, e.Agent, now)
	case journey.RouteRevoked:
		offers := r.Revoked(e.Conversation, e.Agent, e.Requeue, now)
		if e.Requeue {
			// After a restart the Router may not know the conversation:
			// Enqueue is idempotent and brings it back.
			more, _ := r.Enqueue(e.Waiting, now)
			offers = append(offers, more...)
		}
		return offers
	case journey.RouteReleased:
		return r.Released(e.Conversation, e.Agent, e.Wrapup, now)
	case journey.RouteAssigned:
		return r.Assigned(e.Conversation, e.Agent, e.Waiting.Queue, e.Waiting.Channel, now)
	case journey.RouteOffered:
		return r.Offered(e.Waiting, e.Agent, now)
	case journey.RouteRemove:
		return r.Remove(e.Conversation, now)
	}
	panic("actors: unknown route effect " + e.Op)
}

// deskConn counts an agent's desk connections: the last one closing
// starts the grace period; a reconnect within it keeps the agent's
// assignments and presence.
func (a *routingActor) deskConn(ctx actor.Context, m *deskConnMsg, now time.Time) []journey.Offer {
	if m.connected {
		a.conns[m.agent]++
		if t := a.grace[m.agent]; t != nil {
			t.Stop()
			delete(a.grace, m.agent)
		}
		return nil
	}
	a.conns[m.agent]--
	if a.conns[m.agent] > 0 {
		return nil
	}
	delete(a.conns, m.agent)
	self, root, agent := ctx.Self(), a.rt.system.Root, m.agent
	a.grace[agent] = time.AfterFunc(a.rt.cfg.DeskGrace, func() { root.Send(self, &graceOver{agent: agent}) })
	return nil
}

// revokeOutstanding takes back the offers an agent going offline holds.
func (a *routingActor) revokeOutstanding(agent string) {
	for _, conv := range a.router.Outstanding(agent) {
		if customer, _, ok := journey.ParseConversationID(conv); ok {
			a.rt.toCustomer(&resultMsg{customer: customer, input: &journey.RevokeOffer{
				Conversation: conv, Agent: agent, Reason: journey.RevokedOffline,
			}})
		}
	}
}

// releaseAssignments puts the conversations of an agent gone past its
// grace period back in their queues.
func (a *routingActor) releaseAssignments(agent string) {
	for _, conv := range a.router.Assignments(agent) {
		if customer, _, ok := journey.ParseConversationID(conv); ok {
			a.rt.toCustomer(&resultMsg{customer: customer, input: &journey.ReleaseAgent{
				Conversation: conv, Agent: agent, Reason: journey.RevokedOffline,
			}})
		}
	}
}

// send hands each offer to its customer, who records it or refuses it.
func (a *routingActor) send(offers []journey.Offer) {
	for _, o := range offers {
		if !a.rt.toCustomer(&routeOfferMsg{customer: o.Waiting.Customer, offer: o}) {
			a.router.Revoked(o.Waiting.Conversation, o.Agent, false, a.rt.cfg.Now())
		}
	}
}

// arm keeps one timer for the Router's next tick.
func (a *routingActor) arm(ctx actor.Context) {
	at, ok := a.router.NextTick()
	if !ok || (!a.next.IsZero() && !at.Before(a.next)) {
		return
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	a.next = at
	self, root := ctx.Self(), a.rt.system.Root
	a.timer = time.AfterFunc(max(at.Sub(a.rt.cfg.Now()), 0), func() { root.Send(self, &routingTick{}) })
}

// Presence sets an agent's presence from its desk; reply gets the agent's
// view (status, capacity, load) or an error (an unknown agent). It must not
// block.
func (r *Runtime) Presence(agent, status, reason string, capacity *journey.Capacity, reply func(journey.AgentView, error)) {
	p := fwdPresenceBody{Agent: agent, Status: status, Reason: reason, Capacity: capacity}
	if r.cd != nil {
		r.cd.mu.Lock()
		if prev, ok := r.cd.presence[agent]; ok && capacity == nil {
			p.Capacity = prev.Capacity // a presence without capacity keeps the last one
		}
		if _, ok := r.cd.presence[agent]; ok || len(r.cd.presence) < proxySubsMax {
			r.cd.presence[agent] = p
		}
		r.cd.mu.Unlock()
		p.Capacity = capacity
	}
	r.toRouterPresence(p, reply)
}

// DeskConnected tells routing an agent's desk connected or disconnected.
func (r *Runtime) DeskConnected(agent string, connected bool) {
	if r.cd != nil {
		r.cd.mu.Lock()
		if connected {
			r.cd.conns[agent]++
		} else if r.cd.conns[agent]--; r.cd.conns[agent] <= 0 {
			delete(r.cd.conns, agent)
			delete(r.cd.presence, agent)
		}
		r.cd.mu.Unlock()
	}
	r.toRouterDeskConn(agent, connected)
}

// Routing returns the live queues and agents (GET /v1/queues, /v1/agents),
// as the cluster's router has them.
func (r *Runtime) Routing(ctx context.Context) ([]journey.QueueView, []journey.AgentView, error) {
	if r.routerAddr() != "" {
		var a fwdRoutingAnswer
		if err := r.forwardRead(routerPartition, fwdRouting, struct{}{}, &a); err != nil {
			return nil, nil, err
		}
		return a.Queues, a.Agents, nil
	}
	return r.routingLocalCtx(ctx)
}

// routingLocal is this node's router's view.
func (r *Runtime) routingLocal() ([]journey.QueueView, []journey.AgentView, error) {
	return r.routingLocalCtx(context.Background())
}

func (r *Runtime) routingLocalCtx(ctx context.Context) ([]journey.QueueView, []journey.AgentView, error) {
	m := &routingView{reply: make(chan routingViewReply, 1)}
	r.system.Root.Send(r.routing, m)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	select {
	case v := <-m.reply:
		return v.queues, v.agents, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("routing view: %w", ctx.Err())
	}
}

// routeOfferMsg brings an offer to its customer.
type routeOfferMsg struct {
	customer string
	offer    journey.Offer
}

func (m *routeOfferMsg) customerID() string { return m.customer }
