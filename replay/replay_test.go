package replay

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
	"gopkg.in/yaml.v3"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// policy compiles rules (YAML) and governance (YAML, "" for none) into a
// policy, as the node does.
func policy(t *testing.T, rulesYAML, governanceYAML string) *journey.Policy {
	t.Helper()
	var cfgs []journey.RuleConfig
	if err := yaml.Unmarshal([]byte(rulesYAML), &cfgs); err != nil {
		t.Fatal(err)
	}
	rules, err := journey.CompileRules(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	p := journey.Policy{Rules: rules, Queues: []journey.QueuePolicy{{Name: "vip"}, {Name: "general"}}}
	if governanceYAML != "" {
		p.Governance = &journey.Governance{}
		if err := yaml.Unmarshal([]byte(governanceYAML), p.Governance); err != nil {
			t.Fatal(err)
		}
	}
	p = p.WithDefaults()
	return &p
}

const oldRules = `
- id: vip-fast-track
  when: "event.type == 'login.failed' && has(customer.profile.tier) && customer.profile.tier == 'vip'"
  do: [{route: {queue: vip, priority: 100, bypass_bot: true}}]
- id: tag-shoppers
  when: "event.type == 'cart.abandoned'"
  do: [{tag: shopper}]
- id: welcome
  when: "event.type == 'signed.up'"
  do: [{send: {text: "Welcome!", channel: email}}]
- id: cart-nudge
  when: "event.type == 'cart.abandoned'"
  after: 1h
  do: [{send: {text: "Your cart is saved.", channel: email}}]
`

// record steps the inputs under p as the customer actor does and returns
// the stored journal: every decision's events, in seq order.
func record(t *testing.T, p *journey.Policy, id string, inputs []journey.Input, at []time.Time) []journey.Event {
	t.Helper()
	c := journey.NewCustomer(id)
	var journal []journey.Event
	for i, in := range inputs {
		d := journey.Step(p, c, in, at[i])
		if d.Reject != nil || d.NeedLookup {
			t.Fatalf("input %d: %+v", i, d)
		}
		journal = append(journal, d.Events...)
	}
	return journal
}

func inbound(id, typ string, linked ...journey.IdentityRef) journey.Input {
	return &journey.Inbound{Event: journey.Event{ID: id, Type: typ, Channel: "email"}, Linked: linked}
}

// journal is one customer's recorded journey under oldRules: a sign-up
// (which gets a welcome email), a profile patch making them a VIP, an
// abandoned cart (tagged, a nudge armed), a failed login (routed to vip),
// the nudge an hour after the cart. Seqs: 1-5 identity.linked, signed.up
// and the welcome; 6 the patch; 7-10 the cart; 11-14 the login; 15-17 the
// nudge.
func journal(t *testing.T, id string, start time.Time) []journey.Event {
	inputs := []journey.Input{
		inbound(id+"-e1", "signed.up", journey.IdentityRef{Kind: "email", Value: id + "@example.com"}),
		&journey.ProfilePatch{ID: id + "-p1", Patch: json.RawMessage(`{"tier":"vip"}`)},
		inbound(id+"-e2", "cart.abandoned"),
		inbound(id+"-e3", "login.failed"),
		&journey.Due{At: start.Add(2*time.Minute + time.Hour), Kind: journey.DueRuleTimer, Ref: "10"},
	}
	at := []time.Time{start, start.Add(time.Minute), start.Add(2 * time.Minute), start.Add(3 * time.Minute), start.Add(2*time.Minute + time.Hour)}
	return record(t, policy(t, oldRules, ""), id, inputs, at)
}

func replayAll(t *testing.T, opts Options, journals map[string][]journey.Event) *Report {
	t.Helper()
	r := New(opts)
	for _, id := range []string{"c-1", "c-2", "c-3"} {
		events, ok := journals[id]
		if !ok {
			continue
		}
		c := r.Customer(id)
		for _, e := range events {
			c.Event(e)
		}
		if err := c.End(); err != nil {
			t.Fatal(err)
		}
		r.Report() // sorts the changes so far: the replay goes on after it
	}
	return r.Report()
}

func TestReplaySameConfigChangesNothingAndMatchesTheJournal(t *testing.T) {
	old := policy(t, oldRules, "")
	rep := replayAll(t, Options{Old: old, New: old}, map[string][]journey.Event{
		"c-1": journal(t, "c-1", t0), "c-2": journal(t, "c-2", t0.Add(time.Hour)),
	})
	if rep.Customers != 2 || rep.Inputs != 10 || rep.Changed != 0 || rep.Mismatched != 0 || len(rep.Changes) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if b, _ := json.Marshal(rep); !strings.Contains(string(b), `"changes":[]`) {
		t.Errorf("JSON %s: want an empty list of changes, not null", b)
	}
}

func TestReplayReportsEachKindOfChange(t *testing.T) {
	old := policy(t, oldRules, "")
	// vip-fast-track routes to general, tag-shoppers is gone, a new rule
	// routes abandoned carts, quiet hours from 09:00 to 11:00 UTC hold
	// c-1's welcome (at 10:00, c-2's is at 11:00), and a cap of one a day
	// suppresses the nudges (at 11:02 and 12:02, after the welcomes).
	newRules := strings.Replace(oldRules, "queue: vip,", "queue: general,", 1)
	newRules = strings.Replace(newRules, `- id: tag-shoppers
  when: "event.type == 'cart.abandoned'"
  do: [{tag: shopper}]`, `- id: cart-route
  when: "event.type == 'cart.abandoned'"
  do: [{route: {queue: general, priority: 1}}]`, 1)
	new := policy(t, newRules, `{quiet_hours: {from: "09:00", to: "11:00"}, frequency_cap: {max: 1, per: 24h}}`)
	rep := replayAll(t, Options{Old: old, New: new, SamplesMax: 1}, map[string][]journey.Event{
		"c-1": journal(t, "c-1", t0), "c-2": journal(t, "c-2", t0.Add(time.Hour)),
	})
	got := map[string]Change{}
	for _, c := range rep.Changes {
		got[c.Kind+" "+c.What] = c
	}
	want := map[string]int{ // change -> inputs (one per customer)
		"route vip → general":                                    2,
		"rule_fires cart-route":                                  2,
		"route (none) → general":                                 2,
		"rule_stops tag-shoppers":                                2,
		"proactive welcome: sent → held for quiet hours":         1, // c-1 at 10:00
		"proactive cart-nudge: sent → suppressed: frequency_cap": 2,
	}
	for k, n := range want {
		c, ok := got[k]
		if !ok || c.Inputs != n || c.Customers != n || len(c.Samples) != 1 {
			t.Errorf("%s: got %+v, want %d inputs", k, c, n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("changes %v, want those of %v", got, want)
	}
	if s := got["route vip → general"].Samples[0]; s.Customer != "c-1" || s.Seq != 11 || !s.At.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("sample %+v: want c-1's login.failed", s)
	}
	if rep.Inputs != 10 || rep.Changed != 7 || rep.Mismatched != 0 {
		t.Errorf("report %+v", rep)
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Routes to other queues", "| vip → general | 2 | 2 | c-1@11 |", "## Rules that would stop firing"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}
}

func TestReplayWithAnotherOldConfigReportsMismatches(t *testing.T) {
	// The journal was recorded under oldRules; a replay that claims it was
	// recorded with no rules must say its old side does not match.
	none := policy(t, "[]", "")
	rep := replayAll(t, Options{Old: none, New: none}, map[string][]journey.Event{"c-1": journal(t, "c-1", t0)})
	if rep.Mismatched != 4 || len(rep.MismatchSamples) != 4 || rep.Changed != 0 {
		t.Fatalf("report %+v: want the 4 inputs a rule answered as mismatches", rep)
	}
}

func TestReplaySinceRebuildsStateBeforeTheWindow(t *testing.T) {
	old := policy(t, oldRules, "")
	new := policy(t, strings.Replace(oldRules, "queue: vip,", "queue: general,", 1), "")
	// From the login.failed on (and the nudge after it): the profile patch
	// before it is applied, not replayed, and still makes the customer a
	// VIP.
	rep := replayAll(t, Options{Old: old, New: new, Since: t0.Add(3 * time.Minute)}, map[string][]journey.Event{"c-1": journal(t, "c-1", t0)})
	if rep.Inputs != 2 || len(rep.Changes) != 1 || rep.Changes[0].What != "vip → general" {
		t.Fatalf("report %+v", rep)
	}
}

func TestReplayRefusesAGap(t *testing.T) {
	old := policy(t, oldRules, "")
	events := journal(t, "c-1", t0)
	c := New(Options{Old: old, New: old}).Customer("c-1")
	c.Event(events[0])
	c.Event(events[2])
	if err := c.End(); err == nil || !strings.Contains(err.Error(), "seq 3 after 1") {
		t.Fatalf("End: %v", err)
	}
}

func TestReplayBoundsChanges(t *testing.T) {
	old := policy(t, oldRules, "")
	new := policy(t, "[]", "")
	rep := replayAll(t, Options{Old: old, New: new, ChangesMax: 1}, map[string][]journey.Event{"c-1": journal(t, "c-1", t0)})
	if len(rep.Changes) != 1 || rep.ChangesDropped == 0 {
		t.Fatalf("report %+v", rep)
	}
}
