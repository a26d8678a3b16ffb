package journey

import (
	"maps"
	"slices"
	"time"
)

// The Router's inputs. Each changes the state, then dispatches every queue
// (routing_dispatch.go) and answers the offers to make now. An input that
// names a conversation or agent the Router does not hold the way the input
// supposes is ignored (the customer holds the truth and the Router follows
// it), but the dispatch still runs.

// Enqueue puts a conversation in its queue. Announcing one again is
// idempotent: a waiting conversation is replaced by the new announcement
// (it may move to another queue); one offered or assigned is left as it is
// (revoke or release it first to move it). Errors: an unknown queue
// (not_found), a malformed Waiting (bad_request), a queue holding WaitingMax
// conversations (unavailable).
func (r *Router) Enqueue(w Waiting, now time.Time) ([]Offer, error) {
	if err := r.checkWaiting(&w, now); err != nil {
		return nil, err
	}
	q := r.queues[w.Queue]
	c := r.routed[w.Conversation]
	if c != nil && c.state != routedWaiting {
		return r.dispatch(now), nil
	}
	if c == nil || c.w.Queue != w.Queue {
		if len(q.waiting)+len(q.offered) >= WaitingMax {
			return nil, reject(CodeUnavailable, "queue %s holds %d conversations", w.Queue, WaitingMax)
		}
	}
	if c != nil {
		r.unqueue(c)
	}
	r.queue(&routed{state: routedWaiting, w: w})
	return r.dispatch(now), nil
}

// OfferTo offers a conversation to the named agent at once (a transfer to an
// agent): no skill is needed, but the agent must exist (not_found), not be
// offline and have room for the conversation's channel (conflict: the
// caller queues the conversation instead). A conversation waiting leaves its
// queue; one offered or assigned is a conflict (revoke or release it first).
// w.Queue must name a queue: its OfferTimeout leases the offer and a revoke
// with requeue puts the conversation back there.
func (r *Router) OfferTo(w Waiting, agent string, now time.Time) (Offer, error) {
	if err := r.checkWaiting(&w, now); err != nil {
		return Offer{}, err
	}
	a := r.agents[agent]
	switch {
	case a == nil:
		return Offer{}, reject(CodeNotFound, "no agent %s", agent)
	case a.status == AgentOffline:
		return Offer{}, reject(CodeConflict, "agent %s is offline", agent)
	case !a.fits(w.Channel):
		return Offer{}, reject(CodeConflict, "agent %s is %s", agent, a.capacity.full(a.used, a.usedTotal, w.Channel))
	}
	c := r.routed[w.Conversation]
	if c != nil && c.state != routedWaiting {
		return Offer{}, reject(CodeConflict, "conversation %s is already with agent %s", w.Conversation, c.agent)
	}
	if c != nil {
		r.unqueue(c)
	}
	q := r.queues[w.Queue]
	cand := Candidate{Agent: a.id, Eligible: true, Why: "chosen: direct transfer", IdleSince: a.idleSince}
	return r.offer(&routed{w: w}, a, OfferDirect, effectivePriority(&w, q.policy.aging(), now), []Candidate{cand}, now), nil
}

// Accepted records that agent accepted the conversation: its offer becomes
// an assignment (the reservation is dropped, the agent's load on the
// conversation's channel grows by one). The customer's word wins: a
// conversation offered to another agent or still waiting is assigned to
// agent all the same; one the Router does not know is ignored (use
// Assigned, which says its queue and channel).
func (r *Router) Accepted(conversation, agent string, now time.Time) []Offer {
	c, a := r.routed[conversation], r.agents[agent]
	if c == nil || a == nil || (c.state == routedAssigned && c.agent == agent) {
		return r.dispatch(now)
	}
	r.assign(c, a, now)
	return r.dispatch(now)
}

// Revoked records that the conversation's offer to agent was taken back
// (declined, timed out, cancelled): the reservation is dropped. With
// requeue the conversation waits in its queue again, keeping its Since,
// with agent added to its Excluded; without, the Router forgets it. A
// conversation not offered to agent is left as it is.
func (r *Router) Revoked(conversation, agent string, requeue bool, now time.Time) []Offer {
	c := r.routed[conversation]
	if c == nil || c.state != routedOffered || c.agent != agent {
		return r.dispatch(now)
	}
	r.unqueue(c)
	if requeue {
		c.w.Excluded = excludeAgent(c.w.Excluded, agent)
		r.queue(&routed{state: routedWaiting, w: c.w})
	}
	return r.dispatch(now)
}

