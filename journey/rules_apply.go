package journey

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Timer is a rule's armed timer (`after:`): the rule acts when it comes due
// unless an event makes its `unless` true first. It lives in the state and
// as a due-work key, so it fires once, across restarts, without the
// customer being in memory.
type Timer struct {
	Seq     uint64    `json:"seq"` // of its journey.timer_armed
	Rule    string    `json:"rule"`
	Due     time.Time `json:"due"`
	Trigger Event     `json:"trigger"`
}

// HeldMessage is a proactive message held by quiet hours until Release.
type HeldMessage struct {
	Seq     uint64            `json:"seq"` // of its proactive.held
	Rule    string            `json:"rule,omitempty"`
	Offer   string            `json:"offer,omitempty"`
	Channel string            `json:"channel"`
	To      map[string]string `json:"to,omitempty"`
	Text    string            `json:"text"`
	Release time.Time         `json:"release"`
	Expires time.Time         `json:"expires"`
	// Broadcast and CallbackOffer: a broadcast's message (actor system).
	Broadcast     string `json:"broadcast,omitempty"`
	CallbackOffer bool   `json:"callback_offer,omitempty"`
}

// Bounds of the rules' state. A rule that would arm a timer past
// TimersMax, or hold a message past HeldMax, records the refusal instead.
const (
	TimersMax           = 64
	HeldMax             = 16
	CasesMax            = 32
	ProactiveCountedMax = 256 // proactive messages remembered for the frequency cap
)

// Data of the rules' events.
type timerArmed struct {
	Rule    string    `json:"rule"`
	Due     time.Time `json:"due"`
	Trigger Event     `json:"trigger"`
}

type timerCancelled struct {
	Rule  string `json:"rule"`
	Timer uint64 `json:"timer"`
	By    uint64 `json:"by"` // seq of the event that cancelled it
}

type ruleFired struct {
	Rule    string   `json:"rule"`
	Trigger uint64   `json:"trigger"`         // seq of the event that made it fire
	Timer   uint64   `json:"timer,omitempty"` // seq of the timer that fired
	Actions []string `json:"actions"`         // what it did, in order
	Error   string   `json:"error,omitempty"`
}

