package actors

import (
	"context"

	"github.com/throughline/throughline/journey"
)

// NextBestAction returns a customer's ranking of the offers (PROTOCOL
// section 5) as of its durable seq; exists is false for a customer with no
// stored events.
func (r *Runtime) NextBestAction(ctx context.Context, customer string) (journey.Ranking, bool, error) {
	rep := r.askCustomer(ctx, &contextMsg{customer: customer, nextBestAction: true, reply: make(chan contextReply, 1)})
	return rep.ranking, rep.exists, rep.err
}

// nextBestAction ranks the offers for the customer now. The ranking shares
// nothing with the state, so it may be encoded on another goroutine.
func (c *customer) nextBestAction() journey.Ranking {
	p := c.rt.cfg.Policy
	return journey.RankOffers(p.Offers, c.state, p.Governance, c.rt.cfg.Now())
}

// countOfferResponses tells OfferResponded of the customer's answers to
// offers among the events, once they are durable.
func (c *customer) countOfferResponses(events []journey.Event) {
	told := c.rt.cfg.OfferResponded
	if told == nil {
		return
	}
	offers := c.rt.cfg.Policy.Offers
	for i := range events {
		offer, response, ok := journey.OfferResponseOf(&events[i])
		if !ok {
			continue
		}
		label := offers.Label(offer)
		c.outbox.push(events[i].Seq, func(err error) {
			if err == nil {
				told(label, response)
			}
		})
	}
}
