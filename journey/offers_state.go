package journey

import (
	"encoding/json"
	"time"
)

// What a customer's state keeps for the offers' caps: a mark per offer sent
// (its proactive.sent, or proactive.held when quiet hours hold it: it
// counts from then, as for the frequency cap) and per answer (the
// customer's offer.accepted / offer.declined), each with its recorded_at.
// Marks older than OfferCapPerMax cannot matter to any cap and are dropped;
// past OfferMarksMax the oldest gives way. A customer is sent a handful of
// proactive messages a month under governance, so OfferMarksMax (eight
// times the largest cap.max) holds every mark a configured cap can count.
const OfferMarksMax = 8 * OfferCapMaxMax

// Customers' answers to an offer (event types they send, with data.offer).
const (
	TypeOfferAccepted = "offer.accepted"
	TypeOfferDeclined = "offer.declined"
)

// Responses to an offer, as counted (the metric's response label).
const (
	OfferResponseAccepted = "accepted"
	OfferResponseDeclined = "declined"
)

// offerMark is one offer sent to the customer, or one answer.
type offerMark struct {
	Offer    string `json:"offer"`
	At       int64  `json:"at"`                 // recorded_at, unix ns
	Response string `json:"response,omitempty"` // "" for a send
}

// OfferResponseOf reports whether e is a customer's answer to an offer, and
// which offer (data.offer, as sent: the caller maps it to a bounded label)
// and response (OfferResponseAccepted or OfferResponseDeclined).
func OfferResponseOf(e *Event) (offer, response string, ok bool) {
	switch {
	case e.Actor != ActorCustomer:
		return "", "", false
	case e.Type == TypeOfferAccepted:
		response = OfferResponseAccepted
	case e.Type == TypeOfferDeclined:
		response = OfferResponseDeclined
	default:
		return "", "", false
	}
	var d struct {
		Offer any `json:"offer"`
	}
	if json.Unmarshal(e.Data, &d) != nil {
		return "", response, true
	}
	offer, _ = d.Offer.(string)
	return offer, response, true
}

// applyOffers keeps the marks the offers' caps read.
func (c *Customer) applyOffers(e *Event) {
	switch e.Type {
	case TypeOfferAccepted, TypeOfferDeclined:
		offer, response, ok := OfferResponseOf(e)
		if ok && offer != "" && len(offer) <= IDMaxChars {
			c.pushOfferMark(offerMark{Offer: offer, At: e.RecordedAt.UnixNano(), Response: response})
		}
	}
}

// applyOfferSent marks an offer sent or held (applyRules decoded its
// data); a released hold counted when it was held.
func (c *Customer) applyOfferSent(e *Event, d *proactiveData) {
	if (e.Type == TypeProactiveSent || e.Type == TypeProactiveHeld) && d.Offer != "" && d.Held == 0 {
		c.pushOfferMark(offerMark{Offer: d.Offer, At: e.RecordedAt.UnixNano()})
	}
}

// pushOfferMark adds a mark, dropping those too old to matter and, past
// OfferMarksMax, the oldest.
func (c *Customer) pushOfferMark(m offerMark) {
	oldest := m.At - int64(OfferCapPerMax)
	keep := c.offerMarks[:0]
	for _, x := range c.offerMarks {
		if x.At > oldest {
			keep = append(keep, x)
		}
	}
	c.offerMarks = pushBounded(keep, m, OfferMarksMax)
}

// offerBlocked is why the offer may not be proposed at now because of its
// history with the customer: ReasonCap when it was sent cap.max times in
// (now - cap.per, now], or answered in (now - its response window, now];
// "" otherwise.
func (c *Customer) offerBlocked(x *CatalogOffer, now time.Time) string {
	to := now.UnixNano()
	respondedFrom := now.Add(-x.responseWindow()).UnixNano()
	var sentFrom int64
	if x.Cap != nil {
		sentFrom = now.Add(-x.Cap.Per).UnixNano()
	}
	sent := 0
	for _, m := range c.offerMarks {
		if m.Offer != x.ID || m.At > to {
			continue
		}
		switch {
		case m.Response != "" && m.At > respondedFrom:
			return OfferReasonCap
		case m.Response == "" && x.Cap != nil && m.At > sentFrom:
			sent++
		}
	}
	if x.Cap != nil && sent >= x.Cap.Max {
		return OfferReasonCap
	}
	return ""
}
