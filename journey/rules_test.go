package journey_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/throughline/throughline/journey"
)

// section6YAML is the rules of PROTOCOL section 6, plus a rule with every
// action short form.
const section6YAML = `
rules:
  - id: vip-fast-track
    when: "event.type == 'login.failed' && customer.profile.tier == 'vip'"
    do: [{route: {queue: vip, priority: 100, bypass_bot: true}}]
  - id: cart-nudge
    when: "event.type == 'cart.abandoned'"
    after: 30m
    unless: "event.type == 'checkout.completed'"
    do: [{send: {text: "Still thinking it over? Your cart is saved."}}]
  - id: short-forms
    when: "event.type == 'payment.failed'"
    do:
      - workflow: card-retry
      - workflow: {name: card-check}
      - offer_callback: true
      - offer_callback: {}
      - tag: payment-trouble
      - tag: {name: at-risk}
      - stage: recovery
      - open_case: Payment failed
      - open_case: {subject: Card declined}
      - send: {text: "We are on it", channel: sms, expires: 2h}
`

func decodeRules(t testing.TB, src string) ([]journey.RuleConfig, error) {
	t.Helper()
	var cfg struct {
		Rules []journey.RuleConfig `yaml:"rules"`
	}
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&cfg)
	return cfg.Rules, err
}

func mustCompile(t testing.TB, cfgs ...journey.RuleConfig) *journey.Rules {
	t.Helper()
	rs, err := journey.CompileRules(cfgs)
	if err != nil {
		t.Fatalf("CompileRules: %v", err)
	}
	return rs
}

func section6Rules(t testing.TB) *journey.Rules {
	t.Helper()
	cfgs, err := decodeRules(t, section6YAML)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return mustCompile(t, cfgs...)
}

func customerEvent(typ, data string) *journey.Event {
	e := &journey.Event{ID: "e-" + typ, Customer: "c-42", Type: typ, Seq: 7, Actor: journey.ActorCustomer,
		RecordedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	if data != "" {
		e.Data = json.RawMessage(data)
	}
	return e
}

func vip() journey.RuleCustomer {
	return journey.RuleCustomer{ID: "c-42", Profile: map[string]any{"tier": "vip"}}
}

func ids(rules []*journey.Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.ID)
	}
	return out
}

func TestRulesSection6YAML(t *testing.T) {
	rs := section6Rules(t)
	if got := ids(rs.List()); !slices.Equal(got, []string{"vip-fast-track", "cart-nudge", "short-forms"}) {
		t.Fatalf("rules %v", got)
	}
	vipRule, nudge, short := rs.List()[0], rs.List()[1], rs.List()[2]
	if r := vipRule.Do[0].Route; r == nil || *r != (journey.RouteAction{Queue: "vip", Priority: 100, BypassBot: true}) {
		t.Errorf("vip route %+v", r)
	}
	if nudge.After != 30*time.Minute || nudge.UnlessExpr == "" {
		t.Errorf("cart-nudge after %v unless %q", nudge.After, nudge.UnlessExpr)
	}
	if s := nudge.Do[0].Send; s == nil || s.Expires != journey.SendExpiresDefault || s.Channel != "" {
		t.Errorf("cart-nudge send %+v: want the default expires and no channel", s)
	}
	var kinds []string
	for _, a := range short.Do {
		kinds = append(kinds, a.Kind())
	}
	want := []string{"workflow", "workflow", "offer_callback", "offer_callback", "tag", "tag", "stage", "open_case", "open_case", "send"}
	if !slices.Equal(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	d := short.Do
	if d[0].Workflow != "card-retry" || d[1].Workflow != "card-check" || d[4].Tag != "payment-trouble" ||
		d[5].Tag != "at-risk" || d[6].Stage != "recovery" || d[7].OpenCase.Subject != "Payment failed" ||
		d[8].OpenCase.Subject != "Card declined" || *d[9].Send != (journey.SendAction{Text: "We are on it", Channel: "sms", Expires: 2 * time.Hour}) {
		t.Errorf("short forms decoded as %+v", d)
	}
	if got := rs.Queues(); !slices.Equal(got, []string{"vip"}) {
		t.Errorf("Queues %v", got)
	}
	if got := rs.Workflows(); !slices.Equal(got, []string{"card-check", "card-retry"}) {
		t.Errorf("Workflows %v", got)
	}
}

func TestRulesYAMLRefusesBadActions(t *testing.T) {
	for _, tc := range []struct{ do, want string }{
		{`[{rout: {queue: vip}}]`, `unknown action "rout"`},
		{`[{route: {queue: vip}, tag: x}]`, "got 2 keys [route tag]"},
		{`[{}]`, "got 0 keys"},
		{`[{route: {queue: vip, priorty: 1}}]`, `unknown field "priorty"`},
		{`[{route: vip}]`, "route: must be a map"},
		{`[{offer_callback: false}]`, "must be true or {}"},
		{`[{tag: {}}]`, "must be a name"},
		{`[{send: {text: hi, expires: 3600}}]`, "send"},
		{`[tag]`, "an action is a map of one key"},
	} {
		_, err := decodeRules(t, "rules: [{id: r1, when: 'true', do: "+tc.do+"}]")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rule r1") {
			t.Errorf("do: %s: error %v, want one naming rule r1 and saying %q", tc.do, err, tc.want)
		}
	}
}

