package persistence

// The rest of the conformance suite: indexes, erasure, lifecycle.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

func at(hour, minute int) time.Time {
	return time.Date(2026, 11, 22, hour, minute, 0, 0, time.UTC)
}

// appendTyped appends one event per (type, time) to a new customer.
func appendTyped(t *testing.T, s Store, customer string, evs ...any) {
	t.Helper()
	req := &AppendRequest{Customer: customer}
	for i := 0; i < len(evs); i += 2 {
		seq := uint64(len(req.Events) + 1)
		req.Events = append(req.Events, event(customer, customer+"-"+evs[i].(string)+"-"+evs[i+1].(time.Time).Format("1504"),
			evs[i].(string), seq, evs[i+1].(time.Time)))
	}
	if err := appendWait(t, s, req); err != nil {
		t.Fatal(err)
	}
}

func scanSegment(t *testing.T, s Store, typ string, from, to time.Time) []string {
	t.Helper()
	var got []string
	if err := s.ScanSegment(context.Background(), typ, from, to, func(c string) bool {
		got = append(got, c)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

func testScanSegment(t *testing.T, open opener) {
	e := open(t, 2)
	s := e.Store(0)
	const pf = "payment.failed"
	appendTyped(t, s, "c1", pf, at(10, 30))
	appendTyped(t, s, "c2", "page.viewed", at(11, 10), pf, at(11, 20), pf, at(12, 59))
	appendTyped(t, s, "c3", pf, at(9, 59))
	appendTyped(t, s, "c4", pf, at(13, 0))
	appendTyped(t, s, "c6", "message.received", at(10, 30))
	appendTyped(t, s, "c7", pf, at(10, 5), "page.viewed", at(10, 50))
	appendTyped(t, s, "c8", pf, at(10, 10), pf, at(10, 50)) // one key for hour 10, written by the first
	appendTyped(t, e.Store(1), "c5", pf, at(10, 30))        // another partition
	cases := []struct {
		typ      string
		from, to time.Time
		want     []string
	}{
		{pf, at(10, 0), at(11, 0), []string{"c1", "c7", "c8"}},
		{pf, at(10, 45), at(13, 0), []string{"c2", "c8"}},
		{pf, at(10, 15), at(10, 45), []string{"c1"}},
		{pf, at(9, 0), at(14, 0), []string{"c1", "c2", "c3", "c4", "c7", "c8"}},
		{pf, at(12, 59), at(13, 0).Add(time.Nanosecond), []string{"c2", "c4"}},
		{pf, at(11, 20), at(11, 20), nil},
		{pf, at(14, 0), at(9, 0), nil},
		{"page.viewed", at(10, 0), at(12, 0), []string{"c2", "c7"}},
		{"no.such", at(0, 0), at(23, 0), nil},
	}
	for _, c := range cases {
		got := scanSegment(t, s, c.typ, c.from, c.to)
		if !slices.Equal(got, c.want) {
			t.Errorf("ScanSegment(%s, %s, %s) = %v, want %v", c.typ, c.from.Format("15:04"), c.to.Format("15:04"), got, c.want)
		}
	}
	n := 0
	_ = s.ScanSegment(context.Background(), pf, at(0, 0), at(23, 0), func(string) bool { n++; return false })
	if n != 1 {
		t.Errorf("fn returning false: called %d times", n)
	}
}

func scanDue(t *testing.T, s Store, until time.Time) []DueWork {
	t.Helper()
	return scanDueFrom(t, s, DueWork{}, until)
}

func scanDueFrom(t *testing.T, s Store, from DueWork, until time.Time) []DueWork {
	t.Helper()
	var got []DueWork
	if err := s.ScanDue(context.Background(), from, until, func(w DueWork) bool {
		got = append(got, w)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func dueRefs(ws []DueWork) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Ref
	}
	return out
}

func testScanDue(t *testing.T, open opener) {
	e := open(t, 2)
	s, other := e.Store(0), e.Store(1)
	frac := 123456789 * time.Nanosecond
	add := []DueWork{
		{At: t0.Add(3 * time.Hour), Customer: "a", Kind: "offer", Ref: "o3"},
		{At: t0.Add(time.Hour + frac), Customer: "a", Kind: "after", Ref: "r1"},
		{At: t0.Add(2 * time.Hour), Customer: "zzz-long-id", Kind: "callback", Ref: "x2"},
		{At: t0.Add(time.Hour), Customer: "a", Kind: "after", Ref: "r0"},
	}
	if err := appendWait(t, s, &AppendRequest{Customer: "a", Events: events("a", 0, 1, t0), DueAdd: add}); err != nil {
		t.Fatal(err)
	}
	if err := appendWait(t, other, &AppendRequest{Customer: "b", DueAdd: []DueWork{{At: t0, Customer: "b", Kind: "k", Ref: "other"}}}); err != nil {
		t.Fatal(err)
	}
	got := scanDue(t, s, t0.Add(10*time.Hour))
	if refs := dueRefs(got); !slices.Equal(refs, []string{"r0", "r1", "x2", "o3"}) {
		t.Fatalf("ScanDue order %v", refs)
	}
	if !got[1].At.Equal(t0.Add(time.Hour+frac)) || got[1].Customer != "a" || got[1].Kind != "after" {
		t.Errorf("due work read back as %+v", got[1])
	}
	if refs := dueRefs(scanDue(t, s, t0.Add(2*time.Hour))); !slices.Equal(refs, []string{"r0", "r1"}) {
		t.Errorf("ScanDue until 2h: %v (until is exclusive)", refs)
	}
	if n := len(scanDue(t, s, t0)); n != 0 {
		t.Errorf("ScanDue before all: %d", n)
	}
	// from is inclusive, to the nanosecond.
	if refs := dueRefs(scanDueFrom(t, s, DueWork{At: t0.Add(time.Hour + frac)}, t0.Add(10*time.Hour))); !slices.Equal(refs, []string{"r1", "x2", "o3"}) {
		t.Errorf("ScanDue from 1h+frac: %v", refs)
	}
	if refs := dueRefs(scanDueFrom(t, s, DueWork{At: t0.Add(time.Hour + frac + 1)}, t0.Add(3*time.Hour))); !slices.Equal(refs, []string{"x2"}) {
		t.Errorf("ScanDue from just after 1h+frac until 3h: %v", refs)
	}
	// From a work item: just after it, even at its own time.
	same := []DueWork{{At: t0.Add(4 * time.Hour), Customer: "a", Kind: "k", Ref: "s1"}, {At: t0.Add(4 * time.Hour), Customer: "a", Kind: "k", Ref: "s2"}}
	if err := appendWait(t, s, &AppendRequest{Customer: "a", PrevSeq: 1, DueAdd: same}); err != nil {
		t.Fatal(err)
	}
	if refs := dueRefs(scanDueFrom(t, s, same[0], t0.Add(10*time.Hour))); !slices.Equal(refs, []string{"s2"}) {
		t.Errorf("ScanDue after s1: %v", refs)
	}
	if refs := dueRefs(scanDueFrom(t, s, add[1], t0.Add(10*time.Hour))); !slices.Equal(refs, []string{"x2", "o3", "s1", "s2"}) {
		t.Errorf("ScanDue after r1: %v", refs)
	}
	if err := appendWait(t, s, &AppendRequest{Customer: "a", PrevSeq: 1, DueDelete: same}); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = s.ScanDue(context.Background(), DueWork{}, t0.Add(10*time.Hour), func(DueWork) bool { n++; return false })
	if n != 1 {
		t.Errorf("fn returning false: called %d times", n)
	}
	// Delete in an append; delete and re-add in one append keeps the work.
	req := &AppendRequest{
		Customer: "a", PrevSeq: 1, Events: events("a", 1, 1, t0),
		DueDelete: []DueWork{add[1], add[0]},
		DueAdd:    []DueWork{{At: t0.Add(5 * time.Hour), Customer: "a", Kind: "after", Ref: "r5"}, add[0]},
	}
	if err := appendWait(t, s, req); err != nil {
		t.Fatal(err)
	}
	if refs := dueRefs(scanDue(t, s, t0.Add(10*time.Hour))); !slices.Equal(refs, []string{"r0", "x2", "o3", "r5"}) {
		t.Errorf("after delete: %v", refs)
	}
	// A conflicting append changes no due work.
	stale := &AppendRequest{Customer: "a", PrevSeq: 0, DueDelete: []DueWork{add[3]}}
	if err := appendWait(t, s, stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale append: %v", err)
	}
	if refs := dueRefs(scanDue(t, other, t0.Add(10*time.Hour))); !slices.Equal(refs, []string{"other"}) {
		t.Errorf("other partition: %v", refs)
	}
	if refs := dueRefs(scanDue(t, s, t0.Add(10*time.Hour))); len(refs) != 4 {
		t.Errorf("after a conflicting append: %v", refs)
	}
}

func testErase(t *testing.T, open opener) {
	e := open(t, 4)
	ctx := context.Background()
	p := PartitionOf("gone", 4)
	s := e.Store(p)
	const pf = "payment.failed"
	due := []DueWork{
		{At: t0.Add(time.Hour), Customer: "gone", Kind: "offer", Ref: "1"},
		{At: t0.Add(time.Hour), Customer: "stay", Kind: "offer", Ref: "2"},
	}
	req := &AppendRequest{Customer: "gone", Events: []journey.Event{
		event("gone", "g1", pf, 1, at(10, 10)), event("gone", "g2", "page.viewed", 2, at(11, 10)),
	}, DueAdd: due}
	if err := appendWait(t, s, req); err != nil {
		t.Fatal(err)
	}
	appendTyped(t, s, "stay", pf, at(10, 20))
	if err := s.SaveSnapshot(ctx, "gone", &Snapshot{Seq: 1, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	email, phone := IdentityKey{"email", "gone@example.com"}, IdentityKey{"phone", "+15551112222"}
	if _, err := identityStore(e, phone.Kind, phone.Value).ClaimIdentity(ctx, phone.Kind, phone.Value, "other"); err != nil {
		t.Fatal(err)
	}
	if owner, err := identityStore(e, email.Kind, email.Value).ClaimIdentity(ctx, email.Kind, email.Value, "gone"); err != nil || owner != "gone" {
		t.Fatalf("claim: %q %v", owner, err)
	}

	if err := s.Erase(ctx, "gone", []IdentityKey{email, phone}); err != nil {
		t.Fatal(err)
	}

	if snap, evs, err := s.Load(ctx, "gone"); err != nil || snap != nil || len(evs) != 0 {
		t.Errorf("Load after erase: %v, %d events, %v", snap, len(evs), err)
	}
	if last, _ := s.LastSeq(ctx, "gone"); last != 0 {
		t.Errorf("LastSeq after erase: %d", last)
	}
	if _, found, erased, err := s.LookupEvent(ctx, "gone", "g2"); err != nil || found || !erased {
		t.Errorf("LookupEvent of an erased id: found %v erased %v %v", found, erased, err)
	}
	if _, found, erased, _ := s.LookupEvent(ctx, "gone", "never-sent"); found || erased {
		t.Errorf("LookupEvent of an unknown id: found %v erased %v", found, erased)
	}
	// Any customer's late retry of an erased id is known by the id alone
	// (a replicated engine writes no id-only tombstones yet).
	if _, replicated := e.(ReplicatedEngine); !replicated {
		idStore := func(id string) Store { return e.Store(PartitionOf(id, 4)) }
		if erased, err := idStore("g1").LookupErasedID(ctx, "g1"); err != nil || !erased {
			t.Errorf("LookupErasedID of an erased id: %v %v", erased, err)
		}
		if erased, err := idStore("never-sent").LookupErasedID(ctx, "never-sent"); err != nil || erased {
			t.Errorf("LookupErasedID of an unknown id: %v %v", erased, err)
		}
	}
	if got := scanSegment(t, s, pf, at(0, 0), at(23, 0)); !slices.Equal(got, []string{"stay"}) {
		t.Errorf("segment after erase: %v", got)
	}
	if got := scanSegment(t, s, "page.viewed", at(0, 0), at(23, 0)); len(got) != 0 {
		t.Errorf("page.viewed segment after erase: %v", got)
	}
	if refs := dueRefs(scanDue(t, s, t0.Add(10*time.Hour))); !slices.Equal(refs, []string{"2"}) {
		t.Errorf("due work after erase: %v", refs)
	}
	if owner, _ := identityStore(e, email.Kind, email.Value).LookupIdentity(ctx, email.Kind, email.Value); owner != "" {
		t.Errorf("erased customer's email still owned by %q", owner)
	}
	if owner, _ := identityStore(e, phone.Kind, phone.Value).LookupIdentity(ctx, phone.Kind, phone.Value); owner != "other" {
		t.Errorf("another customer's phone now owned by %q", owner)
	}
	if _, evs, _ := s.Load(ctx, "stay"); len(evs) != 1 {
		t.Errorf("the other customer has %d events", len(evs))
	}
	// The id starts over from seq 1, and is indexed again in the same hour.
	appendTyped(t, s, "gone", pf, at(10, 40))
	if got := scanSegment(t, s, pf, at(10, 0), at(11, 0)); !slices.Equal(got, []string{"gone", "stay"}) {
		t.Errorf("segment after the id came back: %v", got)
	}
	if _, found, _, _ := s.LookupEvent(ctx, "gone", "gone-payment.failed-1040"); !found {
		t.Error("new event of the id not found")
	}
}

func testClose(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	ctx := context.Background()
	mustAppend(t, s, "c", 0, 1, t0)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	called := 0
	var got error
	s.Append(ctx, &AppendRequest{Customer: "c", PrevSeq: 1, Events: events("c", 1, 1, t0)}, func(err error) {
		called++
		got = err
	})
	if called != 1 || !errors.Is(got, ErrUnavailable) {
		t.Errorf("Append after Close: done called %d times with %v", called, got)
	}
	if _, _, err := s.Load(ctx, "c"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Load after Close: %v", err)
	}
	if _, err := identityStore(e, "web", "w").ClaimIdentity(ctx, "web", "w", "c"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ClaimIdentity after Close: %v", err)
	}
	if err := s.Erase(ctx, "c", nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Erase after Close: %v", err)
	}
	select {
	case <-e.Failed():
		t.Error("Close latched the engine failed")
	default:
	}
	if e.Err() != nil {
		t.Errorf("Err after Close: %v", e.Err())
	}
}

// Close completes every queued append before it returns.
func testCloseDrains(t *testing.T, open opener) {
	e := open(t, 4)
	const appends = 300
	var ok, calls atomic.Int32
	for i := range appends {
		c := "d-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		e.Store(i%4).Append(context.Background(), &AppendRequest{Customer: c, Events: events(c, 0, 1, t0)}, func(err error) {
			calls.Add(1)
			if err == nil {
				ok.Add(1)
			}
		})
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != appends || ok.Load() != appends {
		t.Errorf("after Close: %d done calls, %d succeeded, of %d appends", calls.Load(), ok.Load(), appends)
	}
}

func testContext(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Load(ctx, "c"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a canceled ctx: %v", err)
	}
	var got error
	s.Append(ctx, &AppendRequest{Customer: "c", Events: events("c", 0, 1, t0)}, func(err error) { got = err })
	if !errors.Is(got, context.Canceled) {
		t.Errorf("Append with a canceled ctx: %v", got)
	}
	if last, _ := s.LastSeq(context.Background(), "c"); last != 0 {
		t.Errorf("a canceled append was stored: last seq %d", last)
	}
}

// A customer's segment keys are written for every (type, hour) it has
// events of, however many it has, and again after the customer is erased
// and comes back: the writer skips a key it remembers writing, and must
// forget the erased customer's.
func testSegmentBucketsRemembered(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	ctx := context.Background()
	types := []string{"t.a", "t.b", "t.c", "t.d", "t.e", "t.f"}
	var seq uint64
	add := func(typ string, when time.Time) {
		t.Helper()
		seq++
		req := &AppendRequest{Customer: "c", PrevSeq: seq - 1, Events: []journey.Event{event("c", fmt.Sprintf("c-%d", seq), typ, seq, when)}}
		if err := appendWait(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 { // the second round: buckets written an hour before
		for i, typ := range types {
			add(typ, at(10+round, i))
		}
	}
	for _, typ := range types {
		for h := 10; h <= 11; h++ {
			if got := scanSegment(t, s, typ, at(h, 0), at(h+1, 0)); !slices.Equal(got, []string{"c"}) {
				t.Errorf("ScanSegment(%s, hour %d) = %v, want [c]", typ, h, got)
			}
		}
	}
	add("t.a", at(11, 40)) // the customer's last segment key: t.a, hour 11
	if err := s.Erase(ctx, "c", nil); err != nil {
		t.Fatal(err)
	}
	if got := scanSegment(t, s, "t.a", at(10, 0), at(12, 0)); len(got) != 0 {
		t.Fatalf("ScanSegment after erase = %v", got)
	}
	seq = 0
	add("t.a", at(11, 50)) // the bucket of the customer's last event before the erasure
	add("t.b", at(10, 30)) // a bucket the writer remembered before the erasure
	for _, c := range []struct {
		typ  string
		hour int
	}{{"t.a", 11}, {"t.b", 10}} {
		if got := scanSegment(t, s, c.typ, at(c.hour, 0), at(c.hour+1, 0)); !slices.Equal(got, []string{"c"}) {
			t.Errorf("ScanSegment(%s, hour %d) after the customer came back = %v, want [c]", c.typ, c.hour, got)
		}
	}
}
