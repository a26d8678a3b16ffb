package persistence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/throughline/throughline/journey"
)

// A block's filter holds each of its ids, and answers "maybe" for few
// others: ~0.05% at 64 ids (dedupfilter.go), bounded here at 0.15%.
func TestDedupFilterRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	digest := func() [2]uint64 { return [2]uint64{rng.Uint64(), rng.Uint64()} }
	ids := make([]journey.DedupID, journey.DedupBlockIDs)
	for i := range ids {
		ids[i] = journey.DedupID{Digest: digest(), Seq: uint64(i + 1)}
	}
	f := appendDedupFilter([]byte("x"), ids)
	if len(f) != 1+dedupFilterBytes || f[0] != 'x' {
		t.Fatalf("appendDedupFilter wrote %d bytes after %q", len(f)-1, f[:1])
	}
	f = f[1:]
	for _, id := range ids {
		if !dedupFilterMay(f, id.Digest) {
			t.Fatalf("the filter does not hold its id %x", id.Digest)
		}
	}
	const others = 200_000
	maybe := 0
	for range others {
		if dedupFilterMay(f, digest()) {
			maybe++
		}
	}
	if maybe > others*15/10_000 {
		t.Errorf("%d of %d other ids may be in the block", maybe, others)
	}
	// An empty block's filter holds nothing; a full one everything.
	if dedupFilterMay(make([]byte, dedupFilterBytes), digest()) {
		t.Error("an empty filter may hold an id")
	}
	if !dedupFilterMay(bytes.Repeat([]byte{0xFF}, dedupFilterBytes), digest()) {
		t.Error("a full filter rules an id out")
	}
}

// The key of a block carries its last and first seqs and its filter, and
// the key codec reads them back.
func TestFilteredBlockKey(t *testing.T) {
	ids := dedupIDs(events("c/1", 9, 3, t0))
	b := appendFilteredBlockKey(nil, 63, "c/1", ids)
	k, err := decodeKey(b)
	if err != nil {
		t.Fatal(err)
	}
	want := key{Kind: kindDedupBlock, Partition: 63, Customer: "c/1", Seq: 12, BlockFirst: 10,
		BlockFilter: string(appendDedupFilter(nil, ids))}
	if k != want {
		t.Errorf("decoded %+v, want %+v", k, want)
	}
	prefix := dedupBlockPrefix(63, "c/1")
	last, first, filter, filtered, err := dedupBlockKeyTail(b[len(prefix):])
	if err != nil || !filtered || last != 12 || first != 10 || string(filter) != want.BlockFilter {
		t.Errorf("tail: %d %d %v %v", last, first, filtered, err)
	}
	old := appendDedupBlockKey(nil, 63, "c/1", 12)
	if last, _, _, filtered, err := dedupBlockKeyTail(old[len(prefix):]); err != nil || filtered || last != 12 {
		t.Errorf("old tail: %d %v %v", last, filtered, err)
	}
	if _, _, _, _, err := dedupBlockKeyTail(b[len(prefix) : len(b)-1]); !errors.Is(err, errKey) {
		t.Errorf("short tail: %v", err)
	}
}

// A look-up reads a block only if its filter may hold the id: a block
// whose value is garbage is read (an error) when its filter holds the id,
// and not at all otherwise. Blocks keyed the old way, by last seq alone (a
// store written before filters), are read and found.
func TestLookupBlocksByFilter(t *testing.T) {
	e := openPebble(t, vfs.NewMem(), "db", Options{Partitions: 1})
	s, db := e.Store(0), e.(*pebbleEngine).db
	ctx := context.Background()
	stored := events("c", 0, 4*journey.DedupBlockIDs, t0)
	if err := appendWait(t, s, &AppendRequest{Customer: "c", Events: stored, IDsInBlocks: true}); err != nil {
		t.Fatal(err)
	}
	// Four blocks of 64 ids: the first keyed the old way, the others by
	// appends.
	ids := dedupIDs(stored)
	blocks := [][]journey.DedupID{ids[:64], ids[64:128], ids[128:192], ids[192:]}
	if err := db.Set(appendDedupBlockKey(nil, 0, "c", 64), appendDedupBlock(nil, blocks[0]), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	prev := uint64(len(stored))
	for _, b := range blocks[1:] {
		req := &AppendRequest{Customer: "c", PrevSeq: prev, Events: events("c", prev, 1, t0.Add(time.Hour)), IDsInBlocks: true, DedupBlock: b}
		if err := appendWait(t, s, req); err != nil {
			t.Fatal(err)
		}
		prev++
	}
	for _, ev := range []journey.Event{stored[0], stored[63], stored[64], stored[150], stored[255]} {
		if seq, found, _, err := s.LookupEventIn(ctx, "c", ev.ID, 1, 256); err != nil || !found || seq != ev.Seq {
			t.Errorf("LookupEventIn(%s) = %d %v %v", ev.ID, seq, found, err)
		}
	}
	// The third block's value is garbage from now on.
	third := appendFilteredBlockKey(nil, 0, "c", blocks[2])
	if err := db.Set(third, []byte{1, 2, 3}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.LookupEventIn(ctx, "c", stored[150].ID, 1, 256); err == nil {
		t.Error("a garbage block whose filter holds the id was not read")
	}
	if seq, found, _, err := s.LookupEventIn(ctx, "c", stored[200].ID, 1, 256); err != nil || !found || seq != stored[200].Seq {
		t.Errorf("an id after the garbage block: %d %v %v", seq, found, err)
	}
	// New ids the third block's filter rules out: the look-up passes it by.
	_, _, filter, _, err := dedupBlockKeyTail(third[len(dedupBlockPrefix(0, "c")):])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 0; n < 100; i++ {
		id := fmt.Sprintf("new-%d", i)
		if dedupFilterMay(filter, journey.IDDigest(id)) {
			continue
		}
		n++
		if _, found, _, err := s.LookupEventIn(ctx, "c", id, 1, 256); err != nil || found {
			t.Fatalf("LookupEventIn(%s) = %v %v", id, found, err)
		}
	}
	// The range stops at the first seq past it: blocks after it are not
	// read, so the garbage one is not either.
	if _, found, _, err := s.LookupEventIn(ctx, "c", stored[150].ID, 1, 100); err != nil || found {
		t.Errorf("LookupEventIn 1..100 of an id of seq 151: %v %v", found, err)
	}
}