func TestCompileRulesListsEveryProblem(t *testing.T) {
	do := []journey.ActionConfig{{Tag: "t"}}
	cfgs := []journey.RuleConfig{
		{ID: "ok", When: "true", Do: do},
		{ID: "", When: "true", Do: do},
		{ID: "Bad Id", When: "true", Do: do},
		{ID: "ok", When: "true", Do: do},
		{ID: "no-when", Do: do},
		{ID: "syntax", When: "event.type ==", Do: do},
		{ID: "undeclared", When: "trigger.type == 'x'", Do: do},
		{ID: "not-bool", When: "size(event) + 1", Do: do},
		{ID: "unless-now", When: "true", Unless: "true", Do: do},
		{ID: "too-late", When: "true", After: 31 * 24 * time.Hour, Do: do},
		{ID: "no-actions", When: "true"},
		{ID: "no-queue", When: "true", Do: []journey.ActionConfig{{Route: &journey.RouteAction{}}}},
		{ID: "no-text", When: "true", Do: []journey.ActionConfig{{Send: &journey.SendAction{Channel: "sms"}}}},
		{ID: "bad-channel", When: "true", Do: []journey.ActionConfig{{Send: &journey.SendAction{Text: "hi", Channel: "SMS!"}}}},
		{ID: "bad-tag", When: "true", Do: []journey.ActionConfig{{Tag: "Bad Tag"}}},
		{ID: "two-in-one", When: "true", Do: []journey.ActionConfig{{Tag: "a", Stage: "b"}}},
		{ID: "event-count", When: "event.count('x', duration('1h')) > 0", Do: do},
		{ID: "bad-on", When: "true", On: []string{"Payment Failed"}, Do: do},
	}
	_, err := journey.CompileRules(cfgs)
	if err == nil {
		t.Fatal("CompileRules accepted bad rules")
	}
	msg := err.Error()
	for _, want := range []string{
		"rule #1 (no id): id is required",
		`rule #2 (id "Bad Id"): id must match`,
		"rule ok: duplicate id (also rule #0)",
		"rule no-when: when is required",
		"rule syntax: when: ERROR",
		"rule undeclared: when: ERROR: <input>:1:1: undeclared reference to 'trigger'",
		"rule not-bool: when: is of type int, not bool",
		"rule unless-now: unless needs after",
		"rule too-late: after: 744h0m0s is outside",
		"rule no-actions: do: no actions",
		"rule no-queue: do[0] route: queue is required",
		"rule no-text: do[0] send: text is required",
		`rule bad-channel: do[0] send: channel "SMS!"`,
		`rule bad-tag: do[0] tag: "Bad Tag" must match`,
		"rule two-in-one: do[0]: an action sets exactly one",
		"rule event-count: when: count() is defined on customer only",
		"rule bad-on: on:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(msg, "rule ok: when") || strings.Contains(msg, "rule #0") && !strings.Contains(msg, "also rule #0") {
		t.Errorf("error blames the good rule:\n%s", msg)
	}
	if t.Failed() {
		t.Logf("error:\n%s", msg)
	}
}

