package journey_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// customerWith is a customer who sent n events, gw-0 .. gw-<n-1>, one a
// second from t0.
func customerWith(t *testing.T, n int) *journey.Customer {
	t.Helper()
	c := journey.NewCustomer("c-42")
	for i := range n {
		d := step(t, c, fresh(fmt.Sprintf("gw-%d", i)), t0.Add(time.Duration(i)*time.Second))
		if d.Ack == nil || d.Ack.Duplicate {
			t.Fatalf("gw-%d not stored: %+v", i, d)
		}
	}
	return c
}

// answer is a decision in short: "seq N", "dup N", "lookup" or a code.
func answer(d journey.Decision) string {
	switch {
	case d.Reject != nil:
		return string(d.Reject.Code)
	case d.NeedLookup:
		return "lookup"
	case d.Ack.Duplicate:
		return fmt.Sprintf("dup %d", d.Ack.Seq)
	default:
		return fmt.Sprintf("seq %d", d.Ack.Seq)
	}
}

func TestDecideIdempotencyWindow(t *testing.T) {
	full := journey.RecentIDsMax // every id still in memory
	// gw-0 left the ring and memory: in the first of two dedup blocks.
	over := journey.RecentIDsMax + 2*journey.DedupBlockIDs + 1
	tests := []struct {
		name   string
		events int
		id     string
		stored *journey.StoredID
		want   string
	}{
		{"complete: unknown id", full, "new", nil, fmt.Sprintf("seq %d", full+1)},
		{"complete: oldest id", full, "gw-0", nil, "dup 1"},
		{"complete: erased id", full, "old", &journey.StoredID{Erased: true}, "conflict"},
		{"incomplete: newest id", over, fmt.Sprintf("gw-%d", over-1), nil, fmt.Sprintf("dup %d", over)},
		{"incomplete: unknown id", over, "new", nil, fmt.Sprintf("seq %d", over+1)}, // no filter holds it
		{"incomplete: forgotten id", over, "gw-0", nil, "lookup"},
		{"incomplete: store has it", over, "gw-0", &journey.StoredID{Seq: 1}, "dup 1"},
		{"incomplete: store has not", over, "new", &journey.StoredID{}, fmt.Sprintf("seq %d", over+1)},
		{"incomplete: erased id", over, "old", &journey.StoredID{Erased: true}, "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := customerWith(t, tt.events)
			in := inbound(tt.id)
			in.Stored = tt.stored
			d := step(t, c, in, t0.Add(2*time.Hour))
			if got := answer(d); got != tt.want {
				t.Fatalf("answer %q, want %q", got, tt.want)
			}
			stored := strings.HasPrefix(tt.want, "seq")
			if !stored && (len(d.Events) != 0 || c.Seq != uint64(tt.events)) {
				t.Errorf("%s stored events: %+v", tt.want, d.Events)
			}
		})
	}
}

