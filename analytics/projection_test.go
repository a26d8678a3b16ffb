package analytics

import (
	"reflect"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// Each journey below is one customer's stored events; the table says what
// the answer counts for it.
func TestOutcomesFollowTheDefinitions(t *testing.T) {
	cases := []struct {
		name     string
		events   func(c *customer) []journey.Event
		outcomes Outcomes
		escal    map[string]uint64
		path     []string
		resolved uint64
		dropOff  string
		ttrMs    int64 // 0: none
	}{{
		name: "the bot answers and the conversation closes: contained",
		events: func(c *customer) []journey.Event {
			return []journey.Event{c.message(t0, "web"), c.open(t0, "bot", "web"), c.reply(t0.Add(2 * time.Second)),
				c.message(t0.Add(min_(1)), "web"), c.reply(t0.Add(min_(2))), c.close(t0.Add(min_(32)))}
		},
		outcomes: Outcomes{Contained: 1}, escal: map[string]uint64{}, path: []string{"web:bot"}, resolved: 1,
		ttrMs: 120_000, // to the last message, not to the inactivity close
	}, {
		name: "handed over on request, answered and wrapped up resolved: resolved by an agent",
		events: func(c *customer) []journey.Event {
			return []journey.Event{c.message(t0, "sms"), c.open(t0, "bot", "sms"), c.route(t0.Add(time.Second), "customer_asked", "", "billing"),
				c.agent(t0.Add(min_(1)), journey.TypeAgentOffered, nil), c.agent(t0.Add(min_(2)), journey.TypeAgentAssigned, nil),
				c.message(t0.Add(min_(3)), "sms"), c.wrapup(t0.Add(min_(10)), "resolved")}
		},
		outcomes: Outcomes{ResolvedByAgent: 1}, escal: map[string]uint64{"customer_asked": 1},
		path: []string{"sms:bot", "sms:queue", "sms:agent"}, resolved: 1, ttrMs: 600_000,
	}, {
		name: "no customer message after the hand-over, wrapped up otherwise: abandoned",
		events: func(c *customer) []journey.Event {
			return []journey.Event{c.message(t0, "chat"), c.open(t0, "bot", "chat"), c.route(t0.Add(time.Second), "low_confidence", "", "billing"),
				c.agent(t0.Add(min_(2)), journey.TypeAgentAssigned, nil), c.wrapup(t0.Add(min_(10)), "no_answer")}
		},
		outcomes: Outcomes{Abandoned: 1}, escal: map[string]uint64{"low_confidence": 1},
		path: []string{"chat:bot", "chat:queue", "chat:agent"}, dropOff: "chat:agent",
	}, {
		name: "closed while queued: abandoned where it waited",
		events: func(c *customer) []journey.Event {
			return []journey.Event{c.message(t0, "web"), c.open(t0, "bot", "web"), c.route(t0.Add(time.Second), "frustration", "", "billing"),
				c.message(t0.Add(min_(1)), "web"), c.close(t0.Add(min_(40)))}
		},
		outcomes: Outcomes{Abandoned: 1}, escal: map[string]uint64{"frustration": 1},
		path: []string{"web:bot", "web:queue"}, dropOff: "web:queue",
	}, {
		name: "the customer wrote after the hand-over, wrapped up follow_up: unresolved",
		events: func(c *customer) []journey.Event {
			return []journey.Event{c.message(t0, "web"), c.open(t0, "bot", "web"), c.route(t0.Add(time.Second), "", "vip-fast-track", "vip"),
				c.agent(t0.Add(min_(2)), journey.TypeAgentAssigned, nil), c.message(t0.Add(min_(3)), "voice"), c.wrapup(t0.Add(min_(10)), "follow_up")}
		},
		outcomes: Outcomes{Unresolved: 1}, escal: map[string]uint64{"rule": 1},
		path: []string{"web:bot", "web:queue", "web:agent", "voice:agent"},
	}, {
		name: "a rule's deferred route is no hand-over; the bot's later one is",
		events: func(c *customer) []journey.Event {
			opening := []journey.Event{c.message(t0, "web"), c.open(t0, "bot", "web")}
			deferred := c.event(t0.Add(time.Second), journey.TypeRoutingDecided, "rule:r", "", map[string]any{"conversation": c.conv, "rule": "r", "queue": "vip", "deferred": true})
			return append(opening, deferred, c.route(t0.Add(min_(1)), "bot_failed", "", "vip"))
		},
		outcomes: Outcomes{Open: 1}, escal: map[string]uint64{"bot_failed": 1},
	}, {
		name: "a workflow that hands back to the bot, then closes: contained, with its steps",
		events: func(c *customer) []journey.Event {
			wf := func(at time.Time, result string) journey.Event {
				return c.event(at, journey.TypeWorkflowStep, "workflow:verify", "", map[string]any{"conversation": c.conv, "workflow": "verify", "result": result})
			}
			return []journey.Event{c.message(t0, "web"), c.open(t0, "bot", "web"), wf(t0.Add(time.Second), "started"), wf(t0.Add(2*time.Second), "bot"),
				c.reply(t0.Add(3 * time.Second)), c.close(t0.Add(min_(31)))}
		},
		outcomes: Outcomes{Contained: 1}, escal: map[string]uint64{}, path: []string{"web:bot", "web:workflow", "web:bot"}, resolved: 1, ttrMs: 3000,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New()
			feed(t, p, tc.events(&customer{id: "c-1"})...)
			a := answer(p, t0.Add(time.Hour))
			if a.Conversations != 1 || a.Outcomes != tc.outcomes {
				t.Fatalf("conversations %d, outcomes %+v; want 1, %+v", a.Conversations, a.Outcomes, tc.outcomes)
			}
			if !reflect.DeepEqual(a.Escalations, tc.escal) {
				t.Fatalf("escalations %v, want %v", a.Escalations, tc.escal)
			}
			var paths []Path
			if tc.path != nil {
				paths = []Path{{Steps: tc.path, Conversations: 1, Resolved: tc.resolved}}
			}
			if len(a.Paths) != len(paths) || (len(paths) > 0 && !reflect.DeepEqual(a.Paths, paths)) {
				t.Fatalf("paths %+v, want %+v", a.Paths, paths)
			}
			var drops []DropOff
			if tc.dropOff != "" {
				drops = []DropOff{{After: tc.dropOff, Conversations: 1}}
			}
			if len(a.DropOffs) != len(drops) || (len(drops) > 0 && !reflect.DeepEqual(a.DropOffs, drops)) {
				t.Fatalf("drop-offs %+v, want %+v", a.DropOffs, drops)
			}
			if tc.ttrMs == 0 && a.TimeToResolutionMs.P50 != 0 {
				t.Fatalf("time to resolution %+v for an unresolved conversation", a.TimeToResolutionMs)
			}
			if tc.ttrMs != 0 && !within(a.TimeToResolutionMs.P50, tc.ttrMs) {
				t.Fatalf("time to resolution %+v, want about %d ms", a.TimeToResolutionMs, tc.ttrMs)
			}
		})
	}
}

