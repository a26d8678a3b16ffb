package journey

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The encoded timeline gives back what was pushed: the latest TimelineMax
// events, whole, the owner's id restored, whatever the sizes and however
// often the buffer was cut.
func TestTimelineKeepsTheLatestEventsWhole(t *testing.T) {
	const owner = "cust-1"
	var tl timeline
	var all []Event
	base := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= 3*TimelineMax+7; i++ {
		ev := Event{
			ID: "e" + strconv.Itoa(i), Customer: owner, Type: TypeMessageReceived, Channel: "chat",
			Text: strings.Repeat("x", (i*37)%900), Seq: uint64(i), Actor: ActorCustomer, RecordedAt: base.Add(time.Duration(i) * time.Second),
		}
		if i%5 == 0 { // words with no code
			ev.Type, ev.Channel, ev.Actor = "payment.failed", "fax", ActorRulePrefix+"r1"
		}
		switch i % 4 {
		case 1:
			ev.Identity = map[string]string{"phone": "+1555" + strconv.Itoa(i), "email": "a@b.c"}
		case 2:
			ev.Data = json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)
			ev.Customer = "someone-else"
		case 3:
			at := base.In(time.FixedZone("", 3600))
			ev.Time = &at
			ev.Customer = ""
		}
		tl.push(&ev, owner)
		all = append(all, ev)
		if cap(tl.buf) > 4*len(tl.buf)+4096 {
			t.Fatalf("after %d events: %d bytes held for %d", i, cap(tl.buf), len(tl.buf))
		}
		kept := all[max(len(all)-TimelineMax, 0):]
		for _, probe := range []struct {
			upTo uint64
			n    int
		}{{uint64(i), TimelineMax}, {uint64(i), 3}, {uint64(i) - 2, 5}, {0, TimelineMax}} {
			got := tl.last(probe.upTo, probe.n, owner)
			var want []Event
			for _, e := range kept {
				if e.Seq <= probe.upTo {
					want = append(want, e)
				}
			}
			want = want[max(len(want)-probe.n, 0):]
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("after %d events, last(%d, %d): got %d events, want %d; first got %+v want %+v",
					i, probe.upTo, probe.n, len(got), len(want), got[0], want[0])
			}
		}
	}
}

// An entry's length is written where its estimate put room for it: a
// record whose length takes more or fewer varint bytes than its estimate's
// (records near 128 bytes, with a client time the estimate leaves out) is
// moved and still reads back whole.
func TestTimelineEntriesAroundTheirLengthsVarintBoundary(t *testing.T) {
	const owner = "c-1"
	base := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	at := base.In(time.FixedZone("", 3600))
	var tl timeline
	var all []Event
	for i := range 300 {
		ev := Event{ID: "e" + strconv.Itoa(i), Customer: owner, Type: "payment.failed", Channel: "fax",
			Text: strings.Repeat("x", i%160), Seq: 1<<40 + uint64(i), Actor: ActorRulePrefix + "r", RecordedAt: base}
		if i%2 == 0 {
			ev.Time = &at
		}
		tl.push(&ev, owner)
		all = append(all, ev)
		want := all[max(len(all)-TimelineMax, 0):]
		if got := tl.last(ev.Seq, TimelineMax, owner); !reflect.DeepEqual(got, want) {
			t.Fatalf("after %d events: the timeline reads back otherwise", i+1)
		}
	}
}

// BenchmarkTimelinePush: an event into a timeline growing from empty to
// 20 events (a resident customer's early life), and into a full one.
func BenchmarkTimelinePush(b *testing.B) {
	ev := Event{ID: "m-12345-7", Customer: "c-12345", Type: TypeMessageReceived, Channel: "chat", Actor: ActorCustomer,
		Text: strings.Repeat("t", 200), RecordedAt: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	b.Run("growing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var tl timeline
			for i := range 20 {
				ev.Seq = uint64(i + 1)
				tl.push(&ev, "c-12345")
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		var tl timeline
		seq := uint64(0)
		for b.Loop() {
			seq++
			ev.Seq = seq
			tl.push(&ev, "c-12345")
		}
	})
}

// An event's time comes back whole from its record, in the years unix
// nanoseconds cannot hold too (it used to come back 150 years off).
func TestEventRecordKeepsAnyTime(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1677, 9, 21, 0, 12, 43, 145224191, time.FixedZone("", -5*3600)),
		time.Date(1678, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2026, 12, 4, 16, 0, 0, 123456789, time.FixedZone("", 3600)),
		time.Date(2262, 4, 12, 0, 0, 0, 999999999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", 14*3600)),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		ev := Event{ID: "e", Type: "x", Seq: 1, Time: &at, RecordedAt: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)}
		got, err := DecodeEventRecord(AppendEventRecord(nil, &ev))
		if err != nil {
			t.Fatalf("%v: %v", at, err)
		}
		_, want := at.Zone()
		if _, off := got.Time.Zone(); !got.Time.Equal(at) || off != want {
			t.Errorf("time %v came back %v", at, got.Time)
		}
		var tl timeline
		tl.push(&ev, "c")
		if back := tl.last(1, 1, "c"); !back[0].Time.Equal(at) {
			t.Errorf("timeline: time %v came back %v", at, back[0].Time)
		}
	}
}