// Ids older than the idempotency window (on recorded_at) leave the ring and
// are forgotten: an event with such an id is a new one.
func TestDecideIdempotencyWindowInTime(t *testing.T) {
	c := journey.NewCustomer("c-42")
	step(t, c, inbound("a"), t0)
	step(t, c, inbound("b"), t0.Add(journey.IdempotencyWindow))
	if got := answer(journey.Decide(c, inbound("a"), t0.Add(journey.IdempotencyWindow))); got != "dup 1" {
		t.Errorf("a at the window's edge: %s, want dup 1", got)
	}
	step(t, c, inbound("c"), t0.Add(journey.IdempotencyWindow+time.Second))
	for id, want := range map[string]string{"a": "seq 4", "b": "dup 2", "c": "dup 3", "d": "seq 4"} {
		if got := answer(journey.Decide(c, inbound(id), t0.Add(journey.IdempotencyWindow+time.Second))); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
}

// Past twice RecentIDsMax ids the memory, and a snapshot of it, keeps
// exactly the latest RecentIDsMax ids and the ids that left them and wait
// for their dedup block (pending). The store answers for the others.
func TestDecideIdempotencyKeepsTheLatestIDs(t *testing.T) {
	n := 2*journey.RecentIDsMax + 100
	c := customerWith(t, n)
	rebuilt := rebuild(t, c.ID, c.EncodeSnapshot(), nil)
	left := n - journey.RecentIDsMax
	inBlocks := left / journey.DedupBlockIDs * journey.DedupBlockIDs // the rest pending
	for i := range n {
		id := fmt.Sprintf("gw-%d", i)
		for name, cust := range map[string]*journey.Customer{"live": c, "rebuilt": rebuilt} {
			oldest := inBlocks // the oldest id still in memory
			want := fmt.Sprintf("dup %d", i+1)
			if i < oldest {
				want = "lookup"
			}
			if got := answer(journey.Decide(cust, inbound(id), t0)); got != want {
				t.Fatalf("%s customer, %s: %s, want %s", name, id, got, want)
			}
		}
	}
}

// Step adds an inbound event's id to the recent ids from the digest its
// decision made: the customer it leaves is the one Decide and Apply make,
// and a retry of any of its ids is known.
func TestStepKeepsTheInboundIDs(t *testing.T) {
	n := 2*journey.RecentIDsMax + 2*journey.DedupBlockIDs + 40 // ids leave the ring, and memory, for the filters
	stepped := journey.NewCustomer("c-42")
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		d := journey.Step(nil, stepped, fresh(fmt.Sprintf("gw-%d", i)), at)
		if d.Ack == nil || d.Ack.Duplicate {
			t.Fatalf("gw-%d not stored: %+v", i, d)
		}
		stepped.Durable(d.Ack.Seq)
	}
	if got, want := stepped.EncodeSnapshot(), customerWith(t, n).EncodeSnapshot(); string(got) != string(want) {
		t.Fatal("Step and Decide with Apply left different customers")
	}
	later := t0.Add(time.Duration(n) * time.Second)
	if got := answer(journey.Step(nil, stepped, inbound(fmt.Sprintf("gw-%d", n-1)), later)); got != fmt.Sprintf("dup %d", n) {
		t.Errorf("retry of the newest id: %s, want dup %d", got, n)
	}
	if got := answer(journey.Step(nil, stepped, inbound("gw-0"), later)); got != "lookup" {
		t.Errorf("retry of an id in a filter: %s, want lookup", got)
	}
}

// Step hands over a dedup block with the event that filled it, and a
// customer rebuilt from a snapshot and the events after it (the store's
// view) goes on handing over exactly the blocks the live one does: the
// pending ids are in the snapshot, the blocks sealed by the events after
// it were stored with them. A retry of an id only a block holds is looked
// up in blocks that hold its seq.
func TestStepHandsOverDedupBlocks(t *testing.T) {
	live := journey.NewCustomer("c-42")
	var snap []byte
	var after []journey.Event
	var blocks [][]journey.DedupID
	seqOf := map[string]uint64{}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	const snapAt, n = 400, 700
	for i := range snapAt + 150 {
		if i == snapAt {
			snap = live.EncodeSnapshot()
		}
		id := fmt.Sprintf("gw-%d", i)
		d := journey.Step(nil, live, fresh(id), at(i))
		if d.Ack == nil || d.Ack.Duplicate || !d.IDsInBlocks {
			t.Fatalf("%s: %+v", id, d)
		}
		live.Durable(d.Ack.Seq) // as the customer actor says once the append is
		seqOf[id] = d.Ack.Seq
		if i >= snapAt {
			after = append(after, d.Events...)
		}
		if d.DedupBlock != nil {
			blocks = append(blocks, d.DedupBlock)
			if len(d.DedupBlock) != journey.DedupBlockIDs {
				t.Fatalf("%s: a block of %d ids", id, len(d.DedupBlock))
			}
			first := len(blocks) - 1
			if want := journey.IDDigest(fmt.Sprintf("gw-%d", first*journey.DedupBlockIDs)); d.DedupBlock[0].Digest != want {
				t.Fatalf("%s: block %d starts with another id", id, first)
			}
		}
	}
	if len(blocks) != (snapAt+150-journey.RecentIDsMax)/journey.DedupBlockIDs {
		t.Fatalf("%d blocks", len(blocks))
	}
	rebuilt := rebuild(t, "c-42", snap, after)
	for i := snapAt + 150; i < n; i++ {
		id := fmt.Sprintf("gw-%d", i)
		dl := journey.Step(nil, live, fresh(id), at(i))
		dr := journey.Step(nil, rebuilt, fresh(id), at(i))
		live.Durable(dl.Ack.Seq)
		rebuilt.Durable(dr.Ack.Seq)
		if mustJSON(t, dl) != mustJSON(t, dr) {
			t.Fatalf("%s: the live customer decided\n%s\nthe rebuilt one\n%s", id, mustJSON(t, dl), mustJSON(t, dr))
		}
	}
	if string(live.EncodeSnapshot()) != string(rebuilt.EncodeSnapshot()) {
		t.Error("the live and the rebuilt customers differ")
	}
	d := journey.Step(nil, live, inbound("gw-0"), at(n))
	if !d.NeedLookup || d.LookupFrom > seqOf["gw-0"] || d.LookupTo < seqOf["gw-0"] {
		t.Errorf("retry of gw-0 (seq %d): %+v", seqOf["gw-0"], d)
	}
}

