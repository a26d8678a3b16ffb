package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestIdentityStitching: events naming a person by different identities on
// different channels reach one customer, who remembers every identity.
func TestIdentityStitching(t *testing.T) {
	s := startServer(t, serverOptions{})

	t.Run("email then email and phone then phone", func(t *testing.T) {
		s := s.with(t)
		c := dialWS(t, s, tokChannel)
		a1 := c.sendEvent(event{ID: "st-1", Identity: map[string]string{"email": " Ana@Example.com"}, Channel: "email", Text: "hello"})
		a2 := s.postEvent(event{ID: "st-2", Identity: map[string]string{"email": "ana@example.com", "phone": "+44 20 7946 0958"}, Channel: "web", Text: "me again"})
		a3 := c.sendEvent(event{ID: "st-3", Identity: map[string]string{"phone": "+442079460958"}, Channel: "sms", Text: "still me"})
		if a1.Customer == "" || a2.Customer != a1.Customer || a3.Customer != a1.Customer {
			t.Fatalf("customers %q, %q, %q: want one", a1.Customer, a2.Customer, a3.Customer)
		}
		ctx := s.context(a1.Customer)
		wantIdentities(t, ctx, map[string][]string{"email": {"ana@example.com"}, "phone": {"+442079460958"}})
		events := s.timeline(a1.Customer, 100)
		checkGapless(t, a1.Customer, events)
		if got := clientIDs(events); !slices.Equal(got, []string{"st-1", "st-2", "st-3"}) {
			t.Errorf("client events %q, want st-1, st-2, st-3", got)
		}
		if events[0].Type != "identity.linked" || events[0].Actor != "system" {
			t.Errorf("first event %+v: want identity.linked by system before the first event with identities", events[0])
		}
		if a1.Seq != 2 {
			t.Errorf("first event seq %d, want 2 (after identity.linked)", a1.Seq)
		}
	})

	t.Run("phone formats and whatsapp wa_id are one person", func(t *testing.T) {
		s := s.with(t)
		c := dialWS(t, s, tokChannel)
		a1 := c.sendEvent(event{ID: "fmt-1", Identity: map[string]string{"phone": "+1 (555) 123-0000"}, Channel: "sms", Text: "a"})
		a2 := c.sendEvent(event{ID: "fmt-2", Identity: map[string]string{"phone": "+15551230000"}, Channel: "sms", Text: "b"})
		a3 := c.sendEvent(event{ID: "fmt-3", Identity: map[string]string{"whatsapp": "15551230000"}, Channel: "whatsapp", Text: "c"})
		if a2.Customer != a1.Customer || a3.Customer != a1.Customer {
			t.Fatalf("customers %q, %q, %q: want one", a1.Customer, a2.Customer, a3.Customer)
		}
		ctx := s.context(a1.Customer)
		wantIdentities(t, ctx, map[string][]string{"phone": {"+15551230000"}, "whatsapp": {"+15551230000"}})
	})

	t.Run("16 connections at once with one new phone make one customer (last round half by WhatsApp)", func(t *testing.T) {
		s := s.with(t)
		const conns = 16
		clients := make([]*wsClient, conns)
		for i := range clients {
			clients[i] = dialWS(t, s, tokChannel)
		}
		for round := 0; round < 3; round++ {
			phone := fmt.Sprintf("+1 555 987 %04d", round)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, cl := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					id := map[string]string{"phone": phone}
					if round == 2 && i%2 == 1 {
						// The same number as a WhatsApp wa_id.
						id = map[string]string{"whatsapp": strings.NewReplacer(" ", "", "+", "").Replace(phone)}
					}
					_ = cl.send(eventFrame(event{ID: fmt.Sprintf("race-%d-%02d", round, i), Identity: id, Channel: "sms", Text: "hi"}))
				}()
			}
			close(start)
			wg.Wait()
			customers := map[string]bool{}
			var first string
			for i, cl := range clients {
				f := cl.expect("ack")
				if f.ID != fmt.Sprintf("race-%d-%02d", round, i) || f.Duplicate {
					t.Fatalf("connection %d: ack %s", i, f.raw)
				}
				customers[f.Customer] = true
				first = f.Customer
			}
			if len(customers) != 1 {
				t.Fatalf("round %d: one new phone from %d connections at once made %d customers", round, conns, len(customers))
			}
			events := s.timeline(first, 100)
			checkGapless(t, first, events)
			if got := clientIDs(events); len(got) != conns {
				t.Errorf("round %d: customer has %d client events, want %d: %q", round, len(got), conns, got)
			}
			want := map[string][]string{"phone": {fmt.Sprintf("+1555987%04d", round)}}
			if round == 2 {
				want["whatsapp"] = want["phone"]
			}
			wantIdentities(t, s.context(first), want)
		}
	})

	t.Run("a named customer keeps an identity that belongs to another", func(t *testing.T) {
		s := s.with(t)
		c := dialWS(t, s, tokChannel)
		n1 := c.sendEvent(event{ID: "named-1", Customer: "named-a", Identity: map[string]string{"email": "bo@example.com"}, Type: "page.viewed"})
		if n1.Customer != "named-a" {
			t.Fatalf("event naming customer named-a went to %q", n1.Customer)
		}
		byEmail := c.sendEvent(event{ID: "named-2", Identity: map[string]string{"email": "BO@example.com"}, Type: "page.viewed"})
		if byEmail.Customer != "named-a" {
			t.Fatalf("the linked email reached %q, want named-a", byEmail.Customer)
		}
		n3 := c.sendEvent(event{ID: "named-3", Customer: "named-b", Identity: map[string]string{"email": "bo@example.com", "phone": "+33 1 23 45 67 89"}, Type: "page.viewed"})
		if n3.Customer != "named-b" {
			t.Fatalf("event naming customer named-b went to %q", n3.Customer)
		}
		again := c.sendEvent(event{ID: "named-4", Identity: map[string]string{"email": "bo@example.com"}, Type: "page.viewed"})
		if again.Customer != "named-a" {
			t.Errorf("the email moved to %q; it belongs to named-a", again.Customer)
		}
		wantIdentities(t, s.context("named-b"), map[string][]string{"phone": {"+33123456789"}})
		wantIdentities(t, s.context("named-a"), map[string][]string{"email": {"bo@example.com"}})
		// Identities of two customers in one event: the email's wins.
		both := c.sendEvent(event{ID: "named-5", Identity: map[string]string{"phone": "+33123456789", "email": "bo@example.com"}, Type: "page.viewed"})
		if both.Customer != "named-a" {
			t.Errorf("an event with named-a's email and named-b's phone went to %q, want named-a (email before phone)", both.Customer)
		}
	})
}

// wantIdentities checks the context lists exactly these identities.
func wantIdentities(t *testing.T, ctx journeyContext, want map[string][]string) {
	t.Helper()
	if len(ctx.Identities) != len(want) {
		t.Errorf("customer %s identities %v, want %v", ctx.Customer, ctx.Identities, want)
		return
	}
	for kind, values := range want {
		got := slices.Clone(ctx.Identities[kind])
		slices.Sort(got)
		if !slices.Equal(got, values) {
			t.Errorf("customer %s identities %v, want %v", ctx.Customer, ctx.Identities, want)
		}
	}
}

// clientIDs are the ids of the events clients sent (actor customer).
func clientIDs(events []storedEvent) []string {
	var out []string
	for _, e := range events {
		if e.Actor == "customer" {
			out = append(out, e.ID)
		}
	}
	return out
}
