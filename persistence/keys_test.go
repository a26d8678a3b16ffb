package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/throughline/throughline/journey"
)

// sampleKeys holds one key of every kind, with awkward parts.
func sampleKeys() []key {
	return []key{
		{Kind: kindMeta, Partition: metaPartition},
		{Kind: kindEvent, Partition: 0, Customer: "c-42", Seq: 1},
		{Kind: kindEvent, Partition: PartitionsMax - 1, Customer: "a/b\x00c", Seq: math.MaxUint64},
		{Kind: kindSnapshot, Partition: 7, Customer: ""},
		{Kind: kindDedup, Partition: 63, Customer: "c/1", EventID: "gw-7f3a-000123"},
		{Kind: kindDedupBlock, Partition: 63, Customer: "c/1", Seq: 1 << 40},
		{Kind: kindDedupBlock, Partition: 63, Customer: "c/1", Seq: 12, BlockFirst: 10,
			BlockFilter: string(appendDedupFilter(nil, sampleBlock()))},
		{Kind: kindIdentity, Partition: 12, IDKind: "phone", IDValue: "+15551230000"},
		{Kind: kindSegment, Partition: 3, EventType: "payment.failed", Hour: 494000, Customer: "c-1"},
		{Kind: kindDue, Partition: 256, At: 1_700_000_000_000_000_000, Customer: "c", DueKind: "offer", DueRef: "o/1"},
		{Kind: kindTombstone, Partition: 1, Customer: "gone", IDHash: hashEventID("e-1")},
		{Kind: kindMark, Partition: 9, Broadcast: "bc-1", Customer: "c/2"},
		{Kind: kindErasedID, Partition: 5, IDHash: hashEventID("twilio:SM1")},
		{Kind: kindRecord, Partition: 0, Coll: "audit", RecKey: "\x00\x01k"},
		{Kind: kindApplied, Partition: 4},
		{Kind: kindRaftLog, Partition: 5, Index: math.MaxUint64},
		{Kind: kindRaftStable, Partition: 6, VarName: "CurrentTerm"},
	}
}

// sampleBlock is the dedup block of sampleKeys' filtered block key.
func sampleBlock() []journey.DedupID { return dedupIDs(events("c/1", 9, 3, t0)) }

func TestKeysRoundTrip(t *testing.T) {
	for _, want := range sampleKeys() {
		b := want.encode(nil)
		got, err := decodeKey(b)
		if err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		if got != want {
			t.Errorf("round trip of %+v gave %+v", want, got)
		}
	}
}