// Released records that the conversation's assignment to agent ended
// (wrap-up, transfer, close): the agent's load shrinks by one and it is idle
// since now. On wrapup an agent available (or already after_work) is
// after_work until now plus the AfterWork of the conversation's queue, then
// available again (Tick); with AfterWork 0, or an agent not_ready or
// offline, its status stays. A conversation not assigned to agent is left
// as it is.
func (r *Router) Released(conversation, agent string, wrapup bool, now time.Time) []Offer {
	c := r.routed[conversation]
	if c == nil || c.state != routedAssigned || c.agent != agent {
		return r.dispatch(now)
	}
	r.unqueue(c)
	a := r.agents[agent]
	a.idleSince = now
	var afterWork time.Duration
	if q := r.queues[c.w.Queue]; q != nil {
		afterWork = q.policy.AfterWork
	}
	if wrapup && afterWork > 0 && (a.status == AgentAvailable || a.status == AgentAfterWork) {
		a.status, a.reason = AgentAfterWork, ""
		a.afterWorkUntil = later(a.afterWorkUntil, now.Add(afterWork))
	}
	return r.dispatch(now)
}

// Assigned re-announces an existing assignment (after a restart): the
// agent's load on channel grows by one. Idempotent: an assignment already
// known is left as it is; the conversation leaves any queue or offer it was
// in, or another agent it was assigned to. An unknown agent, a malformed
// conversation id, or an agent holding AssignedMax conversations already:
// ignored. queue may be unknown to the config (then no after_work follows
// its wrap-up).
func (r *Router) Assigned(conversation, agent, queue, channel string, now time.Time) []Offer {
	a := r.agents[agent]
	c := r.routed[conversation]
	switch {
	case a == nil, ValidateID("conversation", conversation) != nil, len(a.assigned) >= AssignedMax:
	case c == nil:
		r.assign(&routed{w: Waiting{Conversation: conversation, Queue: queue, Channel: channel, Kind: KindConversation}}, a, now)
	case c.state != routedAssigned || c.agent != agent:
		c.w.Queue, c.w.Channel = queue, channel
		r.assign(c, a, now)
	}
	return r.dispatch(now)
}

// Offered re-announces an offer outstanding (after a restart): the
// conversation is held for agent, reserving its room and counting in its
// queue's waiting, until it is accepted or revoked (the customer's lease
// ends it). Idempotent: an offer already known is left as it is; a
// conversation waiting leaves its queue. An unknown agent, a malformed
// Waiting, an agent holding AssignedMax offers, or a conversation offered
// to another agent or assigned: ignored (the customer's lease still
// revokes the offer and puts the conversation back in its queue).
func (r *Router) Offered(w Waiting, agent string, now time.Time) []Offer {
	a := r.agents[agent]
	if a == nil || r.checkWaiting(&w, now) != nil || len(a.offered) >= AssignedMax {
		return r.dispatch(now)
	}
	c := r.routed[w.Conversation]
	if c != nil && c.state != routedWaiting {
		return r.dispatch(now)
	}
	if c != nil {
		r.unqueue(c)
	}
	c = &routed{state: routedOffered, agent: agent, w: w}
	r.routed[w.Conversation] = c
	r.queues[w.Queue].offered[w.Conversation] = c
	a.hold(a.offered, w.Conversation, w.Channel)
	return r.dispatch(now)
}

// Remove forgets a conversation that left routing without an offer being
// accepted (closed, routed elsewhere): whatever it held (a place in its
// queue, a reservation, an agent's load) is freed.
func (r *Router) Remove(conversation string, now time.Time) []Offer {
	if c := r.routed[conversation]; c != nil {
		if c.state == routedAssigned {
			r.agents[c.agent].idleSince = now
		}
		r.unqueue(c)
	}
	return r.dispatch(now)
}

// Presence sets an agent's status from its desk: available, not_ready or
// offline, with a reason, and its capacity unless nil. It overrides
// after_work. An agent becoming available is idle since now. Offers
// outstanding stay reserved: when an agent goes offline or not_ready the
// caller revokes them (Outstanding lists them) and reports each with
// Revoked. Errors: an unknown agent (not_found), another status, a reason
// over PresenceReasonMaxChars or an invalid capacity (bad_request).
func (r *Router) Presence(agent, status, reason string, capacity *Capacity, now time.Time) ([]Offer, error) {
	a := r.agents[agent]
	if a == nil {
		return nil, reject(CodeNotFound, "no agent %s", agent)
	}
	if status != AgentAvailable && status != AgentNotReady && status != AgentOffline {
		return nil, reject(CodeBadRequest, "presence status %q is not available, not_ready or offline", status)
	}
	if len(reason) > PresenceReasonMaxChars {
		return nil, reject(CodeBadRequest, "presence reason longer than %d", PresenceReasonMaxChars)
	}
	if capacity != nil {
		if err := capacity.Validate(); err != nil {
			return nil, reject(CodeBadRequest, "%v", err)
		}
		a.capacity = capacity.clone()
	}
	if status == AgentAvailable && a.status != AgentAvailable {
		a.idleSince = now
	}
	a.status, a.reason, a.afterWorkUntil = status, reason, time.Time{}
	return r.dispatch(now), nil
}

// Outstanding lists the conversations offered to agent and not yet
// accepted or revoked, sorted.
func (r *Router) Outstanding(agent string) []string {
	a := r.agents[agent]
	if a == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(a.offered))
}

