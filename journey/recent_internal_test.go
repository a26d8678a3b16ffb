package journey

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// The ids held answer the same whether found by scanning the ring (up to
// recentLinearMax) or through the map (past it), across the count limit
// and the window: checked against a plain model.
func TestRecentIDsAgainstAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRecentIDs()
	type held struct {
		seq uint64
		at  time.Time
	}
	model := map[string]held{}
	var order []string // oldest first
	at := time.Unix(1_800_000_000, 0)
	for seq := uint64(1); seq <= RecentIDsMax+600; seq++ {
		// Mostly a new id; sometimes one seen before (a retry).
		id := fmt.Sprintf("e-%d", seq)
		if len(order) > 0 && rng.IntN(5) == 0 {
			id = order[rng.IntN(len(order))]
		}
		if seq == 2000 {
			at = at.Add(IdempotencyWindow + time.Minute) // the earlier ids leave the window
		}
		at = at.Add(time.Millisecond)
		if _, ok := model[id]; !ok {
			for len(order) > 0 && at.Sub(model[order[0]].at) > IdempotencyWindow {
				delete(model, order[0])
				order = order[1:]
			}
			if len(order) == RecentIDsMax {
				delete(model, order[0])
				order = order[1:]
			}
			model[id] = held{seq, at}
			order = append(order, id)
		}
		r.add(id, seq, at)
		if r.n != len(order) {
			t.Fatalf("after %d adds: %d ids held, the model holds %d", seq, r.n, len(order))
		}
		for _, probe := range []string{id, order[0], order[len(order)/2], fmt.Sprintf("e-%d", seq+1)} {
			got, ok := r.lookup(probe)
			want, wok := model[probe]
			if ok != wok || (ok && got != want.seq) {
				t.Fatalf("after %d adds: lookup(%s) = %d %v, the model says %d %v", seq, probe, got, ok, want.seq, wok)
			}
		}
	}
	if r.complete {
		t.Error("ids left the window but the set says it is complete")
	}
}