// The builders, the typed decoders and key.encode agree.
func TestKeysBuildersAndDecoders(t *testing.T) {
	p, c := 5, "cust/1"
	if gp, gc, gs, err := decodeEventKey(eventKey(p, c, 9)); err != nil || gp != p || gc != c || gs != 9 {
		t.Errorf("event key: %d %q %d %v", gp, gc, gs, err)
	}
	if gp, gc, err := decodeSnapshotKey(snapshotKey(p, c)); err != nil || gp != p || gc != c {
		t.Errorf("snapshot key: %d %q %v", gp, gc, err)
	}
	if gp, gc, id, err := decodeDedupKey(dedupKey(p, c, "e/1")); err != nil || gp != p || gc != c || id != "e/1" {
		t.Errorf("dedup key: %d %q %q %v", gp, gc, id, err)
	}
	if gp, k, v, err := decodeIdentityKey(identityKey(p, "email", "a@b.c")); err != nil || gp != p || k != "email" || v != "a@b.c" {
		t.Errorf("identity key: %d %q %q %v", gp, k, v, err)
	}
	if gp, ty, h, gc, err := decodeSegmentKey(segmentKey(p, "page.viewed", 77, c)); err != nil || gp != p || ty != "page.viewed" || h != 77 || gc != c {
		t.Errorf("segment key: %d %q %d %q %v", gp, ty, h, gc, err)
	}
	if gp, at, gc, k, r, err := decodeDueKey(dueKey(p, 123, c, "after", "r")); err != nil || gp != p || at != 123 || gc != c || k != "after" || r != "r" {
		t.Errorf("due key: %d %d %q %q %q %v", gp, at, gc, k, r, err)
	}
	if gp, gc, h, err := decodeTombstoneKey(tombstoneKey(p, c, hashEventID("x"))); err != nil || gp != p || gc != c || h != hashEventID("x") {
		t.Errorf("tombstone key: %d %q %v", gp, gc, err)
	}
	if err := decodeMetaKey(metaKey()); err != nil {
		t.Errorf("meta key: %v", err)
	}
	// A typed decoder refuses another kind.
	if _, _, _, err := decodeEventKey(snapshotKey(p, c)); !errors.Is(err, errKey) {
		t.Errorf("event decoder on a snapshot key: %v", err)
	}
	for _, k := range sampleKeys() {
		var built []byte
		switch k.Kind {
		case kindMeta:
			built = metaKey()
		case kindEvent:
			built = eventKey(k.Partition, k.Customer, k.Seq)
		case kindSnapshot:
			built = snapshotKey(k.Partition, k.Customer)
		case kindDedup:
			built = dedupKey(k.Partition, k.Customer, k.EventID)
		case kindDedupBlock:
			built = appendDedupBlockKey(nil, k.Partition, k.Customer, k.Seq)
			if k.BlockFilter != "" {
				built = appendFilteredBlockKey(nil, k.Partition, k.Customer, sampleBlock())
			}
		case kindIdentity:
			built = identityKey(k.Partition, k.IDKind, k.IDValue)
		case kindSegment:
			built = segmentKey(k.Partition, k.EventType, k.Hour, k.Customer)
		case kindDue:
			built = dueKey(k.Partition, k.At, k.Customer, k.DueKind, k.DueRef)
		case kindTombstone:
			built = tombstoneKey(k.Partition, k.Customer, k.IDHash)
		case kindMark:
			built = markKey(k.Partition, k.Broadcast, k.Customer)
		case kindRecord:
			built = recordKey(k.Partition, k.Coll, k.RecKey)
		case kindErasedID:
			built = erasedIDKey(k.Partition, k.IDHash)
		case kindApplied:
			built = appliedKey(k.Partition)
		case kindRaftLog:
			built = raftLogKey(k.Partition, k.Index)
		case kindRaftStable:
			built = raftStableKey(k.Partition, []byte(k.VarName))
		}
		if enc := k.encode(nil); !bytes.Equal(built, enc) {
			t.Errorf("kind %q: builder %x, encode %x", k.Kind, built, enc)
		}
	}
}

