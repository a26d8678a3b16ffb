package journey_test

import (
	"testing"

	"github.com/throughline/throughline/journey"
)

// seqs are the seqs of events, in order.
func seqs(events []journey.Event) (first, last uint64, n int) {
	if len(events) == 0 {
		return 0, 0, 0
	}
	for i := 1; i < len(events); i++ {
		if events[i].Seq != events[i-1].Seq+1 {
			return 0, 0, -1 // not consecutive, oldest first
		}
	}
	return events[0].Seq, events[len(events)-1].Seq, len(events)
}

func TestTimelineKeepsTheLatest(t *testing.T) {
	total := journey.TimelineMax + 30
	c := customerWith(t, total)
	tests := []struct {
		upTo             uint64
		n                int
		first, last, len int
	}{
		{uint64(total), journey.TimelineMax + 10, 31, total, journey.TimelineMax},
		{uint64(total), 5, total - 4, total, 5},
		{uint64(total - 10), 5, total - 14, total - 10, 5},
		{uint64(total - 10), 1000, 31, total - 10, journey.TimelineMax - 10},
		{10, 5, 0, 0, 0}, // seq 10 has left memory
	}
	for _, tt := range tests {
		first, last, n := seqs(c.Timeline(tt.upTo, tt.n))
		if int(first) != tt.first || int(last) != tt.last || n != tt.len {
			t.Errorf("Timeline(%d, %d): seqs %d..%d (%d), want %d..%d (%d)",
				tt.upTo, tt.n, first, last, n, tt.first, tt.last, tt.len)
		}
	}
}

func TestContextShowsOnlyDurableEvents(t *testing.T) {
	c := customerWith(t, 60)
	tests := []struct {
		upTo        uint64
		first, last uint64
		n           int
	}{
		{60, 11, 60, journey.ContextTimelineSize},
		// Below the latest seq, the context shows what memory still holds
		// up to upTo (the actor asks at its latest seq, so in practice
		// always the full ContextTimelineSize).
		{55, 11, 55, 45},
		{3, 0, 0, 0},
		{0, 0, 0, 0},
	}
	for _, tt := range tests {
		ctx := c.Context(tt.upTo)
		first, last, n := seqs(ctx.Timeline)
		if first != tt.first || last != tt.last || n != tt.n || ctx.Seq != tt.upTo || ctx.Customer != "c-42" {
			t.Errorf("Context(%d): seq %d, timeline %d..%d (%d), want %d..%d (%d)",
				tt.upTo, ctx.Seq, first, last, n, tt.first, tt.last, tt.n)
		}
	}
}

func TestContextSharesNoMapsWithTheCustomer(t *testing.T) {
	c := journey.NewCustomer("c-42")
	in := inbound("gw-1")
	in.Linked = []journey.IdentityRef{{Kind: "phone", Value: "+15551230000"}}
	step(t, c, in, t0)
	step(t, c, &journey.ProfilePatch{ID: "p-1", Patch: []byte(`{"tier":"vip","consent":{"sms":true}}`)}, t0)
	c.Conversation = &journey.Conversation{ID: "conv-1", State: "queued", Queue: "billing", Since: t0}
	c.Cases = []journey.Case{{ID: "case-1", Status: "open", Opened: t0}}
	before := mustJSON(t, c.Context(c.Seq))

	ctx := c.Context(c.Seq)
	ctx.Profile["tier"] = "basic"
	ctx.Profile["consent"].(map[string]any)["sms"] = false
	ctx.Profile["new"] = 1
	ctx.Identities["phone"][0] = "+15550000000"
	ctx.Identities["phone"] = append(ctx.Identities["phone"], "+15559999999")
	ctx.Identities["email"] = []string{"x@example.com"}
	ctx.Timeline[0].Seq = 99
	ctx.Conversation.State = "agent"
	ctx.Cases[0].Status = "resolved"

	if after := mustJSON(t, c.Context(c.Seq)); after != before {
		t.Errorf("changing a context changed the customer:\nbefore %s\nafter  %s", before, after)
	}
	if !c.HasIdentity(journey.IdentityRef{Kind: "phone", Value: "+15551230000"}) {
		t.Errorf("customer lost its phone: %v", c.Identities)
	}
}
