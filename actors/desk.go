package actors

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/throughline/throughline/journey"
)

// SubscribersMax bounds the desks subscribed to one customer.
const SubscribersMax = 64

// Subscriber is a desk following a customer's live events (PROTOCOL 4
// subscribe). Send must not block; false means the desk is too slow or gone
// and the subscription ends.
type Subscriber struct {
	ID         uint64 // unique per subscription (the gateway's)
	Agent      string // the agent; "" for a supervisor
	Supervisor bool
	Send       func(journey.Event) bool
	// Ended, when set, is told that the subscription ended without the
	// desk asking (its customer stopped here, or the node that leads it
	// became unreachable): the desk resubscribes from its last seq. It
	// must not block.
	Ended func()
	from  uint64 // events past this seq are sent live
}

// Messages of the desk.
type (
	deskMsg struct {
		customer string
		cmd      journey.DeskCommand
		done     func(*journey.Rejection)
	}
	subscribeMsg struct {
		customer string
		sub      Subscriber
		// done gets the durable seq the live events follow, or a refusal.
		done func(seq uint64, rej *journey.Rejection)
	}
	unsubscribeMsg struct {
		customer string
		id       uint64
	}
)

func (m *deskMsg) customerID() string        { return m.customer }
func (m *subscribeMsg) customerID() string   { return m.customer }
func (m *unsubscribeMsg) customerID() string { return m.customer }

// Desk hands an agent's frame about a customer to that customer; done (which
// must not block) gets nil once its effect is durable, or the refusal.
func (r *Runtime) Desk(customer string, cmd journey.DeskCommand, done func(*journey.Rejection)) {
	if !r.toCustomer(&deskMsg{customer: customer, cmd: cmd, done: done}) {
		done(unavailable("shutting down"))
	}
}

// Subscribe registers a desk for a customer's live events. done gets the
// durable seq S: every event after S is sent to sub, in seq order, and the
// caller reads the stored ones up to S itself. An agent may subscribe only
// to a customer assigned to it (forbidden otherwise).
func (r *Runtime) Subscribe(customer string, sub Subscriber, done func(uint64, *journey.Rejection)) {
	if !r.toCustomer(&subscribeMsg{customer: customer, sub: sub, done: done}) {
		done(0, unavailable("shutting down"))
	}
}

// Unsubscribe ends a subscription.
func (r *Runtime) Unsubscribe(customer string, id uint64) {
	r.toCustomer(&unsubscribeMsg{customer: customer, id: id})
}

// route tells the router of a routing change.
func (r *Runtime) route(e journey.RouteEffect) { r.toRouterRoute(e) }

// desk hands a frame to an agent's desk, wherever in the cluster it is
// connected.
func (r *Runtime) desk(agent string, m journey.DeskMessage) {
	if r.cfg.Desk != nil {
		r.cfg.Desk(agent, m)
	}
	if r.cd != nil {
		r.deskElsewhere(agent, m)
	}
}

// routeOffer records the routing actor's offer, or refuses it.
func (c *customer) routeOffer(ctx actor.Context, m *routeOfferMsg) {
	if c.failed != nil {
		c.rt.toRouterRefused(m.offer.Waiting.Conversation, m.offer.Agent)
		return
	}
	d := journey.Step(c.rt.cfg.Policy, c.state, &journey.RouteOffer{Offer: m.offer}, c.rt.cfg.Now())
	if d.Reject != nil {
		c.rt.toRouterRefused(m.offer.Waiting.Conversation, m.offer.Agent)
		return
	}
	c.commit(ctx, d)
	c.effects(d)
	c.release()
}

// desk carries out an agent's frame.
func (c *customer) desk(ctx actor.Context, m *deskMsg) {
	c.stepAnswered(ctx, &m.cmd, m.done)
}

// subscribe registers a desk once the customer may be read by it.
func (c *customer) subscribe(m *subscribeMsg) {
	switch {
	case c.failed != nil:
		m.done(0, unavailable("store unavailable"))
		return
	case !m.sub.Supervisor && !c.state.CanRead(m.sub.Agent):
		m.done(0, journey.Rejectf(journey.CodeForbidden, "customer %s is not assigned to %s", c.id, m.sub.Agent))
		return
	case len(c.subs) >= SubscribersMax:
		m.done(0, unavailable("too many subscribers"))
		return
	}
	if c.subs == nil {
		c.subs = map[uint64]Subscriber{}
	}
	seq := c.state.Seq
	sub := m.sub
	sub.from = seq
	c.subs[sub.ID] = sub
	// Answered once everything up to seq is durable: the caller replays
	// the stored events up to seq, then the live ones follow.
	c.outbox.push(seq, func(err error) {
		if err != nil {
			delete(c.subs, sub.ID)
			m.done(0, asRejection(err))
			return
		}
		m.done(seq, nil)
	})
	c.release()
}

// publish queues the events for the desks that follow the customer: its
// subscribers, and the agent the conversation is assigned to (as of each
// event), released when durable.
func (c *customer) publish(events []journey.Event) {
	if len(events) == 0 || (len(c.subs) == 0 && c.assigned == "" && !assigns(events)) {
		return
	}
	agents, after := journey.DeskAudience(events, c.assigned)
	c.assigned = after
	c.outbox.push(events[len(events)-1].Seq, func(err error) {
		if err != nil {
			return
		}
		for i, e := range events {
			if agents[i] != "" {
				ev := e
				c.rt.desk(agents[i], journey.DeskMessage{Type: "event", Customer: c.id, Event: &ev})
			}
			for id, s := range c.subs {
				if e.Seq <= s.from {
					continue
				}
				if !s.Send(e) {
					delete(c.subs, id)
				}
			}
		}
	})
}

func assigns(events []journey.Event) bool {
	for _, e := range events {
		if e.Type == journey.TypeAgentAssigned {
			return true
		}
	}
	return false
}

// StoredEvents reads up to limit of a customer's stored events after seq
// after: for a desk replaying what it missed, up to a seq it knows durable.
func (r *Runtime) StoredEvents(ctx context.Context, customer string, after uint64, limit int) ([]journey.Event, error) {
	if p := r.PartitionOf(customer); r.hostOf(p) == nil && r.cfg.Cluster != nil {
		var events []journey.Event
		err := r.forwardRead(p, fwdEvents, fwdCustomerBody{Customer: customer, After: after, Limit: limit}, &events)
		return events, err
	}
	return r.store(customer).Events(ctx, customer, after, limit)
}
