package persistence

// One suite, run against every engine (memory_test.go, pebble_test.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// opener opens a new, empty engine of the given partition count.
type opener func(t *testing.T, partitions int) Engine

const waitMax = 20 * time.Second // how long a test waits for a done callback

func runConformance(t *testing.T, open opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, opener)
	}{
		{"AppendLoad", testAppendLoad},
		{"InvalidAppend", testInvalidAppend},
		{"Conflict", testConflict},
		{"Pipelined", testPipelined},
		{"ManyCustomers", testManyCustomers},
		{"EventsPaging", testEventsPaging},
		{"Snapshot", testSnapshot},
		{"LookupEvent", testLookupEvent},
		{"DedupBlocks", testDedupBlocks},
		{"LastDedupBlock", testLastDedupBlock},
		{"ClaimIdentity", testClaimIdentity},
		{"ClaimRace", testClaimRace},
		{"ScanSegment", testScanSegment},
		{"SegmentBucketsRemembered", testSegmentBucketsRemembered},
		{"ScanDue", testScanDue},
		{"Erase", testErase},
		{"Marks", testMarks},
		{"Records", testRecords},
		{"Close", testClose},
		{"CloseDrains", testCloseDrains},
		{"Context", testContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// t0 is a fixed recorded_at base, on an hour boundary.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func event(customer, id, typ string, seq uint64, at time.Time) journey.Event {
	return journey.Event{
		ID: id, Customer: customer, Type: typ, Seq: seq, Actor: journey.ActorCustomer, RecordedAt: at,
	}
}

// events makes n events of the customer after prev, one minute apart from at.
func events(customer string, prev uint64, n int, at time.Time) []journey.Event {
	out := make([]journey.Event, n)
	for i := range out {
		seq := prev + 1 + uint64(i)
		out[i] = event(customer, fmt.Sprintf("%s-e%d", customer, seq), "message.received", seq,
			at.Add(time.Duration(i)*time.Minute))
	}
	return out
}

// appendWait appends and waits for done.
func appendWait(t *testing.T, s Store, req *AppendRequest) error {
	t.Helper()
	ch := make(chan error, 1)
	s.Append(context.Background(), req, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-time.After(waitMax):
		t.Fatal("append not completed")
		return nil
	}
}

func mustAppend(t *testing.T, s Store, customer string, prev uint64, n int, at time.Time) {
	t.Helper()
	if err := appendWait(t, s, &AppendRequest{Customer: customer, PrevSeq: prev, Events: events(customer, prev, n, at)}); err != nil {
		t.Fatalf("append %s after %d: %v", customer, prev, err)
	}
}

func seqsOf(evs []journey.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func testAppendLoad(t *testing.T, open opener) {
	e := open(t, 4)
	s := e.Store(2)
	ctx := context.Background()
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	first := journey.Event{
		ID: "gw/1", Customer: "c/1", Identity: map[string]string{"phone": "+15551230000"},
		Type: "message.received", Channel: "sms", Text: "my card payment failed again",
		Data: json.RawMessage(`{"amount":120.5}`), Time: &when, Seq: 1, Actor: journey.ActorCustomer,
		RecordedAt: t0.Add(123456789 * time.Nanosecond),
	}
	if err := appendWait(t, s, &AppendRequest{Customer: "c/1", Events: []journey.Event{first}}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "c/1", 1, 3, t0.Add(time.Hour))
	snap, evs, err := s.Load(ctx, "c/1")
	if err != nil || snap != nil {
		t.Fatalf("Load: %v, snapshot %v", err, snap)
	}
	if got := seqsOf(evs); !slices.Equal(got, seqRange(1, 4)) {
		t.Fatalf("seqs %v", got)
	}
	got := evs[0]
	if got.ID != first.ID || got.Text != first.Text || string(got.Data) != string(first.Data) ||
		got.Identity["phone"] != "+15551230000" || got.Channel != "sms" || got.Actor != first.Actor ||
		!got.RecordedAt.Equal(first.RecordedAt) || got.Time == nil || !got.Time.Equal(when) || got.Customer != "c/1" {
		t.Errorf("stored event %+v, want %+v", got, first)
	}
	if last, err := s.LastSeq(ctx, "c/1"); err != nil || last != 4 {
		t.Errorf("LastSeq = %d, %v", last, err)
	}
	// Another customer, another partition: nothing.
	if last, _ := s.LastSeq(ctx, "c/2"); last != 0 {
		t.Errorf("LastSeq of unknown customer = %d", last)
	}
	if _, evs, _ := e.Store(1).Load(ctx, "c/1"); len(evs) != 0 {
		t.Errorf("partition 1 sees partition 2's customer: %d events", len(evs))
	}
	// A customer whose id extends another's is another customer.
	mustAppend(t, s, "c/10", 0, 1, t0)
	if _, evs, _ := s.Load(ctx, "c/1"); len(evs) != 4 {
		t.Errorf("c/1 has %d events after c/10's append", len(evs))
	}
}

func testInvalidAppend(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	mustAppend(t, s, "c", 0, 2, t0)
	bad := map[string]*AppendRequest{
		"gap":            {Customer: "c", PrevSeq: 2, Events: []journey.Event{event("c", "x", "t", 4, t0)}},
		"repeat":         {Customer: "c", PrevSeq: 2, Events: []journey.Event{event("c", "x", "t", 3, t0), event("c", "y", "t", 3, t0)}},
		"no id":          {Customer: "c", PrevSeq: 2, Events: []journey.Event{event("c", "", "t", 3, t0)}},
		"other customer": {Customer: "c", PrevSeq: 2, Events: []journey.Event{event("d", "x", "t", 3, t0)}},
		"no customer":    {PrevSeq: 2},
		"bad data":       {Customer: "c", PrevSeq: 2, Events: []journey.Event{{ID: "x", Customer: "c", Seq: 3, Data: json.RawMessage("{")}}},
		"too many":       {Customer: "c", PrevSeq: 2, Events: events("c", 2, AppendEventsMax+1, t0)},
	}
	for name, req := range bad {
		if err := appendWait(t, s, req); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if last, _ := s.LastSeq(context.Background(), "c"); last != 2 {
		t.Errorf("invalid appends stored something: last seq %d", last)
	}
	mustAppend(t, s, "c", 2, 1, t0)
}

func testConflict(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	mustAppend(t, s, "c", 0, 3, t0)
	for _, prev := range []uint64{0, 2, 4} {
		err := appendWait(t, s, &AppendRequest{Customer: "c", PrevSeq: prev, Events: events("c", prev, 1, t0)})
		if !errors.Is(err, ErrConflict) {
			t.Errorf("append after %d (last 3): %v, want ErrConflict", prev, err)
		}
	}
	mustAppend(t, s, "c", 3, 2, t0)
	_, evs, _ := s.Load(context.Background(), "c")
	if got := seqsOf(evs); !slices.Equal(got, seqRange(1, 5)) {
		t.Errorf("seqs %v", got)
	}
	if evs[3].ID != "c-e4" {
		t.Errorf("event 4 is %q: a conflicting append was stored", evs[3].ID)
	}
	if e.Stats().Conflicts != 3 {
		t.Errorf("Stats().Conflicts = %d", e.Stats().Conflicts)
	}
	// An append that only fences (no events) checks PrevSeq too.
	if err := appendWait(t, s, &AppendRequest{Customer: "c", PrevSeq: 1}); !errors.Is(err, ErrConflict) {
		t.Errorf("empty append with stale prev: %v", err)
	}
}

// Appends of one customer issued without waiting complete in order and chain.
func testPipelined(t *testing.T, open opener) {
	e := open(t, 2)
	s := e.Store(1)
	const appends = 200
	var mu sync.Mutex
	var order []int
	var errs []error
	var wg sync.WaitGroup
	prev := uint64(0)
	for i := range appends {
		n := 1 + i%3
		wg.Add(1)
		req := &AppendRequest{Customer: "p", PrevSeq: prev, Events: events("p", prev, n, t0)}
		if i == appends/2 {
			// A stale append in the middle fails alone.
			req = &AppendRequest{Customer: "p", PrevSeq: 0, Events: events("p", 0, 1, t0)}
			n = 0
		}
		s.Append(context.Background(), req, func(err error) {
			mu.Lock()
			order = append(order, i)
			errs = append(errs, err)
			mu.Unlock()
			wg.Done()
		})
		prev += uint64(n)
	}
	waitGroup(t, &wg)
	for i, got := range order {
		if got != i {
			t.Fatalf("done #%d was append %d: out of order", i, got)
		}
		if (i == appends/2) != errors.Is(errs[i], ErrConflict) || (i != appends/2 && errs[i] != nil) {
			t.Errorf("append %d: %v", i, errs[i])
		}
	}
	evs, err := s.Events(context.Background(), "p", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(evs); !slices.Equal(got, seqRange(1, prev)) {
		t.Errorf("seqs %v, want 1..%d", got, prev)
	}
}

func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitMax):
		t.Fatal("appends not completed")
	}
}

// Customers appending concurrently, each pipelining: every done is called
// exactly once, every event is stored, gapless.
func testManyCustomers(t *testing.T, open opener) {
	e := open(t, 8)
	const customers, appends, perAppend = 24, 20, 2
	calls := make([]atomic.Int32, customers*appends)
	var failures atomic.Int32
	var wg sync.WaitGroup
	wg.Add(customers * appends)
	for c := range customers {
		go func() {
			name := fmt.Sprintf("m-%d", c)
			s := e.Store(PartitionOf(name, e.Partitions()))
			for a := range appends {
				prev := uint64(a * perAppend)
				s.Append(context.Background(), &AppendRequest{Customer: name, PrevSeq: prev, Events: events(name, prev, perAppend, t0)},
					func(err error) {
						if err != nil {
							if failures.Add(1) == 1 {
								t.Logf("first failure: %v", err)
							}
						}
						calls[c*appends+a].Add(1)
						wg.Done()
					})
			}
		}()
	}
	waitGroup(t, &wg)
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d appends failed", n)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range calls {
		if n := calls[i].Load(); n != 1 {
			t.Fatalf("done of append %d called %d times", i, n)
		}
	}
	st := e.Stats()
	if st.Appends != customers*appends || st.Events != customers*appends*perAppend {
		t.Errorf("Stats: %d appends, %d events", st.Appends, st.Events)
	}
}

