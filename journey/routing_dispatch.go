package journey

import (
	"cmp"
	"slices"
	"time"
)

// Dispatch: one pass offers as many waiting conversations as the agents
// have room for.
//
//   - Agents with room: available, with room on some channel, longest idle
//     first (idleSince, then id). None: nothing to do.
//   - Conversations: those of every queue one of those agents has the
//     skills for, highest effective priority first (priority plus the
//     queue's AgingPerMinute per whole minute since Since), then the oldest
//     Since, then the conversation id.
//   - Each goes, in that order, to the first agent that suits it (route),
//     and the agents left without room drop out of the pass.
//
// Sticky: a conversation whose LastAgent is eligible goes to that agent. If
// the last agent is not eligible but is not offline, has the queue's skills
// and did not decline it, the conversation waits for it (offered to no one)
// until Since plus the queue's StickyWait; NextTick reports the end.
//
// Excluded agents (declined or let the offer lapse) are skipped while some
// other agent with the queue's skills is available or after_work, even if
// full: the conversation waits for them. When no one else is left, the
// exclusion yields and the excluded agents are offered it again, longest
// idle first, so a lone agent who missed an offer does not leave the
// customer waiting for good.

// waitingKey is a conversation in the dispatch order.
type waitingKey struct {
	c        *routed
	priority int
}

func (r *Router) dispatch(now time.Time) []Offer {
	// Most inputs find nothing waiting: no work, and no garbage (the
	// routing actor runs this on every input).
	if !slices.ContainsFunc(r.queueNames, func(name string) bool { return len(r.queues[name].waiting) > 0 }) {
		return nil
	}
	agents := r.scratch[:0]
	defer func() { clear(agents[:cap(agents)]); r.scratch = agents[:0] }()
	for _, id := range r.agentIDs {
		if a := r.agents[id]; a.status == AgentAvailable && a.roomy() {
			agents = append(agents, a)
		}
	}
	if len(agents) == 0 {
		return nil
	}
	slices.SortFunc(agents, func(a, b *agentState) int {
		return cmp.Or(a.idleSince.Compare(b.idleSince), cmp.Compare(a.id, b.id))
	})
	var waiting []waitingKey
	for _, name := range r.queueNames {
		q := r.queues[name]
		if len(q.waiting) == 0 || !slices.ContainsFunc(agents, func(a *agentState) bool { return a.missingSkill(q) == "" }) {
			continue
		}
		for _, c := range q.waiting { // sorted below on a total order
			waiting = append(waiting, waitingKey{c, effectivePriority(&c.w, q.policy.aging(), now)})
		}
	}
	slices.SortFunc(waiting, func(a, b waitingKey) int {
		return cmp.Or(cmp.Compare(b.priority, a.priority), a.c.w.Since.Compare(b.c.w.Since), cmp.Compare(a.c.w.Conversation, b.c.w.Conversation))
	})
	var offers []Offer
	for _, k := range waiting {
		if len(agents) == 0 {
			break
		}
		o, ok := r.route(k, agents, now)
		if !ok {
			continue
		}
		offers = append(offers, o)
		agents = slices.DeleteFunc(agents, func(a *agentState) bool { return !a.roomy() })
	}
	return offers
}

// route offers one waiting conversation to the agent that suits it, if any;
// agents are the agents with room, longest idle first.
func (r *Router) route(k waitingKey, agents []*agentState, now time.Time) (Offer, bool) {
	c := k.c
	w := &c.w
	q := r.queues[w.Queue]
	if last := r.agents[w.LastAgent]; last != nil && last.status != AgentOffline && last.missingSkill(q) == "" && !slices.Contains(w.Excluded, last.id) {
		if last.status == AgentAvailable && last.fits(w.Channel) {
			r.unqueue(c)
			cands := r.candidates(w, q, last, "chosen: last agent (sticky)", "last agent chosen (sticky)", agents)
			return r.offer(c, last, OfferSticky, k.priority, cands, now), true
		}
		if end := w.Since.Add(q.policy.StickyWait); now.Before(end) {
			r.held[w.Conversation] = end
			return Offer{}, false
		}
	}
	delete(r.held, w.Conversation)
	var chosen, fallback *agentState
	for _, a := range agents {
		if a.missingSkill(q) != "" || !a.fits(w.Channel) {
			continue
		}
		if !slices.Contains(w.Excluded, a.id) {
			chosen = a
			break
		}
		if fallback == nil {
			fallback = a
		}
	}
	why := "chosen: longest idle"
	if chosen == nil {
		if fallback == nil || r.someoneElse(w, q) {
			return Offer{}, false
		}
		chosen, why = fallback, "chosen: longest idle (declined before, no one else)"
	}
	r.unqueue(c)
	cands := r.candidates(w, q, chosen, why, "longer idle agent chosen", agents)
	return r.offer(c, chosen, OfferLongestIdle, k.priority, cands, now), true
}

// someoneElse reports whether an agent w does not exclude has the queue's
// skills and is available or after_work: one who may take w soon.
func (r *Router) someoneElse(w *Waiting, q *queueState) bool {
	for _, id := range r.agentIDs {
		a := r.agents[id]
		if (a.status == AgentAvailable || a.status == AgentAfterWork) && a.missingSkill(q) == "" && !slices.Contains(w.Excluded, id) {
			return true
		}
	}
	return false
}

// candidates explains an offer: the chosen agent first, then the other
// eligible agents, longest idle first (each with whyOther), then the agents
// not eligible in id order with why; at most CandidatesMax.
func (r *Router) candidates(w *Waiting, q *queueState, chosen *agentState, whyChosen, whyOther string, agents []*agentState) []Candidate {
	cands := []Candidate{{Agent: chosen.id, Eligible: true, Why: whyChosen, IdleSince: chosen.idleSince}}
	listed := map[string]bool{chosen.id: true}
	for _, a := range agents {
		if len(cands) == CandidatesMax {
			return cands
		}
		if !listed[a.id] && r.ineligible(a, w, q) == "" {
			cands = append(cands, Candidate{Agent: a.id, Eligible: true, Why: whyOther, IdleSince: a.idleSince})
			listed[a.id] = true
		}
	}
	for _, id := range r.agentIDs {
		if len(cands) == CandidatesMax {
			return cands
		}
		a := r.agents[id]
		if listed[id] {
			continue
		}
		why := r.ineligible(a, w, q)
		if why == "" {
			why = whyOther
		}
		c := Candidate{Agent: id, Eligible: why == whyOther, Why: why}
		if a.status == AgentAvailable {
			c.IdleSince = a.idleSince
		}
		cands = append(cands, c)
	}
	return cands
}

// ineligible says why agent a may not be offered w now, "" when it may.
func (r *Router) ineligible(a *agentState, w *Waiting, q *queueState) string {
	if a.status != AgentAvailable {
		return a.status
	}
	if s := a.missingSkill(q); s != "" {
		return "missing skill " + s
	}
	if slices.Contains(w.Excluded, a.id) {
		return "declined before"
	}
	if !a.fits(w.Channel) {
		return a.capacity.full(a.used, a.usedTotal, w.Channel)
	}
	return ""
}

// effectivePriority is w's priority plus aging points for every whole
// minute it has waited.
func effectivePriority(w *Waiting, aging int, now time.Time) int {
	if aging <= 0 || !now.After(w.Since) {
		return w.Priority
	}
	minutes := min(int(now.Sub(w.Since)/time.Minute), agingMinutesMax)
	return w.Priority + aging*minutes
}
