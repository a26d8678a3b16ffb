package persistence

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// dedupIDs are the dedup block entries of the events.
func dedupIDs(evs []journey.Event) []journey.DedupID {
	out := make([]journey.DedupID, len(evs))
	for i, ev := range evs {
		out[i] = journey.DedupID{Digest: journey.IDDigest(ev.ID), Seq: ev.Seq, RecordedAt: ev.RecordedAt.UnixNano()}
	}
	return out
}

// testDedupBlocks: ids appended with IDsInBlocks are found once a dedup
// block holds them, in the block's seq range only (the memory store keeps
// every id exactly), and an erasure leaves tombstones for them.
func testDedupBlocks(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	ctx := context.Background()
	first := events("c", 0, 6, t0)
	if err := appendWait(t, s, &AppendRequest{Customer: "c", Events: first, IDsInBlocks: true}); err != nil {
		t.Fatal(err)
	}
	// Ids 2..4 leave the journey's memory: a block in the next append.
	next := events("c", 6, 1, t0.Add(time.Hour))
	req := &AppendRequest{Customer: "c", PrevSeq: 6, Events: next, IDsInBlocks: true, DedupBlock: dedupIDs(first[1:4])}
	if err := appendWait(t, s, req); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c-e2", "c-e3", "c-e4"} {
		seq, found, erased, err := s.LookupEvent(ctx, "c", id)
		if err != nil || !found || erased || seq != first[id[3]-'1'].Seq {
			t.Errorf("LookupEvent(%s) = %d %v %v %v", id, seq, found, erased, err)
		}
		if _, found, _, err := s.LookupEventIn(ctx, "c", id, 2, 4); err != nil || !found {
			t.Errorf("LookupEventIn(%s, 2..4) = %v %v", id, found, err)
		}
	}
	if _, ok := e.(*memEngine); !ok {
		// Not in a block yet: the journey still holds it.
		if _, found, _, _ := s.LookupEvent(ctx, "c", "c-e5"); found {
			t.Error("an id in no block and with no dedup key found")
		}
		if _, found, _, _ := s.LookupEventIn(ctx, "c", "c-e3", 5, 9); found {
			t.Error("LookupEventIn found an id outside its seq range")
		}
	}
	if _, found, _, _ := s.LookupEvent(ctx, "d", "c-e3"); found {
		t.Error("another customer's id found")
	}
	bad := []*AppendRequest{
		{Customer: "c", PrevSeq: 7, Events: events("c", 7, 1, t0), DedupBlock: []journey.DedupID{{Seq: 8}}}, // not stored before
		{Customer: "c", PrevSeq: 7, Events: events("c", 7, 1, t0), DedupBlock: []journey.DedupID{{Seq: 3}, {Seq: 2}}},
		{Customer: "c", PrevSeq: 7, Events: events("c", 7, 1, t0), DedupBlock: make([]journey.DedupID, DedupBlockMax+1)},
	}
	for i, r := range bad {
		if err := appendWait(t, s, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad block %d: %v", i, err)
		}
	}
	if err := s.Erase(ctx, "c", nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c-e3", "c-e5"} {
		if _, found, erased, err := s.LookupEvent(ctx, "c", id); err != nil || found || !erased {
			t.Errorf("LookupEvent(%s) after erase: found %v erased %v %v", id, found, erased, err)
		}
	}
}

// LastDedupBlock is the last seq of the customer's last block: 0 before
// any, MaxUint64 from the memory store, which keeps every id exactly.
func testLastDedupBlock(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	ctx := context.Background()
	_, exact := e.(*memEngine)
	want := func(w uint64) uint64 {
		if exact {
			return math.MaxUint64
		}
		return w
	}
	if last, err := s.LastDedupBlock(ctx, "c"); err != nil || last != want(0) {
		t.Fatalf("before any block: %d %v", last, err)
	}
	first := events("c", 0, 8, t0)
	if err := appendWait(t, s, &AppendRequest{Customer: "c", Events: first, IDsInBlocks: true}); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]journey.Event{first[0:3], first[3:5]} {
		prev, _ := s.LastSeq(ctx, "c")
		req := &AppendRequest{Customer: "c", PrevSeq: prev, Events: events("c", prev, 1, t0), IDsInBlocks: true, DedupBlock: dedupIDs(b)}
		if err := appendWait(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	if last, err := s.LastDedupBlock(ctx, "c"); err != nil || last != want(5) {
		t.Fatalf("after blocks to seq 5: %d %v", last, err)
	}
	if last, err := s.LastDedupBlock(ctx, "b"); err != nil || last != want(0) {
		t.Fatalf("another customer: %d %v", last, err)
	}
}