func testEventsPaging(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	ctx := context.Background()
	mustAppend(t, s, "c", 0, 10, t0)
	cases := []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 3, seqRange(1, 3)},
		{3, 3, seqRange(4, 6)},
		{9, 3, seqRange(10, 10)},
		{10, 3, nil},
		{0, 0, seqRange(1, 10)},
		{5, -1, seqRange(6, 10)},
		{^uint64(0), 3, nil},
	}
	for _, c := range cases {
		evs, err := s.Events(ctx, "c", c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqsOf(evs); !slices.Equal(got, c.want) && (len(got) != 0 || len(c.want) != 0) {
			t.Errorf("Events(after %d, limit %d) = %v, want %v", c.after, c.limit, got, c.want)
		}
	}
	if evs, err := s.Events(ctx, "nobody", 0, 10); err != nil || len(evs) != 0 {
		t.Errorf("Events of unknown customer: %v, %v", evs, err)
	}
}

func testSnapshot(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	ctx := context.Background()
	mustAppend(t, s, "c", 0, 5, t0)
	data := []byte(`{"state":3}`)
	if err := s.SaveSnapshot(ctx, "c", &Snapshot{Seq: 3, Data: data}); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X' // the store kept its own copy
	snap, evs, err := s.Load(ctx, "c")
	if err != nil || snap == nil || snap.Seq != 3 || string(snap.Data) != `{"state":3}` {
		t.Fatalf("Load snapshot %+v, %v", snap, err)
	}
	if got := seqsOf(evs); !slices.Equal(got, []uint64{4, 5}) {
		t.Errorf("events after snapshot: %v", got)
	}
	if err := s.SaveSnapshot(ctx, "c", &Snapshot{Seq: 5, Data: []byte("five")}); err != nil {
		t.Fatal(err)
	}
	snap, evs, _ = s.Load(ctx, "c")
	if snap.Seq != 5 || string(snap.Data) != "five" || len(evs) != 0 {
		t.Errorf("after replacing: snapshot %+v, %d events", snap, len(evs))
	}
	mustAppend(t, s, "c", 5, 1, t0)
	if _, evs, _ = s.Load(ctx, "c"); !slices.Equal(seqsOf(evs), []uint64{6}) {
		t.Errorf("events after snapshot 5: %v", seqsOf(evs))
	}
	if err := s.SaveSnapshot(ctx, "c", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil snapshot: %v", err)
	}
}

