package e2e

// Routing seen from agents' desks (PROTOCOL section 4): offers are leases
// that lapse or are declined and go to the next agent, returning customers
// go to their last agent, callbacks, transfers that keep the story.

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// tokBob is the desk token of agent bob (deskServer configures it).
const tokBob = "bob"

// deskSections is the journey of journeySections with agents alice
// (capacity aliceCap) and bob (capacity 1), and the general queue (where
// the bot hands over) configured by generalOpts: YAML flow-map entries such
// as "offer_timeout: 1s".
func deskSections(t *testing.T, aliceCap int, generalOpts string) string {
	t.Helper()
	general := "{name: general}"
	if generalOpts != "" {
		general = "{name: general, " + generalOpts + "}"
	}
	j := journeySections(t, "1h")
	if !strings.Contains(j, "  - {name: general}\n") {
		t.Fatal("journeySections has no general queue to configure")
	}
	j = strings.Replace(j, "{name: general}", general, 1)
	return j + "agents:\n" +
		"  - {id: alice, skills: [billing], capacity: " + strconv.Itoa(aliceCap) + "}\n" +
		"  - {id: bob, skills: [billing], capacity: 1}\n"
}

// deskServer starts a server with deskSections and bob's token.
func deskServer(t *testing.T, aliceCap int, generalOpts string) *server {
	t.Helper()
	return startServer(t, serverOptions{
		sections: deskSections(t, aliceCap, generalOpts),
		tokens:   []string{"{token: bob, role: agent, agent: bob}"},
	})
}

// available dials an agent's desk and makes it available.
func available(t *testing.T, s *server, token string) *desk {
	t.Helper()
	d := dialDesk(t, s, token)
	d.do(map[string]any{"type": "presence", "status": "available"})
	return d
}

// askForAPerson sends the customer's request for a person on the chat
// channel and waits for the bot's hand-over message.
func askForAPerson(t *testing.T, ws *wsClient, customer, id string) {
	t.Helper()
	ws.sendEvent(event{ID: id, Customer: customer, Channel: "chat", Text: "I want to talk to a person"})
	ws.expect("outbound")
}

// expectOffer waits for the desk's next offer and checks its customer.
func (d *desk) expectOffer(customer string) map[string]any {
	d.t.Helper()
	o := d.expect("offer")
	if o["customer"] != customer {
		d.t.Fatalf("offer %v, want one for %s", o, customer)
	}
	return o
}

// quiet fails if the desk gets a frame of type typ within d.
func (d *desk) quiet(typ string, within time.Duration) {
	d.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-d.frames:
			if !ok {
				d.t.Fatal("desk closed")
			}
			if f["type"] == typ {
				d.t.Fatalf("unexpected %s frame %v", typ, f)
			}
		case <-deadline:
			return
		}
	}
}

// conversationState reads the customer's conversation as a supervisor.
func (s *server) conversation(customer string) map[string]any {
	s.t.Helper()
	var ctx struct {
		Conversation map[string]any `json:"conversation"`
	}
	s.call("GET", customerPath(customer), tokSupervisor, nil, nil).wantStatus(s.t, 200).decode(s.t, &ctx)
	return ctx.Conversation
}

func TestAnUnansweredOfferIsRevokedAndGoesToTheNextAgent(t *testing.T) {
	s := deskServer(t, 1, "offer_timeout: 1s")
	alice := available(t, s, tokAgent)
	bob := available(t, s, tokBob) // idle for less time than alice
	ws := helloWS(t, s, "chat")
	askForAPerson(t, ws, "lapse-1", "l-1")
	offer := alice.expectOffer("lapse-1")
	conv := offer["conversation"]
	revoked := alice.expect("revoked")
	if revoked["conversation"] != conv || revoked["customer"] != "lapse-1" || revoked["reason"] != "timeout" {
		t.Fatalf("revoked %v after offer %v", revoked, offer)
	}
	if o := bob.expectOffer("lapse-1"); o["conversation"] != conv {
		t.Fatalf("bob's offer %v, alice's was %v", o, offer)
	}
	if e := alice.doErr(map[string]any{"type": "accept", "conversation": conv}); e["code"] != "conflict" {
		t.Fatalf("accepting a lapsed offer answered %v", e)
	}
	bob.do(map[string]any{"type": "accept", "conversation": conv})
	if cv := s.conversation("lapse-1"); cv["state"] != "agent" || cv["agent"] != "bob" {
		t.Fatalf("conversation %v", cv)
	}
	revokedEvents := eventsOf(s.timeline("lapse-1", 100), "routing.revoked")
	if len(revokedEvents) != 1 || dataOf(t, revokedEvents[0])["reason"] != "timeout" || dataOf(t, revokedEvents[0])["agent"] != "alice" {
		t.Fatalf("routing.revoked %+v", revokedEvents)
	}
}