// A replay from a state of another version may seal ids elsewhere than the
// live customer did: RebuildFrom, told where the store's dedup blocks end,
// puts the ids sealed past it back in pending, and drops the pending ids
// the store's blocks hold, so the next block takes exactly the ids no block
// holds.
func TestRebuildFromWhereTheBlocksEnd(t *testing.T) {
	c := journey.NewCustomer("c-42")
	var events []journey.Event
	const n = journey.RecentIDsMax + journey.DedupBlockIDs + 36 // one block, 36 pending
	for i := range n {
		d := journey.Step(nil, c, fresh(fmt.Sprintf("gw-%d", i)), t0.Add(time.Duration(i)*time.Second))
		c.Durable(d.Ack.Seq)
		events = append(events, d.Events...)
	}
	next := func(c *journey.Customer) journey.Decision {
		d := journey.Step(nil, c, fresh("gw-next"), t0.Add(time.Hour))
		if d.Ack == nil || d.Ack.Duplicate {
			t.Fatalf("gw-next: %+v", d)
		}
		return d
	}
	for _, tt := range []struct {
		name      string
		blocksTo  uint64
		wantFirst uint64 // the next block's first seq; 0: no block
		wantLen   int
	}{
		{"every block stored", journey.DedupBlockIDs, 0, 0},
		{"no block stored", 0, 1, journey.DedupBlockIDs + 37},
		{"blocks past the first", journey.DedupBlockIDs + 20, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := journey.RebuildFrom("c-42", nil, events, tt.blocksTo)
			if err != nil {
				t.Fatal(err)
			}
			d := next(r)
			switch {
			case tt.wantFirst == 0 && d.DedupBlock != nil:
				t.Fatalf("a block of %d ids from seq %d", len(d.DedupBlock), d.DedupBlock[0].Seq)
			case tt.wantFirst != 0 && (len(d.DedupBlock) != tt.wantLen || d.DedupBlock[0].Seq != tt.wantFirst):
				t.Fatalf("a block of %d ids, want %d from seq %d: %+v", len(d.DedupBlock), tt.wantLen, tt.wantFirst, d.DedupBlock)
			}
			// gw-70 is pending unless the store's blocks hold it.
			got := answer(journey.Decide(r, inbound("gw-70"), t0.Add(time.Hour)))
			if want := map[bool]string{true: "lookup", false: "dup 71"}[tt.blocksTo >= 71]; got != want && tt.wantFirst == 0 {
				t.Errorf("gw-70: %s, want %s", got, want)
			}
		})
	}
}