type proactiveData struct {
	Rule     string    `json:"rule,omitempty"`
	Offer    string    `json:"offer,omitempty"` // the offer of a next_best_action
	Channel  string    `json:"channel,omitempty"`
	To       address   `json:"to,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Outbound string    `json:"outbound,omitempty"`
	Held     uint64    `json:"held,omitempty"` // for a message released after quiet hours
	Release  time.Time `json:"release,omitzero"`
	Expires  time.Time `json:"expires,omitzero"`
	// Broadcast names the broadcast of a broadcast's message, with its
	// callback offer.
	Broadcast     string `json:"broadcast,omitempty"`
	CallbackOffer bool   `json:"callback_offer,omitempty"`
}

type caseData struct {
	Case      string `json:"case"`
	Subject   string `json:"subject,omitempty"`
	MessageID string `json:"message_id,omitempty"` // the email that opened it (email.go)
}

// applyRules keeps the state the rules' events describe.
func (c *Customer) applyRules(e *Event, data any) {
	switch e.Type {
	case TypeTimerArmed:
		var d timerArmed
		if json.Unmarshal(e.Data, &d) == nil {
			c.Timers = pushBounded(c.Timers, Timer{Seq: e.Seq, Rule: d.Rule, Due: d.Due, Trigger: d.Trigger}, TimersMax)
		}
	case TypeTimerCancelled, TypeRuleFired:
		var d struct {
			Timer uint64 `json:"timer"`
		}
		if json.Unmarshal(e.Data, &d) == nil && d.Timer > 0 {
			c.Timers = slices.DeleteFunc(c.Timers, func(t Timer) bool { return t.Seq == d.Timer })
		}
	case TypeProactiveHeld, TypeProactiveSent, TypeProactiveSuppressed:
		d, ok := data.(proactiveData)
		if !ok && json.Unmarshal(e.Data, &d) != nil {
			return
		}
		if e.Type == TypeProactiveHeld {
			c.Held = pushBounded(c.Held, HeldMessage{Seq: e.Seq, Rule: d.Rule, Offer: d.Offer, Channel: d.Channel, To: d.To,
				Text: e.Text, Release: d.Release, Expires: d.Expires, Broadcast: d.Broadcast, CallbackOffer: d.CallbackOffer}, HeldMax)
		}
		if d.Held > 0 {
			c.Held = slices.DeleteFunc(c.Held, func(h HeldMessage) bool { return h.Seq == d.Held })
		}
		// A held message counted when it was held (PROTOCOL section 5).
		if e.Type == TypeProactiveHeld || (e.Type == TypeProactiveSent && d.Held == 0) {
			c.proactive = pushBounded(c.proactive, e.RecordedAt.UnixNano(), ProactiveCountedMax)
		}
		// The same data, decoded once, keeps the broadcasts' and offers'
		// state.
		c.applyBroadcastVerdict(e, &d)
		c.applyOfferSent(e, &d)
	case TypeCustomerTagged:
		var d struct {
			Tag string `json:"tag"`
		}
		if json.Unmarshal(e.Data, &d) == nil && d.Tag != "" && !contains(c.Tags, d.Tag) {
			c.Tags = pushBounded(c.Tags, d.Tag, TagsMax)
		}
	case TypeStageChanged:
		var d struct {
			Stage string `json:"stage"`
		}
		if json.Unmarshal(e.Data, &d) == nil {
			c.Stage = d.Stage
		}
	case TypeCaseOpened:
		var d caseData
		if json.Unmarshal(e.Data, &d) == nil {
			k := Case{ID: d.Case, Status: "open", Subject: d.Subject, Opened: e.RecordedAt}
			if d.MessageID != "" {
				k.addThreadID(d.MessageID, e.RecordedAt)
			}
			c.openCase(k)
		}
	case TypeCaseResolved:
		var d caseData
		if json.Unmarshal(e.Data, &d) == nil {
			for i := range c.Cases {
				if c.Cases[i].ID == d.Case {
					c.Cases[i].Status = "resolved"
				}
			}
		}
	}
}

// openCase adds a case; past CasesMax the oldest resolved one gives way (or
// the oldest when all are open).
func (c *Customer) openCase(k Case) {
	if len(c.Cases) >= CasesMax {
		i := slices.IndexFunc(c.Cases, func(k Case) bool { return k.Status == "resolved" })
		c.Cases = slices.Delete(c.Cases, max(i, 0), max(i, 0)+1)
	}
	c.Cases = append(c.Cases, k)
}

// ruleView is what rules see of the customer now.
func (s *stepper) ruleView() RuleCustomer { return s.c.RuleView(s.at) }

// RuleView is what rules and offers see of the customer at now. It shares
// the state's maps: read it while the state does not change.
func (c *Customer) RuleView(now time.Time) RuleCustomer {
	v := RuleCustomer{
		ID: c.ID, Profile: c.Profile, Identities: c.Identities, Tags: c.Tags, Stage: c.Stage,
		Count: func(typ string, window time.Duration) int { return c.Count(typ, window, now) },
	}
	if cv := c.Conversation; cv != nil {
		v.Conversation = map[string]any{"id": cv.ID, "state": cv.State, "channel": cv.Channel,
			"queue": cv.Queue, "agent": cv.Agent, "priority": int64(cv.Priority)}
	}
	for _, k := range c.Cases {
		v.Cases = append(v.Cases, map[string]any{"id": k.ID, "status": k.Status, "subject": k.Subject})
	}
	return v
}

// cancelTimers cancels every armed timer whose unless the event makes true.
func (s *stepper) cancelTimers(e *Event) {
	if s.p.Rules == nil || len(s.c.Timers) == 0 || isRuleActor(e.Actor) {
		return
	}
	timers := slices.Clone(s.c.Timers)
	for i := range timers {
		t := &timers[i]
		r := s.p.Rules.Rule(t.Rule)
		if r == nil || r.UnlessExpr == "" || e.Seq <= t.Trigger.Seq {
			continue
		}
		ok, err := r.Unless(e, &t.Trigger, s.ruleView())
		if err != nil || !ok {
			continue // an unless that fails to evaluate does not cancel
		}
		s.record(TypeTimerCancelled, ActorRulePrefix+r.ID, timerCancelled{Rule: r.ID, Timer: t.Seq, By: e.Seq}, "", "")
		s.d.DueDone = append(s.d.DueDone, Due{At: t.Due, Kind: DueRuleTimer, Ref: strconv.FormatUint(t.Seq, 10)})
	}
}

// fireRules fires every rule the event matches, in order: a rule with
// after arms its timer, the others act now.
func (s *stepper) fireRules(e *Event) {
	if s.p.Rules == nil || isRuleActor(e.Actor) {
		return
	}
	if !s.p.Rules.AnyTriggers(e) {
		return
	}
	matched, errs := s.p.Rules.Match(e, s.ruleView())
	// A rule that fails to evaluate (a missing key: has() tests for one)
	// is the operator's to fix; it is reported, not journaled per event.
	for _, err := range errs {
		s.d.RuleErrors = append(s.d.RuleErrors, err)
	}
	for _, r := range matched {
		if r.After > 0 {
			s.arm(r, *e)
			continue
		}
		s.act(r, *e, 0)
	}
}

func (s *stepper) arm(r *Rule, e Event) {
	actor := ActorRulePrefix + r.ID
	if len(s.c.Timers) >= TimersMax {
		s.record(TypeRuleFired, actor, ruleFired{Rule: r.ID, Trigger: e.Seq, Actions: []string{}, Error: "too many armed timers"}, "", "")
		return
	}
	due := s.at.Add(r.After)
	seq := s.record(TypeTimerArmed, actor, timerArmed{Rule: r.ID, Due: due, Trigger: e}, "", "")
	if seq > 0 {
		s.d.DueAdd = append(s.d.DueAdd, Due{At: due, Kind: DueRuleTimer, Ref: strconv.FormatUint(seq, 10)})
	}
}

// dueTimer fires an armed timer that was not cancelled.
func (s *stepper) dueTimer(in *Due) {
	seq, _ := strconv.ParseUint(in.Ref, 10, 64)
	i := slices.IndexFunc(s.c.Timers, func(t Timer) bool { return t.Seq == seq })
	if i < 0 {
		return // cancelled or fired
	}
	t := s.c.Timers[i]
	var r *Rule
	if s.p.Rules != nil {
		r = s.p.Rules.Rule(t.Rule)
	}
	if r == nil {
		s.record(TypeRuleFired, ActorRulePrefix+t.Rule, ruleFired{Rule: t.Rule, Trigger: t.Trigger.Seq, Timer: t.Seq, Actions: []string{}, Error: "rule no longer configured"}, "", "")
		return
	}
	s.act(r, t.Trigger, t.Seq)
}

// act carries out a rule's actions and records what it did.
func (s *stepper) act(r *Rule, trigger Event, timer uint64) {
	actor := ActorRulePrefix + r.ID
	fired := ruleFired{Rule: r.ID, Trigger: trigger.Seq, Timer: timer, Actions: make([]string, 0, len(r.Do))}
	for _, a := range r.Do {
		kind := a.Kind()
		if a.Route != nil && s.routed {
			kind += ":skipped" // only the first route of an event takes effect
		}
		fired.Actions = append(fired.Actions, kind)
	}
	s.record(TypeRuleFired, actor, fired, "", "")
	for _, a := range r.Do {
		switch {
		case a.Route != nil:
			s.route(r, a.Route)
		case a.Send != nil:
			s.proactive(r, a.Send)
		case a.Workflow != "":
			s.startWorkflow(r.ID, a.Workflow)
		case a.OfferCallback:
			s.offerCallback(actor)
		case a.Tag != "":
			s.record(TypeCustomerTagged, actor, map[string]string{"tag": a.Tag}, "", "")
		case a.Stage != "":
			s.record(TypeStageChanged, actor, map[string]string{"stage": a.Stage}, "", "")
		case a.NextBestAction != nil:
			s.nextBestAction(r, a.NextBestAction)
		case a.OpenCase != nil:
			s.record(TypeCaseOpened, actor, caseData{Case: "case-" + strconv.FormatUint(s.c.Seq+1, 10) + "-" + s.c.ID, Subject: a.OpenCase.Subject}, "", "")
		}
	}
}

// route is a rule's route: the conversation goes to the queue now, or,
// while the bot holds it and the rule does not bypass the bot, when the
// bot hands over.
func (s *stepper) route(r *Rule, a *RouteAction) {
	if s.routed {
		return
	}
	cv := s.c.Conversation
	d := RoutingDecided{Rule: r.ID, Queue: a.Queue, Priority: a.Priority, BypassBot: a.BypassBot}
	switch {
	case !cv.Open():
		if cv = s.open(StateQueued, "", a.Queue, a.Priority, ""); cv == nil {
			return
		}
	case cv.State != StateBot && cv.State != StateWorkflow:
		return // with a person or waiting for one: routing keeps it
	case cv.State == StateBot && !a.BypassBot && s.p.Bot != nil:
		d.Deferred = true // the bot still answers, and hands over there
	}
	s.routed, s.bypassed = true, !d.Deferred
	d.Conversation = cv.ID
	if !d.Deferred {
		d.Summary = cv.summary()
	}
	s.record(TypeRoutingDecided, ActorRulePrefix+r.ID, d, "", "")
}

// proactive sends a rule's message through the customer's governance.
func (s *stepper) proactive(r *Rule, a *SendAction) {
	s.proactiveMessage(r, "", a.Channel, a.Text, a.Expires)
}

// proactiveMessage sends text through the customer's governance for rule r
// (offer: the offer it proposes, "" for none), on channel or, when "", the
// channel governance chooses, recording the verdict.
func (s *stepper) proactiveMessage(r *Rule, offer, channel, text string, expires time.Duration) {
	var until time.Time
	if expires > 0 {
		until = s.at.Add(expires)
	}
	s.sendProactive(ActorRulePrefix+r.ID, proactiveData{Rule: r.ID, Offer: offer}, text, channel, until)
}

// sendProactive passes a proactive message (a rule's, an offer's, a
// broadcast's) through the customer's governance and records the verdict:
// sent, held for quiet hours, or suppressed. d names what sends it (rule,
// offer, broadcast); channel "" is the channel choice of PROTOCOL section 5;
// expires zero is ProactiveExpiryDefault.
func (s *stepper) sendProactive(actor string, d proactiveData, text, channel string, expires time.Time) {
	in := ProactiveInput{
		Now: s.at, Channel: channel, Profile: s.c.Profile, LastChannel: s.c.LastChannel,
		Identities: s.c.Identities, Counted: s.c.proactiveTimes(s.p.Governance.CountedWindowMax()), Expires: expires,
	}
	v := s.p.Governance.Decide(in)
	d.Channel, d.To = v.Channel, v.To
	if d.Broadcast != "" {
		d.Expires = in.Expires
	}
	switch v.Outcome {
	case OutcomeSend:
		s.makeRoom(2)
		d.Outbound = OutboundID(s.c.ID, s.c.Seq+2)
		s.record(TypeProactiveSent, actor, d, v.Channel, "")
		s.send(actor, v.Channel, text, messageSent{To: v.To, Proactive: true})
	case OutcomeHold:
		d.Release, d.Expires = v.ReleaseAt, in.Expires
		if d.Expires.IsZero() {
			d.Expires = s.at.Add(ProactiveExpiryDefault)
		}
		if len(s.c.Held) >= HeldMax {
			d.Reason = ReasonQuietHours
			s.record(TypeProactiveSuppressed, actor, d, v.Channel, "")
			return
		}
		seq := s.record(TypeProactiveHeld, actor, d, v.Channel, text)
		if seq > 0 {
			s.d.DueAdd = append(s.d.DueAdd, Due{At: v.ReleaseAt, Kind: DueProactiveRelease, Ref: strconv.FormatUint(seq, 10)})
		}
	default:
		d.Reason = v.Reason
		s.record(TypeProactiveSuppressed, actor, d, v.Channel, "")
	}
}

// dueRelease sends a message held by quiet hours, unless it expired.
func (s *stepper) dueRelease(in *Due) {
	seq, _ := strconv.ParseUint(in.Ref, 10, 64)
	i := slices.IndexFunc(s.c.Held, func(h HeldMessage) bool { return h.Seq == seq })
	if i < 0 {
		return
	}
	h := s.c.Held[i]
	actor := ActorSystem
	if h.Rule != "" {
		actor = ActorRulePrefix + h.Rule
	}
	d := proactiveData{Rule: h.Rule, Offer: h.Offer, Channel: h.Channel, To: h.To, Held: h.Seq, Broadcast: h.Broadcast, CallbackOffer: h.CallbackOffer}
	if h.Broadcast != "" {
		d.Expires = h.Expires
	}
	if s.now.After(h.Expires) {
		d.Reason = ReasonQuietHours
		s.record(TypeProactiveSuppressed, actor, d, h.Channel, "")
		return
	}
	s.makeRoom(2)
	d.Outbound = OutboundID(s.c.ID, s.c.Seq+2)
	s.record(TypeProactiveSent, actor, d, h.Channel, "")
	s.send(actor, h.Channel, h.Text, messageSent{To: h.To, Proactive: true})
}

// proactiveTimes are the recorded_at times of the latest n proactive
// messages: the governance needs no more (CountedWindowMax), and a copy of
// all ProactiveCountedMax for every proactive message was 6 KB apiece for
// a customer with a long history.
func (c *Customer) proactiveTimes(n int) []time.Time {
	latest := c.proactive[max(len(c.proactive)-n, 0):]
	if len(latest) == 0 {
		return nil
	}
	out := make([]time.Time, len(latest))
	for i, t := range latest {
		out[i] = time.Unix(0, t).UTC()
	}
	return out
}

// CallbackOfferText asks the customer whether they want a callback.
const CallbackOfferText = "Would you like us to call you back? Reply YES and we'll call you as soon as someone is free."

// offerCallback offers the customer a callback on the conversation's
// channel (a service message: it does not count against the cap).
func (s *stepper) offerCallback(actor string) {
	cv := s.c.Conversation
	if !cv.Open() {
		return
	}
	s.makeRoom(2)
	s.record(TypeCallbackOffered, actor, map[string]string{"conversation": cv.ID, "outbound": OutboundID(s.c.ID, s.c.Seq+2)}, cv.Channel, "")
	s.send(actor, cv.Channel, CallbackOfferText, messageSent{Conversation: cv.ID})
}

// isRuleActor reports whether an actor is a rule.
func isRuleActor(actor string) bool { return strings.HasPrefix(actor, ActorRulePrefix) }

// Rule is the rule with the id, nil when none.
func (r *Rules) Rule(id string) *Rule {
	for _, x := range r.List() {
		if x.ID == id {
			return x
		}
	}
	return nil
}

// AnyTriggers reports whether the event can trigger any rule, so that a
// customer's view is built only for events some rule looks at.
func (r *Rules) AnyTriggers(e *Event) bool {
	for _, x := range r.List() {
		if x.Triggers(e) {
			return true
		}
	}
	return false
}
