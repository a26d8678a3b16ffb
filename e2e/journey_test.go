package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// journeySections configures the demo bot (its intents and knowledge base),
// queues and the rules of PROTOCOL section 6, with the nudge's delay given.
func journeySections(t *testing.T, nudgeAfter string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	demo := filepath.Join(root, "node", "demo")
	intents, err := readFile(filepath.Join(demo, "intents.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`ai:
  brain: builtin
  escalate_below: 0.55
  default_queue: general
  intents:
%s
knowledge: %q
queues:
  - {name: general}
  - {name: vip, skills: [vip]}
rules:
  - id: vip-fast-track
    when: "event.type == 'login.failed' && customer.profile.tier == 'vip'"
    do: [{route: {queue: vip, priority: 100, bypass_bot: true}}]
  - id: cart-nudge
    when: "event.type == 'cart.abandoned'"
    after: %s
    unless: "event.type == 'checkout.completed'"
    do: [{send: {text: "Still thinking it over? Your cart is saved."}}]
`, indent(intents, "    "), filepath.Join(demo, "kb"), nudgeAfter)
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = by + l
	}
	return strings.Join(lines, "\n")
}

// helloWS dials a channel connection that delivers for the channels.
func helloWS(t *testing.T, s *server, channels ...string) *wsClient {
	t.Helper()
	ws := dialWS(t, s, tokChannel)
	ws.mustSend(map[string]any{"type": "hello", "channels": channels})
	ws.expect("ready")
	return ws
}

// eventsOf returns the customer's stored events of a type.
func eventsOf(all []storedEvent, typ string) []storedEvent {
	var out []storedEvent
	for _, e := range all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func dataOf(t *testing.T, e storedEvent) map[string]any {
	t.Helper()
	if e.Data == nil {
		t.Fatalf("%s without data", e.Type)
	}
	return e.Data
}

func TestBotAnswersFromTheKnowledgeBase(t *testing.T) {
	s := startServer(t, serverOptions{sections: journeySections(t, "1h")})
	ws := helloWS(t, s, "chat")
	ack := ws.sendEvent(event{ID: "q-1", Customer: "kb-1", Channel: "chat", Text: "my card payment failed again"})
	out := ws.expect("outbound")
	if out.Customer != "kb-1" || out.Channel != "chat" || out.Actor != "ai" || out.Seq <= ack.Seq {
		t.Fatalf("outbound %s after ack seq %d", out.raw, ack.Seq)
	}
	if !strings.Contains(out.Text, "card-declined") {
		t.Fatalf("answer does not cite the card-declined article: %q", out.Text)
	}
	events := s.timeline("kb-1", 100)
	searched := eventsOf(events, "ai.kb_searched")
	replied := eventsOf(events, "ai.replied")
	sent := eventsOf(events, "message.sent")
	if len(searched) != 1 || len(replied) != 1 || len(sent) != 1 {
		t.Fatalf("want one kb_searched, replied and sent; timeline %+v", events)
	}
	if arts := dataOf(t, searched[0])["articles"].([]any); len(arts) == 0 || arts[0] != "card-declined" {
		t.Fatalf("kb_searched articles %v", arts)
	}
	r := dataOf(t, replied[0])
	if r["intent"] != "card_declined" || r["confidence"].(float64) < 0.55 {
		t.Fatalf("ai.replied %v", r)
	}
	if _, ok := r["sentiment"].(float64); !ok {
		t.Fatalf("ai.replied without sentiment: %v", r)
	}
	if got := dataOf(t, sent[0])["outbound"]; got != out.ID || sent[0].Seq != out.Seq || sent[0].Actor != "ai" {
		t.Fatalf("message.sent %+v, outbound %s", sent[0], out.raw)
	}
	// Receipts: accepted stops redelivery; delivered is recorded.
	ws.mustSend(map[string]any{"type": "accepted", "id": out.ID})
	ws.mustSend(map[string]any{"type": "delivered", "id": out.ID})
	eventually(t, 10*time.Second, "message.delivered recorded", func() bool {
		d := eventsOf(s.timeline("kb-1", 100), "message.delivered")
		return len(d) == 1 && dataOf(t, d[0])["outbound"] == out.ID
	})
	ws.mustSend(map[string]any{"type": "delivered", "id": "out-999-nobody"})
	if f := ws.expect("error"); f.Code != "bad_request" || f.ID != "out-999-nobody" {
		t.Fatalf("receipt for an unknown outbound: %s", f.raw)
	}
}

func TestAskingForAPersonHandsOver(t *testing.T) {
	s := startServer(t, serverOptions{sections: journeySections(t, "1h")})
	ws := helloWS(t, s, "sms")
	for i, text := range []string{"I want to talk to a person", "agent please", "can I speak to a human?", "REPRESENTATIVE"} {
		c := fmt.Sprintf("human-%d", i)
		ws.sendEvent(event{ID: c + "-1", Customer: c, Identity: map[string]string{"phone": "+1555000000" + fmt.Sprint(i)}, Channel: "sms", Text: text})
		out := ws.expect("outbound")
		if out.Customer != c || out.To["phone"] == "" {
			t.Fatalf("%q: hand-over message %s", text, out.raw)
		}
		events := s.timeline(c, 100)
		routed := eventsOf(events, "routing.decided")
		if len(routed) != 1 {
			t.Fatalf("%q: want one routing.decided, timeline %+v", text, events)
		}
		d := dataOf(t, routed[0])
		if d["reason"] != "customer_asked" || d["queue"] != "general" || d["summary"] == nil {
			t.Fatalf("%q: routing.decided %v", text, d)
		}
		if len(eventsOf(events, "ai.replied")) != 0 {
			t.Fatalf("%q: the bot answered a customer who asked for a person", text)
		}
		var ctx struct {
			Conversation struct{ State, Queue, Channel string }
		}
		s.call("GET", "/v1/customers/"+c, tokSupervisor, nil, nil).wantStatus(t, 200).decode(t, &ctx)
		if ctx.Conversation.State != "queued" || ctx.Conversation.Queue != "general" || ctx.Conversation.Channel != "sms" {
			t.Fatalf("%q: conversation %+v", text, ctx.Conversation)
		}
	}
}

func TestVIPRuleRoutesWithoutTheBot(t *testing.T) {
	s := startServer(t, serverOptions{sections: journeySections(t, "1h")})
	s.call("PATCH", "/v1/customers/vip-1/profile", tokSupervisor, map[string]any{"tier": "vip"}, nil).wantStatus(t, 200)
	s.call("PATCH", "/v1/customers/reg-1/profile", tokSupervisor, map[string]any{"tier": "basic"}, nil).wantStatus(t, 200)
	ws := dialWS(t, s, tokChannel)
	ws.sendEvent(event{ID: "lf-1", Customer: "vip-1", Type: "login.failed", Channel: "web"})
	ws.sendEvent(event{ID: "lf-2", Customer: "reg-1", Type: "login.failed", Channel: "web"})
	events := s.timeline("vip-1", 100)
	routed := eventsOf(events, "routing.decided")
	if len(routed) != 1 || routed[0].Actor != "rule:vip-fast-track" {
		t.Fatalf("vip: routing %+v", events)
	}
	if d := dataOf(t, routed[0]); d["rule"] != "vip-fast-track" || d["queue"] != "vip" || d["priority"].(float64) != 100 {
		t.Fatalf("vip: routing.decided %v", d)
	}
	for _, e := range events {
		if strings.HasPrefix(e.Type, "ai.") {
			t.Fatalf("vip: the bot took part: %+v", e)
		}
	}
	if r := eventsOf(s.timeline("reg-1", 100), "routing.decided"); len(r) != 0 {
		t.Fatalf("a basic customer was routed: %+v", r)
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