// A snapshot of version 5 (testdata/snapshot-v5.bin: stop 39's binary,
// 300 ids gw-0..gw-299, one a second from t0) is read with its ids keyed:
// a retry of one that left the ring reads its dedup key and no block, and
// only the ids after it go to blocks.
func TestSnapshotOfVersion5(t *testing.T) {
	snap, err := os.ReadFile(filepath.Join("testdata", "snapshot-v5.bin"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := journey.DecodeSnapshot(snap)
	if err != nil || c.Seq != 300 {
		t.Fatalf("decode: %v, seq %d", err, c.Seq)
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for id, want := range map[string]string{"gw-299": "dup 300", "gw-100": "dup 101", "never-sent": "seq 301"} {
		if got := answer(journey.Decide(c, inbound(id), at(300))); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	if d := journey.Decide(c, inbound("gw-0"), at(300)); !d.NeedLookup || d.LookupFrom <= d.LookupTo {
		t.Errorf("gw-0, keyed: %+v", d)
	}
	var blocks [][]journey.DedupID
	for i := 300; i < 700; i++ {
		d := journey.Step(nil, c, fresh(fmt.Sprintf("gw-%d", i)), at(i))
		if d.Ack == nil || d.Ack.Duplicate || !d.IDsInBlocks {
			t.Fatalf("gw-%d: %+v", i, d)
		}
		c.Durable(d.Ack.Seq)
		if d.DedupBlock != nil {
			blocks = append(blocks, d.DedupBlock)
		}
	}
	if len(blocks) != 2 || blocks[0][0].Seq != 301 || blocks[1][0].Seq != 301+journey.DedupBlockIDs {
		t.Fatalf("%d blocks after the v5 ids: %+v", len(blocks), blocks)
	}
	// gw-10 shares its filter with ids in blocks: its key is read first.
	if d := journey.Decide(c, inbound("gw-10"), at(700)); !d.NeedLookup {
		t.Errorf("gw-10, keyed: %+v", d)
	}
	if d := journey.Decide(c, inbound("gw-300"), at(700)); !d.NeedLookup || d.LookupFrom > 301 || d.LookupTo < 301 {
		t.Errorf("gw-300, in a block: %+v", d)
	}
}

// Past a replay that put more ids back in pending than a block holds, the
// next Steps hand them over a block of at most 1,024 at a time, and a
// snapshot in between keeps every one.
func TestManyPendingIDsGoOutABlockAtATime(t *testing.T) {
	c := journey.NewCustomer("c-42")
	var events []journey.Event
	const left = 1500
	for i := range journey.RecentIDsMax + left {
		d := journey.Step(nil, c, fresh(fmt.Sprintf("gw-%d", i)), t0.Add(time.Duration(i)*time.Second))
		c.Durable(d.Ack.Seq)
		events = append(events, d.Events...)
	}
	r, err := journey.RebuildFrom("c-42", nil, events, 0) // the store has no block
	if err != nil {
		t.Fatal(err)
	}
	r = rebuild(t, "c-42", r.EncodeSnapshot(), nil)
	var sizes []int
	next := uint64(1)
	for i := range 3 {
		d := journey.Step(nil, r, fresh(fmt.Sprintf("new-%d", i)), t0.Add(time.Hour))
		if d.Ack == nil || d.Ack.Duplicate {
			t.Fatalf("new-%d: %+v", i, d)
		}
		r.Durable(d.Ack.Seq)
		if d.DedupBlock != nil {
			if d.DedupBlock[0].Seq != next {
				t.Fatalf("block from seq %d, want %d", d.DedupBlock[0].Seq, next)
			}
			next = d.DedupBlock[len(d.DedupBlock)-1].Seq + 1
		}
		sizes = append(sizes, len(d.DedupBlock))
	}
	if want := []int{1024, left + 2 - 1024, 0}; fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Fatalf("blocks of %v ids, want %v", sizes, want)
	}
}