func TestKeysOrdering(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nums := []uint64{0, 1, 2, 255, 256, 1 << 32, math.MaxUint64 - 1, math.MaxUint64}
	for range 200 {
		nums = append(nums, rng.Uint64N(1<<20), rng.Uint64())
	}
	cases := map[string]func(n uint64) []byte{
		"event seq":    func(n uint64) []byte { return eventKey(3, "c/x", n) },
		"due time":     func(n uint64) []byte { return dueKey(3, n, "c", "k", "r") },
		"segment hour": func(n uint64) []byte { return segmentKey(3, "t", n, "c") },
		"raft index":   func(n uint64) []byte { return raftLogKey(3, n) },
	}
	for name, build := range cases {
		keys := make([][]byte, len(nums))
		for i, n := range nums {
			keys[i] = build(n)
		}
		for i := range nums {
			for j := range nums {
				if want, got := cmpUint(nums[i], nums[j]), bytes.Compare(keys[i], keys[j]); want != got {
					t.Fatalf("%s: %d vs %d compare %d as bytes, %d as numbers", name, nums[i], nums[j], got, want)
				}
			}
		}
	}
	// Due work of another customer at an earlier time sorts first, whatever
	// the customer ids.
	if bytes.Compare(dueKey(0, 10, "zzzzzz", "k", "r"), dueKey(0, 11, "a", "k", "r")) >= 0 {
		t.Error("due keys do not sort by time before customer")
	}
	// Every key of a partition sorts inside the partition's range.
	if bytes.Compare(eventKey(1, "c", math.MaxUint64), eventKey(2, "", 0)) >= 0 {
		t.Error("partition 1 key sorts after partition 2")
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestKeysInjective(t *testing.T) {
	pairs := [][2][]byte{
		{dedupKey(0, "a/b", "c"), dedupKey(0, "a", "b/c")},
		{dedupKey(0, "ab", ""), dedupKey(0, "a", "b")},
		{identityKey(0, "a/b", "c"), identityKey(0, "a", "b/c")},
		{identityKey(0, "phone\x00", "1"), identityKey(0, "phone", "\x001")},
		{dueKey(0, 1, "a/b", "c", "d"), dueKey(0, 1, "a", "b/c", "d")},
		{dueKey(0, 1, "a", "bc", ""), dueKey(0, 1, "a", "b", "c")},
		{segmentKey(0, "t", 1, "c"), segmentKey(0, "t\x00\x00\x00\x00\x00\x00\x00\x00\x01", 0, "c")},
		{eventKey(0, "c", 1), eventKey(1, "c", 1)},
		{snapshotKey(0, "c"), dedupKey(0, "c", "")},
	}
	for _, p := range pairs {
		if bytes.Equal(p[0], p[1]) {
			t.Errorf("two tuples encode to %q", p[0])
		}
	}
	// Exhaustively over a small alphabet: every distinct tuple of every
	// kind has its own encoding.
	alphabet := []string{"", "a", "/", "\x00", "a/", "/a", "aa", "\x00\x01"}
	seen := make(map[string]key)
	for _, s1 := range alphabet {
		for _, s2 := range alphabet {
			for _, s3 := range alphabet {
				for _, n := range []uint64{0, 1, 256} {
					for _, k := range keysOf(1, s1, s2, s3, n) {
						enc := string(k.encode(nil))
						if prev, ok := seen[enc]; ok && prev != k {
							t.Fatalf("%+v and %+v both encode to %q", prev, k, enc)
						}
						seen[enc] = k
					}
				}
			}
		}
	}
}

// keysOf builds a key of every kind from the same parts.
func keysOf(p int, s1, s2, s3 string, n uint64) []key {
	var h [tombstoneHashLen]byte
	copy(h[:], s2)
	h[31] = byte(n)
	return []key{
		{Kind: kindMeta, Partition: metaPartition},
		{Kind: kindEvent, Partition: p, Customer: s1, Seq: n},
		{Kind: kindSnapshot, Partition: p, Customer: s1},
		{Kind: kindDedup, Partition: p, Customer: s1, EventID: s2},
		{Kind: kindDedupBlock, Partition: p, Customer: s1, Seq: n},
		{Kind: kindDedupBlock, Partition: p, Customer: s1, Seq: n, BlockFirst: n / 2, BlockFilter: filterOf(s2)},
		{Kind: kindIdentity, Partition: p, IDKind: s1, IDValue: s2},
		{Kind: kindSegment, Partition: p, EventType: s1, Hour: n, Customer: s2},
		{Kind: kindDue, Partition: p, At: n, Customer: s1, DueKind: s2, DueRef: s3},
		{Kind: kindTombstone, Partition: p, Customer: s1, IDHash: h},
		{Kind: kindMark, Partition: p, Broadcast: s1, Customer: s2},
		{Kind: kindRecord, Partition: p, Coll: s1, RecKey: s2},
		{Kind: kindApplied, Partition: p},
		{Kind: kindRaftLog, Partition: p, Index: n},
		{Kind: kindRaftStable, Partition: p, VarName: s1},
	}
}

// filterOf is a dedup block filter made of s's bytes, zero-padded.
func filterOf(s string) string {
	f := make([]byte, dedupFilterBytes)
	copy(f, s)
	return string(f)
}

// A partition's raft log and stable keys lie outside its state machine's
// range, and every other key of the partition inside it: the raft snapshot
// streams exactly the state.
func TestKeysStateMachineRange(t *testing.T) {
	const p = 7
	lower, upper := fsmLower(p), partitionEnd(p)
	in := func(k []byte) bool { return bytes.Compare(k, lower) >= 0 && bytes.Compare(k, upper) < 0 }
	for _, k := range keysOf(p, "a", "b", "c", 1) {
		enc := k.encode(nil)
		raft := k.Kind == kindRaftLog || k.Kind == kindRaftStable
		switch {
		case k.Kind == kindMeta:
			if in(enc) {
				t.Errorf("meta key inside partition %d's state", p)
			}
		case raft == in(enc):
			t.Errorf("kind %q: inside the state range = %v", k.Kind, in(enc))
		}
	}
	for _, other := range []int{p - 1, p + 1} {
		for _, k := range keysOf(other, "a", "b", "c", 1)[1:] {
			if in(k.encode(nil)) {
				t.Errorf("kind %q of partition %d inside partition %d's state", k.Kind, other, p)
			}
		}
	}
	if b := raftLogKey(p, 1); !bytes.HasPrefix(b, raftLogPrefix(p)) || bytes.HasPrefix(raftStableKey(p, nil), raftLogPrefix(p)) {
		t.Error("raft log prefix does not hold exactly the log keys")
	}
	if gp, idx, err := decodeRaftLogKey(raftLogKey(p, 42)); err != nil || gp != p || idx != 42 {
		t.Errorf("raft log key: %d %d %v", gp, idx, err)
	}
}

// A customer's event prefix is not a prefix of another customer's keys.
func TestEventPrefixIsTheCustomers(t *testing.T) {
	for _, other := range []string{"ab", "abc", "a", "ab\x00", ""} {
		if other == "ab" {
			continue
		}
		if bytes.HasPrefix(eventKey(0, other, 1), eventPrefix(0, "ab")) {
			t.Errorf("event key of %q has the prefix of %q", other, "ab")
		}
	}
	if !bytes.HasPrefix(eventKey(0, "ab", 1), eventPrefix(0, "ab")) {
		t.Error("event key lacks its own prefix")
	}
}

func TestKeysMalformed(t *testing.T) {
	good := dueKey(4, 99, "c", "k", "r")
	bad := map[string][]byte{
		"empty":             nil,
		"short":             {0, 1},
		"unknown kind":      {0, 1, 'z'},
		"truncated":         good[:len(good)-1],
		"trailing":          append(slices.Clone(good), 0),
		"meta elsewhere":    {0, 1, kindMeta},
		"event in meta":     {0xFF, 0xFF, kindEvent, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"length past end":   {0, 1, kindSnapshot, 0, 5, 'a'},
		"tombstone no hash": tombstoneKey(1, "c", [32]byte{})[:10],
		"block short tail":  append(appendDedupBlockKey(nil, 1, "c", 5), 0, 0, 0, 0, 0, 0, 0, 1, 0xFF),
	}
	for name, b := range bad {
		if _, err := decodeKey(b); !errors.Is(err, errKey) {
			t.Errorf("%s: decode %x: %v, want errKey", name, b, err)
		}
	}
}

func TestKeyPartLimit(t *testing.T) {
	long := strings.Repeat("x", keyPartMax+1)
	if err := checkParts("ok", long); !errors.Is(err, ErrInvalid) {
		t.Errorf("checkParts of %d bytes: %v", len(long), err)
	}
	if err := checkParts(strings.Repeat("x", keyPartMax)); err != nil {
		t.Errorf("checkParts at the limit: %v", err)
	}
	if !panics(func() { eventKey(0, long, 1) }) {
		t.Error("encoding an over-long part did not panic")
	}
	if !panics(func() { eventKey(PartitionsMax, "c", 1) }) {
		t.Error("encoding the reserved partition did not panic")
	}
	k := key{Kind: kindDue, Partition: 1, DueRef: strings.Repeat("r", keyPartMax)}
	if got, err := decodeKey(k.encode(nil)); err != nil || got != k {
		t.Errorf("part at the limit: %v", err)
	}
}

func panics(f func()) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	f()
	return false
}

func TestPrefixEnd(t *testing.T) {
	cases := []struct{ in, want []byte }{
		{[]byte{1, 2}, []byte{1, 3}},
		{[]byte{1, 0xFF}, []byte{2}},
		{[]byte{0xFF, 0xFF}, nil},
	}
	for _, c := range cases {
		if got := prefixEnd(c.in); !bytes.Equal(got, c.want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", c.in, got, c.want)
		}
	}
	p := eventPrefix(2, "c")
	end := prefixEnd(p)
	if bytes.Compare(eventKey(2, "c", math.MaxUint64), end) >= 0 || bytes.Compare(eventKey(2, "d", 0), end) < 0 {
		t.Error("prefixEnd does not bound the customer's events")
	}
}

// PartitionOf is FNV-1a 64 mod n: placement must never change between
// versions, or customers move to partitions that do not hold them.
func TestPartitionOf(t *testing.T) {
	const fnvOffset = 0xcbf29ce484222325 // FNV-1a 64 of ""
	if got := PartitionOf("", 64); got != fnvOffset%64 {
		t.Errorf("PartitionOf(\"\", 64) = %d, want %d", got, fnvOffset%64)
	}
	if got := PartitionOf("a", 1000); got != 0xaf63dc4c8601ec8c%1000 {
		t.Errorf("PartitionOf(\"a\", 1000) = %d", got)
	}
	counts := make([]int, 64)
	for i := range 64000 {
		p := PartitionOf(fmt.Sprintf("c-%d", i), 64)
		if p < 0 || p >= 64 {
			t.Fatalf("partition %d out of range", p)
		}
		counts[p]++
	}
	for p, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("partition %d got %d of 64000 customers", p, n)
		}
	}
	if identityPartition("phone", "+1", 64) != PartitionOf("phone\x00+1", 64) {
		t.Error("identity placement is not kind NUL value")
	}
}

