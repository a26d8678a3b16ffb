package persistence

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/throughline/throughline/journey"
)

func scanMarks(t *testing.T, s Store, broadcast string) map[string]string {
	t.Helper()
	got := map[string]string{}
	var order []string
	err := s.ScanMarks(context.Background(), broadcast, func(c string, v []byte) bool {
		got[c] = string(v)
		order = append(order, c)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(order) {
		t.Errorf("marks not in customer order: %v", order)
	}
	return got
}

func broadcastEvent(customer, typ, broadcast string, seq uint64) journey.Event {
	e := event(customer, "rt-"+typ, typ, seq, t0)
	e.Actor = journey.ActorSystem
	e.Data, _ = json.Marshal(map[string]string{"broadcast": broadcast})
	return e
}

// Marks are written with a customer's events, replaced by later ones, kept
// apart per broadcast, and erased with the customer.
func testMarks(t *testing.T, open opener) {
	e := open(t, 1)
	s := e.Store(0)
	ctx := context.Background()
	for i, c := range []string{"b", "a", "c"} {
		req := &AppendRequest{Customer: c, Events: []journey.Event{broadcastEvent(c, journey.TypeProactiveSent, "bc-1", 1)},
			Marks: []Mark{{Broadcast: "bc-1", Value: []byte("sent")}}}
		if i == 2 {
			req.Marks = append(req.Marks, Mark{Broadcast: "bc-2", Value: []byte("held")})
		}
		if err := appendWait(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	// A mark alone (no events) replaces the earlier value.
	if err := appendWait(t, s, &AppendRequest{Customer: "a", PrevSeq: 1, Marks: []Mark{{Broadcast: "bc-1", Value: []byte("sent+cb")}}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "sent+cb", "b": "sent", "c": "sent"}
	if got := scanMarks(t, s, "bc-1"); !mapsEqual(got, want) {
		t.Errorf("bc-1 marks %v, want %v", got, want)
	}
	if got := scanMarks(t, s, "bc-"); len(got) != 0 {
		t.Errorf("a prefix of a broadcast id matched %v", got)
	}
	if got := scanMarks(t, s, "bc-2"); !mapsEqual(got, map[string]string{"c": "held"}) {
		t.Errorf("bc-2 marks %v", got)
	}
	if err := appendWait(t, s, &AppendRequest{Customer: "a", PrevSeq: 1, Marks: []Mark{{Broadcast: ""}}}); err == nil {
		t.Error("a mark without a broadcast was accepted")
	}
	if err := s.Erase(ctx, "a", nil); err != nil {
		t.Fatal(err)
	}
	if got := scanMarks(t, s, "bc-1"); !mapsEqual(got, map[string]string{"b": "sent", "c": "sent"}) {
		t.Errorf("after erasing a: %v", got)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Records are durable documents per collection, scanned in key order after
// a key, deleted and replaced in one call.
func testRecords(t *testing.T, open opener) {
	e := open(t, 2)
	s, other := e.Store(0), e.Store(1)
	ctx := context.Background()
	puts := []Record{{"k3", []byte("3")}, {"k1", []byte("1")}, {"k2", []byte("2")}}
	if err := s.WriteRecords(ctx, "audit", puts, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteRecords(ctx, "audit2", []Record{{"k0", []byte("x")}}, nil); err != nil {
		t.Fatal(err)
	}
	scan := func(st Store, coll, after string) []string {
		var out []string
		if err := st.ScanRecords(ctx, coll, after, func(k string, v []byte) bool {
			out = append(out, k+"="+string(v))
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := scan(s, "audit", ""); !slices.Equal(got, []string{"k1=1", "k2=2", "k3=3"}) {
		t.Errorf("scan: %v", got)
	}
	if got := scan(s, "audit", "k1"); !slices.Equal(got, []string{"k2=2", "k3=3"}) {
		t.Errorf("scan after k1: %v", got)
	}
	if got := scan(other, "audit", ""); len(got) != 0 {
		t.Errorf("another partition sees %v", got)
	}
	if err := s.WriteRecords(ctx, "audit", []Record{{"k2", []byte("two")}}, []string{"k1", "k2"}); err != nil {
		t.Fatal(err)
	}
	if got := scan(s, "audit", ""); !slices.Equal(got, []string{"k2=two", "k3=3"}) {
		t.Errorf("after delete and replace: %v", got)
	}
	n := 0
	_ = s.ScanRecords(ctx, "audit", "", func(string, []byte) bool { n++; return false })
	if n != 1 {
		t.Errorf("fn returning false saw %d records", n)
	}
	if err := s.WriteRecords(ctx, "", nil, nil); err == nil {
		t.Error("a record without a collection was accepted")
	}
}