// within: a sketch's value is within 1% of the true one.
func within(got, want int64) bool {
	d := float64(got - want)
	return d <= 0.01*float64(want)+1 && -d <= 0.01*float64(want)+1
}

func TestRatesOverTheWindow(t *testing.T) {
	p := New()
	for i, kind := range []string{"contained", "contained", "agent", "abandoned", "open"} {
		c := &customer{id: "c-" + string(rune('a'+i))}
		at := t0.Add(time.Duration(i) * time.Minute)
		feed(t, p, c.message(at, "web"), c.open(at, "bot", "web"))
		switch kind {
		case "contained":
			feed(t, p, c.close(at.Add(min_(30))))
		case "agent":
			feed(t, p, c.route(at, "customer_asked", "", "billing"), c.agent(at.Add(min_(1)), journey.TypeAgentAssigned, nil), c.wrapup(at.Add(min_(5)), "resolved"))
		case "abandoned":
			feed(t, p, c.route(at, "customer_asked", "", "billing"), c.agent(at.Add(min_(1)), journey.TypeAgentAssigned, nil), c.wrapup(at.Add(min_(5)), "gone"))
		}
	}
	a := answer(p, t0.Add(10*24*time.Hour))
	want := Outcomes{Contained: 2, ResolvedByAgent: 1, Abandoned: 1, Open: 1}
	if a.Conversations != 5 || a.Outcomes != want || a.ContainmentRate != 0.4 || a.FCRRate != 1 || a.FCRProvisional || a.RepeatContact7dRate != 0 {
		t.Fatalf("answer %+v", a)
	}
	if a.Escalations["customer_asked"] != 2 {
		t.Fatalf("escalations %v", a.Escalations)
	}
}

