package replay

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/throughline/throughline/journey"
)

func ev(typ, actor string, data any) journey.Event {
	raw, _ := json.Marshal(data)
	return journey.Event{Type: typ, Actor: actor, Data: raw}
}

func TestOutcomeOf(t *testing.T) {
	o := outcomeOf([]journey.Event{
		ev("login.failed", "customer", nil),
		ev(journey.TypeRuleFired, "rule:a", map[string]any{"rule": "a"}),
		ev(journey.TypeRoutingDecided, "rule:a", map[string]any{"rule": "a", "queue": "vip", "deferred": true}),
		ev(journey.TypeRoutingDecided, "rule:b", map[string]any{"rule": "b", "queue": "general"}),
		ev(journey.TypeTimerArmed, "rule:n", map[string]any{"rule": "n"}),
		ev(journey.TypeRoutingDecided, "ai", map[string]any{"reason": "low_confidence", "queue": "support"}),
		ev(journey.TypeProactiveSuppressed, "rule:w", map[string]any{"rule": "w", "reason": "frequency_cap"}),
		ev(journey.TypeProactiveSent, "system", map[string]any{"broadcast": "b1"}),
	})
	if !slices.Equal(o.rules, []string{"a", "n (timer armed)"}) || o.route != "vip (when the bot hands over)" ||
		o.handover != "low_confidence → support" || len(o.proactive) != 1 || o.proactive["w"] != "suppressed: frequency_cap" {
		t.Fatalf("outcome %+v", o)
	}
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new outcome
		want     []change
	}{
		{"same", outcome{rules: []string{"a"}, route: "vip"}, outcome{rules: []string{"a"}, route: "vip"}, nil},
		{"rules", outcome{rules: []string{"a", "b"}}, outcome{rules: []string{"b", "c"}},
			[]change{{KindRuleFires, "c"}, {KindRuleStops, "a"}}},
		{"route gained", outcome{}, outcome{route: "vip"}, []change{{KindRoute, "(none) → vip"}}},
		{"route lost", outcome{route: "vip"}, outcome{}, []change{{KindRoute, "vip → (none)"}}},
		{"handover gained", outcome{}, outcome{handover: "blocked_topic → billing"},
			[]change{{KindHandoverGained, "blocked_topic → billing"}}},
		{"handover lost", outcome{handover: "low_confidence → billing"}, outcome{},
			[]change{{KindHandoverLost, "low_confidence → billing"}}},
		{"handover changed", outcome{handover: "low_confidence → billing"}, outcome{handover: "low_confidence → vip"},
			[]change{{KindHandoverChanged, "low_confidence → billing ⇒ low_confidence → vip"}}},
		{"proactive", outcome{proactive: map[string]string{"w": "sent", "x": "sent"}},
			outcome{proactive: map[string]string{"w": "suppressed: quiet_hours", "x": "sent", "y": "held for quiet hours"}},
			[]change{{KindProactive, "w: sent → suppressed: quiet_hours"}, {KindProactive, "y: (none) → held for quiet hours"}}},
	} {
		if got := diff(tc.old, tc.new); !slices.Equal(got, tc.want) {
			t.Errorf("%s: diff %v, want %v", tc.name, got, tc.want)
		}
	}
}