func TestCompileRulesLimits(t *testing.T) {
	cfgs := make([]journey.RuleConfig, journey.RulesMax+1)
	for i := range cfgs {
		cfgs[i] = journey.RuleConfig{ID: "r" + strings.Repeat("x", i%10) + string(rune('a'+i%26)) + strings.Repeat("0", i/26), When: "true", Do: []journey.ActionConfig{{Tag: "t"}}}
	}
	if _, err := journey.CompileRules(cfgs); err == nil || !strings.Contains(err.Error(), "more than 256") {
		t.Errorf("%d rules: error %v", len(cfgs), err)
	}
	many := make([]journey.ActionConfig, journey.ActionsPerRuleMax+1)
	for i := range many {
		many[i] = journey.ActionConfig{Tag: "t"}
	}
	if _, err := journey.CompileRules([]journey.RuleConfig{{ID: "many", When: "true", Do: many}}); err == nil || !strings.Contains(err.Error(), "more than 16") {
		t.Errorf("%d actions: error %v", len(many), err)
	}
}

func TestRulesMatchVIP(t *testing.T) {
	rs := section6Rules(t)
	for _, tc := range []struct {
		name    string
		typ     string
		profile map[string]any
		want    []string
	}{
		{"vip login failed", "login.failed", map[string]any{"tier": "vip"}, []string{"vip-fast-track"}},
		{"gold login failed", "login.failed", map[string]any{"tier": "gold"}, nil},
		{"vip other event", "page.viewed", map[string]any{"tier": "vip"}, nil},
		{"cart abandoned", "cart.abandoned", map[string]any{"tier": "gold"}, []string{"cart-nudge"}},
	} {
		got, errs := rs.Match(customerEvent(tc.typ, ""), journey.RuleCustomer{ID: "c-42", Profile: tc.profile})
		if !slices.Equal(ids(got), tc.want) || len(errs) != 0 {
			t.Errorf("%s: matched %v errors %v, want %v", tc.name, ids(got), errs, tc.want)
		}
	}
	// A customer without a tier: the vip rule's evaluation fails, is reported, and does not match.
	got, errs := rs.Match(customerEvent("login.failed", ""), journey.RuleCustomer{ID: "c-42"})
	if len(got) != 0 || len(errs) != 1 || errs[0].Rule.ID != "vip-fast-track" || !strings.Contains(errs[0].Error(), "no such key: tier") {
		t.Errorf("no profile: matched %v errors %v", ids(got), errs)
	}
}

func TestRulesMatchOnSemantics(t *testing.T) {
	do := []journey.ActionConfig{{Tag: "t"}}
	rs := mustCompile(t,
		journey.RuleConfig{ID: "any-customer", When: "true", Do: do},
		journey.RuleConfig{ID: "on-sent", When: "true", On: []string{"message.sent", "agent.assigned"}, Do: do},
	)
	for _, tc := range []struct {
		actor, typ string
		want       []string
	}{
		{journey.ActorCustomer, "page.viewed", []string{"any-customer"}},
		{journey.ActorCustomer, "message.sent", []string{"any-customer", "on-sent"}},
		{"agent:alice", "message.sent", []string{"on-sent"}},
		{"ai", "message.sent", []string{"on-sent"}},
		{"agent:alice", "page.viewed", nil},
		{journey.ActorSystem, "agent.assigned", []string{"on-sent"}},
		{"rule:cart-nudge", "message.sent", nil},
		{"rule:x", "agent.assigned", nil},
	} {
		e := customerEvent(tc.typ, "")
		e.Actor = tc.actor
		got, errs := rs.Match(e, vip())
		if !slices.Equal(ids(got), tc.want) || errs != nil {
			t.Errorf("%s %s: matched %v (errors %v), want %v", tc.actor, tc.typ, ids(got), errs, tc.want)
		}
	}
}

func TestRulesCount(t *testing.T) {
	rs := mustCompile(t, journey.RuleConfig{
		ID:   "third-failure",
		When: "event.type == 'payment.failed' && customer.count('payment.failed', duration('10m')) >= 3",
		Do:   []journey.ActionConfig{{OfferCallback: true}},
	})
	var asked []string
	failures := 0
	c := vip()
	c.Count = func(typ string, window time.Duration) int {
		asked = append(asked, typ+" "+window.String())
		return failures
	}
	for failures = 1; failures <= 4; failures++ {
		got, errs := rs.Match(customerEvent("payment.failed", ""), c)
		if matched := len(got) == 1; matched != (failures >= 3) || errs != nil {
			t.Errorf("%d failures: matched %v errors %v", failures, ids(got), errs)
		}
	}
	if len(asked) != 4 || asked[0] != "payment.failed 10m0s" {
		t.Errorf("Count called with %v", asked)
	}
	// Without a Count, the rule does not match and says why.
	c.Count = nil
	if got, errs := rs.Match(customerEvent("payment.failed", ""), c); len(got) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "count() is not available") {
		t.Errorf("no Count: matched %v errors %v", ids(got), errs)
	}
}

