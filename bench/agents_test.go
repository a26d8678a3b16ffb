package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestDecodeDeskFrameReadsTheTopLevelAndTheEventID(t *testing.T) {
	var f deskServerFrame
	offer := `{"type":"offer","conversation":"conv-1-c9","customer":"c9","queue":"desk","kind":"conversation",` +
		`"expires":"2026-01-01T00:00:00Z","context":{"customer":"not-this","timeline":[{"id":"x","customer":"nor-this"}],"seq":3}}`
	if err := decodeDeskFrame([]byte(offer), &f); err != nil {
		t.Fatal(err)
	}
	if f.kind != deskOffer || string(f.customer) != "c9" || string(f.conversation) != "conv-1-c9" || f.eventID != nil {
		t.Errorf("offer decoded as %+v", f)
	}
	event := `{"type":"event","customer":"c9","event":{"seq":4,"data":{"id":"inner"},"id":"c9-m2","type":"message.received"}}`
	if err := decodeDeskFrame([]byte(event), &f); err != nil {
		t.Fatal(err)
	}
	if f.kind != deskEvent || string(f.customer) != "c9" || string(f.eventID) != "c9-m2" {
		t.Errorf("event decoded as %+v", f)
	}
	if err := decodeDeskFrame([]byte(`{"type":"ok","ref":"a:c9"} x`), &f); err == nil {
		t.Error("trailing bytes accepted")
	}
}

func TestAgentsEventsPerConversationAddUpToTheEventsRate(t *testing.T) {
	for _, tc := range []struct{ rate, events, connections int }{{500, 1000, 8}, {500, 750, 7}, {20, 0, 3}, {3, 10, 1}} {
		cfg := DefaultAgents()
		cfg.Rate, cfg.EventsRate, cfg.Connections = tc.rate, tc.events, tc.connections
		r := newAgentsRun(&cfg, "n")
		total := 0
		// Ten seconds of escalations: the connections take turns.
		for g := range tc.rate * 10 {
			n := r.eventsOf(g%tc.connections, uint64(g/tc.connections))
			if n < 0 || n > EventsPerConversationMax {
				t.Fatalf("%+v: conversation %d gets %d events", tc, g, n)
			}
			total += n
		}
		if total != tc.events*10 {
			t.Errorf("%+v: 10 s of escalations get %d events, want %d", tc, total, tc.events*10)
		}
	}
}

func TestAgentsEventIDsParseBack(t *testing.T) {
	cfg := DefaultAgents()
	r := newAgentsRun(&cfg, "n1")
	customer := r.customerID(3, 17)
	for id, want := range map[string]int{customer + "-esc": 0, customer + "-m1": 1, customer + "-m64": 64} {
		c, j, ok := r.parseEventID([]byte(id))
		if !ok || string(c) != customer || j != want {
			t.Errorf("parseEventID(%q) = %q, %d, %v", id, c, j, ok)
		}
	}
	for _, id := range []string{"evt-1", customer + "-m0", customer + "-m65", customer + "-x", "ag-n2-3-17-esc"} {
		if _, _, ok := r.parseEventID([]byte(id)); ok {
			t.Errorf("parseEventID(%q) matched", id)
		}
	}
}

func TestAgentsConfigValidateListsEveryProblem(t *testing.T) {
	cfg := DefaultAgents()
	cfg.Target = "ftp://x"
	cfg.Agents = 0
	cfg.EventsRate = cfg.Rate*EventsPerConversationMax + 1
	cfg.EventGap = 0
	err := cfg.Validate()
	for _, want := range []string{"target", "agents 0", "events rate", "event gap"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem naming %q", err, want)
		}
	}
}

func TestRunAgentsAgainstTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	cfg := DefaultAgents()
	cfg.Agents, cfg.AgentCapacity, cfg.Rate, cfg.EventsRate, cfg.Connections = 10, 2, 20, 50, 2
	cfg.EventGap = 20 * time.Millisecond
	cfg.Warmup, cfg.Duration = 500*time.Millisecond, 2*time.Second
	tokens, sections := cfg.ServerSections()
	cfg.Target = startTestServer(t, "auth:\n  tokens:\n    - {token: gw, role: channel}\n"+tokens+sections)
	cfg.Token = "gw"
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r, err := RunAgents(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Escalations < 40 || r.EscalationsAcked != r.Escalations || r.Offers != r.Escalations || r.Accepted != r.Offers || r.WrappedUp != r.Offers {
		t.Errorf("escalations %d, acked %d, offers %d, accepted %d, wrapped up %d: want every escalation offered, accepted and wrapped up",
			r.Escalations, r.EscalationsAcked, r.Offers, r.Accepted, r.WrappedUp)
	}
	// 2.5 events a conversation: 2 or 3 each.
	if r.EventsSent < 2*r.Escalations || r.EventsSent > 3*r.Escalations || r.EventsAcked != r.EventsSent || r.EventsDelivered != r.EventsSent {
		t.Errorf("events sent %d, acked %d, on desks %d for %d conversations: want 2 or 3 each, every one on the desk",
			r.EventsSent, r.EventsAcked, r.EventsDelivered, r.Escalations)
	}
	if r.MissingOffers != 0 || r.MissingEvents != 0 || r.Open != 0 || r.Unmatched != 0 || r.Malformed != 0 || r.Revoked != 0 || len(r.Errors) != 0 {
		t.Errorf("missing offers %d, missing events %d, open %d, unmatched %d, malformed %d, revoked %d, errors %v: want none; warnings %q",
			r.MissingOffers, r.MissingEvents, r.Open, r.Unmatched, r.Malformed, r.Revoked, r.Errors, r.Warnings)
	}
	for name, l := range map[string]Latency{"offer": r.EscalationToOffer, "screen": r.InboundToScreen, "assigned": r.OfferToAssigned} {
		if l.Count == 0 || l.P50Us <= 0 || l.P50Us > l.P99Us || l.P99Us > l.MaxUs {
			t.Errorf("%s latency %+v: want a non-empty, ordered distribution", name, l)
		}
	}
	if r.OffersPerSecond < 15 || r.EventsPerSecond < 35 {
		t.Errorf("offers/s %.1f, events/s %.1f: want near 20 and 50", r.OffersPerSecond, r.EventsPerSecond)
	}
	if r.StoreCommit == nil || r.StoreCommit.Count == 0 || r.Activation == nil || r.Activation.Count == 0 {
		t.Errorf("store commits %+v, activations %+v, warnings %q: want the measured period's read from the server", r.StoreCommit, r.Activation, r.Warnings)
	}
	var md strings.Builder
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| escalation → offer p99 | < 10.00 ms |", "| inbound → agent screen p99 | < 5.00 ms |", "p50 / p99 / p999 / max"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
}