func TestADeclineRevokesAtOnceAndTheOtherAgentGetsTheOffer(t *testing.T) {
	s := deskServer(t, 1, "offer_timeout: 1m")
	alice := available(t, s, tokAgent)
	bob := available(t, s, tokBob)
	ws := helloWS(t, s, "chat")
	askForAPerson(t, ws, "decline-1", "d-1")
	conv := alice.expectOffer("decline-1")["conversation"]
	start := time.Now()
	frames := alice.do(map[string]any{"type": "decline", "conversation": conv})
	var revoked map[string]any
	for _, f := range frames {
		if f["type"] == "revoked" {
			revoked = f
		}
	}
	if revoked == nil {
		revoked = alice.expect("revoked")
	}
	if revoked["reason"] != "declined" || revoked["conversation"] != conv || revoked["customer"] != "decline-1" {
		t.Fatalf("revoked %v", revoked)
	}
	if o := bob.expectOffer("decline-1"); o["conversation"] != conv {
		t.Fatalf("bob's offer %v", o)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("bob's offer came %s after the decline", waited)
	}
	// Declining twice, or an offer one does not hold, is a conflict.
	if e := alice.doErr(map[string]any{"type": "decline", "conversation": conv}); e["code"] != "conflict" {
		t.Fatalf("second decline answered %v", e)
	}
}

func TestAReturningCustomerGoesToItsLastAgent(t *testing.T) {
	s := deskServer(t, 1, "")
	bob := available(t, s, tokBob)
	ws := helloWS(t, s, "chat")
	askForAPerson(t, ws, "back-1", "b-1")
	conv := bob.expectOffer("back-1")["conversation"].(string)
	bob.do(map[string]any{"type": "accept", "conversation": conv})
	// alice comes in while bob works: when bob is done, alice has been
	// idle the longest.
	alice := available(t, s, tokAgent)
	bob.do(map[string]any{"type": "reply", "customer": "back-1", "conversation": conv, "text": "Bob here, all sorted."})
	if out := ws.expect("outbound"); out.Actor != "agent:bob" {
		t.Fatalf("bob's reply %s", out.raw)
	}
	bob.do(map[string]any{"type": "wrapup", "customer": "back-1", "conversation": conv, "disposition": "resolved"})
	if cv := s.conversation("back-1"); cv["state"] != "closed" {
		t.Fatalf("after wrap-up the conversation is %v", cv)
	}
	// A new conversation, the next day as it were.
	askForAPerson(t, ws, "back-1", "b-2")
	o := bob.expectOffer("back-1")
	if o["conversation"] == conv {
		t.Fatalf("the returning customer's offer names the old conversation %s", conv)
	}
	alice.quiet("offer", 100*time.Millisecond)
	offered := eventsOf(s.timeline("back-1", 100), "agent.offered")
	if len(offered) != 2 || dataOf(t, offered[1])["agent"] != "bob" || dataOf(t, offered[1])["reason"] != "sticky" {
		t.Fatalf("agent.offered %+v", offered)
	}
	if ctx := o["context"].(map[string]any); ctx["last_agent"] != "bob" {
		t.Fatalf("offer context last_agent %v", ctx["last_agent"])
	}
}

