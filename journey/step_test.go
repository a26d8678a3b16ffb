package journey_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// journeyRun drives one customer through Step as the customer actor does,
// and checks what every Decision must hold: events in gapless seq order,
// already applied, recorded_at never going back.
type journeyRun struct {
	t   *testing.T
	p   *journey.Policy
	c   *journey.Customer
	now time.Time
	n   int
	all []journey.Event
}

func newRun(t *testing.T, p journey.Policy) *journeyRun {
	t.Helper()
	p = p.WithDefaults()
	return &journeyRun{t: t, p: &p, c: journey.NewCustomer("c-42"), now: t0}
}

// botPolicy is a bot that hands over under 0.55 to billing at priority 5
// and never answers about legal matters.
func botPolicy() journey.Policy {
	return journey.Policy{Bot: &journey.BotPolicy{
		EscalateBelow: 0.55, DefaultQueue: "billing", DefaultPriority: 5, BlockedTopics: []string{"legal"},
	}}
}

// at sets the clock to t0 plus d.
func (r *journeyRun) at(d time.Duration) *journeyRun {
	r.now = t0.Add(d)
	return r
}

func (r *journeyRun) step(in journey.Input) journey.Decision {
	r.t.Helper()
	seq := r.c.Seq
	d := journey.Step(r.p, r.c, in, r.now)
	for i, e := range d.Events {
		if e.Seq != seq+uint64(i)+1 || e.Customer != "c-42" {
			r.t.Fatalf("event %d: seq %d customer %q, want seq %d of c-42", i, e.Seq, e.Customer, seq+uint64(i)+1)
		}
		if len(r.all) > 0 && e.RecordedAt.Before(r.all[len(r.all)-1].RecordedAt) {
			r.t.Fatalf("event %d %s recorded at %v, before the last", e.Seq, e.Type, e.RecordedAt)
		}
		r.all = append(r.all, e)
	}
	if r.c.Seq != seq+uint64(len(d.Events)) {
		r.t.Fatalf("customer at seq %d after %d events from %d: not applied", r.c.Seq, len(d.Events), seq)
	}
	return d
}

// event sends a client event of the type (a message when text is set).
func (r *journeyRun) event(typ, channel, text, data string) journey.Decision {
	r.t.Helper()
	r.n++
	e := journey.Event{ID: fmt.Sprintf("gw-%d", r.n), Customer: "c-42", Type: typ, Channel: channel, Text: text}
	if data != "" {
		e.Data = json.RawMessage(data)
	}
	d := r.step(&journey.Inbound{Event: e})
	if d.Reject != nil || d.Ack == nil || d.Ack.Duplicate {
		r.t.Fatalf("event %s not stored: %+v", e.ID, d)
	}
	return d
}

// msg sends a customer message on sms.
func (r *journeyRun) msg(text string) journey.Decision {
	r.t.Helper()
	return r.event(journey.TypeMessageReceived, "sms", text, "")
}

// botAnswer answers the decision's only bot request.
func (r *journeyRun) botAnswer(asked journey.Decision, res journey.BotResult) journey.Decision {
	r.t.Helper()
	if len(asked.Bot) != 1 {
		r.t.Fatalf("bot requests %+v, want one", asked.Bot)
	}
	res.Conversation, res.InReplyTo = asked.Bot[0].Conversation, asked.Bot[0].InReplyTo
	return r.step(&res)
}

func (r *journeyRun) profile(patch string) journey.Decision {
	r.t.Helper()
	r.n++
	d := r.step(&journey.ProfilePatch{ID: fmt.Sprintf("p-%d", r.n), Patch: json.RawMessage(patch)})
	if d.Reject != nil {
		r.t.Fatalf("profile patch refused: %v", d.Reject)
	}
	return d
}

func (r *journeyRun) due(d journey.Due) journey.Decision {
	r.t.Helper()
	return r.step(&d)
}

// good is a bot answer that goes out.
func good(text string) journey.BotResult {
	return journey.BotResult{Text: text, Intent: "payment", Confidence: 0.9, Sentiment: 0.1,
		Query: text, Articles: []string{"kb-card"}, Brain: "builtin"}
}

func types(events []journey.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}

