package actors

// Residency: which customers stay in memory. Besides the idle timeout
// (customer.go), a host passivates its least recently active customers
// when the node holds more than Config.ResidentMax of them or its memory
// budget is under pressure (memory.go). A host keeps its customers in
// order of their last message (recency: most recent at the front); it asks
// the least recent to go (evictReq), and each decides for itself: one with
// desks subscribed or an erase under way declines and is not asked again
// before its next message; the others go through the passivation handshake
// of an idle customer.

import "github.com/asynkron/protoactor-go/actor"

// ResidentMaxDefault is the default of Config.ResidentMax.
const ResidentMaxDefault = 1_000_000

// evictReq asks a customer to passivate now if it can.
type evictReq struct{}

// evictDeclined is a customer's answer that it cannot passivate now.
type evictDeclined struct {
	customer string
	pid      *actor.PID
}

// passivateLRU asks a host to passivate a share (0 to 1) of its resident
// customers, the least recently active.
type passivateLRU struct{ share float64 }

// child is one of a host's active customers: its PID and its place in the
// host's recency order. One map of these per host, the order threaded
// through them, costs a customer one map entry and one object where a
// map to PIDs, a map to list elements, the elements and their boxed ids
// cost four (and a route hashed the id twice more).
type child struct {
	id         string
	pid        *actor.PID
	prev, next *child // recency neighbours: prev more recent
	inOrder    bool
	// asked: sent an evictReq, not answered yet. declined: declined since
	// its last message, so not asked again before another message.
	asked, declined bool
}

// residency is a host's record of its customers' recency: a list through
// the children, most recently active at front.
type residency struct {
	front, back *child
	n           int // children in the order
	asked       int // children asked to go, not answered yet
}

// touch marks a customer active now.
func (r *residency) touch(c *child) {
	c.declined = false
	r.moveToFront(c)
}

// moveToFront puts a customer first in the order (in it if it was not).
func (r *residency) moveToFront(c *child) {
	if r.front == c {
		return
	}
	r.remove(c)
	c.next, c.prev, c.inOrder = r.front, nil, true
	if r.front != nil {
		r.front.prev = c
	} else {
		r.back = c
	}
	r.front = c
	r.n++
}

// remove takes a customer out of the order (and out of the asked count).
func (r *residency) remove(c *child) {
	if !c.inOrder {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		r.front = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		r.back = c.prev
	}
	c.prev, c.next, c.inOrder = nil, nil, false
	r.n--
}

// setAsked marks or clears a pending evictReq.
func (r *residency) setAsked(c *child, asked bool) {
	if c.asked != asked {
		c.asked = asked
		if asked {
			r.asked++
		} else {
			r.asked--
		}
	}
}

// forget drops a customer that stopped.
func (r *residency) forget(c *child) {
	r.setAsked(c, false)
	r.remove(c)
}

// resident is how many of the host's customers stay: those neither
// passivating nor asked to.
func (h *host) resident() int {
	return len(h.children) - len(h.stopping) - h.res.asked
}

// residentMax is this host's share of the node's ResidentMax.
func (h *host) residentMax() int {
	hosted := max(int(h.rt.hostedN.Load()), 1)
	return max((h.rt.cfg.ResidentMax+hosted-1)/hosted, 1)
}

// enforceResidentMax asks the least recently active customers to go while
// the host holds more than its share.
func (h *host) enforceResidentMax(ctx actor.Context) {
	if over := h.resident() - h.residentMax(); over > 0 {
		h.evict(ctx, over)
	}
}

// evict asks up to n of the least recently active customers to passivate.
// Each one asked moves to the front, so one that declines is not asked
// again before the others.
func (h *host) evict(ctx actor.Context, n int) {
	if h.shutdown {
		return
	}
	for seen, total := 0, h.res.n; n > 0 && seen < total; seen++ {
		c := h.res.back
		h.res.moveToFront(c)
		_, stopping := h.stopping[c.id]
		if c.asked || c.declined || stopping || h.erasing[c.id] != nil {
			continue
		}
		h.res.setAsked(c, true)
		ctx.Send(c.pid, &evictReq{})
		n--
	}
}

// evictReq: the customer passivates unless desks watch it or it is being
// erased. Appends in flight do not hold it: like any passivating customer
// it stops once they complete (maybeStop).
func (c *customer) evictReq(ctx actor.Context) {
	if !c.passivating && c.erasing == nil && len(c.subs) == 0 {
		ctx.Send(ctx.Parent(), &passivateReq{customer: c.id, pid: ctx.Self()})
		return
	}
	ctx.Send(ctx.Parent(), &evictDeclined{customer: c.id, pid: ctx.Self()})
}

// releasePID lets go of a stopped customer's memory. protoactor keeps a
// parent's children in a PIDSet whose array keeps removed PIDs past its
// length, and a PID caches its process (the actor context, so the whole
// customer and its journey) until it is next used: after a host's peak,
// every customer passivated since stayed in memory (the memory budget's
// test saw nothing freed by passivation). Using the PID once more finds
// its process dead and drops the cache; the message goes to dead letters
// unlogged and is ignored.
func releasePID(ctx actor.Context, pid *actor.PID) {
	if pid != nil {
		ctx.Send(pid, releasedPID{})
	}
}

type releasedPID struct{}

func (releasedPID) IgnoreDeadLetterLogging() {}