// Tick is time passing: after_work ends for the agents whose time is up
// (they are available, idle since the end), sticky waits end, aging
// reorders; then the dispatch.
func (r *Router) Tick(now time.Time) []Offer {
	for _, id := range r.agentIDs {
		a := r.agents[id]
		if a.status == AgentAfterWork && !now.Before(a.afterWorkUntil) {
			a.status, a.idleSince, a.afterWorkUntil = AgentAvailable, a.afterWorkUntil, time.Time{}
		}
	}
	for conversation, end := range r.held { // deleting: order does not show
		if !now.Before(end) {
			delete(r.held, conversation)
		}
	}
	return r.dispatch(now)
}

// NextTick is the earliest time Tick has something to do (an after_work
// ends, a sticky wait ends), false when nothing waits on time, so the actor
// arms one timer. Aging alone never needs a Tick: it only reorders the
// conversations at the next dispatch.
func (r *Router) NextTick() (time.Time, bool) {
	var next time.Time
	for _, a := range r.agents { // a minimum: order does not show
		if a.status == AgentAfterWork {
			next = earlier(next, a.afterWorkUntil)
		}
	}
	for _, end := range r.held {
		next = earlier(next, end)
	}
	return next, !next.IsZero()
}

// checkWaiting validates w and normalizes it in place: Kind and Since take
// their defaults, Priority is clamped, Excluded is copied and bounded.
func (r *Router) checkWaiting(w *Waiting, now time.Time) error {
	if rj := ValidateID("conversation", w.Conversation); rj != nil {
		return rj
	}
	if rj := ValidateID("customer", w.Customer); rj != nil {
		return rj
	}
	if r.queues[w.Queue] == nil {
		return reject(CodeNotFound, "no queue %q", w.Queue)
	}
	if len(w.Channel) > ChannelMaxChars {
		return reject(CodeBadRequest, "channel longer than %d", ChannelMaxChars)
	}
	switch w.Kind {
	case "":
		w.Kind = KindConversation
	case KindConversation, KindCallback:
	default:
		return reject(CodeBadRequest, "kind %q is not conversation or callback", w.Kind)
	}
	if w.Since.IsZero() {
		w.Since = now
	}
	w.Priority = min(max(w.Priority, -PriorityMax), PriorityMax)
	var excluded []string
	for _, id := range w.Excluded {
		excluded = excludeAgent(excluded, id)
	}
	w.Excluded = excluded
	return nil
}

// queue puts a waiting conversation in its queue.
func (r *Router) queue(c *routed) {
	r.routed[c.w.Conversation] = c
	r.queues[c.w.Queue].waiting[c.w.Conversation] = c
}

// offer makes c an offer to a and reserves a's room for it.
func (r *Router) offer(c *routed, a *agentState, reason string, priority int, cands []Candidate, now time.Time) Offer {
	q := r.queues[c.w.Queue]
	c.state, c.agent = routedOffered, a.id
	r.routed[c.w.Conversation] = c
	q.offered[c.w.Conversation] = c
	a.hold(a.offered, c.w.Conversation, c.w.Channel)
	w := c.w
	w.Excluded = slices.Clone(w.Excluded)
	return Offer{Waiting: w, Agent: a.id, Expires: now.Add(q.policy.OfferTimeout), Reason: reason, Priority: priority, Candidates: cands}
}

// assign makes c an assignment to a, from wherever it was.
func (r *Router) assign(c *routed, a *agentState, now time.Time) {
	r.unqueue(c)
	c.state, c.agent = routedAssigned, a.id
	r.routed[c.w.Conversation] = c
	a.hold(a.assigned, c.w.Conversation, c.w.Channel)
	a.idleSince = now
}

// unqueue takes c out of wherever it is and forgets it: its queue, its
// offer's reservation, its assignment's load.
func (r *Router) unqueue(c *routed) {
	id := c.w.Conversation
	if r.routed[id] != c {
		return // not known yet (a new routed)
	}
	delete(r.routed, id)
	delete(r.held, id)
	q := r.queues[c.w.Queue]
	switch c.state {
	case routedWaiting:
		delete(q.waiting, id)
	case routedOffered:
		delete(q.offered, id)
		r.agents[c.agent].drop(r.agents[c.agent].offered, id)
	case routedAssigned:
		r.agents[c.agent].drop(r.agents[c.agent].assigned, id)
	}
}

// excludeAgent adds agent to excluded (once), keeping the newest
// ExcludedMax; it never changes the array it was given.
func excludeAgent(excluded []string, agent string) []string {
	if slices.Contains(excluded, agent) {
		return excluded
	}
	excluded = append(slices.Clip(excluded), agent)
	if len(excluded) > ExcludedMax {
		excluded = excluded[len(excluded)-ExcludedMax:]
	}
	return excluded
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// earlier is the earlier of a and b, a zero time counting as none.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
