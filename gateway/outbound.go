package gateway

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/throughline/throughline/internal/jsonenc"
	"github.com/throughline/throughline/journey"
)

// Limits of outbound delivery. Whatever is dropped at a limit is not lost:
// the customer's due work sends every unconfirmed outbound again every 30 s
// until a receipt or 24 h.
const (
	// OutboundWaitingMax bounds the outbounds waiting, per channel, for a
	// connection to say hello for it; past it the oldest gives way.
	OutboundWaitingMax = 10000
	// OutboundWaitingChannelsMax bounds the channels outbounds wait for;
	// an outbound for one more is dropped until a connection serves it.
	OutboundWaitingChannelsMax = 256
	// OutboundInFlightMax bounds a connection's outbounds sent and not yet
	// accepted or confirmed (sent again elsewhere if it closes).
	OutboundInFlightMax = 4096
)

// OutboundRouter sends outbounds to channel connections (PROTOCOL section
// 2): to the connection that last carried the customer's inbound on the
// channel when it serves the channel, else to one that does (round robin),
// else they wait for one to say hello. Outbounds in flight on a connection
// that closes are sent again elsewhere.
type OutboundRouter struct {
	mu      sync.Mutex
	conns   map[uint64]*channelConn   // open channel connections by id
	serving map[string][]*channelConn // channel -> connections that said hello for it
	next    map[string]int            // round robin position per channel
	waiting map[string]*waitQueue

	// taker, when set, takes the outbounds of channels a configured
	// provider delivers (PROTOCOL 9) before any connection sees them.
	taker atomic.Pointer[func(journey.Outbound) bool]
}

// waitQueue holds a channel's outbounds until a connection serves it, in
// arrival order, at most OutboundWaitingMax; a redelivery replaces its
// outbound in place (found by id in constant time: a broadcast may queue
// thousands).
type waitQueue struct {
	order []string // ids, oldest first
	byID  map[string]journey.Outbound
}

func (q *waitQueue) put(o journey.Outbound) {
	if _, ok := q.byID[o.ID]; ok {
		q.byID[o.ID] = o
		return
	}
	if len(q.order) >= OutboundWaitingMax {
		delete(q.byID, q.order[0])
		q.order = q.order[1:]
	}
	q.order = append(q.order, o.ID)
	q.byID[o.ID] = o
}

// forget drops the customer's outbounds and returns how many are left.
func (q *waitQueue) forget(customer string) int {
	q.order = slices.DeleteFunc(q.order, func(id string) bool {
		if q.byID[id].Customer != customer {
			return false
		}
		delete(q.byID, id)
		return true
	})
	return len(q.order)
}

// all is the waiting outbounds, oldest first.
func (q *waitQueue) all() []journey.Outbound {
	out := make([]journey.Outbound, 0, len(q.order))
	for _, id := range q.order {
		out = append(out, q.byID[id])
	}
	return out
}

func NewOutboundRouter() *OutboundRouter {
	return &OutboundRouter{
		conns: map[uint64]*channelConn{}, serving: map[string][]*channelConn{},
		next: map[string]int{}, waiting: map[string]*waitQueue{},
	}
}

// Deliver is the runtime's Config.Deliver: it never blocks. The router is
// made before the runtime (a restart resumes outbounds at once) and given
// to the server in Config.Outbound.
func (r *OutboundRouter) Deliver(o journey.Outbound, conn uint64) {
	if t := r.taker.Load(); t != nil && (*t)(o) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deliverLocked(o, r.conns[conn])
}

// DeliverIfServed delivers an outbound when a provider of this node or one
// of its connections serves its channel; false leaves it to another node
// (a cluster looks for the node whose gateways serve the channel).
func (r *OutboundRouter) DeliverIfServed(o journey.Outbound) bool {
	if t := r.taker.Load(); t != nil && (*t)(o) {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.serving[o.Channel]) == 0 {
		return false
	}
	r.deliverLocked(o, nil)
	return true
}

func (r *OutboundRouter) deliverLocked(o journey.Outbound, preferred *channelConn) {
	target := preferred
	if target == nil || !slices.Contains(target.servedChannels(), o.Channel) {
		target = nil
		if cs := r.serving[o.Channel]; len(cs) > 0 {
			i := r.next[o.Channel] % len(cs)
			r.next[o.Channel] = i + 1
			target = cs[i]
		}
	}
	if target == nil {
		r.wait(o)
		return
	}
	target.sendOutbound(o)
}

// wait keeps an outbound until a connection says hello for its channel;
// one already waiting is replaced (a redelivery).
func (r *OutboundRouter) wait(o journey.Outbound) {
	q, ok := r.waiting[o.Channel]
	if !ok {
		if len(r.waiting) >= OutboundWaitingChannelsMax {
			return
		}
		q = &waitQueue{byID: map[string]journey.Outbound{}}
		r.waiting[o.Channel] = q
	}
	q.put(o)
}

// add registers an open connection.
func (r *OutboundRouter) add(c *channelConn) {
	r.mu.Lock()
	r.conns[c.id] = c
	r.mu.Unlock()
}

// serve records a connection's hello and hands it what waited for its
// channels.
func (r *OutboundRouter) serve(c *channelConn, channels []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unserveLocked(c)
	c.mu.Lock()
	c.mu.channels = channels
	c.mu.Unlock()
	for _, ch := range channels {
		r.serving[ch] = append(r.serving[ch], c)
		if q := r.waiting[ch]; q != nil {
			delete(r.waiting, ch)
			for _, o := range q.all() {
				c.sendOutbound(o)
			}
		}
	}
}