func testLookupEvent(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	ctx := context.Background()
	mustAppend(t, s, "c", 0, 3, t0)
	seq, found, erased, err := s.LookupEvent(ctx, "c", "c-e2")
	if err != nil || !found || erased || seq != 2 {
		t.Errorf("LookupEvent(c-e2) = %d %v %v %v", seq, found, erased, err)
	}
	if _, found, erased, _ := s.LookupEvent(ctx, "c", "c-e9"); found || erased {
		t.Errorf("unknown id: found %v erased %v", found, erased)
	}
	if _, found, _, _ := s.LookupEvent(ctx, "d", "c-e2"); found {
		t.Error("another customer's id found")
	}
	// Only clients' ids are idempotency keys: the runtime's own events get
	// no dedup key, so a client id equal to one is not a duplicate.
	rt := event("c", "rt-4", "identity.linked", 4, t0)
	rt.Actor = journey.ActorSystem
	if err := appendWait(t, s, &AppendRequest{Customer: "c", PrevSeq: 3, Events: []journey.Event{rt}}); err != nil {
		t.Fatal(err)
	}
	if _, found, _, _ := s.LookupEvent(ctx, "c", "rt-4"); found {
		t.Error("a runtime event's id is an idempotency key")
	}
}

// identityStore is the store that owns an identity.
func identityStore(e Engine, kind, value string) Store {
	return e.Store(identityPartition(kind, value, e.Partitions()))
}