func wantTypes(t *testing.T, d journey.Decision, want ...string) {
	t.Helper()
	if got := types(d.Events); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// eventOf is the decision's only event of the type.
func eventOf(t *testing.T, d journey.Decision, typ string) journey.Event {
	t.Helper()
	var found []journey.Event
	for _, e := range d.Events {
		if e.Type == typ {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s events in %v, want one", len(found), typ, types(d.Events))
	}
	return found[0]
}

// dataOf decodes an event's data.
func dataOf(t *testing.T, e journey.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("%s data %s: %v", e.Type, e.Data, err)
	}
	return m
}

// routing decodes a routing.decided.
func routing(t *testing.T, e journey.Event) journey.RoutingDecided {
	t.Helper()
	var rd journey.RoutingDecided
	if e.Type != journey.TypeRoutingDecided || json.Unmarshal(e.Data, &rd) != nil {
		t.Fatalf("not a routing.decided: %s %s", e.Type, e.Data)
	}
	return rd
}

func seqRef(seq uint64) string { return strconv.FormatUint(seq, 10) }

// dueOf is the decision's only added due work of the kind.
func dueOf(t *testing.T, dues []journey.Due, kind string) journey.Due {
	t.Helper()
	var found []journey.Due
	for _, d := range dues {
		if d.Kind == kind {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("due work %+v: want one of kind %s", dues, kind)
	}
	return found[0]
}

// TestStepOpensTheBotsConversation: a first message opens a conversation in
// the bot's state, armed for inactivity, and asks the bot.
func TestStepOpensTheBotsConversation(t *testing.T) {
	r := newRun(t, botPolicy())
	d := r.msg("my card payment failed")
	wantTypes(t, d, journey.TypeMessageReceived, journey.TypeConversationOpened)
	cv := r.c.Conversation
	if cv == nil || cv.ID != "cv-2-c-42" || cv.State != journey.StateBot || cv.Channel != "sms" {
		t.Fatalf("conversation %+v", cv)
	}
	if due := dueOf(t, d.DueAdd, journey.DueConversationIdle); !due.At.Equal(t0.Add(journey.ConversationIdleDefault)) || due.Ref != cv.ID {
		t.Errorf("idle due %+v", due)
	}
	if len(d.Bot) != 1 || d.Bot[0].Conversation != cv.ID || d.Bot[0].InReplyTo != 1 || d.Bot[0].Text != "my card payment failed" {
		t.Errorf("bot requests %+v", d.Bot)
	}
	// The second message carries the first turns as history.
	d2 := r.botAnswer(d, good("Try the card again"))
	r.at(time.Minute)
	d3 := r.msg("still failing")
	if len(d3.Bot) != 1 || mustJSON(t, d3.Bot[0].History) != mustJSON(t, []journey.BotTurn{{Role: "customer", Text: "my card payment failed"}, {Role: "bot", Text: "Try the card again"}}) {
		t.Errorf("history %+v (after %v)", d3.Bot, types(d2.Events))
	}
	// Without a bot, messages are only recorded.
	r0 := newRun(t, journey.Policy{})
	if d := r0.msg("agent please"); len(d.Events) != 1 || len(d.Bot) != 0 || r0.c.Conversation != nil {
		t.Errorf("without a bot: %v bot %v conversation %+v", types(d.Events), d.Bot, r0.c.Conversation)
	}
}

// TestStepBotAnswers: the bot's answer records the search, the reply
// (naming its outbound) and the message.
func TestStepBotAnswers(t *testing.T) {
	r := newRun(t, botPolicy())
	asked := r.msg("my card payment failed")
	r.at(2 * time.Second)
	d := r.botAnswer(asked, good("Try the card again"))
	wantTypes(t, d, journey.TypeAIKBSearched, journey.TypeAIReplied, journey.TypeMessageSent)
	kb, reply, sent := dataOf(t, d.Events[0]), dataOf(t, d.Events[1]), d.Events[2]
	if kb["query"] != "Try the card again" || mustJSON(t, kb["articles"]) != `["kb-card"]` {
		t.Errorf("kb_searched %s", d.Events[0].Data)
	}
	if reply["intent"] != "payment" || reply["confidence"] != 0.9 || reply["sentiment"] != 0.1 || reply["in_reply_to"] != 1.0 ||
		reply["outbound"] != journey.OutboundID("c-42", sent.Seq) || reply["escalated"] != nil {
		t.Errorf("ai.replied %s", d.Events[1].Data)
	}
	if sent.Actor != journey.ActorAI || sent.Text != "Try the card again" || sent.Channel != "sms" {
		t.Errorf("message.sent %+v", sent)
	}
	if cv := r.c.Conversation; cv.State != journey.StateBot || cv.BotTurns != 1 || cv.Answered != 1 {
		t.Errorf("conversation %+v", cv)
	}
}

// TestWantsHuman: plain ways of asking for a person, and negations that
// are not.
func TestWantsHuman(t *testing.T) {
	yes := []string{
		"agent", "Agent please!", "I want a human", "can I talk to a person?", "representative",
		"REPRESENTATIVE PLEASE", "I need to speak to someone", "let me talk to somebody", "real people please",
		"get me a live agent", "operator", "are there any humans there", "I want customer service",
	}
	no := []string{
		"no agent needed", "not a human problem, my card failed", "I don't need an agent", "without a person",
		"my card payment failed", "hi", "", "what are your opening hours", "never a human, just tell me",
	}
	for _, s := range yes {
		if !journey.WantsHuman(s) {
			t.Errorf("WantsHuman(%q) = false", s)
		}
	}
	for _, s := range no {
		if journey.WantsHuman(s) {
			t.Errorf("WantsHuman(%q) = true", s)
		}
	}
}

// TestStepEscalation: every reason the bot hands over, through Step.
func TestStepEscalation(t *testing.T) {
	low := good("Maybe this?")
	low.Confidence = 0.3
	empty := good("  ")
	blocked := good("Here is legal advice")
	blocked.Intent = "legal"
	angry := good("Sorry about that")
	angry.Sentiment = -0.7
	failed := journey.BotResult{Err: "brain timeout"}
	tests := []struct {
		name   string
		result journey.BotResult
		reason string
	}{
		{"low confidence", low, journey.ReasonLowConfidence},
		{"empty answer", empty, journey.ReasonLowConfidence},
		{"blocked topic", blocked, journey.ReasonBlockedTopic},
		{"frustration", angry, journey.ReasonFrustration},
		{"bot failure", failed, journey.ReasonBotFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t, botPolicy())
			asked := r.msg("my card payment failed")
			d := r.botAnswer(asked, tt.result)
			wantTypes(t, d, journey.TypeAIKBSearched, journey.TypeAIReplied, journey.TypeRoutingDecided, journey.TypeMessageSent)
			reply := dataOf(t, d.Events[1])
			if reply["escalated"] != tt.reason || reply["outbound"] != nil {
				t.Errorf("ai.replied %s: want escalated %s and no outbound", d.Events[1].Data, tt.reason)
			}
			rd := routing(t, d.Events[2])
			if rd.Reason != tt.reason || rd.Rule != "" || rd.Queue != "billing" || rd.Priority != 5 || rd.Deferred || d.Events[2].Actor != journey.ActorAI {
				t.Errorf("routing.decided %s by %s", d.Events[2].Data, d.Events[2].Actor)
			}
			if sent := d.Events[3]; sent.Text != journey.HandoverTextDefault || sent.Actor != journey.ActorAI || len(d.Outbounds) != 1 {
				t.Errorf("hand-over message %+v outbounds %d", sent, len(d.Outbounds))
			}
			if cv := r.c.Conversation; cv.State != journey.StateQueued || cv.Queue != "billing" {
				t.Errorf("conversation %s in %q", cv.State, cv.Queue)
			}
			// The bot is not asked again once a person is on the way.
			if d := r.msg("hello?"); len(d.Bot) != 0 {
				t.Errorf("bot asked while queued: %+v", d.Bot)
			}
		})
	}
}