// A resolved conversation is first-contact resolved unless its customer
// opens another within 7 days of its end; the second then is a repeat
// contact; within 24 h it continues the first one's path.
func TestFirstContactResolutionAndRepeatContactWithinSevenDays(t *testing.T) {
	cases := []struct {
		name        string
		gap         time.Duration // from the first conversation's end to the next one's opening
		fcr, repeat float64
		secondPath  []string
	}{
		{name: "back within an hour", gap: time.Hour, fcr: 0, repeat: 0.5, secondPath: []string{"web:bot", "sms:bot"}},
		{name: "back after two days", gap: 48 * time.Hour, fcr: 0, repeat: 0.5, secondPath: []string{"sms:bot"}},
		{name: "back after six days 23 hours", gap: 7*24*time.Hour - time.Hour, fcr: 0, repeat: 0.5, secondPath: []string{"sms:bot"}},
		{name: "back after eight days", gap: 8 * 24 * time.Hour, fcr: 1, repeat: 0, secondPath: []string{"sms:bot"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New()
			c := &customer{id: "c-fcr"}
			end := t0.Add(min_(30))
			feed(t, p, c.message(t0, "web"), c.open(t0, "bot", "web"), c.close(end))
			next := end.Add(tc.gap)
			feed(t, p, c.message(next, "sms"), c.open(next, "bot", "sms"), c.close(next.Add(min_(30))))
			since, until := t0.Add(-time.Hour), next.Add(time.Hour)
			a := Merge(p.Part(since, until, next.Add(30*24*time.Hour), nil)).Answer(since, until)
			// Both resolved; the second is not followed by another.
			if a.Conversations != 2 || a.FCRRate != (tc.fcr+1)/2 {
				t.Fatalf("answer %+v", a)
			}
			// The first conversation alone: its FCR.
			first := Merge(p.Part(t0, t0.Add(time.Hour), next.Add(30*24*time.Hour), nil)).Answer(t0, t0.Add(time.Hour))
			if first.Conversations != 1 || first.FCRRate != tc.fcr {
				t.Fatalf("first conversation: %d conversations, fcr %v; want 1, %v", first.Conversations, first.FCRRate, tc.fcr)
			}
			if a.RepeatContact7dRate != tc.repeat {
				t.Fatalf("repeat contact %v, want %v", a.RepeatContact7dRate, tc.repeat)
			}
			found := false
			for _, path := range a.Paths {
				found = found || reflect.DeepEqual(path.Steps, tc.secondPath)
			}
			if !found {
				t.Fatalf("paths %+v lack %v", a.Paths, tc.secondPath)
			}
		})
	}
}

// FCR of the last 7 days is provisional: a window that ends within them says so.
func TestFCRIsProvisionalWithinTheLastSevenDays(t *testing.T) {
	p := New()
	c := &customer{id: "c-p"}
	feed(t, p, c.message(t0, "web"), c.open(t0, "bot", "web"), c.close(t0.Add(min_(30))))
	if a := answer(p, t0.Add(6*24*time.Hour)); !a.FCRProvisional || a.FCRRate != 1 {
		t.Fatalf("six days later: %+v", a)
	}
	if a := answer(p, t0.Add(8*24*time.Hour)); a.FCRProvisional {
		t.Fatalf("eight days later the window's FCR is final: %+v", a)
	}
}

// A conversation that opened before a restart and ends after it is
// counted once, in the hour it opened; events the catch-up reads again are
// not counted twice.
func TestAConversationSpansARestart(t *testing.T) {
	p := New()
	c := &customer{id: "c-r"}
	before := []journey.Event{c.message(t0, "sms"), c.open(t0, "bot", "sms"), c.route(t0.Add(time.Second), "customer_asked", "", "billing")}
	feed(t, p, before...)
	saved, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Decode(saved)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Position().Equal(t0.Add(time.Second)) {
		t.Fatalf("position %v", q.Position())
	}
	for i := range before { // the catch-up reads them again
		if q.Apply(&before[i]) {
			t.Fatalf("event seq %d applied twice", before[i].Seq)
		}
	}
	later := t0.Add(2 * time.Hour)
	feed(t, q, c.agent(later, journey.TypeAgentAssigned, nil), c.message(later.Add(time.Minute), "sms"), c.wrapup(later.Add(min_(5)), "resolved"))
	a := answer(q, later.Add(time.Hour))
	if a.Conversations != 1 || a.Outcomes != (Outcomes{ResolvedByAgent: 1}) || a.Escalations["customer_asked"] != 1 {
		t.Fatalf("after the restart: %+v", a)
	}
	if !within(a.TimeToResolutionMs.P50, (2*time.Hour + 5*time.Minute).Milliseconds()) {
		t.Fatalf("time to resolution %+v", a.TimeToResolutionMs)
	}
	if hourOnly := Merge(q.Part(t0, t0.Add(time.Hour), later, nil)).Answer(t0, t0.Add(time.Hour)); hourOnly.Conversations != 1 {
		t.Fatalf("the conversation counts in the hour it opened: %+v", hourOnly)
	}
}