func TestRulesMaxWindow(t *testing.T) {
	do := []journey.ActionConfig{{Tag: "t"}}
	for _, tc := range []struct {
		when, unless string
		want         time.Duration
	}{
		{"event.type == 'x'", "", 0},
		{"customer.count('a', duration('10m')) > 1", "", 10 * time.Minute},
		{"customer.count('a', duration('10m')) > 1 || customer.count('b', duration('2h')) > 0", "", 2 * time.Hour},
		{"true", "customer.count('a', duration('36h')) > 0", 36 * time.Hour},
		{"customer.count('a', duration(customer.profile.window)) > 1", "", journey.CountWindowMax},
		{"customer.count('a', duration('1h') + duration('1h')) > 1", "", journey.CountWindowMax},
	} {
		cfg := journey.RuleConfig{ID: "r", When: tc.when, Unless: tc.unless, Do: do}
		if tc.unless != "" {
			cfg.After = time.Hour
		}
		if got := mustCompile(t, cfg).MaxWindow(); got != tc.want {
			t.Errorf("when %q unless %q: MaxWindow %v, want %v", tc.when, tc.unless, got, tc.want)
		}
	}
	_, err := journey.CompileRules([]journey.RuleConfig{{ID: "r", When: "customer.count('a', duration('800h')) > 1", Do: do}})
	if err == nil || !strings.Contains(err.Error(), "count window 800h0m0s is outside") {
		t.Errorf("a window past CountWindowMax: error %v", err)
	}
}

func TestRulesUnlessSeesTrigger(t *testing.T) {
	rs := mustCompile(t, journey.RuleConfig{
		ID:     "cart-nudge",
		When:   "event.type == 'cart.abandoned'",
		After:  30 * time.Minute,
		Unless: "event.type == 'checkout.completed' && event.data.cart == trigger.data.cart",
		Do:     []journey.ActionConfig{{Send: &journey.SendAction{Text: "Still thinking it over?"}}},
	})
	rule := rs.List()[0]
	armed := customerEvent("cart.abandoned", `{"cart": "k-1"}`)
	for _, tc := range []struct {
		later *journey.Event
		want  bool
	}{
		{customerEvent("checkout.completed", `{"cart": "k-1", "total": 12.5}`), true},
		{customerEvent("checkout.completed", `{"cart": "k-2"}`), false},
		{customerEvent("page.viewed", `{"cart": "k-1"}`), false},
	} {
		got, err := rule.Unless(tc.later, armed, vip())
		if got != tc.want || err != nil {
			t.Errorf("unless on %s %s: %v %v, want %v", tc.later.Type, tc.later.Data, got, err, tc.want)
		}
	}
	// A later checkout without a cart: an evaluation error, reported, not a cancel.
	got, err := rule.Unless(customerEvent("checkout.completed", ""), armed, vip())
	var re *journey.RuleError
	if got || !errors.As(err, &re) || re.Rule != rule || !strings.Contains(err.Error(), "no such key: cart") {
		t.Errorf("checkout without cart: %v %v", got, err)
	}
	// A rule without unless is never cancelled.
	if got, err := section6Rules(t).List()[0].Unless(armed, armed, vip()); got || err != nil {
		t.Errorf("no unless: %v %v", got, err)
	}
}

