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

import (
	"container/list"

	"github.com/asynkron/protoactor-go/actor"
)

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

// residency is a host's record of its customers' recency.
type residency struct {
	order *list.List               // customer ids, most recently active first
	at    map[string]*list.Element // customer -> its place in order
	asked map[string]struct{}      // customers sent an evictReq, not answered yet
	// declined are the customers that declined since their last message:
	// not asked again until another message reaches them.
	declined map[string]struct{}
}

func newResidency() residency {
	return residency{order: list.New(), at: map[string]*list.Element{}, asked: map[string]struct{}{}, declined: map[string]struct{}{}}
}

// touch marks a customer active now.
func (r *residency) touch(id string) {
	delete(r.declined, id)
	if e, ok := r.at[id]; ok {
		r.order.MoveToFront(e)
		return
	}
	r.at[id] = r.order.PushFront(id)
}

func (r *residency) forget(id string) {
	if e, ok := r.at[id]; ok {
		r.order.Remove(e)
		delete(r.at, id)
	}
	delete(r.asked, id)
	delete(r.declined, id)
}

// resident is how many of the host's customers stay: those neither
// passivating nor asked to.
func (h *host) resident() int {
	return len(h.children) - len(h.stopping) - len(h.res.asked)
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
	for seen, total := 0, h.res.order.Len(); n > 0 && seen < total; seen++ {
		e := h.res.order.Back()
		id := e.Value.(string)
		h.res.order.MoveToFront(e)
		_, asked := h.res.asked[id]
		_, declined := h.res.declined[id]
		_, stopping := h.stopping[id]
		if asked || declined || stopping || h.erasing[id] != nil {
			continue
		}
		h.res.asked[id] = struct{}{}
		ctx.Send(h.children[id], &evictReq{})
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
