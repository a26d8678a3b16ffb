package bench

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// agentsConv is one customer's conversation, from its escalation to its
// wrap-up. Customer ids are "ag-<nonce>-<connection>-<k>"; the
// escalation's event id is the customer's plus "-esc", event j's (1..K)
// the customer's plus "-m<j>".
type agentsConv struct {
	customer  string
	channel   *agentsChannel // the connection its events travel on
	desk      *agentsDesk    // the desk last offered it
	escalated int64          // the escalation's scheduled time (run clock)
	offeredAt int64          // when the first offer reached a desk
	events    int            // K: events it gets once assigned
	scheduled []int64        // event j's scheduled time at j-1, once assigned
	sent      uint64         // mask of events sent, bit j-1
	delivered uint64         // mask of events on the desk
	failed    uint64         // mask of events answered with an error
	offered   bool
	assigned  bool
	wrapping  bool
	foreign   bool // offered but not escalated by this run
}

// agentsCounts are the counts of a run, warmup included.
type agentsCounts struct {
	escalations, escalationsAcked, escalationsFailed int64
	offers, reoffers, foreignOffers, revoked         int64
	accepted, acceptsFailed, assignedFrames          int64
	eventsSent, eventsAcked, eventsFailed            int64
	eventsDelivered, serverEvents, unmatched         int64
	wrappedUp, wrapupsFailed, deskFramesDropped      int64
	malformed                                        int64
	measuredOffers, measuredDelivered                int64 // received in the measured period
	missingOffers, missingEvents                     int64 // at the end
}

// agentsLatencies are the run's histograms, µs, of what was scheduled in
// the measured period.
type agentsLatencies struct {
	offer  *hdrhistogram.Histogram // escalation scheduled → offer on a desk
	screen *hdrhistogram.Histogram // event scheduled → event frame on the desk
	accept *hdrhistogram.Histogram // offer on the desk → the accept's ok
}

// agentsRun is the state the channels and desks of a run share, under one
// lock: at thousands of frames a second it is not contended.
type agentsRun struct {
	cfg        *AgentsConfig
	clock      *clock
	custPrefix string // "ag-<nonce>-"
	mu         struct {
		sync.Mutex
		convs        map[string]*agentsConv
		escalating   int // channels still sending escalations
		counts       agentsCounts
		errors       map[string]int64
		lat          agentsLatencies
		drained      chan struct{} // closed once no channel escalates and no conversation is open
		drainedClose bool
	}
}

func newAgentsRun(cfg *AgentsConfig, nonce string) *agentsRun {
	r := &agentsRun{cfg: cfg, clock: &clock{}, custPrefix: "ag-" + nonce + "-"}
	r.mu.convs = map[string]*agentsConv{}
	r.mu.errors = map[string]int64{}
	r.mu.escalating = cfg.Connections
	r.mu.drained = make(chan struct{})
	r.mu.lat = agentsLatencies{offer: newHistogram(), screen: newHistogram(), accept: newHistogram()}
	return r
}

// eventsOf is K for the conversation of escalation k of connection c: the
// escalations interleave over the connections, g = k*Connections + c.
func (r *agentsRun) eventsOf(c int, k uint64) int {
	g := k*uint64(r.cfg.Connections) + uint64(c)
	e, rate := uint64(r.cfg.EventsRate), uint64(r.cfg.Rate)
	return int((g+1)*e/rate - g*e/rate)
}

// escalate records a conversation about to be escalated.
func (r *agentsRun) escalate(ch *agentsChannel, customer string, k uint64, scheduled int64) {
	conv := &agentsConv{customer: customer, channel: ch, escalated: scheduled, events: r.eventsOf(ch.index, k)}
	r.mu.Lock()
	r.mu.convs[customer] = conv
	r.mu.counts.escalations++
	r.mu.Unlock()
}

// stopEscalating is a channel's: it sends no more escalations.
func (r *agentsRun) stopEscalating() {
	r.mu.Lock()
	r.mu.escalating--
	r.checkDrainedLocked()
	r.mu.Unlock()
}

func (r *agentsRun) checkDrainedLocked() {
	if r.mu.escalating == 0 && len(r.mu.convs) == 0 && !r.mu.drainedClose {
		r.mu.drainedClose = true
		close(r.mu.drained)
	}
}

