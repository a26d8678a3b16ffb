package journey

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The ids held answer the same whether found by scanning the ring (up to
// recentLinearMax) or through the index (past it), across the count limit
// and the window: checked against a plain model.
func TestRecentIDsAgainstAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRecentIDs()
	type held struct {
		seq uint64
		at  time.Time
	}
	model := map[string]held{}
	addedAt := map[string]time.Time{} // every id added, when first
	var order []string                // oldest first
	at := time.Unix(1_800_000_000, 0)
	for seq := uint64(1); seq <= 20*RecentIDsMax; seq++ {
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
			if _, ok := addedAt[id]; !ok {
				addedAt[id] = at
			}
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
	// Every id that left the ring inside the window is in a filter: a
	// filter has no false negatives.
	for id, first := range addedAt {
		if _, held := model[id]; !held && at.Sub(first) <= IdempotencyWindow && !r.mayHoldAny(digestID(id), at) {
			t.Fatalf("%s left the ring but no filter may hold it", id)
		}
	}
}

// Ids never stored are certainly new but for the filters' false positives
// (about 0.04% past 20,000 ids), and the filters stay within RecentFilterBytesMax: past it the
// oldest give way, and until their ids leave the window every unknown id
// may have been stored.
func TestRecentIDsFilters(t *testing.T) {
	r := newRecentIDs()
	at := time.Unix(1_800_000_000, 0)
	const stored = 20_000
	for seq := uint64(1); seq <= stored; seq++ {
		r.add(fmt.Sprintf("e-%d", seq), seq, at.Add(time.Duration(seq)*time.Millisecond))
	}
	now := at.Add(time.Minute)
	maybe := 0
	for i := range 10_000 {
		if r.mayHoldAny(digestID(fmt.Sprintf("never-%d", i)), now) {
			maybe++
		}
	}
	t.Logf("%d of 10,000 ids never stored may be held", maybe)
	if maybe > 10 {
		t.Errorf("%d of 10,000 ids never stored may be held: over 0.1%% (at 20 bits an id, ~0.04%%)", maybe)
	}
	for seq := uint64(1); seq <= stored-RecentIDsMax; seq++ {
		if !r.mayHoldAny(digestID(fmt.Sprintf("e-%d", seq)), now) {
			t.Fatalf("e-%d stored, not in the ring, and no filter may hold it", seq)
		}
	}
	if r.uncoveredUntil != 0 {
		t.Fatalf("uncovered until %d after %d ids; the filters should hold them all", r.uncoveredUntil, stored)
	}
	// Far past what the filters hold.
	for seq := uint64(stored + 1); seq <= 200_000; seq++ {
		r.add(fmt.Sprintf("e-%d", seq), seq, at.Add(time.Duration(seq)*time.Millisecond))
	}
	if got := r.filterBits() / 8; got > RecentFilterBytesMax {
		t.Errorf("filters of %d bytes, over %d", got, RecentFilterBytesMax)
	}
	if !r.mayHoldAny(digestID("never"), now) {
		t.Error("filters gave up ids inside the window, yet an unknown id is certainly new")
	}
	if r.mayHoldAny(digestID("e-1"), at.Add(2*IdempotencyWindow)) {
		// uncoveredUntil passed and e-1's filter is long gone: a false
		// positive of the remaining filters is the only way to true.
		t.Log("e-1 may be held after twice the window (a false positive)")
	}
	if r.uncoveredUntil > at.Add(IdempotencyWindow+200*time.Second).UnixNano() {
		t.Errorf("uncovered until %v, past the window after the last id given up", time.Unix(0, r.uncoveredUntil))
	}
}

// The ring keeps recorded_at in whole seconds: an id is still known (held,
// or in a filter) at the very end of its window whatever its nanoseconds,
// and the seq and digest come back exactly, past 32 bits too.
func TestRecentIDsRingPacking(t *testing.T) {
	for _, c := range []struct{ sec, ns int64 }{{1_800_000_000, 0}, {1_800_000_000, 1}, {1_800_000_000, 999_999_999}, {4_500_000_000, 999_999_999}} {
		ns := c.ns
		r := newRecentIDs()
		first := time.Unix(c.sec, ns) // 2027, and 2112: past 32-bit unix seconds
		const seq = 1<<40 + 7
		r.add("e-first", seq, first)
		if got, ok := r.lookup("e-first"); !ok || got != seq {
			t.Fatalf("ns %d: lookup = %d %v, want %d", ns, got, ok, uint64(seq))
		}
		end := first.Add(IdempotencyWindow)
		r.add("e-later", seq+1, end) // at the window's end: the first is inside it still
		if _, ok := r.lookup("e-first"); !ok && !r.mayHoldAny(digestID("e-first"), end) {
			t.Fatalf("ns %d: e-first forgotten at the end of its window", ns)
		}
		if e := r.at(0); e.id != digestID("e-first") || e.seq != seq || e.at < first.UnixNano() || e.at >= first.UnixNano()+int64(time.Second) {
			t.Fatalf("ns %d: entry %+v", ns, e)
		}
		r.add("e-much-later", seq+2, end.Add(2*time.Second)) // past it by more than the rounding
		if _, ok := r.lookup("e-first"); ok {
			t.Fatalf("ns %d: e-first still held 2 s past its window", ns)
		}
	}
}

// A time before the ring's epoch reads back later than it was (the id is
// kept longer), never earlier.
func TestRecentIDsRingBeforeItsEpoch(t *testing.T) {
	r := newRecentIDs()
	at := time.Unix(1_500_000_000, 5) // 2017
	r.add("e-old", 1, at)
	if e := r.at(0); e.at < at.UnixNano() {
		t.Fatalf("read back %d, before %d", e.at, at.UnixNano())
	}
	if _, ok := r.lookup("e-old"); !ok {
		t.Fatal("e-old not held")
	}
}

// The count-by-type times keep the latest CountPerTypeMax, oldest first,
// in room for no more.
func TestPushTimeKeepsTheLatest(t *testing.T) {
	var tt typeTimes
	for i := range int64(3 * CountPerTypeMax) {
		tt.push(i)
		if i%7 == 0 || i == CountPerTypeMax+5 {
			tt.ordered() // a snapshot's, between pushes
		}
		ordered := tt
		ordered.Times = slices.Clone(tt.Times)
		ordered.ordered()
		times := ordered.Times
		want := min(int(i)+1, CountPerTypeMax)
		if len(times) != want || cap(tt.Times) > CountPerTypeMax {
			t.Fatalf("after %d: %d times in room for %d", i, len(times), cap(tt.Times))
		}
		for j, got := range times {
			if got != i+1-int64(want)+int64(j) {
				t.Fatalf("after %d: times %v", i, times)
			}
		}
	}
	// A snapshot's times past the bound (oldest first): the latest stay.
	tt = typeTimes{Times: make([]int64, CountPerTypeMax+10)}
	for i := range tt.Times {
		tt.Times[i] = int64(i)
	}
	tt.push(1000)
	if len(tt.Times) != CountPerTypeMax || tt.Times[0] != 11 || tt.Times[CountPerTypeMax-1] != 1000 {
		t.Fatalf("a snapshot's %d times and one more: %v", CountPerTypeMax+10, tt.Times)
	}
}

// mayHoldAny is mayHold's answer without the seqs of the blocks.
func (r *recentIDs) mayHoldAny(d idDigest, now time.Time) bool {
	may, _, _ := r.mayHold(d, now)
	return may
}

// Every client id that left memory inside the window is found in the
// store: by its dedup key (kind idKeyed), or in a dedup block handed over
// (idInBlock), whose seq the filters' or the uncovered range holds. Past
// the filters' room new ids get dedup keys, and the filters stay within
// RecentFilterBytesMax.
func TestRecentIDsDedupBlocksCoverEveryID(t *testing.T) {
	r := newRecentIDs()
	at := time.Unix(1_800_000_000, 0)
	const n = 45_000
	kinds := make([]idKind, n+1)
	inBlock := map[uint64]bool{}
	lastBlockEnd := uint64(0)
	for seq := uint64(1); seq <= n; seq++ {
		r.add(fmt.Sprintf("e-%d", seq), seq, at.Add(time.Duration(seq)*time.Millisecond))
		kinds[seq] = r.lastKind()
		block := r.handOver(seq)
		r.landed(seq)
		if block != nil {
			if len(block) != DedupBlockIDs {
				t.Fatalf("block of %d ids", len(block))
			}
			for i, id := range block {
				if id.Seq <= lastBlockEnd || (i > 0 && id.Seq <= block[i-1].Seq) || kinds[id.Seq] != idInBlock {
					t.Fatalf("block id of seq %d (kind %d) after %d", id.Seq, kinds[id.Seq], lastBlockEnd)
				}
				if id.Digest != digestID(fmt.Sprintf("e-%d", id.Seq)) {
					t.Fatalf("block id of seq %d: another digest", id.Seq)
				}
				inBlock[id.Seq] = true
				lastBlockEnd = id.Seq
			}
		}
		if got := r.filterBits() / 8; got > RecentFilterBytesMax {
			t.Fatalf("after %d ids, filters of %d bytes", seq, got)
		}
	}
	keyed := 0
	now := at.Add(n*time.Millisecond + time.Second)
	for seq := uint64(1); seq <= n; seq++ {
		d := digestID(fmt.Sprintf("e-%d", seq))
		if _, ok := r.find(d); ok {
			continue
		}
		if _, ok := r.findLeft(d); ok {
			continue
		}
		may, from, to := r.mayHold(d, now)
		switch {
		case !may:
			t.Fatalf("e-%d left memory; nothing may hold it", seq)
		case kinds[seq] == idKeyed:
			keyed++
		case !inBlock[seq] || seq < from || seq > to:
			t.Fatalf("e-%d: in a block %v, looked up in blocks of %d..%d", seq, inBlock[seq], from, to)
		}
	}
	t.Logf("%d of %d ids keyed, %d in blocks", keyed, n, len(inBlock))
	if keyed == 0 || len(inBlock) < 24_000 {
		t.Errorf("%d ids keyed, %d in blocks: the filters' room should hold ~25,000", keyed, len(inBlock))
	}
}

// A snapshot's filter whose size is not a power of two fails the snapshot
// (its positions are masked); one of a power of two is read.
func TestSnapshotFilterSizeIsAPowerOfTwo(t *testing.T) {
	for _, words := range []int{128, 3, 96} {
		b := binary.AppendUvarint(nil, 1) // one filter
		b = binary.AppendUvarint(b, 5)    // ids
		b = binary.AppendVarint(b, 1)     // newest
		b = binary.AppendUvarint(binary.AppendUvarint(b, 1), 5)
		b = binary.AppendUvarint(b, uint64(words))
		for range words {
			b = binary.BigEndian.AppendUint64(b, 1)
		}
		r := recordReader{b: b}
		var rec recentIDs
		r.filters(&rec, true)
		if pow2 := words&(words-1) == 0; (r.err == nil) != pow2 || pow2 && len(rec.filterList()) != 1 {
			t.Errorf("a filter of %d words: err %v, %d filters", words, r.err, len(rec.filterList()))
		}
	}
}

// A ring too small to need its index finds the ids that wrapped around
// its end and those that stayed when others left with the window (its
// sketch of the ids held is redone without those), and not the ones that
// left.
func TestRecentIDsFindAcrossTheRingsEnd(t *testing.T) {
	r := newRecentIDs()
	t0 := time.Unix(1_800_000_000, 0)
	seq := uint64(0)
	add := func(at time.Time, n int) {
		for range n {
			seq++
			r.add(fmt.Sprintf("e-%d", seq), seq, at)
		}
	}
	add(t0, 6)                                  // leave with the window
	add(t0.Add(IdempotencyWindow-time.Hour), 4) // stay
	size := len(r.ring)
	add(t0.Add(IdempotencyWindow+time.Hour), size-4) // the first six leave; these wrap
	if r.index != nil || len(r.ring) != size || r.start+r.n <= len(r.ring) {
		t.Fatalf("ring of %d, start %d, %d held, index %v: the test needs a wrapped ring without an index", len(r.ring), r.start, r.n, r.index != nil)
	}
	for s := uint64(1); s <= seq+1; s++ {
		got, ok := r.find(digestID(fmt.Sprintf("e-%d", s)))
		if want := s > 6 && s <= seq; ok != want || ok && got != s {
			t.Errorf("find(e-%d) = %d %v, want held %v", s, got, ok, want)
		}
	}
}

// The index is sized to the ring: a power of two at least twice its
// length (so at most half full) and under four times it, up to its
// largest; every id held is found through it as the ring grows.
func TestRecentIDsIndexSizedToTheRing(t *testing.T) {
	r := newRecentIDs()
	at := time.Unix(1_800_000_000, 0)
	smaller := false
	for seq := uint64(1); seq <= RecentIDsMax+10; seq++ {
		r.add(fmt.Sprintf("e-%d", seq), seq, at.Add(time.Duration(seq)*time.Millisecond))
		if r.index == nil {
			if r.n > recentLinearMax {
				t.Fatalf("%d ids held without an index", r.n)
			}
			continue
		}
		n, ring := len(r.index), len(r.ring)
		if n&(n-1) != 0 || n < 2*ring || (n >= 4*ring && n != recentIndexSlotsMax) || n > recentIndexSlotsMax {
			t.Fatalf("a ring of %d has an index of %d slots", ring, n)
		}
		smaller = smaller || n < recentIndexSlotsMax
		for i := range r.n {
			e := r.at(i)
			if got, ok := r.find(e.id); !ok || got != e.seq {
				t.Fatalf("after %d adds: the id of seq %d found as %d %v", seq, e.seq, got, ok)
			}
		}
	}
	if !smaller {
		t.Fatal("no ring had an index smaller than the largest")
	}
}
