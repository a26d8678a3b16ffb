package replay

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/throughline/throughline/journey"
)

// outcome is what one decision did that an operator cares about when a
// config changes: the rules that fired, where a rule routed, whether and
// why the bot handed over, and what became of each rule's proactive
// message. It is read from the decision's events, with the fields of
// PROTOCOL section 1.
type outcome struct {
	rules     []string          // ids of the rules that fired, "<id> (timer armed)" for an after: rule armed, in order
	route     string            // queue of the first route a rule took, "" when none
	handover  string            // the bot's hand-over: "<reason> → <queue>", "" when none
	proactive map[string]string // rule id -> sent, held (quiet hours) or suppressed: <reason>
}

// eventData is the part of the events' data an outcome reads.
type eventData struct {
	Rule     string `json:"rule"`
	Reason   string `json:"reason"`
	Queue    string `json:"queue"`
	Deferred bool   `json:"deferred"`
	Error    string `json:"error"`
}

// outcomeOf reads the outcome of a decision's events.
func outcomeOf(events []journey.Event) outcome {
	var o outcome
	for i := range events {
		e := &events[i]
		rule, byRule := strings.CutPrefix(e.Actor, journey.ActorRulePrefix)
		if !byRule {
			rule = ""
		}
		var d eventData
		switch e.Type {
		case journey.TypeRuleFired, journey.TypeTimerArmed, journey.TypeRoutingDecided,
			journey.TypeProactiveSent, journey.TypeProactiveHeld, journey.TypeProactiveSuppressed:
			_ = json.Unmarshal(e.Data, &d) // a runtime event's data; a field it lacks reads as empty
		default:
			continue
		}
		if d.Rule != "" {
			rule = d.Rule
		}
		switch e.Type {
		case journey.TypeRuleFired:
			if d.Error == "" { // one that failed did nothing (a rule no longer configured, too many timers)
				o.rules = append(o.rules, rule)
			}
		case journey.TypeTimerArmed:
			if byRule || d.Rule != "" {
				o.rules = append(o.rules, rule+" (timer armed)")
			}
		case journey.TypeRoutingDecided:
			switch {
			case e.Actor == journey.ActorAI && o.handover == "":
				o.handover = d.Reason + " → " + d.Queue
			case byRule && o.route == "":
				o.route = d.Queue
				if d.Deferred {
					o.route += " (when the bot hands over)"
				}
			}
		case journey.TypeProactiveSent, journey.TypeProactiveHeld, journey.TypeProactiveSuppressed:
			if rule == "" {
				continue // a broadcast's message: not a rule's
			}
			if o.proactive == nil {
				o.proactive = map[string]string{}
			}
			o.proactive[rule] = proactiveOutcome(e.Type, d.Reason)
		}
	}
	return o
}

func proactiveOutcome(typ, reason string) string {
	switch typ {
	case journey.TypeProactiveSent:
		return "sent"
	case journey.TypeProactiveHeld:
		return "held for quiet hours"
	default:
		return "suppressed: " + reason
	}
}

// Kinds of change, in the order a report lists them.
const (
	KindRuleFires       = "rule_fires"       // a rule fires with the new config and did not with the old
	KindRuleStops       = "rule_stops"       // a rule fired with the old config and no longer does
	KindRoute           = "route"            // a rule routes to another queue, or routes where it did not
	KindHandoverGained  = "handover_gained"  // the bot hands over where it did not
	KindHandoverLost    = "handover_lost"    // the bot no longer hands over
	KindHandoverChanged = "handover_changed" // the bot hands over for another reason or to another queue
	KindProactive       = "proactive"        // a rule's proactive message is sent, held or suppressed otherwise
)

var kindOrder = []string{KindRuleFires, KindRuleStops, KindRoute, KindHandoverGained, KindHandoverLost, KindHandoverChanged, KindProactive}

// change is one difference between two outcomes of one input.
type change struct {
	kind, what string
}

// none stands for "nothing" on either side of a change.
const none = "(none)"

// diff lists what changes from old to new, in a stable order.
func diff(old, new outcome) []change {
	var out []change
	for _, r := range new.rules {
		if !slices.Contains(old.rules, r) {
			out = append(out, change{KindRuleFires, r})
		}
	}
	for _, r := range old.rules {
		if !slices.Contains(new.rules, r) {
			out = append(out, change{KindRuleStops, r})
		}
	}
	if old.route != new.route {
		out = append(out, change{KindRoute, or(old.route) + " → " + or(new.route)})
	}
	switch {
	case old.handover == new.handover:
	case old.handover == "":
		out = append(out, change{KindHandoverGained, new.handover})
	case new.handover == "":
		out = append(out, change{KindHandoverLost, old.handover})
	default:
		out = append(out, change{KindHandoverChanged, old.handover + " ⇒ " + new.handover})
	}
	rules := make([]string, 0, len(old.proactive)+len(new.proactive))
	for r := range old.proactive {
		rules = append(rules, r)
	}
	for r := range new.proactive {
		if _, ok := old.proactive[r]; !ok {
			rules = append(rules, r)
		}
	}
	slices.Sort(rules)
	for _, r := range rules {
		if o, n := old.proactive[r], new.proactive[r]; o != n {
			out = append(out, change{KindProactive, r + ": " + or(o) + " → " + or(n)})
		}
	}
	return out
}

func or(s string) string {
	if s == "" {
		return none
	}
	return s
}