// TestStepCustomerAsksForAPerson hands over at once, without asking the bot.
func TestStepCustomerAsksForAPerson(t *testing.T) {
	for _, text := range []string{"agent", "I want to talk to a person", "Representative please", "can I speak to someone real?"} {
		r := newRun(t, botPolicy())
		d := r.msg(text)
		if len(d.Bot) != 0 {
			t.Errorf("%q: bot asked", text)
		}
		wantTypes(t, d, journey.TypeMessageReceived, journey.TypeConversationOpened, journey.TypeRoutingDecided, journey.TypeMessageSent)
		if rd := routing(t, d.Events[2]); rd.Reason != journey.ReasonAskedHuman || rd.Queue != "billing" {
			t.Errorf("%q: routing %s", text, d.Events[2].Data)
		}
	}
	for _, text := range []string{"no agent needed", "I don't need a human, just my balance"} {
		r := newRun(t, botPolicy())
		if d := r.msg(text); len(d.Bot) != 1 || r.c.Conversation.State != journey.StateBot {
			t.Errorf("%q: events %v bot %d: want the bot asked", text, types(d.Events), len(d.Bot))
		}
	}
	// Later in the conversation, whatever the bot's confidence so far.
	r := newRun(t, botPolicy())
	r.botAnswer(r.msg("my card payment failed"), good("Try the card again"))
	d := r.msg("this is useless, get me a human")
	if len(d.Bot) != 0 || r.c.Conversation.State != journey.StateQueued {
		t.Errorf("second message: bot %d state %s", len(d.Bot), r.c.Conversation.State)
	}
}

