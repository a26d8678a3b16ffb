package e2e

import (
	"testing"
	"time"
)

// nudgeText is what the cart-nudge rule of journeySections sends.
const nudgeText = "Still thinking it over? Your cart is saved."

// cartAbandoned sends a cart.abandoned for a customer reachable by SMS.
func cartAbandoned(ws *wsClient, customer string) {
	ws.sendEvent(event{ID: customer + "-cart", Customer: customer, Identity: map[string]string{"phone": "+15557770001"},
		Type: "cart.abandoned", Channel: "sms", Data: map[string]any{"cart": "k1"}})
}

// expectNudge waits for the nudge's outbound to the customer and accepts it.
func expectNudge(t *testing.T, ws *wsClient, customer string) {
	t.Helper()
	out := ws.expect("outbound")
	if out.Customer != customer || out.Text != nudgeText || out.Channel != "sms" || out.Actor != "rule:cart-nudge" {
		t.Fatalf("nudge outbound %s", out.raw)
	}
	ws.mustSend(map[string]any{"type": "accepted", "id": out.ID})
}

// noFrameFor fails if a frame arrives within d.
func noFrameFor(t *testing.T, ws *wsClient, d time.Duration) {
	t.Helper()
	if f, ok, late := ws.receive(time.After(d)); !late && ok {
		t.Fatalf("unexpected frame %s", f.raw)
	}
}

func wantTypes(t *testing.T, s *server, customer string, want map[string]int) {
	t.Helper()
	events := s.timeline(customer, 1000)
	for typ, n := range want {
		if got := len(eventsOf(events, typ)); got != n {
			t.Fatalf("%s: %d %s events, want %d; timeline %+v", customer, got, typ, n, events)
		}
	}
}

func TestCartNudgeFiresAfterItsDelay(t *testing.T) {
	s := startServer(t, serverOptions{sections: journeySections(t, "2s")})
	ws := helloWS(t, s, "sms")
	start := time.Now()
	cartAbandoned(ws, "cart-1")
	expectNudge(t, ws, "cart-1")
	if waited := time.Since(start); waited < 2*time.Second {
		t.Fatalf("nudge after %s, before its 2s delay", waited)
	}
	wantTypes(t, s, "cart-1", map[string]int{"journey.timer_armed": 1, "journey.rule_fired": 1, "proactive.sent": 1, "message.sent": 1})
	noFrameFor(t, ws, 2*time.Second) // fired once
}

func TestCartNudgeCancelledByCheckout(t *testing.T) {
	s := startServer(t, serverOptions{sections: journeySections(t, "2s")})
	ws := helloWS(t, s, "sms")
	cartAbandoned(ws, "cart-2")
	ws.sendEvent(event{ID: "cart-2-paid", Customer: "cart-2", Type: "checkout.completed", Channel: "web"})
	noFrameFor(t, ws, 3500*time.Millisecond)
	wantTypes(t, s, "cart-2", map[string]int{"journey.timer_armed": 1, "journey.timer_cancelled": 1, "proactive.sent": 0, "message.sent": 0})
}

// A timer armed before a restart fires after it, with the customer never
// touched again; one cancelled after a restart does not fire.
func TestCartNudgeAcrossRestart(t *testing.T) {
	sections := journeySections(t, "4s")
	s := startServer(t, serverOptions{sections: sections})
	ws := dialWS(t, s, tokChannel)
	cartAbandoned(ws, "cart-fires")
	cartAbandoned(ws, "cart-paid")
	s.kill()

	s2 := startServer(t, serverOptions{dataDir: s.dataDir, sections: sections})
	ws2 := helloWS(t, s2, "sms")
	ws2.sendEvent(event{ID: "cart-paid-checkout", Customer: "cart-paid", Type: "checkout.completed", Channel: "web"})
	expectNudge(t, ws2, "cart-fires")
	noFrameFor(t, ws2, 2*time.Second)
	wantTypes(t, s2, "cart-fires", map[string]int{"journey.rule_fired": 1, "proactive.sent": 1})
	wantTypes(t, s2, "cart-paid", map[string]int{"journey.timer_cancelled": 1, "proactive.sent": 0, "message.sent": 0})
}

// An outbound for a channel no connection serves waits for a hello; one in
// flight on a connection that closes goes to another.
func TestOutboundWaitsForHelloAndMovesOnClose(t *testing.T) {
	s := startServer(t, serverOptions{sections: journeySections(t, "1h")})
	sender := dialWS(t, s, tokChannel) // says no hello: only sends
	sender.sendEvent(event{ID: "w-1", Customer: "wait-1", Channel: "chat", Text: "I want to talk to a person"})
	noFrameFor(t, sender, 500*time.Millisecond)

	first := helloWS(t, s, "chat")
	out := first.expect("outbound")
	if out.Customer != "wait-1" {
		t.Fatalf("outbound %s", out.raw)
	}
	first.conn.Close() // closes without accepting
	second := helloWS(t, s, "chat")
	again := second.expect("outbound")
	if again.ID != out.ID || again.Seq != out.Seq || again.Text != out.Text {
		t.Fatalf("redelivered %s, first %s", again.raw, out.raw)
	}
	second.mustSend(map[string]any{"type": "accepted", "id": again.ID})
}

// The customer's session connection gets its replies: the one that carried
// its inbound, not another that serves the channel.
func TestOutboundGoesBackToTheSessionConnection(t *testing.T) {
	s := startServer(t, serverOptions{sections: journeySections(t, "1h")})
	a := helloWS(t, s, "chat")
	b := helloWS(t, s, "chat")
	for i := range 4 {
		ws := a
		if i%2 == 1 {
			ws = b
		}
		c := "session-" + string(rune('a'+i))
		ws.sendEvent(event{ID: c + "-1", Customer: c, Channel: "chat", Text: "how do I reset my password"})
		out := ws.expect("outbound")
		if out.Customer != c {
			t.Fatalf("outbound %s on the connection of %s", out.raw, c)
		}
		ws.mustSend(map[string]any{"type": "accepted", "id": out.ID})
	}
}
