package actors

// Residency: which customers stay in memory. Besides the idle timeout
// (the sweep below), a host passivates its least recently active customers
// when the node holds more than Config.ResidentMax of them or its memory
// budget is under pressure (memory.go). A host keeps its customers in
// order of their last message (recency: most recent at the front); it asks
// the least recent to go (evictReq), and each decides for itself: one with
// desks subscribed or an erase under way declines and is not asked again
// before its next message; the others go through the passivation handshake
// of an idle customer.

import (
	"time"

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

// child is one of a host's active customers: its PID, its place in the
// host's recency order and what the host knows of its idleness. One map of
// these per host, the order threaded through them, costs a customer one
// map entry and one object where a map to PIDs, a map to list elements,
// the elements, their boxed ids and an idle timer per customer cost six.
type child struct {
	id         string
	pid        *actor.PID
	mailbox    *customerMailbox // pid's, posted to directly (host.route)
	prev, next *child           // neighbours in its order: prev more recent
	in         *order           // the order it is in, nil when in none
	touched    int64            // the host's clock when last routed to (or asked to go)
	checked    int64            // the host's clock at its last idle check
	// asked: sent an evictReq, not answered yet. declined: declined since
	// its last message, so not asked again before another message.
	asked, declined bool
	// firstPending: nothing was routed to it since its activation.
	// brief: it was activated by a broadcast and routed nothing since but
	// broadcasts and receipts; it is checked for idleness after
	// broadcastIdleTimeout instead of IdleTimeout, so a broadcast to a
	// passivated segment does not keep it all in memory.
	firstPending, brief bool
}

// order is a list of children, most recently active at front.
type order struct {
	front, back *child
	n           int
}

func (o *order) remove(c *child) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		o.front = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		o.back = c.prev
	}
	c.prev, c.next, c.in = nil, nil, nil
	o.n--
}

func (o *order) pushFront(c *child) {
	c.next, c.prev, c.in = o.front, nil, o
	if o.front != nil {
		o.front.prev = c
	} else {
		o.back = c
	}
	o.front = c
	o.n++
}

// residency is a host's record of its customers' recency: the customers
// only broadcasts asked (brief) in one order, the others in another.
type residency struct {
	main, brief order
	asked       int   // children asked to go, not answered yet
	clock       int64 // monotonic ns (monoClock), read at each sweep
}

// monoStart anchors the hosts' clocks: elapsed time, so a wall clock
// stepped back (or a test's Config.Now) does not hold idle checks.
var monoStart = time.Now()

func monoClock() int64 { return int64(time.Since(monoStart)) }

// touch marks a customer active now.
func (r *residency) touch(c *child) {
	c.declined = false
	r.moveToFront(c)
}

// moveToFront puts a customer first in the order its brief flag names (in
// it if it was not), as of the host's clock.
func (r *residency) moveToFront(c *child) {
	o := &r.main
	if c.brief {
		o = &r.brief
	}
	c.touched = r.clock
	if c.in == o && o.front == c {
		return
	}
	if c.in != nil {
		c.in.remove(c)
	}
	o.pushFront(c)
}

// routed updates what the host knows of a customer's idleness from a
// message routed to it (the customer's own messages, its appends' answers,
// are not routed and do not count).
func (r *residency) routed(c *child, m customerMsg) {
	switch m.(type) {
	case *broadcastMsg:
		if c.firstPending {
			c.firstPending, c.brief = false, true
		}
	case *receiptMsg:
		c.firstPending = false
	default:
		c.firstPending, c.brief = false, false
	}
	r.touch(c)
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
	if c.in != nil {
		c.in.remove(c)
	}
}

// Idle checks. A host, not a timer per customer, asks its customers to
// which it routed nothing for their timeout whether they can go
// (idleCheck): every sweep it walks each order from its least recently
// active end and stops at the first customer touched within the timeout,
// so a sweep costs the customers it asks. The customer goes unless an
// append is pending or desks watch it (customer.idleCheck); one that stays
// keeps its place in the order, so the resident cap still passivates by
// recency, and is asked again a timeout later (checked).

// idleSweep is a host's tick for idle checks.
type idleSweep struct{}

// idleSweepEvery is how often a host sweeps for idle customers: a fraction
// of the shortest timeout, within 1 ms and 1 s.
func idleSweepEvery(idle time.Duration) time.Duration {
	return min(max(min(idle, broadcastIdleTimeout)/4, time.Millisecond), time.Second)
}

func (h *host) armIdleSweep(ctx actor.Context) {
	if h.shutdown {
		return
	}
	if h.idleTimer != nil {
		h.idleTimer.Stop() // one chain of sweeps, even after a restart
	}
	self, root := ctx.Self(), h.rt.system.Root
	h.idleTimer = time.AfterFunc(idleSweepEvery(h.rt.cfg.IdleTimeout), func() { root.Send(self, &idleSweep{}) })
}

// sweepIdle asks the customers idle for their timeout whether they can go.
func (h *host) sweepIdle(ctx actor.Context) {
	h.res.clock = monoClock()
	if h.shutdown {
		return
	}
	idle := h.rt.cfg.IdleTimeout
	for _, o := range [...]struct {
		order   *order
		timeout int64
	}{{&h.res.brief, int64(min(idle, broadcastIdleTimeout))}, {&h.res.main, int64(idle)}} {
		for c := o.order.back; c != nil && h.res.clock-c.touched >= o.timeout; c = c.prev {
			if h.res.clock-c.checked < o.timeout {
				continue // it stayed when asked lately
			}
			c.checked = h.res.clock
			if _, stopping := h.stopping[c.id]; !stopping {
				ctx.Send(c.pid, &idleCheck{})
			}
		}
	}
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
// the host holds more than its share, by more than an eighth of it
// (residentSlack) while the node holds at most 7/8 of ResidentMax (so the
// hosts' slack cannot take the node past the cap). Customers
// hash unevenly over the partitions: at its exact share, a host past it
// evicted while others had room, and a round over every customer (a
// bench, a broadcast, a morning) then loaded an evicted one back for
// every event it sent there.
func (h *host) enforceResidentMax(ctx actor.Context) {
	share := h.residentMax()
	over := h.resident() - share
	roomy := h.rt.ActiveCustomers.Load()+int64(h.rt.cfg.ResidentMax/residentSlack) <= int64(h.rt.cfg.ResidentMax)
	if over <= 0 || over <= share/residentSlack && roomy {
		return
	}
	h.evict(ctx, over)
}

// residentSlack: a host may hold its share and 1/residentSlack of it more
// while the node is 1/residentSlack of its cap or more under it.
const residentSlack = 8

// evict asks up to n of the least recently active customers to passivate.
// Each one asked moves to the front, so one that declines is not asked
// again before the others.
func (h *host) evict(ctx actor.Context, n int) {
	if h.shutdown {
		return
	}
	for _, o := range [...]*order{&h.res.brief, &h.res.main} { // broadcasts' customers first
		for seen, total := 0, o.n; n > 0 && seen < total; seen++ {
			c := o.back
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