// TestWantsHumanNegationStopsAtTheClause: a negation in an earlier clause
// does not negate the request.
func TestWantsHumanNegationStopsAtTheClause(t *testing.T) {
	for _, s := range []string{"that did not help, human please", "no. agent please", "this does not work! person please"} {
		if !journey.WantsHuman(s) {
			t.Errorf("WantsHuman(%q) = false", s)
		}
	}
}

// TestStepFrustrationByTrend hands over when the customer's sentiment keeps
// falling below zero, though no turn is under the threshold.
func TestStepFrustrationByTrend(t *testing.T) {
	r := newRun(t, botPolicy())
	for i, s := range []float64{0.4, 0.2} {
		res := good("answer")
		res.Sentiment = s
		r.at(time.Duration(i) * time.Minute)
		if d := r.botAnswer(r.msg("question"), res); len(d.Events) != 3 {
			t.Fatalf("turn %d (sentiment %v): %v", i, s, types(d.Events))
		}
	}
	res := good("answer")
	res.Sentiment = -0.2
	r.at(3 * time.Minute)
	d := r.botAnswer(r.msg("this is not working"), res)
	rd := routing(t, eventOf(t, d, journey.TypeRoutingDecided))
	if rd.Reason != journey.ReasonFrustration || rd.Summary == nil || rd.Summary.Trend != "falling" ||
		mustJSON(t, rd.Summary.Sentiment) != "[0.4,0.2,-0.2]" {
		t.Errorf("routing %+v summary %+v", rd, rd.Summary)
	}
	// A negative turn after a rise is not a falling trend.
	r2 := newRun(t, botPolicy())
	for i, s := range []float64{0.1, 0.3, -0.1} {
		res := good("answer")
		res.Sentiment = s
		r2.at(time.Duration(i) * time.Minute)
		if d := r2.botAnswer(r2.msg("question"), res); len(d.Events) != 3 {
			t.Fatalf("turn %d (sentiment %v): %v", i, s, types(d.Events))
		}
	}
}

// TestStepStaleBotResult: an answer the conversation moved past records
// nothing.
func TestStepStaleBotResult(t *testing.T) {
	setup := func(t *testing.T) (*journeyRun, journey.Decision) {
		r := newRun(t, botPolicy())
		return r, r.msg("my card payment failed")
	}
	t.Run("older message than the last answered", func(t *testing.T) {
		r, first := setup(t)
		second := r.msg("hello?")
		r.botAnswer(second, good("Hi"))
		if d := r.botAnswer(first, good("Late")); len(d.Events) != 0 || len(d.Outbounds) != 0 {
			t.Errorf("stale answer recorded %v", types(d.Events))
		}
	})
	t.Run("repeated answer", func(t *testing.T) {
		r, first := setup(t)
		r.botAnswer(first, good("Hi"))
		if d := r.botAnswer(first, good("Hi")); len(d.Events) != 0 {
			t.Errorf("repeated answer recorded %v", types(d.Events))
		}
	})
	t.Run("another conversation", func(t *testing.T) {
		r, first := setup(t)
		res := good("Hi")
		res.Conversation, res.InReplyTo = "cv-9-c-42", first.Bot[0].InReplyTo
		if d := r.step(&res); len(d.Events) != 0 {
			t.Errorf("answer of another conversation recorded %v", types(d.Events))
		}
	})
	t.Run("handed over meanwhile", func(t *testing.T) {
		r, first := setup(t)
		r.msg("agent")
		if d := r.botAnswer(first, good("Hi")); len(d.Events) != 0 {
			t.Errorf("answer after hand-over recorded %v", types(d.Events))
		}
	})
	t.Run("closed meanwhile", func(t *testing.T) {
		r, first := setup(t)
		r.at(time.Hour)
		r.due(journey.Due{At: t0.Add(journey.ConversationIdleDefault), Kind: journey.DueConversationIdle, Ref: r.c.Conversation.ID})
		if r.c.Conversation.State != journey.StateClosed {
			t.Fatalf("not closed: %+v", r.c.Conversation)
		}
		if d := r.botAnswer(first, good("Hi")); len(d.Events) != 0 {
			t.Errorf("answer after close recorded %v", types(d.Events))
		}
	})
}

