package actors

// Erasing a customer (PROTOCOL 3 DELETE /v1/customers/{id}) goes through its
// actor, the only writer of its keys:
//
//  1. The host routes the erase and from then on buffers the customer's
//     messages, as during a passivation.
//  2. The customer drains its pending appends, so no append of it can land
//     after the erase; then Store.Erase deletes every key that names it and
//     its identities (keeping the tombstones of its event ids).
//  3. It takes itself out of routing: the routing actor forgets its
//     conversation (queued, offered or assigned: the agent's load shrinks)
//     and the agent's desk gets a revoked frame; its subscriptions end.
//  4. It stops. The host answers the caller only once the actor is gone,
//     and remembers the customer as erased: the runtime's own messages still
//     on their way to it (due work, bot and workflow results, offers, wakes,
//     broadcast targets)
//     are dropped rather than activating it again. A client's new event or
//     profile patch naming the id creates a new customer, as for any unknown
//     id.

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// ErasedMax bounds the erased customers a host remembers, to drop the
// runtime's own messages still on their way to them; the oldest is
// forgotten first. Such messages only come within seconds of an erase (a
// bot turn, an offer in flight), and a customer activated by one finds no
// key and does nothing.
const ErasedMax = 4096

// RevokedErased is the reason of the revoked frame an agent's desk gets when
// the customer of its offer or assignment is erased.
const RevokedErased = "erased"

// eraseMsg asks a customer to erase itself. The host answers done once the
// actor stopped: nil when the customer's keys are gone.
type eraseMsg struct {
	customer string
	done     func(error) // called once, through answer
	once     sync.Once
	erased   atomic.Bool  // set by the customer once Store.Erase succeeded
	err      atomic.Value // of errBox: why the erase failed
}

type errBox struct{ err error }

func (m *eraseMsg) customerID() string { return m.customer }

// answer answers the caller, once (a refused erase may be answered by a
// dead letter and by its host).
func (m *eraseMsg) answer(err error) { m.once.Do(func() { m.done(err) }) }

// Erase erases a customer: its events, profile, identities, idempotency
// keys, due work and index entries, keeping tombstones of its event ids; it
// leaves routing and its actor stops. It returns once all that is done and
// durable. Erasing an unknown customer succeeds (nothing to erase).
func (r *Runtime) Erase(ctx context.Context, customer string) error {
	if r.stopping.Load() {
		return unavailable("shutting down")
	}
	p := r.PartitionOf(customer)
	h := r.hostOf(p)
	if h == nil {
		if r.cd != nil {
			var ok bool
			return r.forwardRead(p, fwdErase, customer, &ok)
		}
		return unavailable("partition not hosted on this node")
	}
	done := make(chan error, 1)
	r.system.Root.Send(h, &eraseMsg{customer: customer, done: func(err error) { done <- err }})
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return unavailable("erase did not finish in time; retry")
	}
}

// routeErase forwards an erase to its customer (activating it, to learn
// its identities and conversation) and buffers the customer's messages
// until it stops.
func (h *host) routeErase(ctx actor.Context, m *eraseMsg) {
	id := m.customer
	c, ok := h.children[h.key(id)]
	if !ok {
		if c = h.activate(ctx, id); c == nil {
			m.answer(unavailable("customer could not be activated"))
			return
		}
	}
	h.stopping[id] = nil
	h.erasing[id] = m
	ctx.Send(c.pid, m)
}

// erased ends an erase when its customer stopped: the caller is answered,
// and on success the customer is remembered as erased.
func (h *host) erased(id string) {
	m := h.erasing[id]
	if m == nil {
		return
	}
	delete(h.erasing, id)
	if !m.erased.Load() {
		err := error(unavailable("erase interrupted; retry"))
		if b, ok := m.err.Load().(errBox); ok {
			err = b.err
		}
		m.answer(err)
		return
	}
	h.rememberErased(id)
	m.answer(nil)
}

func (h *host) rememberErased(id string) {
	if _, ok := h.erasedSet[id]; ok {
		return
	}
	if len(h.erasedOrder) >= ErasedMax {
		delete(h.erasedSet, h.erasedOrder[0])
		h.erasedOrder = h.erasedOrder[1:]
	}
	h.erasedSet[id] = struct{}{}
	h.erasedOrder = append(h.erasedOrder, id)
}

// dropStale reports whether m is the runtime's own message for an erased
// customer, and drops it (an offer is refused, so the routing actor frees
// the agent's reservation; a broadcast's target is done: no one is left to
// reach). A client's event or profile patch creates the
// customer again: it is no longer erased.
func (h *host) dropStale(m customerMsg) bool {
	if len(h.erasedSet) == 0 {
		return false
	}
	id := m.customerID()
	if _, ok := h.erasedSet[id]; !ok {
		return false
	}
	switch m := m.(type) {
	case *dueMsg, *resultMsg, *wakeMsg, *unsubscribeMsg:
		return true
	case *broadcastMsg:
		m.done(nil) // nothing of it is left to reach
		return true
	case *routeOfferMsg:
		h.rt.system.Root.Send(h.rt.routing, &offerRefused{conversation: m.offer.Waiting.Conversation, agent: m.offer.Agent})
		return true
	case *ingestMsg, *patchMsg:
		delete(h.erasedSet, id) // its order entry goes when it comes round
	}
	return false
}

// erase starts the customer's erase: at once when no append is in flight,
// else when the last completes (appendDone calls maybeStop).
func (c *customer) erase(ctx actor.Context, m *eraseMsg) {
	if c.failed != nil {
		m.err.Store(errBox{unavailable("store unavailable")})
		ctx.Stop(ctx.Self())
		return
	}
	c.erasing = m
	c.maybeStop(ctx)
}

// eraseNow runs the erase once every append of the customer is durable.
func (c *customer) eraseNow(ctx actor.Context) {
	m := c.erasing
	c.erasing = nil
	defer ctx.Stop(ctx.Self())
	if err := c.store.Erase(context.Background(), c.id, c.identityKeys()); err != nil {
		c.rt.cfg.Logger.Error("erase failed", "partition", c.rt.PartitionOf(c.id), "err", err)
		m.err.Store(errBox{unavailableFrom(err)})
		return
	}
	c.leaveRouting()
	c.subs = nil
	c.outbox.fail(journey.Rejectf(journey.CodeNotFound, "customer %s was erased", c.id))
	m.erased.Store(true)
}

// identityKeys are the customer's identities as the index names them.
func (c *customer) identityKeys() []persistence.IdentityKey {
	var keys []persistence.IdentityKey
	for kind, values := range c.state.Identities {
		for _, v := range values {
			keys = append(keys, persistence.IdentityKey{Kind: journey.IndexKind(kind), Value: v})
		}
	}
	return keys
}

// leaveRouting takes the customer's conversation out of the routing actor
// (its queue, or the offered or assigned agent's load) and tells the agent's
// desk. Everything of the customer is durable (no append in flight), so no
// routing effect of it is still waiting in the outbox.
func (c *customer) leaveRouting() {
	cv := c.state.Conversation
	if !cv.Open() || !cv.Routed {
		return
	}
	c.rt.route(journey.RouteEffect{Op: journey.RouteRemove, Conversation: cv.ID})
	agent := ""
	switch cv.State {
	case journey.StateOffered:
		agent = cv.OfferedTo
	case journey.StateAgent:
		agent = cv.Agent
	}
	if agent != "" {
		c.rt.desk(agent, journey.DeskMessage{Agent: agent, Type: "revoked", Conversation: cv.ID, Customer: c.id, Reason: RevokedErased})
	}
}
