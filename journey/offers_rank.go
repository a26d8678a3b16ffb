package journey

import (
	"slices"
	"strconv"
	"time"
)

// Why an offer is not among the actions of a ranking (PROTOCOL section 5).
const (
	OfferReasonNotEligible = "not_eligible" // its when is false
	OfferReasonCap         = "cap"          // its per-customer cap is reached, or the customer answered it
	OfferReasonNoConsent   = ReasonNoConsent
	OfferReasonNoChannel   = ReasonNoChannel
	OfferReasonError       = "error" // its when or score failed to evaluate
)

// Ranking is the next best action for one customer (GET
// /v1/customers/{id}/next-best-action): the eligible offers, best first,
// and every other offer with why it is left out, in configuration order.
type Ranking struct {
	Actions  []RankedOffer   `json:"actions"`
	Excluded []ExcludedOffer `json:"excluded"`
}

// RankedOffer is an eligible offer: its score (priority plus score), its
// text, the channel governance would use, and the conditions that held.
type RankedOffer struct {
	Offer   string   `json:"offer"`
	Score   float64  `json:"score"`
	Text    string   `json:"text"`
	Channel string   `json:"channel"`
	Why     []string `json:"why"`
}

// ExcludedOffer is an offer left out, with its reason (an OfferReason
// constant) and, for OfferReasonError, the evaluation error.
type ExcludedOffer struct {
	Offer  string `json:"offer"`
	Reason string `json:"reason"`
	Error  string `json:"error,omitempty"`
}

// RankOffers ranks the offers for the customer at now: an offer is an
// action when its when holds, its cap allows it, governance finds it a
// channel with consent (among the offer's channels, when it names some),
// and its score evaluates; the actions are ordered by score, highest first,
// then by configuration order. It is pure and changes nothing: the
// endpoint, the rule action next_best_action and the desk all call it. The
// frequency cap and quiet hours are not weighed here: they apply to the
// customer, not to an offer, when a message is sent.
func RankOffers(offers *Offers, c *Customer, g *Governance, now time.Time) Ranking {
	r := Ranking{Actions: []RankedOffer{}, Excluded: []ExcludedOffer{}}
	list := offers.List()
	if len(list) == 0 {
		return r
	}
	vars := newCustomerVars(c.RuleView(now))
	in := ProactiveInput{Now: now, Profile: c.Profile, LastChannel: c.LastChannel, Identities: c.Identities}
	var buf candidateBuf
	candidates := channelCandidates(in, buf[:0])
	for _, x := range list {
		action, excluded := rankOffer(x, c, g, now, vars, candidates)
		if excluded != nil {
			r.Excluded = append(r.Excluded, *excluded)
			continue
		}
		r.Actions = append(r.Actions, action)
	}
	// Stable: equal scores keep configuration order.
	slices.SortStableFunc(r.Actions, func(a, b RankedOffer) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	return r
}

// rankOffer judges one offer: its action, or why it is excluded.
func rankOffer(x *CatalogOffer, c *Customer, g *Governance, now time.Time, vars *ruleVars, candidates []string) (RankedOffer, *ExcludedOffer) {
	exclude := func(reason string, err error) (RankedOffer, *ExcludedOffer) {
		e := &ExcludedOffer{Offer: x.ID, Reason: reason}
		if err != nil {
			e.Error = err.Error()
		}
		return RankedOffer{}, e
	}
	ok, err := x.when.eval(vars)
	switch {
	case err != nil:
		return exclude(OfferReasonError, err)
	case !ok:
		return exclude(OfferReasonNotEligible, nil)
	}
	if reason := c.offerBlocked(x, now); reason != "" {
		return exclude(reason, nil)
	}
	channel, reason := offerChannel(g, c.Profile, candidates, x.Channels)
	if reason != "" {
		return exclude(reason, nil)
	}
	a := RankedOffer{Offer: x.ID, Score: x.Priority, Text: x.Text, Channel: channel,
		Why: []string{"when: " + x.WhenExpr, "priority: " + formatScore(x.Priority)}}
	if x.score.prog != nil {
		s, err := x.score.evalScore(vars)
		if err != nil {
			return exclude(OfferReasonError, err)
		}
		a.Score += s
		a.Why = append(a.Why, "score: "+x.ScoreExpr+" = "+formatScore(s))
	}
	return a, nil
}

// offerChannel is governance's channel choice (PROTOCOL section 5) among
// the offer's channels, when it names some: the first candidate allowed
// with consent; no_channel when no candidate is allowed, no_consent when
// none allowed has consent.
func offerChannel(g *Governance, profile map[string]any, candidates, allowed []string) (channel, reason string) {
	require := g != nil && g.RequireConsent
	found := false
	for _, ch := range candidates {
		if len(allowed) > 0 && !slices.Contains(allowed, ch) {
			continue
		}
		found = true
		if hasConsent(profile, ch, require) {
			return ch, ""
		}
	}
	if !found {
		return "", OfferReasonNoChannel
	}
	return "", OfferReasonNoConsent
}

// formatScore writes a score as JSON would, without trailing zeros.
func formatScore(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// newCustomerVars is the activation of an expression that sees only the
// customer (an offer's when and score).
func newCustomerVars(c RuleCustomer) *ruleVars {
	v := &ruleVars{c: c}
	v.customer.customer = &v.c
	return v
}

// SuppressedReason is the data.reason of the proactive.suppressed that the
// rule action next_best_action records when the ranking has no action, with
// the offer it names ("" for none): the reason of the first excluded offer,
// in configuration order, whose when held or failed (cap, no_consent,
// no_channel, error); not_eligible when no offer's when held.
func (r Ranking) SuppressedReason() (reason, offer string) {
	for _, e := range r.Excluded {
		if e.Reason != OfferReasonNotEligible {
			return e.Reason, e.Offer
		}
	}
	return OfferReasonNotEligible, ""
}

// nextBestAction is the rule action next_best_action: the best action of
// the ranking goes out as a proactive message on its channel, through
// governance (frequency cap, quiet hours), recorded with data.offer; with
// no action, proactive.suppressed with the ranking's SuppressedReason.
func (s *stepper) nextBestAction(r *Rule, a *NextBestActionAction) {
	ranking := RankOffers(s.p.Offers, s.c, s.p.Governance, s.at)
	if len(ranking.Actions) == 0 {
		reason, offer := ranking.SuppressedReason()
		s.record(TypeProactiveSuppressed, ActorRulePrefix+r.ID, proactiveData{Rule: r.ID, Offer: offer, Reason: reason}, "", "")
		return
	}
	best := ranking.Actions[0]
	s.proactiveMessage(r, best.Offer, best.Channel, best.Text, a.Expires)
}
