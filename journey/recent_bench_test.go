package journey

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkRecentIDsBusyCustomers is what a new event costs the recent ids
// of one of 1,000 customers holding 20,000 ids each (~64 MiB of filters,
// past the caches): the look-up of its id in the ring and the filters,
// then its add. Run it for a fixed count (go test ./journey -run -
// -bench RecentIDsBusy -benchtime=1000000x): every op adds an id, and
// past ~10 million ops the customers' filters are out of room and every
// id is uncovered, another path.
func BenchmarkRecentIDsBusyCustomers(b *testing.B) {
	const customers, held = 1000, 20_000
	at := time.Unix(1_800_000_000, 0)
	rs := make([]recentIDs, customers)
	for i := range rs {
		for seq := uint64(1); seq <= held; seq++ {
			rs[i].add(fmt.Sprintf("c%d-e%d", i, seq), seq, at)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seq := uint64(held)
	b.ResetTimer()
	for i := range b.N {
		r := &rs[rng.IntN(customers)]
		seq++
		id := fmt.Sprintf("new-%d", i)
		d := digestID(id)
		if _, ok := r.find(d); !ok {
			r.mayHold(d, at)
		}
		r.addClient(recentEntry{id: d, seq: seq, at: unixNanos(at)})
	}
}