func FuzzKeys(f *testing.F) {
	f.Add(byte(1), uint16(0), "c-42", "gw-1", "ref", uint64(1), []byte{0, 1, 'e'})
	f.Add(byte(3), uint16(63), "a/b", "c", "", uint64(0), []byte{0, 0, 'd', 0, 1, 'a', 0, 0})
	f.Add(byte(5), uint16(65534), "", "\x00", "/", uint64(math.MaxUint64), []byte{0xFF, 0xFF, 'm'})
	f.Add(byte(6), uint16(7), "cust", "kind", "r/1", uint64(1700000000000000000), dueKey(7, 1, "c", "k", "r"))
	f.Fuzz(func(t *testing.T, kind byte, partition uint16, s1, s2, s3 string, n uint64, raw []byte) {
		p := int(partition) % PartitionsMax
		all := keysOf(p, s1, s2, s3, n)
		k := all[int(kind)%len(all)]
		if checkParts(s1, s2, s3) != nil {
			if k.Kind != kindMeta && !panics(func() { k.encode(nil) }) {
				t.Fatalf("encoding %d-byte parts did not panic", max(len(s1), len(s2), len(s3)))
			}
			return
		}
		enc := k.encode(nil)
		got, err := decodeKey(enc)
		if err != nil || got != k {
			t.Fatalf("round trip of %+v: %+v, %v", k, got, err)
		}
		// Moving bytes from one string part to the next makes another tuple,
		// which must encode differently.
		if len(s2) > 0 {
			other := keysOf(p, s1+s2[:1], s2[1:], s3, n)[int(kind)%len(all)]
			if other != k && bytes.Equal(other.encode(nil), enc) {
				t.Fatalf("%+v and %+v encode the same", k, other)
			}
		}
		// Any bytes: decoding never panics, and what decodes re-encodes to
		// the same bytes.
		if dk, err := decodeKey(raw); err == nil {
			if re := dk.encode(nil); !bytes.Equal(re, raw) {
				t.Fatalf("%x decodes to %+v, which encodes to %x", raw, dk, re)
			}
		}
	})
}
