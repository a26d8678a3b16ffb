package persistence

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

func sampleEvent() journey.Event {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.FixedZone("", 2*3600))
	return journey.Event{
		ID: "gw-7f3a-000123", Customer: "c/42", Identity: map[string]string{"phone": "+15551230000", "email": "ana@example.com"},
		Type: "message.received", Channel: "sms", Text: "my card payment failed again ✓", Data: json.RawMessage(`{"amount":120.5}`),
		Time: &at, Seq: 17, Actor: journey.ActorCustomer, RecordedAt: time.Date(2026, 11, 22, 10, 0, 1, 5, time.UTC),
	}
}

func TestEventCodecRoundTrip(t *testing.T) {
	utc := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	minimal := journey.Event{ID: "x", Customer: "c", Type: "t", Seq: 1, Actor: journey.ActorSystem, RecordedAt: utc}
	for _, ev := range []journey.Event{sampleEvent(), minimal} {
		b, err := encodeEvent(&ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEvent(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, ev)
		}
		// The wire form is what readers see: it must not change either.
		w1, _ := json.Marshal(ev)
		w2, _ := json.Marshal(got)
		if string(w1) != string(w2) {
			t.Fatalf("JSON differs after round trip:\n%s\n%s", w1, w2)
		}
		head, err := decodeEventHead(b)
		if err != nil || head.Type != ev.Type || !head.RecordedAt.Equal(ev.RecordedAt) {
			t.Fatalf("head = %+v %v", head, err)
		}
	}
}

func TestEventCodecRejectsCorruptValues(t *testing.T) {
	ev := sampleEvent()
	b, _ := encodeEvent(&ev)
	for i := 0; i < len(b); i++ {
		if _, err := decodeEvent(b[:i]); err == nil {
			t.Fatalf("a value cut at %d of %d bytes decoded", i, len(b))
		}
	}
	if _, err := decodeEvent(append(b, 0)); err == nil {
		t.Fatal("trailing bytes decoded")
	}
	bad := ev
	bad.Data = json.RawMessage(`{"a":`)
	if _, err := encodeEvent(&bad); err == nil {
		t.Fatal("data that is not JSON encoded")
	}
}

// FuzzEventCodec: decoding arbitrary bytes never panics, and whatever
// decodes re-encodes to the same bytes.
func FuzzEventCodec(f *testing.F) {
	ev := sampleEvent()
	b, _ := encodeEvent(&ev)
	f.Add(b)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeEvent(data)
		if err != nil {
			return
		}
		again, err := encodeEvent(&got)
		if err != nil {
			return // data bytes that are not JSON are refused on the way in
		}
		back, err := decodeEvent(again)
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("re-encoding changed the event: %v\n%+v\n%+v", err, got, back)
		}
	})
}