// TestStepHandoverSummary: the hand-over carries what the customer asked,
// the intent, the articles shown and how the customer felt.
func TestStepHandoverSummary(t *testing.T) {
	r := newRun(t, botPolicy())
	first := good("Try again")
	first.Intent, first.Articles, first.Sentiment = "card_declined", []string{"kb-card", "kb-limits"}, 0.3
	r.botAnswer(r.msg("my card payment failed"), first)
	r.at(time.Minute)
	second := good("Check your limits")
	second.Intent, second.Articles, second.Sentiment = "limits", []string{"kb-limits", "kb-fees"}, 0.1
	r.botAnswer(r.msg("it still fails"), second)
	r.at(2 * time.Minute)
	third := good("Hmm")
	third.Confidence, third.Intent, third.Articles, third.Sentiment = 0.2, "unknown", nil, 0.0
	d := r.botAnswer(r.msg("what now"), third)
	rd := routing(t, eventOf(t, d, journey.TypeRoutingDecided))
	s := rd.Summary
	if s == nil {
		t.Fatal("no summary")
	}
	if s.Intent != "unknown" || s.BotTurns != 3 || mustJSON(t, s.Articles) != `["kb-card","kb-limits","kb-fees"]` ||
		mustJSON(t, s.Sentiment) != "[0.3,0.1,0]" || s.Trend != "falling" {
		t.Errorf("summary %+v", s)
	}
	if s.Asked != "my card payment failed" {
		t.Errorf("summary asked %q, want the first message", s.Asked)
	}
}

// TestStepHandoverAtTheFirstMessageAsked: asking for a person at once still
// says what was asked.
func TestStepHandoverAtTheFirstMessageAsked(t *testing.T) {
	r := newRun(t, botPolicy())
	d := r.msg("my card was charged twice, I want a human")
	if rd := routing(t, eventOf(t, d, journey.TypeRoutingDecided)); rd.Summary == nil || rd.Summary.Asked != "my card was charged twice, I want a human" {
		t.Errorf("summary %+v", rd.Summary)
	}
}

func TestStepConversationInactivity(t *testing.T) {
	r := newRun(t, botPolicy())
	d := r.msg("my card payment failed")
	cv := r.c.Conversation.ID
	key := dueOf(t, d.DueAdd, journey.DueConversationIdle)
	r.at(10 * time.Minute)
	r.botAnswer(r.msg("hello?"), good("Hi")) // last activity at 10m
	// Due before the idle time: rescheduled from the last activity.
	r.at(30 * time.Minute)
	d = r.due(key)
	next := journey.Due{At: t0.Add(40 * time.Minute), Kind: journey.DueConversationIdle, Ref: cv}
	if len(d.Events) != 0 || !slices.Equal(d.DueAdd, []journey.Due{next}) || !slices.Equal(d.DueDone, []journey.Due{key}) {
		t.Fatalf("early due: %+v", d)
	}
	// Due of another conversation: discharged.
	other := journey.Due{At: t0.Add(40 * time.Minute), Kind: journey.DueConversationIdle, Ref: "cv-9-c-42"}
	r.at(41 * time.Minute)
	if d := r.due(other); len(d.Events) != 0 || len(d.DueAdd) != 0 {
		t.Errorf("due of another conversation: %+v", d)
	}
	// After the idle time: closed as inactive.
	d = r.due(next)
	wantTypes(t, d, journey.TypeConversationClosed)
	if data := dataOf(t, d.Events[0]); data["conversation"] != cv || data["reason"] != journey.ReasonInactive || d.Events[0].Actor != journey.ActorSystem {
		t.Errorf("closed %s", d.Events[0].Data)
	}
	if r.c.Conversation.State != journey.StateClosed {
		t.Fatalf("state %s", r.c.Conversation.State)
	}
	if d := r.due(next); len(d.Events) != 0 {
		t.Errorf("closed twice: %v", types(d.Events))
	}
	// The next message opens a new conversation that names the closed one.
	r.at(2 * time.Hour)
	d = r.msg("back again")
	opened := eventOf(t, d, journey.TypeConversationOpened)
	if data := dataOf(t, opened); data["previous"] != cv || data["state"] != journey.StateBot || data["conversation"] == cv {
		t.Errorf("opened %s", opened.Data)
	}
	if len(d.Bot) != 1 || r.c.Conversation.Previous != cv || len(d.Bot[0].History) != 0 {
		t.Errorf("new conversation %+v bot %+v", r.c.Conversation, d.Bot)
	}
}

