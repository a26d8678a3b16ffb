package journey_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

var allStates = []string{
	journey.StateBot, journey.StateWorkflow, journey.StateQueued, journey.StateOffered,
	journey.StateAgent, journey.StateCallback, journey.StateClosed,
}

// TestCanMoveEveryPair pins the conversation state machine: every pair of
// states, allowed or not. A change to the machine changes this table.
func TestCanMoveEveryPair(t *testing.T) {
	allowed := map[string][]string{
		journey.StateBot:      {journey.StateWorkflow, journey.StateQueued, journey.StateClosed},
		journey.StateWorkflow: {journey.StateBot, journey.StateQueued, journey.StateClosed},
		journey.StateQueued:   {journey.StateOffered, journey.StateAgent, journey.StateCallback, journey.StateQueued, journey.StateClosed},
		journey.StateOffered:  {journey.StateAgent, journey.StateQueued, journey.StateCallback, journey.StateClosed},
		journey.StateAgent:    {journey.StateQueued, journey.StateClosed},
		journey.StateCallback: {journey.StateQueued, journey.StateOffered, journey.StateAgent, journey.StateClosed},
		journey.StateClosed:   {},
	}
	for _, from := range allStates {
		for _, to := range allStates {
			want := false
			for _, s := range allowed[from] {
				want = want || s == to
			}
			if got := journey.CanMove(from, to); got != want {
				t.Errorf("CanMove(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
	// Every open state may close; nothing leaves closed; unknown states move nowhere.
	for _, s := range allStates {
		if s != journey.StateClosed && !journey.CanMove(s, journey.StateClosed) {
			t.Errorf("%s cannot close", s)
		}
		if journey.CanMove(journey.StateClosed, s) {
			t.Errorf("closed moves to %s", s)
		}
	}
	if journey.CanMove("ringing", journey.StateClosed) || journey.CanMove(journey.StateBot, "ringing") || journey.CanMove("", "") {
		t.Error("an unknown state moves")
	}
}

// applyEvent applies a runtime event of the type with the data to c, one
// second after its last event, and returns it.
func applyEvent(t testing.TB, c *journey.Customer, typ, actor string, data any) journey.Event {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	at := t0
	if !c.LastAt.IsZero() {
		at = c.LastAt.Add(time.Second)
	}
	e := journey.Event{ID: fmt.Sprintf("rt-%d", c.Seq+1), Customer: c.ID, Type: typ, Data: raw,
		Seq: c.Seq + 1, Actor: actor, RecordedAt: at}
	c.Apply(&e)
	return e
}

// inState is a customer whose conversation cv-1-c-42 is in the state (a
// closed one was opened in the bot's state and closed).
func inState(t testing.TB, state string) *journey.Customer {
	t.Helper()
	c := journey.NewCustomer("c-42")
	open := state
	if state == journey.StateClosed {
		open = journey.StateBot
	}
	applyEvent(t, c, journey.TypeConversationOpened, journey.ActorSystem,
		map[string]any{"conversation": "cv-1-c-42", "state": open, "channel": "sms"})
	if state == journey.StateClosed {
		applyEvent(t, c, journey.TypeConversationClosed, journey.ActorSystem,
			map[string]any{"conversation": "cv-1-c-42", "reason": "inactive"})
	}
	if cv := c.Conversation; cv == nil || cv.State != state || cv.ID != "cv-1-c-42" {
		t.Fatalf("setup: conversation %+v, want cv-1-c-42 in %s", cv, state)
	}
	return c
}

func TestApplyMovesTheConversation(t *testing.T) {
	const (
		bot, workflow, queued, offered = journey.StateBot, journey.StateWorkflow, journey.StateQueued, journey.StateOffered
		agent, callback, closed        = journey.StateAgent, journey.StateCallback, journey.StateClosed
	)
	cv := func(kv ...any) map[string]any {
		m := map[string]any{"conversation": "cv-1-c-42"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	other := func(kv ...any) map[string]any {
		m := cv(kv...)
		m["conversation"] = "cv-9-c-42"
		return m
	}
	route := cv("queue", "billing", "priority", 7)
	tests := []struct {
		name       string
		from       string
		typ, actor string
		data       map[string]any
		want       string
		wantQueue  string // "" : unchanged (none)
		wantAgent  string
		bug        string
	}{
		// routing.decided: to the queue, or only its queue when deferred.
		{"routed from bot", bot, journey.TypeRoutingDecided, journey.ActorAI, route, queued, "billing", "", ""},
		{"routed from workflow", workflow, journey.TypeRoutingDecided, "rule:r", route, queued, "billing", "", ""},
		{"re-routed while queued", queued, journey.TypeRoutingDecided, "rule:r", route, queued, "billing", "", ""},
		{"routed while offered", offered, journey.TypeRoutingDecided, "rule:r", route, queued, "billing", "", ""},
		{"routed from agent", agent, journey.TypeRoutingDecided, "rule:r", route, queued, "billing", "", ""},
		{"routed from callback", callback, journey.TypeRoutingDecided, "rule:r", route, queued, "billing", "", ""},
		{"deferred keeps the bot", bot, journey.TypeRoutingDecided, "rule:r", cv("queue", "vip", "priority", 9, "deferred", true), bot, "vip", "", ""},
		{"routing of another conversation", bot, journey.TypeRoutingDecided, journey.ActorAI, other("queue", "billing"), bot, "", "", ""},
		{"routing of a closed conversation", closed, journey.TypeRoutingDecided, journey.ActorAI, route, closed, "", "", ""},
		// agent.offered
		{"offered from queued", queued, journey.TypeAgentOffered, journey.ActorSystem, cv("agent", "alice"), offered, "", "", ""},
		{"offered from callback", callback, journey.TypeAgentOffered, journey.ActorSystem, cv("agent", "alice"), offered, "", "", ""},
		{"no offer while the bot holds it", bot, journey.TypeAgentOffered, journey.ActorSystem, cv("agent", "alice"), bot, "", "", ""},
		{"no offer while an agent holds it", agent, journey.TypeAgentOffered, journey.ActorSystem, cv("agent", "bob"), agent, "", "", ""},
		{"no offer of a closed conversation", closed, journey.TypeAgentOffered, journey.ActorSystem, cv("agent", "alice"), closed, "", "", ""},
		{"offer of another conversation", queued, journey.TypeAgentOffered, journey.ActorSystem, other("agent", "alice"), queued, "", "",
			"conversation.go:223: agent.* and journey.callback_* move the open conversation whatever their data.conversation"},
		// agent.assigned
		{"assigned from offered", offered, journey.TypeAgentAssigned, "agent:alice", cv(), agent, "", "alice", ""},
		{"assigned from queued (data.agent)", queued, journey.TypeAgentAssigned, journey.ActorSystem, cv("agent", "bob"), agent, "", "bob", ""},
		{"assigned from callback", callback, journey.TypeAgentAssigned, "agent:alice", cv(), agent, "", "alice", ""},
		{"no assignment while the bot holds it", bot, journey.TypeAgentAssigned, "agent:alice", cv(), bot, "", "",
			"conversation.go:228: agent.assigned sets Agent and LastAgent even when the move to agent is refused"},
		{"no assignment of a closed conversation", closed, journey.TypeAgentAssigned, "agent:alice", cv(), closed, "", "", ""},
		{"assignment of another conversation", offered, journey.TypeAgentAssigned, "agent:alice", other(), offered, "", "",
			"conversation.go:225: agent.assigned of another conversation assigns the open one"},
		// agent.transferred
		{"transferred from agent", agent, journey.TypeAgentTransferred, "agent:alice", cv("queue", "retention"), queued, "retention", "", ""},
		{"transferred while offered", offered, journey.TypeAgentTransferred, "agent:alice", cv(), queued, "", "", ""},
		{"no transfer of a closed conversation", closed, journey.TypeAgentTransferred, "agent:alice", cv(), closed, "", "", ""},
		{"transfer of another conversation", agent, journey.TypeAgentTransferred, "agent:alice", other(), agent, "", "",
			"conversation.go:231: agent.transferred of another conversation moves the open one"},
		// agent.wrapped_up
		{"wrapped up from agent", agent, journey.TypeAgentWrappedUp, "agent:alice", cv("disposition", "resolved"), closed, "", "", ""},
		{"wrap-up of another conversation", bot, journey.TypeAgentWrappedUp, "agent:alice", other("disposition", "resolved"), bot, "", "",
			"conversation.go:235: a late agent.wrapped_up of an old conversation closes the customer's new one"},
		// journey.callback_offered / journey.callback_scheduled
		{"callback offered from queued", queued, journey.TypeCallbackOffered, journey.ActorSystem, cv(), callback, "", "", ""},
		{"callback offered while offered", offered, journey.TypeCallbackOffered, journey.ActorSystem, cv(), callback, "", "", ""},
		{"no callback offer while an agent holds it", agent, journey.TypeCallbackOffered, journey.ActorSystem, cv(), agent, "", "", ""},
		{"no callback offer while the bot holds it", bot, journey.TypeCallbackOffered, journey.ActorSystem, cv(), bot, "", "", ""},
		{"callback scheduled back to the queue", callback, journey.TypeCallbackScheduled, journey.ActorSystem, cv(), queued, "", "", ""},
		{"no callback scheduled once closed", closed, journey.TypeCallbackScheduled, journey.ActorSystem, cv(), closed, "", "", ""},
		{"callback scheduled of another conversation", callback, journey.TypeCallbackScheduled, journey.ActorSystem, other(), callback, "", "",
			"conversation.go:231: journey.callback_scheduled of another conversation moves the open one"},
		// journey.conversation_closed
		{"closed from bot", bot, journey.TypeConversationClosed, journey.ActorSystem, cv("reason", "inactive"), closed, "", "", ""},
		{"closed from queued", queued, journey.TypeConversationClosed, journey.ActorSystem, cv("reason", "abandoned"), closed, "", "", ""},
		{"closed twice", closed, journey.TypeConversationClosed, journey.ActorSystem, cv("reason", "inactive"), closed, "", "", ""},
		{"close of another conversation", bot, journey.TypeConversationClosed, journey.ActorSystem, other("reason", "inactive"), bot, "", "",
			"conversation.go:196: journey.conversation_closed of another conversation closes the open one"},
		// Events that do not move a conversation.
		{"a message does not move it", queued, journey.TypeMessageSent, "agent:alice", map[string]any{"outbound": "out-3-c-42"}, queued, "", "", ""},
		{"a tag does not move it", bot, journey.TypeCustomerTagged, "rule:r", map[string]any{"tag": "vip"}, bot, "", "", ""},
		{"undecodable data changes nothing", bot, journey.TypeRoutingDecided, journey.ActorAI, nil, bot, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := inState(t, tt.from)
			before := *c.Conversation
			var data any = tt.data
			if tt.data == nil {
				data = "not an object"
			}
			e := applyEvent(t, c, tt.typ, tt.actor, data)
			cv := c.Conversation
			if cv.ID != "cv-1-c-42" || cv.State != tt.want {
				t.Fatalf("%s in %s: conversation %s in %s, want cv-1-c-42 in %s", tt.typ, tt.from, cv.ID, cv.State, tt.want)
			}
			wantSince := before.Since
			if tt.want != tt.from {
				wantSince = e.RecordedAt
			}
			if !cv.Since.Equal(wantSince) {
				t.Errorf("since %v, want %v", cv.Since, wantSince)
			}
			if tt.wantQueue != "" && cv.Queue != tt.wantQueue {
				t.Errorf("queue %q, want %q", cv.Queue, tt.wantQueue)
			}
			if tt.wantQueue == "" && cv.Queue != before.Queue {
				t.Errorf("queue changed to %q", cv.Queue)
			}
			if cv.Agent != tt.wantAgent || (tt.wantAgent != "" && c.LastAgent != tt.wantAgent) || (tt.wantAgent == "" && c.LastAgent != "") {
				t.Errorf("agent %q last agent %q, want %q", cv.Agent, c.LastAgent, tt.wantAgent)
			}
		})
	}
}

func TestApplyOpensAConversation(t *testing.T) {
	c := inState(t, journey.StateClosed)
	e := applyEvent(t, c, journey.TypeConversationOpened, journey.ActorSystem, map[string]any{
		"conversation": "cv-3-c-42", "state": "queued", "channel": "whatsapp", "previous": "cv-1-c-42", "queue": "vip", "priority": 100})
	cv := c.Conversation
	want := journey.Conversation{ID: "cv-3-c-42", State: "queued", Channel: "whatsapp", Queue: "vip", Priority: 100,
		Previous: "cv-1-c-42", Since: e.RecordedAt, Opened: e.RecordedAt, LastActivity: e.RecordedAt}
	if g, w := mustJSON(t, cv), mustJSON(t, want); g != w {
		t.Errorf("opened\n got %s\nwant %s", g, w)
	}
}

// TestApplyAIRepliedKeepsTheSummary: the bot's turns feed the hand-over
// summary, bounded, and only for their own conversation.
func TestApplyAIRepliedKeepsTheSummary(t *testing.T) {
	c := inState(t, journey.StateBot)
	for i := range journey.ConversationArticlesMax + 2 {
		applyEvent(t, c, journey.TypeAIReplied, journey.ActorAI, map[string]any{
			"conversation": "cv-1-c-42", "in_reply_to": 10 + i, "intent": fmt.Sprintf("i%d", i),
			"confidence": 0.9, "sentiment": float64(i) / 10, "articles": []string{fmt.Sprintf("kb-%d", i), "kb-0"}})
	}
	applyEvent(t, c, journey.TypeAIReplied, journey.ActorAI, map[string]any{
		"conversation": "cv-9-c-42", "in_reply_to": 99, "intent": "other", "sentiment": -1, "articles": []string{"kb-x"}})
	cv := c.Conversation
	n := journey.ConversationArticlesMax + 2
	if cv.BotTurns != n || cv.Answered != uint64(10+n-1) {
		t.Errorf("bot turns %d answered %d, want %d and %d", cv.BotTurns, cv.Answered, n, 10+n-1)
	}
	if len(cv.Intents) != journey.ConversationIntentsMax || cv.Intents[len(cv.Intents)-1] != fmt.Sprintf("i%d", n-1) {
		t.Errorf("intents %v", cv.Intents)
	}
	if len(cv.Articles) != journey.ConversationArticlesMax || cv.Articles[len(cv.Articles)-1] != fmt.Sprintf("kb-%d", n-1) {
		t.Errorf("articles %v", cv.Articles)
	}
	if len(cv.Sentiments) != journey.SentimentTrendMax || cv.Sentiments[len(cv.Sentiments)-1] != float64(n-1)/10 {
		t.Errorf("sentiments %v", cv.Sentiments)
	}
}

// TestApplyMessagesTouchTheConversation: messages keep it alive, move its
// channel with the customer and remember what the customer asked first.
func TestApplyMessagesTouchTheConversation(t *testing.T) {
	c := inState(t, journey.StateBot)
	in := journey.Event{ID: "m-1", Customer: "c-42", Type: journey.TypeMessageReceived, Channel: "whatsapp",
		Text: "my card payment failed", Seq: c.Seq + 1, Actor: journey.ActorCustomer, RecordedAt: t0.Add(time.Minute)}
	c.Apply(&in)
	cv := c.Conversation
	if cv.Channel != "whatsapp" || cv.Asked != "my card payment failed" || !cv.LastActivity.Equal(in.RecordedAt) {
		t.Errorf("after a message: channel %q asked %q last activity %v", cv.Channel, cv.Asked, cv.LastActivity)
	}
	in2 := in
	in2.ID, in2.Seq, in2.Text, in2.Channel, in2.RecordedAt = "m-2", c.Seq+1, "and again", "", t0.Add(2*time.Minute)
	c.Apply(&in2)
	if cv.Channel != "whatsapp" || cv.Asked != "my card payment failed" || !cv.LastActivity.Equal(in2.RecordedAt) {
		t.Errorf("after a second message: channel %q asked %q last activity %v", cv.Channel, cv.Asked, cv.LastActivity)
	}
	applyEvent(t, c, journey.TypeConversationClosed, journey.ActorSystem, map[string]any{"conversation": cv.ID, "reason": "inactive"})
	closedAt := cv.LastActivity
	in3 := in
	in3.ID, in3.Seq, in3.Channel, in3.RecordedAt = "m-3", c.Seq+1, "sms", t0.Add(time.Hour)
	c.Apply(&in3)
	if cv.Channel != "whatsapp" || !cv.LastActivity.Equal(closedAt) {
		t.Errorf("a closed conversation was touched: channel %q last activity %v", cv.Channel, cv.LastActivity)
	}
}

// A transferred conversation is not offered back to the agent who handed
// it over: that agent is excluded (and so not its sticky last agent).
func TestATransferExcludesTheAgentWhoHandedItOver(t *testing.T) {
	for _, data := range []map[string]any{
		{"conversation": "cv-1-c-42", "agent": "alice", "queue": "retention"},
		{"conversation": "cv-1-c-42", "agent": "alice", "to_agent": "bob"},
	} {
		c := inState(t, journey.StateAgent)
		c.Conversation.Excluded = []string{"zed"}
		applyEvent(t, c, journey.TypeAgentTransferred, "agent:alice", data)
		if cv := c.Conversation; cv.State != journey.StateQueued || !reflect.DeepEqual(cv.Excluded, []string{"alice"}) {
			t.Fatalf("after %v: %s excluding %v, want queued excluding alice", data, cv.State, cv.Excluded)
		}
	}
}