func TestStuckConversationsWaitPastTheirQueuesThreshold(t *testing.T) {
	p := New()
	for i, queue := range []string{"billing", "billing", "vip", "vip"} {
		c := &customer{id: "c-s" + string(rune('0'+i))}
		at := t0.Add(time.Duration(i) * time.Minute)
		feed(t, p, c.message(at, "web"), c.open(at, "bot", "web"), c.route(at, "customer_asked", "", queue))
		if i == 3 {
			feed(t, p, c.agent(at.Add(time.Second), journey.TypeAgentOffered, nil))
		}
	}
	callbackAfter := func(q string) time.Duration {
		if q == "vip" {
			return 30 * time.Second
		}
		return 0 // the default 5 minutes
	}
	now := t0.Add(min_(6))
	since, until := t0, t0.Add(time.Hour)
	a := Merge(p.Part(since, until, now, callbackAfter)).Answer(since, until)
	want := []StuckGroup{
		{State: "queued", Queue: "billing", Conversations: 1, LongestMs: min_(6).Milliseconds()},
		{State: "queued", Queue: "vip", Conversations: 1, LongestMs: min_(4).Milliseconds()},
		{State: "offered", Queue: "vip", Conversations: 1, LongestMs: min_(3).Milliseconds()},
	}
	if !reflect.DeepEqual(a.Stuck, want) {
		t.Fatalf("stuck %+v, want %+v", a.Stuck, want)
	}
}

func TestOffersSentAndAccepted(t *testing.T) {
	p := New()
	for i := range 3 {
		c := &customer{id: "c-o" + string(rune('0'+i))}
		feed(t, p, c.event(t0, journey.TypeProactiveSent, "rule:nba", "sms", map[string]any{"offer": "gold-upgrade"}))
		if i == 0 {
			feed(t, p, c.event(t0.Add(time.Minute), journey.TypeOfferAccepted, journey.ActorCustomer, "", map[string]any{"offer": "gold-upgrade"}))
		}
	}
	c := &customer{id: "c-x"} // an offer never sent here is not counted
	feed(t, p, c.event(t0, journey.TypeOfferAccepted, journey.ActorCustomer, "", map[string]any{"offer": "made-up"}))
	a := answer(p, t0.Add(time.Hour))
	if want := []OfferFigures{{Offer: "gold-upgrade", Sent: 3, Accepted: 1}}; !reflect.DeepEqual(a.Offers, want) {
		t.Fatalf("offers %+v, want %+v", a.Offers, want)
	}
}

// Partitions compute their parts; Merge adds them, wherever computed.
func TestPartsOfPartitionsMerge(t *testing.T) {
	parts := make([]Part, 3)
	for i := range parts {
		p := New()
		for j := range i + 1 {
			c := &customer{id: "c-m" + string(rune('0'+i)) + string(rune('0'+j))}
			feed(t, p, c.message(t0, "web"), c.open(t0, "bot", "web"), c.close(t0.Add(min_(30))))
		}
		parts[i] = p.Part(t0, t0.Add(time.Hour), t0.Add(time.Hour), nil)
	}
	a := Merge(parts...).Answer(t0, t0.Add(time.Hour))
	if a.Partitions != 3 || a.Conversations != 6 || a.Outcomes.Contained != 6 || len(a.Paths) != 1 || a.Paths[0].Conversations != 6 {
		t.Fatalf("merged %+v", a)
	}
}

func TestDuplicatesAreIgnored(t *testing.T) {
	p := New()
	c := &customer{id: "c-d"}
	events := []journey.Event{c.message(t0, "web"), c.open(t0, "bot", "web"), c.close(t0.Add(min_(30)))}
	feed(t, p, events...)
	for i := range events {
		if p.Apply(&events[i]) {
			t.Fatalf("seq %d applied again", events[i].Seq)
		}
	}
	if a := answer(p, t0.Add(time.Hour)); a.Conversations != 1 || a.Outcomes.Contained != 1 {
		t.Fatalf("answer %+v", a)
	}
}

// offerOf skips decoding only data that cannot name an offer, and finds
// what encoding/json finds in every other.
func TestOfferOfFastPath(t *testing.T) {
	for data, want := range map[string]string{
		`{"text":"hi","to":{"phone":"+1"}}`: "",
		`{"offer":"gold"}`:                  "gold",
		`{"OFFER":"gold"}`:                  "gold",
		`{"Offer":"gold"}`:                  "gold",
		`{"\u006fffer":"gold"}`:             "gold",
		`{"offers":"gold"}`:                 "",
		`{"callback_offer":true}`:           "",
		`{"x":1, "Offer" : "gold"}`:         "gold",
		``:                                  "",
	} {
		if got := offerOf(&journey.Event{Data: []byte(data)}); got != want {
			t.Errorf("offerOf(%s) = %q, want %q", data, got, want)
		}
	}
	// A broadcast's message names its callback offer, not an offer: no
	// decoding (it was 4% of a broadcast's CPU).
	if mayNameOffer([]byte(`{"broadcast":"bc-1","callback_offer":true,"outbound":"c-1/2"}`)) {
		t.Error(`mayNameOffer is true of "callback_offer"`)
	}
}
