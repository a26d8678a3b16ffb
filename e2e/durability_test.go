package e2e

import (
	"fmt"
	"testing"
)

// TestKillKeepsIdentitiesAndOldIDs: after kill -9 right after the acks,
// identities resolve to the customers they resolved to before, and an id is
// recognized as a duplicate however old it is (past the ids a customer
// keeps in memory, past its snapshots), not only the recent ones.
func TestKillKeepsIdentitiesAndOldIDs(t *testing.T) {
	const batches, batchSize = 5, 1000 // more ids than a customer keeps in memory (4096)
	s := startServer(t, serverOptions{})
	postBatch := func(s *server, from, n int) []ack {
		t.Helper()
		events := make([]event, n)
		for i := range events {
			events[i] = event{ID: fmt.Sprintf("old-%04d", from+i), Customer: "old", Type: "page.viewed", Data: map[string]any{"i": from + i}}
		}
		var out struct{ Acks []ack }
		s.call("POST", "/v1/events", tokChannel, map[string]any{"events": events}, nil).wantStatus(t, 200).decode(t, &out)
		if len(out.Acks) != n {
			t.Fatalf("%d acks for %d events", len(out.Acks), n)
		}
		return out.Acks
	}
	for b := 0; b < batches; b++ {
		for i, a := range postBatch(s, b*batchSize, batchSize) {
			if a.Error != nil || a.Duplicate || a.Seq != uint64(b*batchSize+i+1) {
				t.Fatalf("ack %+v, want new seq %d", a, b*batchSize+i+1)
			}
		}
	}
	c := dialWS(t, s, tokChannel)
	const people = 20
	customerOf := map[int]ack{}
	for p := 0; p < people; p++ {
		f := c.sendEvent(event{ID: fmt.Sprintf("person-%02d", p), Channel: "whatsapp", Text: "hi",
			Identity: map[string]string{"whatsapp": fmt.Sprintf("4915112345%03d", p), "email": fmt.Sprintf("p%02d@example.com", p)}})
		customerOf[p] = ack{ID: f.ID, Customer: f.Customer, Seq: f.Seq}
	}
	s.kill()

	s2 := startServer(t, serverOptions{dataDir: s.dataDir})
	for _, from := range []int{0, 2000, batches*batchSize - 100} {
		for i, a := range postBatch(s2, from, 100) {
			if a.Error != nil || !a.Duplicate || a.Seq != uint64(from+i+1) {
				t.Fatalf("old id resent after the restart: %+v, want duplicate of seq %d", a, from+i+1)
			}
		}
	}
	if a := s2.postEvent(event{ID: "old-new", Customer: "old", Type: "page.viewed"}); a.Seq != batches*batchSize+1 || a.Duplicate {
		t.Fatalf("new event after the restart: %+v, want seq %d", a, batches*batchSize+1)
	}
	// The context after the restart still shows the latest events.
	ctx := s2.context("old")
	if n := len(ctx.Timeline); ctx.Seq != batches*batchSize+1 || n < 50 || ctx.Timeline[n-1].ID != "old-new" {
		t.Fatalf("context after the restart: seq %d, %d events; want seq %d, at least 50 events, old-new last", ctx.Seq, n, batches*batchSize+1)
	}
	for i := 1; i < len(ctx.Timeline); i++ {
		if ctx.Timeline[i].Seq != ctx.Timeline[i-1].Seq+1 {
			t.Fatalf("context timeline seqs %d then %d", ctx.Timeline[i-1].Seq, ctx.Timeline[i].Seq)
		}
	}
	c2 := dialWS(t, s2, tokChannel)
	for p := 0; p < people; p++ {
		before := customerOf[p]
		again := c2.sendEvent(event{ID: before.ID, Channel: "whatsapp", Text: "hi",
			Identity: map[string]string{"whatsapp": fmt.Sprintf("4915112345%03d", p), "email": fmt.Sprintf("p%02d@example.com", p)}})
		if again.Customer != before.Customer || !again.Duplicate || again.Seq != before.Seq {
			t.Errorf("person %d resent after the restart: %s, want duplicate of %s seq %d", p, again.raw, before.Customer, before.Seq)
		}
		byPhone := c2.sendEvent(event{ID: fmt.Sprintf("person-%02d-sms", p), Channel: "sms", Text: "by sms",
			Identity: map[string]string{"phone": fmt.Sprintf("+49 151 12345%03d", p)}})
		if byPhone.Customer != before.Customer {
			t.Errorf("person %d by phone after the restart reached %s, want %s", p, byPhone.Customer, before.Customer)
		}
	}
	wantIdentities(t, s2.context(customerOf[7].Customer), map[string][]string{
		"whatsapp": {"+4915112345007"}, "phone": {"+4915112345007"}, "email": {"p07@example.com"}})
	s2.stop()
}
