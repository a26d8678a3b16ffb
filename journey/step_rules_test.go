package journey_test

import (
	"slices"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// rulesPolicy is botPolicy with the rules and governance.
func rulesPolicy(t *testing.T, g *journey.Governance, rules ...journey.RuleConfig) journey.Policy {
	t.Helper()
	p := botPolicy()
	p.Rules = mustCompile(t, rules...)
	p.Governance = g
	return p
}

func routeRule(id, when, queue string, priority int, bypass bool) journey.RuleConfig {
	return journey.RuleConfig{ID: id, When: when, Do: []journey.ActionConfig{
		{Route: &journey.RouteAction{Queue: queue, Priority: priority, BypassBot: bypass}}}}
}

const vipMessage = "event.type == 'message.received' && customer.profile.tier == 'vip'"

func TestStepRuleRouteBypassesTheBot(t *testing.T) {
	r := newRun(t, rulesPolicy(t, nil, routeRule("vip-fast-track", vipMessage, "vip", 100, true)))
	r.profile(`{"tier":"vip"}`)
	d := r.msg("my card payment failed")
	wantTypes(t, d, journey.TypeMessageReceived, journey.TypeConversationOpened, journey.TypeRuleFired, journey.TypeRoutingDecided)
	if len(d.Bot) != 0 {
		t.Errorf("bot asked: %+v", d.Bot)
	}
	fired, routed := d.Events[2], d.Events[3]
	if fired.Actor != "rule:vip-fast-track" || mustJSON(t, dataOf(t, fired)["actions"]) != `["route"]` {
		t.Errorf("rule_fired %s by %s", fired.Data, fired.Actor)
	}
	rd := routing(t, routed)
	if routed.Actor != "rule:vip-fast-track" || rd.Rule != "vip-fast-track" || rd.Queue != "vip" || rd.Priority != 100 ||
		!rd.BypassBot || rd.Deferred || rd.Summary == nil || rd.Conversation != r.c.Conversation.ID {
		t.Errorf("routing.decided %s by %s", routed.Data, routed.Actor)
	}
	if cv := r.c.Conversation; cv.State != journey.StateQueued || cv.Queue != "vip" || cv.Priority != 100 {
		t.Errorf("conversation %+v", cv)
	}
	// A customer who is not VIP gets the bot.
	r2 := newRun(t, rulesPolicy(t, nil, routeRule("vip-fast-track", vipMessage, "vip", 100, true)))
	if d := r2.msg("my card payment failed"); len(d.Bot) != 1 || r2.c.Conversation.State != journey.StateBot {
		t.Errorf("not vip: %v bot %d", types(d.Events), len(d.Bot))
	}
}

// TestStepRuleRouteOpensAConversation: a route on an event that is not a
// message opens a queued conversation (PROTOCOL section 6, login.failed).
func TestStepRuleRouteOpensAConversation(t *testing.T) {
	r := newRun(t, rulesPolicy(t, nil, routeRule("vip-fast-track", "event.type == 'login.failed' && customer.profile.tier == 'vip'", "vip", 100, true)))
	r.profile(`{"tier":"vip"}`)
	r.msg("hello") // last channel sms
	r.at(time.Hour)
	r.due(journey.Due{At: t0.Add(journey.ConversationIdleDefault), Kind: journey.DueConversationIdle, Ref: r.c.Conversation.ID})
	closed := r.c.Conversation.ID
	d := r.event("login.failed", "", "", `{"attempts":3}`)
	wantTypes(t, d, "login.failed", journey.TypeRuleFired, journey.TypeConversationOpened, journey.TypeRoutingDecided)
	opened := dataOf(t, d.Events[2])
	if opened["state"] != journey.StateQueued || opened["queue"] != "vip" || opened["previous"] != closed || opened["channel"] != "sms" {
		t.Errorf("opened %s", d.Events[2].Data)
	}
	if cv := r.c.Conversation; cv.State != journey.StateQueued || cv.Queue != "vip" {
		t.Errorf("conversation %+v", cv)
	}
}

func TestStepRuleRouteDeferredWhileTheBotHolds(t *testing.T) {
	r := newRun(t, rulesPolicy(t, nil, routeRule("vip-queue", vipMessage, "vip", 50, false)))
	r.profile(`{"tier":"vip"}`)
	d := r.msg("my card payment failed")
	wantTypes(t, d, journey.TypeMessageReceived, journey.TypeConversationOpened, journey.TypeRuleFired, journey.TypeRoutingDecided)
	rd := routing(t, d.Events[3])
	if !rd.Deferred || rd.Rule != "vip-queue" || rd.Queue != "vip" || rd.Summary != nil {
		t.Errorf("deferred route %s", d.Events[3].Data)
	}
	if len(d.Bot) != 1 || r.c.Conversation.State != journey.StateBot {
		t.Fatalf("bot %d state %s: the bot still answers", len(d.Bot), r.c.Conversation.State)
	}
	low := good("Hmm")
	low.Confidence = 0.1
	d = r.botAnswer(d, low)
	rd = routing(t, eventOf(t, d, journey.TypeRoutingDecided))
	if rd.Queue != "vip" || rd.Priority != 50 || rd.Reason != journey.ReasonLowConfidence || rd.Deferred {
		t.Errorf("hand-over %+v: want the rule's queue", rd)
	}
	if cv := r.c.Conversation; cv.State != journey.StateQueued || cv.Queue != "vip" {
		t.Errorf("conversation %+v", cv)
	}
}

func TestStepRuleOnlyTheFirstRouteTakesEffect(t *testing.T) {
	t.Run("bypass", func(t *testing.T) {
		r := newRun(t, rulesPolicy(t, nil,
			routeRule("first", vipMessage, "vip", 100, true),
			routeRule("second", "event.type == 'message.received'", "general", 1, true)))
		r.profile(`{"tier":"vip"}`)
		d := r.msg("hi")
		wantTypes(t, d, journey.TypeMessageReceived, journey.TypeConversationOpened, journey.TypeRuleFired,
			journey.TypeRoutingDecided, journey.TypeRuleFired)
		if a := mustJSON(t, dataOf(t, d.Events[4])["actions"]); a != `["route:skipped"]` {
			t.Errorf("second rule's actions %s", a)
		}
		if cv := r.c.Conversation; cv.Queue != "vip" {
			t.Errorf("queue %s", cv.Queue)
		}
	})
	t.Run("deferred", func(t *testing.T) {
		r := newRun(t, rulesPolicy(t, nil,
			routeRule("first", vipMessage, "vip", 100, false),
			routeRule("second", "event.type == 'message.received'", "general", 1, false)))
		r.profile(`{"tier":"vip"}`)
		d := r.msg("hi")
		n := 0
		for _, e := range d.Events {
			if e.Type == journey.TypeRoutingDecided {
				n++
			}
		}
		if n != 1 || r.c.Conversation.Queue != "vip" {
			t.Errorf("%d routing.decided, queue %s; want one, vip", n, r.c.Conversation.Queue)
		}
	})
}

// TestStepRuleEventsOfRulesDoNotTrigger: a rule's own events never trigger
// rules, even one listing their type in on:.
func TestStepRuleEventsOfRulesDoNotTrigger(t *testing.T) {
	r := newRun(t, rulesPolicy(t, nil,
		journey.RuleConfig{ID: "tagger", When: "event.type == 'payment.failed'", Do: []journey.ActionConfig{{Tag: "trouble"}}},
		journey.RuleConfig{ID: "on-tag", When: "true", On: []string{journey.TypeCustomerTagged, "payment.failed"}, Do: []journey.ActionConfig{{Stage: "watched"}}}))
	d := r.event("payment.failed", "", "", "")
	wantTypes(t, d, "payment.failed", journey.TypeRuleFired, journey.TypeCustomerTagged, journey.TypeRuleFired, journey.TypeStageChanged)
	if d.Events[3].Actor != "rule:on-tag" || dataOf(t, d.Events[3])["trigger"] != 1.0 {
		t.Errorf("on-tag fired on %s", d.Events[3].Data)
	}
}

// TestStepRuleOnSeesOtherTypes: on: lets a rule see events whose actor is
// not the customer.
func TestStepRuleOnSeesOtherTypes(t *testing.T) {
	r := newRun(t, rulesPolicy(t, nil,
		journey.RuleConfig{ID: "on-profile", When: "customer.profile.tier == 'vip'", On: []string{journey.TypeProfileUpdated}, Do: []journey.ActionConfig{{Tag: "vip"}}},
		journey.RuleConfig{ID: "customer-only", When: "true", Do: []journey.ActionConfig{{Stage: "seen"}}}))
	d := r.profile(`{"tier":"vip"}`)
	wantTypes(t, d, journey.TypeProfileUpdated, journey.TypeRuleFired, journey.TypeCustomerTagged)
	if d.Events[1].Actor != "rule:on-profile" || !slices.Equal(r.c.Tags, []string{"vip"}) || r.c.Stage != "" {
		t.Errorf("tags %v stage %q", r.c.Tags, r.c.Stage)
	}
}

// TestStepRuleOnSeesRuntimeEvents: a rule listing a type the runtime
// records in reaction (a failed delivery, the bot's reply) sees it.
func TestStepRuleOnSeesRuntimeEvents(t *testing.T) {
	r := newRun(t, rulesPolicy(t, nil,
		journey.RuleConfig{ID: "on-failed", When: "true", On: []string{journey.TypeMessageFailed}, Do: []journey.ActionConfig{{Tag: "unreachable"}}},
		journey.RuleConfig{ID: "on-reply", When: "true", On: []string{journey.TypeAIReplied}, Do: []journey.ActionConfig{{Stage: "bot"}}}))
	d := r.botAnswer(r.msg("hi"), good("Hello"))
	sent := eventOf(t, d, journey.TypeMessageSent)
	d2 := r.step(&journey.Receipt{Outbound: journey.OutboundID("c-42", sent.Seq), Kind: journey.ReceiptFailed, Reason: "unreachable"})
	if r.c.Stage != "bot" || !slices.Contains(r.c.Tags, "unreachable") {
		t.Errorf("after ai.replied %v and message.failed %v: stage %q tags %v", types(d.Events), types(d2.Events), r.c.Stage, r.c.Tags)
	}
}

// TestStepRuleCountUsesRecordedAt: count() windows are measured on
// recorded_at, whatever time the client claims.
func TestStepRuleCountUsesRecordedAt(t *testing.T) {
	r := newRun(t, rulesPolicy(t, nil, journey.RuleConfig{ID: "third-failure",
		When: "event.type == 'payment.failed' && customer.count('payment.failed', duration('10m')) >= 3",
		Do:   []journey.ActionConfig{{Tag: "repeated-failure"}}}))
	fired := func(d journey.Decision) bool { return slices.Contains(types(d.Events), journey.TypeRuleFired) }
	for i, at := range []time.Duration{0, 4 * time.Minute, 8 * time.Minute, 20 * time.Minute, 25 * time.Minute, 29 * time.Minute} {
		r.at(at)
		d := r.event("payment.failed", "", "", "")
		want := i == 2 || i == 5 // three inside 10 minutes
		if fired(d) != want {
			t.Errorf("failure %d at %v: fired %v, want %v", i, at, fired(d), want)
		}
	}
	// A client's time in the past does not put events in the window.
	r2 := newRun(t, r.p.WithDefaults())
	for i := range 3 {
		r2.at(time.Duration(i) * time.Hour)
		r2.n++
		past := t0
		d := r2.step(&journey.Inbound{Event: journey.Event{ID: "old-" + seqRef(uint64(i)), Customer: "c-42", Type: "payment.failed", Time: &past}})
		if fired(d) {
			t.Errorf("failure %d fired on the client's time", i)
		}
	}
}

const cartAbandoned = "event.type == 'cart.abandoned'"

func cartNudge(do ...journey.ActionConfig) journey.RuleConfig {
	if len(do) == 0 {
		do = []journey.ActionConfig{{Send: &journey.SendAction{Text: "Your cart is saved."}}}
	}
	return journey.RuleConfig{ID: "cart-nudge", When: cartAbandoned, After: 30 * time.Minute,
		Unless: "event.type == 'checkout.completed' && event.data.cart == trigger.data.cart", Do: do}
}

func TestStepRuleTimerArmsAndFiresOnce(t *testing.T) {
	r := newRun(t, rulesPolicy(t, nil, cartNudge()))
	r.msg("hi") // a customer channel: sms
	r.at(time.Minute)
	d := r.event("cart.abandoned", "web", "", `{"cart":"k-1"}`)
	wantTypes(t, d, "cart.abandoned", journey.TypeTimerArmed)
	armed := d.Events[1]
	if armed.Actor != "rule:cart-nudge" || dataOf(t, armed)["rule"] != "cart-nudge" {
		t.Errorf("armed %s by %s", armed.Data, armed.Actor)
	}
	key := journey.Due{At: t0.Add(31 * time.Minute), Kind: journey.DueRuleTimer, Ref: seqRef(armed.Seq)}
	if !slices.Equal(d.DueAdd, []journey.Due{key}) || len(r.c.Timers) != 1 {
		t.Fatalf("due %+v timers %+v", d.DueAdd, r.c.Timers)
	}
	// Another cart's checkout does not cancel it.
	r.at(10 * time.Minute)
	if d := r.event("checkout.completed", "web", "", `{"cart":"k-2"}`); len(d.Events) != 1 {
		t.Errorf("other checkout: %v", types(d.Events))
	}
	r.at(31 * time.Minute)
	d = r.due(key)
	wantTypes(t, d, journey.TypeRuleFired, journey.TypeProactiveSent, journey.TypeMessageSent)
	fired := dataOf(t, d.Events[0])
	if fired["timer"] != float64(armed.Seq) || fired["trigger"] != float64(armed.Seq-1) || mustJSON(t, fired["actions"]) != `["send"]` {
		t.Errorf("rule_fired %s", d.Events[0].Data)
	}
	if sent := d.Events[2]; sent.Actor != "rule:cart-nudge" || sent.Text != "Your cart is saved." || sent.Channel != "web" || dataOf(t, sent)["proactive"] != true {
		t.Errorf("message.sent %+v %s", sent, sent.Data)
	}
	if len(r.c.Timers) != 0 {
		t.Errorf("timers %+v", r.c.Timers)
	}
	// Fires once: the same key again records nothing.
	if d := r.due(key); len(d.Events) != 0 || !slices.Equal(d.DueDone, []journey.Due{key}) {
		t.Errorf("second due: %+v", d)
	}
}

func TestStepRuleTimerCancelled(t *testing.T) {
	r := newRun(t, rulesPolicy(t, nil, cartNudge()))
	d := r.event("cart.abandoned", "web", "", `{"cart":"k-1"}`)
	key := dueOf(t, d.DueAdd, journey.DueRuleTimer)
	r.at(5 * time.Minute)
	d = r.event("checkout.completed", "web", "", `{"cart":"k-1"}`)
	wantTypes(t, d, "checkout.completed", journey.TypeTimerCancelled)
	cancelled := dataOf(t, d.Events[1])
	if d.Events[1].Actor != "rule:cart-nudge" || cancelled["timer"] != 2.0 || cancelled["by"] != 3.0 || cancelled["rule"] != "cart-nudge" {
		t.Errorf("cancelled %s by %s", d.Events[1].Data, d.Events[1].Actor)
	}
	if !slices.Equal(d.DueDone, []journey.Due{key}) || len(r.c.Timers) != 0 {
		t.Errorf("due done %+v timers %+v", d.DueDone, r.c.Timers)
	}
	r.at(30 * time.Minute)
	if d := r.due(key); len(d.Events) != 0 {
		t.Errorf("due after cancel: %v", types(d.Events))
	}
}

func TestStepRuleActionsChangeTheState(t *testing.T) {
	r := newRun(t, rulesPolicy(t, nil, journey.RuleConfig{ID: "trouble", When: "event.type == 'payment.failed'", Do: []journey.ActionConfig{
		{Tag: "payment-trouble"}, {Stage: "recovery"}, {OpenCase: &journey.OpenCaseAction{Subject: "Payment failed"}}, {Workflow: "card-retry"},
	}}))
	d := r.event("payment.failed", "", "", `{"amount":12}`)
	wantTypes(t, d, "payment.failed", journey.TypeRuleFired, journey.TypeCustomerTagged, journey.TypeStageChanged, journey.TypeCaseOpened, journey.TypeWorkflowStep)
	if a := mustJSON(t, dataOf(t, d.Events[1])["actions"]); a != `["tag","stage","open_case","workflow"]` {
		t.Errorf("actions %s", a)
	}
	if !slices.Equal(r.c.Tags, []string{"payment-trouble"}) || r.c.Stage != "recovery" || len(r.c.Cases) != 1 ||
		r.c.Cases[0].Status != "open" || r.c.Cases[0].Subject != "Payment failed" || r.c.Cases[0].ID != dataOf(t, d.Events[4])["case"] {
		t.Errorf("tags %v stage %q cases %+v", r.c.Tags, r.c.Stage, r.c.Cases)
	}
	// No workflow of that name is configured: the start is recorded failed.
	if wf := d.Events[5]; wf.Actor != "workflow:card-retry" || dataOf(t, wf)["rule"] != "trouble" || dataOf(t, wf)["result"] != "failed" {
		t.Errorf("workflow %+v %s", wf, wf.Data)
	}
}

func sendRule(id, when string, expires time.Duration) journey.RuleConfig {
	return journey.RuleConfig{ID: id, When: when, Do: []journey.ActionConfig{{Send: &journey.SendAction{Text: "We are on it", Expires: expires}}}}
}

func TestStepRuleSendThroughGovernance(t *testing.T) {
	const when = "event.type == 'payment.failed'"
	t.Run("sent", func(t *testing.T) {
		r := newRun(t, rulesPolicy(t, nil, sendRule("notify", when, 0)))
		d := r.event("payment.failed", "sms", "", "")
		wantTypes(t, d, "payment.failed", journey.TypeRuleFired, journey.TypeProactiveSent, journey.TypeMessageSent)
		ps, sent := dataOf(t, d.Events[2]), d.Events[3]
		if ps["rule"] != "notify" || ps["channel"] != "sms" || ps["outbound"] != journey.OutboundID("c-42", sent.Seq) {
			t.Errorf("proactive.sent %s", d.Events[2].Data)
		}
		if dataOf(t, sent)["proactive"] != true || sent.Actor != "rule:notify" || len(d.Outbounds) != 1 || !slices.Contains(d.DueAdd, journey.Due{At: t0.Add(30 * time.Second), Kind: journey.DueOutbound, Ref: seqRef(sent.Seq)}) {
			t.Errorf("message.sent %+v %s outbounds %+v", sent, sent.Data, d.Outbounds)
		}
	})
	suppressed := func(t *testing.T, d journey.Decision, reason string) {
		t.Helper()
		wantTypes(t, d, d.Events[0].Type, journey.TypeRuleFired, journey.TypeProactiveSuppressed)
		if got := dataOf(t, d.Events[2])["reason"]; got != reason || len(d.Outbounds) != 0 {
			t.Errorf("suppressed %s, want %s", d.Events[2].Data, reason)
		}
	}
	t.Run("no_consent", func(t *testing.T) {
		r := newRun(t, rulesPolicy(t, nil, sendRule("notify", when, 0)))
		r.profile(`{"consent":{"sms":false}}`)
		suppressed(t, r.event("payment.failed", "sms", "", ""), journey.ReasonNoConsent)
	})
	t.Run("no_channel", func(t *testing.T) {
		r := newRun(t, rulesPolicy(t, nil, sendRule("notify", when, 0)))
		suppressed(t, r.event("payment.failed", "", "", ""), journey.ReasonNoChannel)
	})
	t.Run("frequency_cap", func(t *testing.T) {
		g := &journey.Governance{FrequencyCap: &journey.FrequencyCap{Max: 2, Per: 24 * time.Hour}}
		r := newRun(t, rulesPolicy(t, g, sendRule("notify", when, 0)))
		for i := range 2 {
			r.at(time.Duration(i) * time.Hour)
			if d := r.event("payment.failed", "sms", "", ""); !slices.Contains(types(d.Events), journey.TypeProactiveSent) {
				t.Fatalf("send %d: %v", i, types(d.Events))
			}
			// Service replies in between do not count.
			r.botAnswer(r.msg("why?"), good("Because"))
		}
		r.at(3 * time.Hour)
		suppressed(t, r.event("payment.failed", "sms", "", ""), journey.ReasonFrequencyCap)
		r.at(24*time.Hour + time.Second) // the first has left the window
		if d := r.event("payment.failed", "sms", "", ""); !slices.Contains(types(d.Events), journey.TypeProactiveSent) {
			t.Errorf("after the window: %v", types(d.Events))
		}
	})
}

func TestStepRuleSendHeldInQuietHours(t *testing.T) {
	g := &journey.Governance{QuietHours: &journey.QuietHours{From: "21:00", To: "08:00"}}
	night := 12 * time.Hour   // 22:00 UTC
	morning := 22 * time.Hour // 08:00 the next day
	hold := func(t *testing.T) (*journeyRun, journey.Due) {
		r := newRun(t, rulesPolicy(t, g, sendRule("notify", "event.type == 'payment.failed'", 0)))
		r.at(night)
		d := r.event("payment.failed", "sms", "", "")
		wantTypes(t, d, "payment.failed", journey.TypeRuleFired, journey.TypeProactiveHeld)
		held := d.Events[2]
		if data := dataOf(t, held); data["release"] != t0.Add(morning).Format(time.RFC3339) || held.Text != "We are on it" || len(d.Outbounds) != 0 {
			t.Errorf("held %+v %s", held, held.Data)
		}
		key := journey.Due{At: t0.Add(morning), Kind: journey.DueProactiveRelease, Ref: seqRef(held.Seq)}
		if !slices.Equal(d.DueAdd, []journey.Due{key}) || len(r.c.Held) != 1 {
			t.Fatalf("due %+v held %+v", d.DueAdd, r.c.Held)
		}
		return r, key
	}
	t.Run("released", func(t *testing.T) {
		r, key := hold(t)
		r.at(morning)
		d := r.due(key)
		wantTypes(t, d, journey.TypeProactiveSent, journey.TypeMessageSent)
		if data := dataOf(t, d.Events[0]); seqRef(uint64(data["held"].(float64))) != key.Ref || data["outbound"] != journey.OutboundID("c-42", d.Events[1].Seq) {
			t.Errorf("sent %s", d.Events[0].Data)
		}
		if sent := d.Events[1]; sent.Text != "We are on it" || sent.Actor != "rule:notify" || len(d.Outbounds) != 1 || len(r.c.Held) != 0 {
			t.Errorf("released %+v held %+v", sent, r.c.Held)
		}
		if d := r.due(key); len(d.Events) != 0 {
			t.Errorf("released twice: %v", types(d.Events))
		}
	})
	t.Run("expired before release", func(t *testing.T) {
		r, key := hold(t)
		r.at(night + journey.SendExpiresDefault + time.Minute) // the node was down
		d := r.due(key)
		wantTypes(t, d, journey.TypeProactiveSuppressed)
		if data := dataOf(t, d.Events[0]); data["reason"] != journey.ReasonQuietHours || len(d.Outbounds) != 0 || len(r.c.Held) != 0 {
			t.Errorf("suppressed %s", d.Events[0].Data)
		}
	})
	t.Run("expires before the window ends", func(t *testing.T) {
		r := newRun(t, rulesPolicy(t, g, sendRule("notify", "event.type == 'payment.failed'", 2*time.Hour)))
		r.at(night)
		d := r.event("payment.failed", "sms", "", "")
		wantTypes(t, d, "payment.failed", journey.TypeRuleFired, journey.TypeProactiveSuppressed)
		if data := dataOf(t, d.Events[2]); data["reason"] != journey.ReasonQuietHours || len(d.DueAdd) != 0 {
			t.Errorf("suppressed %s due %+v", d.Events[2].Data, d.DueAdd)
		}
	})
}