func testClaimIdentity(t *testing.T, open opener) {
	e := open(t, 8)
	ctx := context.Background()
	s := identityStore(e, "phone", "+15551230000")
	if owner, err := s.LookupIdentity(ctx, "phone", "+15551230000"); err != nil || owner != "" {
		t.Fatalf("unclaimed identity: %q, %v", owner, err)
	}
	if owner, err := s.ClaimIdentity(ctx, "phone", "+15551230000", "alice"); err != nil || owner != "alice" {
		t.Fatalf("first claim: %q, %v", owner, err)
	}
	if owner, err := s.ClaimIdentity(ctx, "phone", "+15551230000", "bob"); err != nil || owner != "alice" {
		t.Errorf("second claim: %q, %v", owner, err)
	}
	if owner, _ := s.LookupIdentity(ctx, "phone", "+15551230000"); owner != "alice" {
		t.Errorf("owner after claims: %q", owner)
	}
	// Kind and value do not run into each other.
	s2 := identityStore(e, "phone+", "15551230000")
	if owner, _ := s2.LookupIdentity(ctx, "phone+", "15551230000"); owner != "" {
		t.Errorf("(phone+, 1555...) owned by %q", owner)
	}
	wrong := e.Store((identityPartition("email", "a@b.c", 8) + 1) % 8)
	if _, err := wrong.ClaimIdentity(ctx, "email", "a@b.c", "alice"); !errors.Is(err, ErrInvalid) {
		t.Errorf("claim in the wrong partition: %v", err)
	}
	if _, err := wrong.LookupIdentity(ctx, "email", "a@b.c"); !errors.Is(err, ErrInvalid) {
		t.Errorf("lookup in the wrong partition: %v", err)
	}
}

// Sixteen connections sending the same new phone at once make one customer.
func testClaimRace(t *testing.T, open opener) {
	e := open(t, 4)
	s := identityStore(e, "phone", "+15550000000")
	owners := make([]string, 16)
	errs := make([]error, 16)
	claimers := make([]string, 16)
	var wg sync.WaitGroup
	for i := range owners {
		claimers[i] = fmt.Sprintf("cust-%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			owners[i], errs[i] = s.ClaimIdentity(context.Background(), "phone", "+15550000000", claimers[i])
		}()
	}
	waitGroup(t, &wg)
	for i := range owners {
		if errs[i] != nil || owners[i] != owners[0] {
			t.Fatalf("claimer %d: owner %q, err %v; claimer 0: %q", i, owners[i], errs[i], owners[0])
		}
	}
	if !slices.Contains(claimers, owners[0]) {
		t.Fatalf("owner %q is none of the claimers", owners[0])
	}
	if got, _ := s.LookupIdentity(context.Background(), "phone", "+15550000000"); got != owners[0] {
		t.Errorf("stored owner %q, claimers told %q", got, owners[0])
	}
}