func TestRulesSeeEventAndCustomer(t *testing.T) {
	c := journey.RuleCustomer{
		ID:           "c-42",
		Profile:      map[string]any{"tier": "vip", "consent": map[string]any{"sms": true}},
		Identities:   map[string][]string{"phone": {"+15551230000"}},
		Conversation: map[string]any{"state": "queued", "queue": "billing"},
		Cases:        []map[string]any{{"id": "k1", "status": "open", "subject": "card"}},
		Tags:         []string{"at-risk"},
		Stage:        "onboarding",
	}
	e := customerEvent("payment.failed", `{"amount": 120.5, "qty": 2, "card": {"last4": "4242"}}`)
	e.Channel, e.Text = "sms", "my card payment failed again"
	for _, when := range []string{
		"event.id == 'e-payment.failed' && event.customer == 'c-42' && event.seq == 7 && event.actor == 'customer'",
		"event.channel == 'sms' && event.text.contains('card')",
		"event.data.amount > 100 && event.data.qty == 2 && event.data.card.last4 == '4242'",
		"event.recorded_at == timestamp('2026-11-22T10:00:00Z')",
		"customer.id == 'c-42' && customer.profile.consent.sms && customer.identities.phone[0] == '+15551230000'",
		"customer.conversation.queue == 'billing' && customer.cases.exists(k, k.status == 'open')",
		"'at-risk' in customer.tags && customer.stage == 'onboarding'",
		"has(customer.profile.tier) && !has(customer.profile.timezone) && !has(event.data.missing)",
		"size(event) == 9 && 'data' in event && size(customer) == 7",
		"customer.profile.tier == 'vip'",
		"customer.profile.consent.sms", // dyn is allowed as a result; it is a bool at run time
	} {
		rs := mustCompile(t, journey.RuleConfig{ID: "r", When: when, Do: []journey.ActionConfig{{Tag: "t"}}})
		if got, errs := rs.Match(e, c); len(got) != 1 || errs != nil {
			t.Errorf("%s: matched %v errors %v", when, ids(got), errs)
		}
	}
	// Empty data, conversation and profile are {}, not errors.
	empty := customerEvent("page.viewed", "")
	rs := mustCompile(t, journey.RuleConfig{ID: "r", When: "size(event.data) == 0 && size(customer.conversation) == 0 && size(customer.profile) == 0 && size(customer.tags) == 0",
		Do: []journey.ActionConfig{{Tag: "t"}}})
	if got, errs := rs.Match(empty, journey.RuleCustomer{}); len(got) != 1 || errs != nil {
		t.Errorf("empty customer: matched %v errors %v", ids(got), errs)
	}
	// A dyn result that is not a bool is an error.
	rs = mustCompile(t, journey.RuleConfig{ID: "r", When: "customer.profile.tier", Do: []journey.ActionConfig{{Tag: "t"}}})
	if got, errs := rs.Match(e, c); len(got) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "not bool") {
		t.Errorf("string result: matched %v errors %v", ids(got), errs)
	}
}

func TestRulesCostLimit(t *testing.T) {
	list := "[" + strings.Repeat("1,", 199) + "1]"
	rs := mustCompile(t, journey.RuleConfig{
		ID:   "expensive",
		When: list + ".all(x, " + list + ".all(y, x == y))",
		Do:   []journey.ActionConfig{{Tag: "t"}},
	})
	got, errs := rs.Match(customerEvent("page.viewed", ""), vip())
	if len(got) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "cost limit exceeded") {
		t.Errorf("matched %v errors %v, want the cost limit", ids(got), errs)
	}
}

func TestEffectiveActionsKeepsTheFirstRoute(t *testing.T) {
	rs := mustCompile(t,
		journey.RuleConfig{ID: "a", When: "true", Do: []journey.ActionConfig{{Tag: "x"}, {Route: &journey.RouteAction{Queue: "vip"}}}},
		journey.RuleConfig{ID: "b", When: "true", Do: []journey.ActionConfig{{Route: &journey.RouteAction{Queue: "billing"}}, {Stage: "s"}}},
	)
	fired, _ := rs.Match(customerEvent("page.viewed", ""), vip())
	var got []string
	for _, a := range journey.EffectiveActions(fired) {
		got = append(got, a.Rule.ID+":"+a.Action.Kind())
		if a.Action.Route != nil && a.Action.Route.Queue != "vip" {
			t.Errorf("route to %s took effect", a.Action.Route.Queue)
		}
	}
	if want := []string{"a:tag", "a:route", "b:stage"}; !slices.Equal(got, want) {
		t.Errorf("actions %v, want %v", got, want)
	}
}

func TestRulesMatchConcurrently(t *testing.T) {
	rs := section6Rules(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			e := customerEvent("login.failed", `{"attempt": 1}`)
			c := journey.RuleCustomer{ID: "c", Profile: map[string]any{"tier": []string{"vip", "gold"}[g%2]}}
			for range 200 {
				got, errs := rs.Match(e, c)
				if (len(got) == 1) != (g%2 == 0) || errs != nil {
					t.Errorf("goroutine %d: matched %v errors %v", g, ids(got), errs)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkRulesMatch(b *testing.B) {
	rs := section6Rules(b)
	events := []*journey.Event{
		customerEvent("login.failed", `{"attempt": 3}`),
		customerEvent("cart.abandoned", `{"cart": "k-1", "total": 99.5}`),
		customerEvent("page.viewed", `{"url": "/pricing"}`),
	}
	c := vip()
	c.Count = func(string, time.Duration) int { return 0 }
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rs.Match(events[i%len(events)], c)
	}
}