func TestStepQueuedConversationDoesNotIdle(t *testing.T) {
	r := newRun(t, botPolicy())
	d := r.msg("agent please")
	key := dueOf(t, d.DueAdd, journey.DueConversationIdle)
	if r.c.Conversation.State != journey.StateQueued {
		t.Fatalf("state %s", r.c.Conversation.State)
	}
	r.at(5 * time.Hour)
	if d := r.due(key); len(d.Events) != 0 || len(d.DueAdd) != 0 || !slices.Equal(d.DueDone, []journey.Due{key}) {
		t.Errorf("queued conversation idled: %+v", d)
	}
	if r.c.Conversation.State != journey.StateQueued {
		t.Errorf("state %s", r.c.Conversation.State)
	}
}

// TestStepUnknownDueIsDischarged: work of a kind this version does not know.
func TestStepUnknownDueIsDischarged(t *testing.T) {
	r := newRun(t, botPolicy())
	r.msg("hi")
	due := journey.Due{At: t0, Kind: "offer.lease", Ref: "x"}
	if d := r.due(due); len(d.Events) != 0 || !slices.Equal(d.DueDone, []journey.Due{due}) || len(d.DueAdd) != 0 {
		t.Errorf("unknown due: %+v", d)
	}
}

// TestStepOneDropIsNotAFallingTrend: trend reads "each of the last three
// lower than the one before"; one drop after a single turn is not a trend
// and a mildly negative second turn should not hand over.
func TestStepOneDropIsNotAFallingTrend(t *testing.T) {
	r := newRun(t, botPolicy())
	first := good("answer")
	first.Sentiment = 0.2
	r.botAnswer(r.msg("question"), first)
	second := good("answer")
	second.Sentiment = -0.1
	r.at(time.Minute)
	d := r.botAnswer(r.msg("hmm"), second)
	if slices.Contains(types(d.Events), journey.TypeRoutingDecided) {
		t.Errorf("handed over after sentiments [0.2, -0.1]: %v", types(d.Events))
	}
}

// TestStepAIRepliedIntentAlways: ai.replied carries data.intent whether or
// not an intent matched ("unknown" when none did), on a reply that goes out
// and on one that hands over (PROTOCOL section 1).
func TestStepAIRepliedIntentAlways(t *testing.T) {
	for _, tc := range []struct {
		name, intent string
		confidence   float64
		want         string
	}{
		{"kb answer without intent", "", 0.9, journey.IntentUnknown},
		{"hand-over without intent", "", 0.1, journey.IntentUnknown},
		{"matched intent", "payment", 0.9, "payment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRun(t, botPolicy())
			res := good("See the article on card payments")
			res.Intent, res.Confidence = tc.intent, tc.confidence
			d := r.botAnswer(r.msg("my card payment failed"), res)
			data := dataOf(t, eventOf(t, d, journey.TypeAIReplied))
			if got, set := data["intent"]; !set || got != tc.want {
				t.Errorf("ai.replied data.intent = %v (set %v), want %q; data %v", got, set, tc.want, data)
			}
		})
	}
}