func (r *OutboundRouter) unserveLocked(c *channelConn) {
	for _, ch := range c.servedChannels() {
		cs := slices.DeleteFunc(r.serving[ch], func(x *channelConn) bool { return x == c })
		if len(cs) == 0 {
			delete(r.serving, ch)
		} else {
			r.serving[ch] = cs
		}
	}
}

// remove forgets a closed connection and sends what was in flight on it
// again, elsewhere or when a connection says hello.
func (r *OutboundRouter) remove(c *channelConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c.id)
	r.unserveLocked(c)
	for _, o := range c.takeInFlight() {
		r.deliverLocked(o, nil)
	}
}

// sendOutbound queues an outbound frame and remembers it until a receipt.
func (c *channelConn) sendOutbound(o journey.Outbound) {
	buf := outBufs.get()
	frame, err := appendOutboundFrame(slices.Grow(*buf, outboundFrameSize(&o)), &o)
	if err != nil {
		panic("gateway: outbound frame: " + err.Error())
	}
	*buf = frame
	c.mu.Lock()
	if c.mu.inflight == nil {
		c.mu.inflight = map[string]journey.Outbound{}
	}
	if _, ok := c.mu.inflight[o.ID]; !ok && len(c.mu.inflight) >= OutboundInFlightMax {
		for id := range c.mu.inflight {
			delete(c.mu.inflight, id) // any one; the customer sends it again
			break
		}
	}
	c.mu.inflight[o.ID] = o
	c.mu.Unlock()
	c.enqueueOwned(buf)
}

// confirmed forgets an outbound the gateway accepted or confirmed.
func (c *channelConn) confirmed(id string) {
	c.mu.Lock()
	delete(c.mu.inflight, id)
	c.mu.Unlock()
}

func (c *channelConn) takeInFlight() []journey.Outbound {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]journey.Outbound, 0, len(c.mu.inflight))
	for _, o := range c.mu.inflight {
		out = append(out, o)
	}
	c.mu.inflight = nil
	// Each customer's in seq order, as they were first sent.
	slices.SortFunc(out, func(a, b journey.Outbound) int {
		return cmp.Or(cmp.Compare(a.Customer, b.Customer), cmp.Compare(a.Seq, b.Seq))
	})
	return out
}

func (c *channelConn) servedChannels() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.channels
}

// receipt hands an accepted, delivered or failed frame to the outbound's
// customer; a refusal is answered with an error frame. It holds a credit
// while the customer records it.
func (c *channelConn) receipt(f clientFrame) {
	if f.ID == "" {
		c.enqueue(errorFrame("", journey.Rejectf(journey.CodeBadRequest, "%s frame without id", f.Type)))
		return
	}
	c.confirmed(f.ID)
	if !c.takeCredit() {
		return
	}
	id := f.ID
	c.s.rt.Receipt(journey.Receipt{Outbound: f.ID, Kind: f.Type, Reason: f.Reason}, func(rej *journey.Rejection) {
		if rej != nil {
			c.enqueue(errorFrame(id, rej))
		}
		<-c.credit
	})
}

// outboundFrameSize is the length of o's outbound frame when none of its
// strings needs escaping: the frame's array is allocated once (160 bytes
// besides text and data grew it on most broadcast messages, a twentieth
// of a broadcast target's bytes).
func outboundFrameSize(o *journey.Outbound) int {
	const (
		fixed = 110 // the type, the keys, their quotes, colons and commas, an empty data's null
		seq   = 20  // the digits of a uint64
	)
	n := fixed + seq + len(o.ID) + len(o.Customer) + len(o.Channel) + len(o.Text) + len(o.Actor) + len(o.Data)
	for k, v := range o.To {
		n += len(k) + len(v) + 6
	}
	return n
}

// appendOutboundFrame appends the server's outbound frame (PROTOCOL
// section 2): the type, then the outbound's fields, byte for byte what
// encoding/json writes for them (a test compares them), without
// its reflection: a broadcast sends 10,000 a second.
func appendOutboundFrame(b []byte, o *journey.Outbound) ([]byte, error) {
	b = append(b, `{"type":"outbound","id":`...)
	b = jsonenc.AppendString(b, o.ID)
	b = append(b, `,"customer":`...)
	b = jsonenc.AppendString(b, o.Customer)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, o.Seq, 10)
	b = append(b, `,"channel":`...)
	b = jsonenc.AppendString(b, o.Channel)
	b = append(b, `,"to":`...)
	b = jsonenc.AppendStringMap(b, o.To)
	b = append(b, `,"text":`...)
	b = jsonenc.AppendString(b, o.Text)
	b = append(b, `,"actor":`...)
	b = jsonenc.AppendString(b, o.Actor)
	b = append(b, `,"data":`...)
	b, err := jsonenc.AppendRaw(b, o.Data)
	return append(b, '}'), err
}

// forget drops the outbounds of an erased customer still waiting for a
// connection, so none of its messages goes out afterwards.
func (r *OutboundRouter) forget(customer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch, q := range r.waiting {
		if q.forget(customer) == 0 {
			delete(r.waiting, ch)
		}
	}
}
