package journey_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// TestDecideAgainstModel sends random inbound events, ids drawn from a small
// pool so that duplicates happen, and checks every ack against a naive
// model: the first seq of each id. Now and then the clock goes back, an event
// links identities, or the customer is rebuilt from its snapshot.
func TestDecideAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 42))
	for run := range 50 {
		c := journey.NewCustomer("c-42")
		first := map[string]uint64{}           // the model: id -> first seq
		held := map[journey.IdentityRef]bool{} // identities linked so far
		var seq, stored uint64                 // the model's last seq; the last seq stored
		now, last := t0, time.Time{}
		for i := range 300 {
			id := fmt.Sprintf("gw-%d", r.IntN(60))
			in := inbound(id)
			for range r.IntN(3) {
				in.Linked = append(in.Linked, journey.IdentityRef{Kind: "phone", Value: fmt.Sprintf("+1555000000%d", r.IntN(6))})
			}
			now = now.Add(time.Duration(r.IntN(60)-10) * time.Second)
			d := step(t, c, in, now)

			want, dup := first[id]
			if !dup {
				for _, l := range in.Linked {
					if !held[l] {
						seq++ // one identity.linked for all the new ones
						break
					}
				}
				for _, l := range in.Linked {
					held[l] = true
				}
				seq++
				want, first[id] = seq, seq
			}
			if d.Ack == nil || *d.Ack != (journey.Ack{ID: id, Customer: "c-42", Seq: want, Duplicate: dup}) {
				t.Fatalf("run %d step %d (%s): decision %+v ack %+v, want seq %d duplicate %v", run, i, id, d, d.Ack, want, dup)
			}
			for _, e := range d.Events {
				if e.Seq != stored+1 || e.RecordedAt.Before(last) {
					t.Fatalf("run %d step %d: event %d at %v after %d at %v", run, i, e.Seq, e.RecordedAt, stored, last)
				}
				stored, last = e.Seq, e.RecordedAt
			}
			if c.Seq != seq || len(c.Identities["phone"]) != len(held) {
				t.Fatalf("run %d step %d: customer at seq %d with %d phones, model %d with %d", run, i, c.Seq, len(c.Identities["phone"]), seq, len(held))
			}
			if r.IntN(40) == 0 {
				c = rebuild(t, "c-42", c.EncodeSnapshot(), nil)
			}
		}
	}
}