func TestNoAgentOffersACallbackThatReachesTheNextAvailableAgent(t *testing.T) {
	s := deskServer(t, 1, "callback_after: 1s")
	ws := helloWS(t, s, "chat")
	askForAPerson(t, ws, "cb-1", "cb-1")
	// No agent: a second later the customer is offered a callback.
	out := ws.expect("outbound")
	if out.Customer != "cb-1" || !strings.Contains(strings.ToLower(out.Text), "yes") {
		t.Fatalf("callback offer %s", out.raw)
	}
	if cv := s.conversation("cb-1"); cv["state"] != "callback" {
		t.Fatalf("after the callback offer the conversation is %v", cv)
	}
	ws.sendEvent(event{ID: "cb-2", Customer: "cb-1", Channel: "chat", Text: "Yes"})
	eventually(t, 10*time.Second, "journey.callback_scheduled", func() bool {
		return len(eventsOf(s.timeline("cb-1", 100), "journey.callback_scheduled")) == 1
	})
	if cv := s.conversation("cb-1"); cv["state"] != "queued" {
		t.Fatalf("after yes the conversation is %v", cv)
	}
	alice := available(t, s, tokAgent)
	o := alice.expectOffer("cb-1")
	if o["kind"] != "callback" || o["queue"] != "general" {
		t.Fatalf("offer %v, want a callback", o)
	}
	if n := len(eventsOf(s.timeline("cb-1", 100), "journey.callback_offered")); n != 1 {
		t.Fatalf("%d journey.callback_offered, want 1", n)
	}
}

func TestATransferKeepsTheWholeStory(t *testing.T) {
	s := deskServer(t, 1, "")
	alice := available(t, s, tokAgent)
	ws := helloWS(t, s, "chat")
	ws.sendEvent(event{ID: "t-1", Customer: "xfer-1", Channel: "chat", Text: "my card payment failed again"})
	ws.expect("outbound")
	askForAPerson(t, ws, "xfer-1", "t-2")
	conv := alice.expectOffer("xfer-1")["conversation"].(string)
	alice.do(map[string]any{"type": "accept", "conversation": conv})
	alice.do(map[string]any{"type": "reply", "customer": "xfer-1", "conversation": conv, "text": "Passing you to Bob, our card expert."})
	ws.expect("outbound")
	bob := available(t, s, tokBob)
	for _, f := range []map[string]any{
		{"type": "transfer", "customer": "xfer-1", "conversation": conv, "queue": "nowhere"},
		{"type": "transfer", "customer": "xfer-1", "conversation": conv, "queue": "general", "agent": "bob"},
		{"type": "transfer", "customer": "xfer-1", "conversation": conv},
	} {
		if e := alice.doErr(f); e["code"] != "bad_request" {
			t.Fatalf("%v answered %v", f, e)
		}
	}
	alice.do(map[string]any{"type": "transfer", "customer": "xfer-1", "conversation": conv, "agent": "bob"})
	o := bob.expectOffer("xfer-1")
	if o["conversation"] != conv {
		t.Fatalf("bob's offer %v, want conversation %s", o, conv)
	}
	ctx := o["context"].(map[string]any)
	var story []string
	for _, e := range ctx["timeline"].([]any) {
		m := e.(map[string]any)
		switch m["type"] {
		case "message.received", "message.sent":
			story = append(story, m["actor"].(string)+": "+m["text"].(string))
		case "agent.transferred":
			story = append(story, "transferred")
		}
	}
	want := []string{"customer: my card payment failed again", "ai: ", "customer: I want to talk to a person", "ai: ", "agent:alice: Passing you to Bob, our card expert.", "transferred"}
	if len(story) != len(want) {
		t.Fatalf("bob's context tells %q, want %q", story, want)
	}
	for i := range want {
		if !strings.HasPrefix(story[i], want[i]) {
			t.Fatalf("bob's context tells %q, want %q", story, want)
		}
	}
	bob.do(map[string]any{"type": "accept", "conversation": conv})
	if cv := s.conversation("xfer-1"); cv["state"] != "agent" || cv["agent"] != "bob" {
		t.Fatalf("after the transfer the conversation is %v", cv)
	}
	// alice no longer holds it.
	if e := alice.doErr(map[string]any{"type": "reply", "customer": "xfer-1", "conversation": conv, "text": "still me"}); e["code"] != "conflict" {
		t.Fatalf("alice replying after the transfer answered %v", e)
	}
	// Back to the queue: alice, idle since her transfer, is offered it with
	// both transfers in its story.
	bob.do(map[string]any{"type": "transfer", "customer": "xfer-1", "conversation": conv, "queue": "general"})
	o = alice.expectOffer("xfer-1")
	var transfers int
	for _, e := range o["context"].(map[string]any)["timeline"].([]any) {
		if e.(map[string]any)["type"] == "agent.transferred" {
			transfers++
		}
	}
	if o["conversation"] != conv || o["queue"] != "general" || transfers != 2 {
		t.Fatalf("alice's offer after the queue transfer %v (%d transfers in its context)", o, transfers)
	}
}
