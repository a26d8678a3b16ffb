package journey_test

import (
	"slices"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// nbaPolicy fires next_best_action on every page.viewed, with the offers
// and governance.
func nbaPolicy(t *testing.T, g *journey.Governance, offers ...journey.OfferConfig) journey.Policy {
	t.Helper()
	p := rulesPolicy(t, g, journey.RuleConfig{ID: "propose", When: "event.type == 'page.viewed'",
		Do: []journey.ActionConfig{{NextBestAction: &journey.NextBestActionAction{}}}})
	p.Offers = mustOffers(t, offers...)
	return p
}

// view sends a page.viewed on sms: the rule proposes the best offer.
func (r *journeyRun) view() journey.Decision {
	r.t.Helper()
	return r.event("page.viewed", "sms", "", "")
}

// proactiveOf is the decision's only proactive.* event and its data.
func proactiveOf(t *testing.T, d journey.Decision) (journey.Event, map[string]any) {
	t.Helper()
	var found []journey.Event
	for _, e := range d.Events {
		if e.Type == journey.TypeProactiveSent || e.Type == journey.TypeProactiveHeld || e.Type == journey.TypeProactiveSuppressed {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("events %v, want one proactive.*", types(d.Events))
	}
	return found[0], dataOf(t, found[0])
}

func TestStepNextBestActionSendsTheBestOffer(t *testing.T) {
	low, high := offer("survey", 1), offer("gold-upgrade", 9)
	r := newRun(t, nbaPolicy(t, nil, low, high))
	d := r.view()
	wantTypes(t, d, "page.viewed", journey.TypeRuleFired, journey.TypeProactiveSent, journey.TypeMessageSent)
	e, data := proactiveOf(t, d)
	if e.Actor != "rule:propose" || data["offer"] != "gold-upgrade" || data["rule"] != "propose" || data["channel"] != "sms" {
		t.Errorf("proactive.sent %s by %s", e.Data, e.Actor)
	}
	if msg := d.Events[3]; msg.Text != "Offer gold-upgrade" || msg.Channel != "sms" || len(d.Outbounds) != 1 {
		t.Errorf("message.sent %+v outbounds %d", msg, len(d.Outbounds))
	}
	if fired := dataOf(t, d.Events[1]); mustJSON(t, fired["actions"]) != `["next_best_action"]` {
		t.Errorf("rule_fired %v", fired)
	}
}

func TestStepNextBestActionSuppressed(t *testing.T) {
	t.Run("nothing eligible", func(t *testing.T) {
		r := newRun(t, nbaPolicy(t, nil, journey.OfferConfig{ID: "vip", When: "false", Text: "x"}))
		_, data := proactiveOf(t, r.view())
		if data["reason"] != journey.OfferReasonNotEligible || data["offer"] != nil {
			t.Errorf("suppressed %v, want not_eligible without an offer", data)
		}
	})
	t.Run("the first eligible offer's reason", func(t *testing.T) {
		email := offer("email-only", 5)
		email.Channels = []string{"email"}
		r := newRun(t, nbaPolicy(t, nil, journey.OfferConfig{ID: "vip", When: "false", Text: "x"}, email))
		_, data := proactiveOf(t, r.view())
		if data["reason"] != journey.OfferReasonNoChannel || data["offer"] != "email-only" {
			t.Errorf("suppressed %v, want no_channel for email-only", data)
		}
	})
	t.Run("frequency cap carries the offer", func(t *testing.T) {
		g := &journey.Governance{FrequencyCap: &journey.FrequencyCap{Max: 1, Per: 24 * time.Hour}}
		r := newRun(t, nbaPolicy(t, g, offer("a", 2), offer("b", 1)))
		r.view()
		r.at(time.Hour)
		_, data := proactiveOf(t, r.view())
		if data["reason"] != journey.ReasonFrequencyCap || data["offer"] != "a" {
			t.Errorf("suppressed %v, want frequency_cap for a", data)
		}
	})
}

func TestStepNextBestActionHeldCarriesTheOffer(t *testing.T) {
	g := &journey.Governance{QuietHours: &journey.QuietHours{From: "21:00", To: "08:00"}}
	plan := offer("plan", 1)
	plan.Cap = &journey.OfferCap{Max: 1, Per: 48 * time.Hour}
	r := newRun(t, nbaPolicy(t, g, plan))
	r.at(12 * time.Hour) // 22:00 UTC
	d := r.view()
	held, data := proactiveOf(t, d)
	if held.Type != journey.TypeProactiveHeld || data["offer"] != "plan" || held.Text != "Offer plan" || len(d.DueAdd) != 1 {
		t.Fatalf("held %+v %s", held, held.Data)
	}
	// A held offer counts against its cap from when it is held.
	if rk := journey.RankOffers(r.p.Offers, r.c, g, r.now); excluded(rk)["plan"] != journey.OfferReasonCap {
		t.Errorf("held, capped at 1: %+v", rk)
	}
	r.at(22 * time.Hour)
	d = r.due(d.DueAdd[0])
	sent, data := proactiveOf(t, d)
	if sent.Type != journey.TypeProactiveSent || data["offer"] != "plan" || data["held"] == nil {
		t.Errorf("released %s %s", sent.Type, sent.Data)
	}
}

func TestStepNextBestActionOfferCap(t *testing.T) {
	capped := offer("plan", 9)
	capped.Cap = &journey.OfferCap{Max: 2, Per: 24 * time.Hour}
	r := newRun(t, nbaPolicy(t, nil, capped, offer("survey", 1)))
	for i := range 2 {
		r.at(time.Duration(i) * time.Hour)
		if _, data := proactiveOf(t, r.view()); data["offer"] != "plan" {
			t.Fatalf("send %d: %v, want plan", i, data)
		}
	}
	r.at(3 * time.Hour)
	rk := journey.RankOffers(r.p.Offers, r.c, nil, r.now)
	if excluded(rk)["plan"] != journey.OfferReasonCap || !slices.Equal(offerNames(rk), []string{"survey"}) {
		t.Errorf("after 2 sends: %+v", rk)
	}
	if _, data := proactiveOf(t, r.view()); data["offer"] != "survey" {
		t.Errorf("capped plan: sent %v, want survey", data)
	}
	// The cap survives a snapshot.
	c := rebuild(t, "c-42", r.c.EncodeSnapshot(), nil)
	if rk := journey.RankOffers(r.p.Offers, c, nil, r.now); excluded(rk)["plan"] != journey.OfferReasonCap {
		t.Errorf("after a snapshot: %+v", rk)
	}
	// Rebuilt from the events alone, the same.
	c = rebuild(t, "c-42", nil, r.all)
	if rk := journey.RankOffers(r.p.Offers, c, nil, r.now); excluded(rk)["plan"] != journey.OfferReasonCap {
		t.Errorf("after a rebuild: %+v", rk)
	}
	r.at(24*time.Hour + time.Second) // the first send left the window
	if rk := journey.RankOffers(r.p.Offers, r.c, nil, r.now); rk.Actions[0].Offer != "plan" {
		t.Errorf("after the window: %+v", rk)
	}
}

func TestRankOffersAnsweredOffersRest(t *testing.T) {
	capped := offer("plan", 9)
	capped.Cap = &journey.OfferCap{Max: 5, Per: 48 * time.Hour}
	offers := mustOffers(t, capped, offer("gold", 5))
	for _, tc := range []struct {
		typ    string
		offer  string
		rests  time.Duration // how long the offer is not proposed
		actor  string
		counts bool
	}{
		{journey.TypeOfferAccepted, "plan", 48 * time.Hour, "", true},
		{journey.TypeOfferDeclined, "plan", 48 * time.Hour, "", true},
		{journey.TypeOfferDeclined, "gold", journey.OfferResponseWindowDefault, "", true},
	} {
		t.Run(tc.typ+" "+tc.offer, func(t *testing.T) {
			r := newRun(t, journey.Policy{})
			r.msg("hi")
			r.event(tc.typ, "sms", "", `{"offer":"`+tc.offer+`"}`)
			if rk := journey.RankOffers(offers, r.c, nil, r.now); excluded(rk)[tc.offer] != journey.OfferReasonCap {
				t.Errorf("just answered: %+v", rk)
			}
			r.at(tc.rests - time.Second)
			if rk := journey.RankOffers(offers, r.c, nil, r.now); excluded(rk)[tc.offer] != journey.OfferReasonCap {
				t.Errorf("inside the window: %+v", rk)
			}
			r.at(tc.rests)
			if rk := journey.RankOffers(offers, r.c, nil, r.now); len(rk.Actions) != 2 {
				t.Errorf("after the window: %+v", rk)
			}
		})
	}
}

func TestOfferResponseOf(t *testing.T) {
	for _, tc := range []struct {
		e            journey.Event
		offer, resp  string
		isOfferReply bool
	}{
		{journey.Event{Type: "offer.accepted", Actor: "customer", Data: []byte(`{"offer":"plan"}`)}, "plan", "accepted", true},
		{journey.Event{Type: "offer.declined", Actor: "customer", Data: []byte(`{"offer":"gold"}`)}, "gold", "declined", true},
		{journey.Event{Type: "offer.declined", Actor: "customer"}, "", "declined", true},
		{journey.Event{Type: "offer.accepted", Actor: "customer", Data: []byte(`{"offer":7}`)}, "", "accepted", true},
		{journey.Event{Type: "offer.accepted", Actor: "rule:x", Data: []byte(`{"offer":"plan"}`)}, "", "", false},
		{journey.Event{Type: "page.viewed", Actor: "customer"}, "", "", false},
	} {
		offer, resp, ok := journey.OfferResponseOf(&tc.e)
		if offer != tc.offer || resp != tc.resp || ok != tc.isOfferReply {
			t.Errorf("%s by %s %s: %q %q %v", tc.e.Type, tc.e.Actor, tc.e.Data, offer, resp, ok)
		}
	}
	offers := mustOffers(t, offer("plan", 1))
	if offers.Label("plan") != "plan" || offers.Label("c-42-secret") != journey.OfferLabelOther {
		t.Errorf("labels %q %q", offers.Label("plan"), offers.Label("c-42-secret"))
	}
}