// waitDrained waits until every conversation is wrapped up, deadline or
// ctx's end.
func (r *agentsRun) waitDrained(ctx context.Context, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-r.mu.drained:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// measured says whether something scheduled at t counts in the figures.
func (r *agentsRun) measured(t int64) bool {
	return t >= r.clock.warmupEnd && t < r.clock.sendEnd
}

func (r *agentsRun) inPeriod(now int64) bool {
	return now >= r.clock.warmupEnd && now < r.clock.sendEnd
}

func record(h *hdrhistogram.Histogram, from, now int64) {
	_ = h.RecordValue(min(max((now-from)/int64(time.Microsecond), 1), latencyMaxMicros)) // in range: cannot fail
}

// eventSent marks event j of a conversation as sent.
func (r *agentsRun) eventSent(customer string, j int) {
	r.mu.Lock()
	if conv := r.mu.convs[customer]; conv != nil {
		conv.sent |= 1 << (j - 1)
	}
	r.mu.counts.eventsSent++
	r.mu.Unlock()
}

// channelAnswer settles an ack or error of a channel connection, by event
// id.
func (r *agentsRun) channelAnswer(f *serverFrame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.mu.counts
	customer, j, ok := r.parseEventID(f.id)
	conv := r.mu.convs[string(customer)]
	switch f.kind {
	case kindAck:
		switch {
		case !ok:
			c.unmatched++
		case j == 0:
			c.escalationsAcked++
		default:
			c.eventsAcked++
		}
	case kindError:
		r.mu.errors[string(f.code)]++
		switch {
		case !ok:
		case j == 0:
			c.escalationsFailed++
			if conv != nil && !conv.offered {
				r.finishLocked(conv)
			}
		default:
			c.eventsFailed++
			if conv != nil && j <= conv.events {
				conv.failed |= 1 << (j - 1)
				r.maybeWrapUpLocked(conv)
			}
		}
	}
}

// parseEventID splits an event id of this run into its customer and event
// number (0 for the escalation).
func (r *agentsRun) parseEventID(id []byte) (customer []byte, j int, ok bool) {
	if !bytes.HasPrefix(id, []byte(r.custPrefix)) {
		return nil, 0, false
	}
	i := bytes.LastIndexByte(id, '-')
	customer, suffix := id[:i], id[i+1:]
	if string(suffix) == "esc" {
		return customer, 0, true
	}
	if len(suffix) < 2 || suffix[0] != 'm' {
		return nil, 0, false
	}
	n, ok := parseUint(suffix[1:])
	if !ok || n < 1 || n > EventsPerConversationMax {
		return nil, 0, false
	}
	return customer, int(n), true
}

// finishLocked forgets a conversation: wrapped up or given up.
func (r *agentsRun) finishLocked(conv *agentsConv) {
	delete(r.mu.convs, conv.customer)
	r.checkDrainedLocked()
}

// maybeWrapUpLocked wraps the conversation up once each of its events is
// on the desk or failed.
func (r *agentsRun) maybeWrapUpLocked(conv *agentsConv) {
	all := uint64(1)<<conv.events - 1
	if !conv.assigned || conv.wrapping || (conv.delivered|conv.failed)&all != all {
		return
	}
	conv.wrapping = true
	conv.desk.queueLocked(deskFrame("wrapup", conv.customer, "", `,"disposition":"resolved"`))
}

// deskMessage settles a frame a desk received at now.
func (r *agentsRun) deskMessage(d *agentsDesk, f *deskServerFrame, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.mu.counts
	switch f.kind {
	case deskOffer:
		r.offerLocked(d, f, now)
	case deskOK:
		r.okLocked(f, now)
	case deskError:
		r.mu.errors[string(f.code)]++
		conv := r.mu.convs[string(f.ref[min(2, len(f.ref)):])]
		switch {
		case bytes.HasPrefix(f.ref, []byte("a:")):
			c.acceptsFailed++
			if conv != nil && !conv.assigned {
				r.finishLocked(conv)
			}
		case bytes.HasPrefix(f.ref, []byte("w:")):
			c.wrapupsFailed++
			if conv != nil {
				r.finishLocked(conv)
			}
		}
	case deskEvent:
		r.eventLocked(f, now)
	case deskAssigned:
		c.assignedFrames++
	case deskRevoked:
		c.revoked++
	}
}

// offerLocked times a conversation's first offer and accepts it at once.
// An offer this run did not escalate (left over by an earlier run) is
// accepted and wrapped up, to free the agent.
func (r *agentsRun) offerLocked(d *agentsDesk, f *deskServerFrame, now int64) {
	c := &r.mu.counts
	conv := r.mu.convs[string(f.customer)]
	if conv == nil {
		c.foreignOffers++
		conv = &agentsConv{customer: string(f.customer), foreign: true, offered: true}
		r.mu.convs[conv.customer] = conv
	} else if conv.offered {
		c.reoffers++
	} else {
		conv.offered, conv.offeredAt = true, now
		c.offers++
		if r.inPeriod(now) {
			c.measuredOffers++
		}
		if r.measured(conv.escalated) {
			record(r.mu.lat.offer, conv.escalated, now)
		}
	}
	conv.desk = d
	d.queueLocked(deskFrame("accept", conv.customer, string(f.conversation), ""))
}

// okLocked settles the ok of an accept or a wrap-up.
func (r *agentsRun) okLocked(f *deskServerFrame, now int64) {
	c := &r.mu.counts
	conv := r.mu.convs[string(f.ref[min(2, len(f.ref)):])]
	switch {
	case conv == nil:
	case bytes.HasPrefix(f.ref, []byte("a:")):
		c.accepted++
		if conv.assigned {
			return
		}
		conv.assigned = true
		if !conv.foreign && r.measured(conv.escalated) {
			record(r.mu.lat.accept, conv.offeredAt, now)
		}
		conv.scheduled = make([]int64, conv.events)
		for j := range conv.events {
			conv.scheduled[j] = now + int64(j+1)*int64(r.cfg.EventGap)
		}
		if conv.events > 0 {
			conv.channel.schedule(conv.customer, conv.scheduled)
		}
		r.maybeWrapUpLocked(conv)
	case bytes.HasPrefix(f.ref, []byte("w:")):
		c.wrappedUp++
		r.finishLocked(conv)
	}
}

// eventLocked times an event frame of an event this run sent.
func (r *agentsRun) eventLocked(f *deskServerFrame, now int64) {
	c := &r.mu.counts
	customer, j, ok := r.parseEventID(f.eventID)
	if !ok {
		c.serverEvents++ // the server's own: agent.assigned, routing...
		return
	}
	conv := r.mu.convs[string(customer)]
	if j == 0 || conv == nil || j > len(conv.scheduled) || conv.delivered&(1<<(j-1)) != 0 {
		c.unmatched++
		return
	}
	conv.delivered |= 1 << (j - 1)
	c.eventsDelivered++
	if r.inPeriod(now) {
		c.measuredDelivered++
	}
	if at := conv.scheduled[j-1]; r.measured(at) {
		record(r.mu.lat.screen, at, now)
	}
	r.maybeWrapUpLocked(conv)
}

// collect counts what is still open at now: offers and events that never
// came are recorded at their age then (a lower bound, so a loss is not
// hidden).
func (r *agentsRun) collect(now int64) *agentsResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.mu.counts
	for _, conv := range r.mu.convs {
		if conv.foreign {
			continue
		}
		if !conv.offered {
			c.missingOffers++
			if r.measured(conv.escalated) {
				record(r.mu.lat.offer, conv.escalated, now)
			}
		}
		for j, at := range conv.scheduled {
			bit := uint64(1) << j
			if conv.sent&bit != 0 && (conv.delivered|conv.failed)&bit == 0 {
				c.missingEvents++
				if r.measured(at) {
					record(r.mu.lat.screen, at, now)
				}
			}
		}
	}
	return &agentsResult{
		counts: *c, errors: r.mu.errors, lat: r.mu.lat,
		measured: r.cfg.Duration, open: len(r.mu.convs),
	}
}

// deskFrame is a desk's accept or wrapup of a customer's conversation;
// its ref names the customer. Ids are raw JSON string contents.
func deskFrame(typ, customer, conversation, extra string) []byte {
	b := make([]byte, 0, 160)
	b = append(b, `{"type":"`+typ+`","customer":"`...)
	b = append(b, customer...)
	if conversation != "" {
		b = append(b, `","conversation":"`...)
		b = append(b, conversation...)
	}
	b = append(b, `","ref":"`...)
	b = append(b, typ[0], ':')
	b = append(b, customer...)
	b = append(b, '"')
	b = append(b, extra...)
	return append(b, '}')
}

// customerID is the customer of escalation k of connection c.
func (r *agentsRun) customerID(c int, k uint64) string {
	return r.custPrefix + strconv.Itoa(c) + "-" + strconv.FormatUint(k, 10)
}
