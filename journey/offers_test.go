package journey_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

func mustOffers(t testing.TB, cfgs ...journey.OfferConfig) *journey.Offers {
	t.Helper()
	o, err := journey.CompileOffers(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// offer is a valid offer that is always eligible.
func offer(id string, priority float64) journey.OfferConfig {
	return journey.OfferConfig{ID: id, When: "true", Text: "Offer " + id, Priority: priority}
}

func TestCompileOffersRefusesEveryProblemAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  journey.OfferConfig
		want string
	}{
		{"no id", journey.OfferConfig{When: "true", Text: "x"}, "offer #0 (no id): id is required"},
		{"bad id", journey.OfferConfig{ID: "Gold Upgrade", When: "true", Text: "x"}, `offer #0 (id "Gold Upgrade"): id must match`},
		{"no when", journey.OfferConfig{ID: "a", Text: "x"}, "offer a: when is required"},
		{"when does not compile", journey.OfferConfig{ID: "a", When: "customer.profile.tier ==", Text: "x"}, "offer a: when:"},
		{"when is not bool", journey.OfferConfig{ID: "a", When: "'yes'", Text: "x"}, "offer a: when: is of type string, not bool"},
		{"when sees no event", journey.OfferConfig{ID: "a", When: "event.type == 'x'", Text: "x"}, "offer a: when:"},
		{"score is not a number", journey.OfferConfig{ID: "a", When: "true", Score: "'high'", Text: "x"}, "offer a: score: is of type string, not a number"},
		{"score does not compile", journey.OfferConfig{ID: "a", When: "true", Score: "1 +", Text: "x"}, "offer a: score:"},
		{"no text", journey.OfferConfig{ID: "a", When: "true"}, "offer a: text is required"},
		{"text too long", journey.OfferConfig{ID: "a", When: "true", Text: strings.Repeat("x", journey.OfferTextMaxBytes+1)}, "text is longer than"},
		{"priority too large", journey.OfferConfig{ID: "a", When: "true", Text: "x", Priority: journey.OfferPriorityMax * 2}, "offer a: priority"},
		{"bad channel", journey.OfferConfig{ID: "a", When: "true", Text: "x", Channels: []string{"SMS"}}, `offer a: channels: "SMS"`},
		{"cap max 0", journey.OfferConfig{ID: "a", When: "true", Text: "x", Cap: &journey.OfferCap{Max: 0, Per: time.Hour}}, "offer a: cap.max 0"},
		{"cap max too large", journey.OfferConfig{ID: "a", When: "true", Text: "x", Cap: &journey.OfferCap{Max: journey.OfferCapMaxMax + 1, Per: time.Hour}}, "cap.max"},
		{"cap per 0", journey.OfferConfig{ID: "a", When: "true", Text: "x", Cap: &journey.OfferCap{Max: 1}}, "offer a: cap.per 0s"},
		{"cap per too long", journey.OfferConfig{ID: "a", When: "true", Text: "x", Cap: &journey.OfferCap{Max: 1, Per: journey.OfferCapPerMax + time.Hour}}, "cap.per"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := journey.CompileOffers([]journey.OfferConfig{tc.cfg})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// Every problem of every offer, in one error.
	_, err := journey.CompileOffers([]journey.OfferConfig{
		{ID: "a", When: "1 +", Text: "x"}, offer("b", 1), offer("b", 2), {ID: "c", When: "true"},
	})
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Fatalf("error %v, want 3 problems joined", err)
	}
	for _, want := range []string{"offer a: when:", "offer b: duplicate id (also offer #1)", "offer c: text is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestCompileOffersLimits(t *testing.T) {
	many := make([]journey.OfferConfig, journey.OffersMax+1)
	for i := range many {
		many[i] = offer(fmt.Sprintf("o-%d", i), 0)
	}
	if _, err := journey.CompileOffers(many[:journey.OffersMax]); err != nil {
		t.Errorf("%d offers: %v", journey.OffersMax, err)
	}
	if _, err := journey.CompileOffers(many); err == nil || !strings.Contains(err.Error(), "more than 256") {
		t.Errorf("%d offers: %v, want refused", len(many), err)
	}
	// An expression of exactly OfferExprMaxChars compiles; one more does not.
	expr := "true" + strings.Repeat(" ", journey.OfferExprMaxChars-len("true"))
	at := journey.OfferConfig{ID: "a", When: expr, Score: strings.Replace(expr, "true", "1.0 ", 1), Text: "x"}
	if _, err := journey.CompileOffers([]journey.OfferConfig{at}); err != nil {
		t.Errorf("expressions of %d characters: %v", len(expr), err)
	}
	at.When += " "
	if _, err := journey.CompileOffers([]journey.OfferConfig{at}); err == nil || !strings.Contains(err.Error(), "longer than 4096") {
		t.Errorf("a when of %d characters: %v, want refused", len(at.When), err)
	}
	id := strings.Repeat("a", journey.OfferIDMaxChars)
	if _, err := journey.CompileOffers([]journey.OfferConfig{offer(id, 0)}); err != nil {
		t.Errorf("an id of %d characters: %v", len(id), err)
	}
	if _, err := journey.CompileOffers([]journey.OfferConfig{offer(id+"a", 0)}); err == nil {
		t.Errorf("an id of %d characters accepted", len(id)+1)
	}
	wide := offer("a", journey.OfferPriorityMax)
	wide.Text = strings.Repeat("x", journey.OfferTextMaxBytes)
	for i := range journey.OfferChannelsMax {
		wide.Channels = append(wide.Channels, fmt.Sprintf("ch%d", i))
	}
	if _, err := journey.CompileOffers([]journey.OfferConfig{wide}); err != nil {
		t.Errorf("text, channels and priority at their limits: %v", err)
	}
	wide.Channels = append(wide.Channels, "one-more")
	if _, err := journey.CompileOffers([]journey.OfferConfig{wide}); err == nil || !strings.Contains(err.Error(), "channels: 17, more than 16") {
		t.Errorf("%d channels: %v, want refused", len(wide.Channels), err)
	}
	capped := offer("a", 0)
	capped.Cap = &journey.OfferCap{Max: journey.OfferCapMaxMax, Per: journey.OfferCapPerMax}
	if _, err := journey.CompileOffers([]journey.OfferConfig{capped}); err != nil {
		t.Errorf("the largest cap: %v", err)
	}
}

// offerNames lists the actions' offers.
func offerNames(r journey.Ranking) []string {
	var out []string
	for _, a := range r.Actions {
		out = append(out, a.Offer)
	}
	return out
}

// excluded maps each excluded offer to its reason.
func excluded(r journey.Ranking) map[string]string {
	out := map[string]string{}
	for _, e := range r.Excluded {
		out[e.Offer] = e.Reason
	}
	return out
}

// paymentOffers: a payment plan for customers whose payment failed lately,
// a gold upgrade for VIPs scored by spend, and a survey for everyone.
func paymentOffers(t *testing.T) *journey.Offers {
	return mustOffers(t,
		journey.OfferConfig{ID: "payment-plan", When: "customer.count('payment.failed', duration('24h')) > 0",
			Text: "Split your payment in three?", Priority: 50, Channels: []string{"sms", "email"}},
		journey.OfferConfig{ID: "gold-upgrade", When: "has(customer.profile.tier) && customer.profile.tier == 'vip'",
			Text: "Upgrade to gold?", Priority: 40, Score: "has(customer.profile.spend) ? customer.profile.spend / 100.0 : 0.0"},
		journey.OfferConfig{ID: "survey", When: "true", Text: "Tell us how we did", Priority: 10},
	)
}

func TestRankOffersOrdersByScoreAndExplains(t *testing.T) {
	offers := paymentOffers(t)
	r := newRun(t, journey.Policy{})
	r.profile(`{"tier":"vip","spend":2500}`)
	r.msg("hello") // last channel sms
	r.event("payment.failed", "", "", `{"amount":120}`)
	rk := journey.RankOffers(offers, r.c, nil, r.now)
	// gold-upgrade: 40 + 25 beats payment-plan's 50; survey last.
	if got := offerNames(rk); !slices.Equal(got, []string{"gold-upgrade", "payment-plan", "survey"}) {
		t.Fatalf("actions %v, want gold-upgrade, payment-plan, survey; ranking %+v", got, rk)
	}
	gold := rk.Actions[0]
	if gold.Score != 65 || gold.Text != "Upgrade to gold?" || gold.Channel != "sms" {
		t.Errorf("gold-upgrade %+v", gold)
	}
	wantWhy := []string{
		"when: has(customer.profile.tier) && customer.profile.tier == 'vip'",
		"priority: 40",
		"score: has(customer.profile.spend) ? customer.profile.spend / 100.0 : 0.0 = 25",
	}
	if !slices.Equal(gold.Why, wantWhy) {
		t.Errorf("why %q, want %q", gold.Why, wantWhy)
	}
	if len(rk.Excluded) != 0 {
		t.Errorf("excluded %+v, want none", rk.Excluded)
	}
	if got := mustJSON(t, rk.Actions[2]); got != `{"offer":"survey","score":10,"text":"Tell us how we did","channel":"sms","why":["when: true","priority: 10"]}` {
		t.Errorf("survey JSON %s", got)
	}

	// Without the failed payment and the VIP tier, only the survey is left;
	// the others are not eligible, listed in configuration order.
	r2 := newRun(t, journey.Policy{})
	r2.msg("hello")
	rk = journey.RankOffers(offers, r2.c, nil, r2.now)
	if got := mustJSON(t, rk.Excluded); got != `[{"offer":"payment-plan","reason":"not_eligible"},{"offer":"gold-upgrade","reason":"not_eligible"}]` {
		t.Errorf("excluded %s", got)
	}
	// The failed payment leaves the 24 h window: not eligible again.
	r.at(25 * time.Hour)
	if rk := journey.RankOffers(offers, r.c, nil, r.now); excluded(rk)["payment-plan"] != journey.OfferReasonNotEligible {
		t.Errorf("a day later: %+v", rk)
	}
}

func TestRankOffersTiesKeepConfigurationOrder(t *testing.T) {
	offers := mustOffers(t, offer("c", 5), offer("a", 5), offer("b", 7), offer("d", 5))
	r := newRun(t, journey.Policy{})
	r.msg("hi")
	if got := offerNames(journey.RankOffers(offers, r.c, nil, r.now)); !slices.Equal(got, []string{"b", "c", "a", "d"}) {
		t.Errorf("actions %v, want b then c, a, d in configuration order", got)
	}
	if rk := journey.RankOffers(nil, r.c, nil, r.now); mustJSON(t, rk) != `{"actions":[],"excluded":[]}` {
		t.Errorf("no offers: %s", mustJSON(t, rk))
	}
}

func TestRankOffersChannelsAndConsent(t *testing.T) {
	emailOnly := offer("email-only", 1)
	emailOnly.Channels = []string{"email"}
	whatsapp := offer("whatsapp", 1)
	whatsapp.Channels = []string{"whatsapp"}
	offers := mustOffers(t, offer("any", 1), emailOnly, whatsapp)
	for _, tc := range []struct {
		name     string
		profile  string
		identity []journey.IdentityRef
		require  bool
		want     map[string]string // offer: channel, or "!reason"
	}{
		{"sms customer", `{}`, []journey.IdentityRef{{Kind: "phone", Value: "+15551230000"}}, false,
			map[string]string{"any": "sms", "email-only": "!no_channel", "whatsapp": "!no_channel"}},
		{"email reachable", `{}`, []journey.IdentityRef{{Kind: "phone", Value: "+15551230000"}, {Kind: "email", Value: "ana@example.com"}}, false,
			map[string]string{"any": "sms", "email-only": "email", "whatsapp": "!no_channel"}},
		{"email refused", `{"consent":{"email":false}}`, []journey.IdentityRef{{Kind: "phone", Value: "+15551230000"}, {Kind: "email", Value: "ana@example.com"}}, false,
			map[string]string{"any": "sms", "email-only": "!no_consent", "whatsapp": "!no_channel"}},
		{"sms refused: next channel", `{"consent":{"sms":false}}`, []journey.IdentityRef{{Kind: "phone", Value: "+15551230000"}, {Kind: "email", Value: "ana@example.com"}}, false,
			map[string]string{"any": "email", "email-only": "email", "whatsapp": "!no_channel"}},
		{"consent required, none given", `{}`, []journey.IdentityRef{{Kind: "phone", Value: "+15551230000"}, {Kind: "email", Value: "ana@example.com"}}, true,
			map[string]string{"any": "!no_consent", "email-only": "!no_consent", "whatsapp": "!no_channel"}},
		{"preferred whatsapp", `{"preferred_channel":"whatsapp"}`, []journey.IdentityRef{{Kind: "phone", Value: "+15551230000"}}, false,
			map[string]string{"any": "whatsapp", "email-only": "!no_channel", "whatsapp": "whatsapp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRun(t, journey.Policy{})
			r.profile(tc.profile)
			r.step(&journey.Inbound{Event: journey.Event{ID: "id-1", Customer: "c-42", Type: "page.viewed"}, Linked: tc.identity})
			rk := journey.RankOffers(offers, r.c, &journey.Governance{RequireConsent: tc.require}, r.now)
			got := excluded(rk)
			for k, v := range got {
				got[k] = "!" + v
			}
			for _, a := range rk.Actions {
				got[a.Offer] = a.Channel
			}
			if mustJSON(t, got) != mustJSON(t, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRankOffersEvaluationErrors(t *testing.T) {
	offers := mustOffers(t,
		journey.OfferConfig{ID: "missing-key", When: "customer.profile.tier == 'vip'", Text: "x", Priority: 1},
		journey.OfferConfig{ID: "bad-score", When: "true", Score: "customer.profile.name", Text: "x", Priority: 1},
		journey.OfferConfig{ID: "fine", When: "true", Text: "x"},
	)
	r := newRun(t, journey.Policy{})
	r.profile(`{"name":"Ana"}`)
	r.msg("hi")
	rk := journey.RankOffers(offers, r.c, nil, r.now)
	if got := offerNames(rk); !slices.Equal(got, []string{"fine"}) {
		t.Errorf("actions %v, want fine only", got)
	}
	if len(rk.Excluded) != 2 {
		t.Fatalf("excluded %+v", rk.Excluded)
	}
	for _, e := range rk.Excluded {
		if e.Reason != journey.OfferReasonError || e.Error == "" {
			t.Errorf("excluded %+v, want reason error with the error", e)
		}
	}
	if !strings.Contains(rk.Excluded[1].Error, "not a number") {
		t.Errorf("bad-score error %q", rk.Excluded[1].Error)
	}
}
