package persistence

import (
	"reflect"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// An append op given back to appendOps and prepared again is the op a new
// one would be: nothing of the append before it (events, due work, marks,
// the error, done) is left in it, whatever the number of events each had.
func TestAppendOpRecycled(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ev := func(seq uint64) journey.Event {
		return journey.Event{ID: "c-1-e" + string(rune('0'+seq)), Customer: "c-1", Type: journey.TypeMessageReceived, Actor: journey.ActorCustomer, Channel: "sms", Text: "hello", Seq: seq, RecordedAt: at}
	}
	reqs := []*AppendRequest{
		{Customer: "c-1", PrevSeq: 0, Events: []journey.Event{ev(1), ev(2)},
			DueAdd: []DueWork{{At: at, Customer: "c-1", Kind: "offer", Ref: "o"}}, Marks: []Mark{{Broadcast: "bc", Value: []byte("sent")}}},
		{Customer: "c-1", PrevSeq: 2, Events: []journey.Event{ev(3)}},
		{Customer: "c-2", PrevSeq: 0, Events: []journey.Event{ev(1), ev(2), ev(3)}},
		{Customer: "", Events: []journey.Event{ev(1)}}, // invalid: err set
		{Customer: "c-1", PrevSeq: 3, Marks: []Mark{{Broadcast: "bc"}}},
		nil,
		{Customer: "c-3", PrevSeq: 0, Events: []journey.Event{ev(1), ev(2)}},
	}
	done := func(error) {}
	a := new(appendOp)
	for i, req := range reqs {
		got := prepareAppendInto(a, 1, req, done)
		want := prepareAppend(1, req, done)
		if (got.err == nil) != (want.err == nil) || got.err != nil && got.err.Error() != want.err.Error() {
			t.Fatalf("append %d: err %v, want %v", i, got.err, want.err)
		}
		g, w := *got, *want
		g.many, w.many, g.done, w.done, g.err, w.err = nil, nil, nil, nil, nil, nil
		g.values, w.values = nil, nil // storage: the events' values are compared
		if len(g.events) == 0 && len(w.events) == 0 {
			g.events, w.events = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("append %d prepared in a recycled op:\n%+v\nwant\n%+v", i, g, w)
		}
		got.reset()
		for j, e := range a.many[:cap(a.many)] {
			if !reflect.DeepEqual(e, storedEvent{}) {
				t.Fatalf("after append %d a recycled op still holds event %d: %+v", i, j, e)
			}
		}
		if a.done != nil || a.events != nil || a.marks != nil || a.dueAdd != nil || a.customer != "" {
			t.Fatalf("after append %d a recycled op still holds %+v", i, *a)
		}
	}
}
