package gateway

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

func TestAckFramesParse(t *testing.T) {
	ack := &journey.Ack{ID: "e\"1", Customer: "c/42", Seq: 17}
	var single struct {
		Type, ID, Customer string
		Seq                uint64
		Duplicate          bool
	}
	if err := json.Unmarshal(ackFrame("e\"1", actors.Result{Ack: ack}), &single); err != nil {
		t.Fatal(err)
	}
	if single.Type != "ack" || single.ID != "e\"1" || single.Customer != "c/42" || single.Seq != 17 || single.Duplicate {
		t.Fatalf("ack frame = %+v", single)
	}
	rej := journey.Rejectf(journey.CodeTooLarge, "too big")
	var batch struct {
		Type, ID string
		Acks     []struct {
			ID    string
			Seq   uint64
			Error *struct{ Code, Message string }
		}
	}
	frame := acksFrame("b-1", []string{"e\"1", "e2"}, []actors.Result{{Ack: ack}, {Reject: rej}})
	if err := json.Unmarshal(frame, &batch); err != nil {
		t.Fatalf("%s: %v", frame, err)
	}
	if batch.Type != "acks" || batch.ID != "b-1" || len(batch.Acks) != 2 {
		t.Fatalf("acks frame = %s", frame)
	}
	if batch.Acks[0].Seq != 17 || batch.Acks[0].Error != nil || batch.Acks[1].ID != "e2" || batch.Acks[1].Error.Code != "too_large" {
		t.Fatalf("acks frame = %s", frame)
	}
}

func TestDecodeFrameRejectsNonsense(t *testing.T) {
	for _, in := range []string{"", "nope", "[]", `{"id":"x"}`, `{"type":1}`, `"event"`} {
		if _, rej := decodeFrame([]byte(in)); rej == nil || rej.Code != journey.CodeBadRequest {
			t.Errorf("decodeFrame(%q) = %v, want bad_request", in, rej)
		}
	}
}

// onePass is what decodeFrameOnePass reads of data: the frame's type and
// its events, copied out and validated as the connection does.
func onePass(data []byte) (typ string, events []journey.Event, rejs []*journey.Rejection, ok bool) {
	w, ok := decodeFrameOnePass(data)
	if !ok {
		return "", nil, nil, false
	}
	defer w.release()
	wires := w.events()
	typ = "event"
	if w.batch {
		typ = "batch"
	}
	for i := range wires {
		e := wires[i].event()
		rej := journey.ValidateInbound(&e)
		events, rejs = append(events, e), append(rejs, rej)
	}
	return typ, events, rejs, true
}

// twoPasses is what decodeFrame and decodeEvent read of data.
func twoPasses(data []byte) (typ string, events []journey.Event, rejs []*journey.Rejection, frameRej *journey.Rejection) {
	fr, rej := decodeFrame(data)
	if rej != nil {
		return "", nil, nil, rej
	}
	raws := fr.Events
	if fr.Type == "event" {
		raws = []json.RawMessage{fr.Event}
	}
	for _, raw := range raws {
		e, rej := decodeEvent(raw)
		events, rejs = append(events, e), append(rejs, rej)
	}
	return fr.Type, events, rejs, nil
}

// Event and batch frames are read in one pass when they start with their
// type; any frame the one pass might read otherwise than the two passes
// (no event, a null or empty one, one without an id, invalid UTF-8, a
// field of the wrong type, a batch of none or too many) is left to them.
func TestDecodeFrameOnePass(t *testing.T) {
	for _, in := range []string{
		`{"type":"event","id":"f1","event":{"id":"e-1","customer":"c-1","identity":{"phone":"+15551230000"},"type":"message.received","channel":"sms","text":"hi","data":{"n":1},"time":"2026-11-22T10:00:00Z"}}`,
		`{"type":"event","event":{"id":"e-2","customer":"c-1","type":"not a type"}}`,
		`{"type":"batch","id":"b1","events":[{"id":"a","customer":"c","text":"hi"},{"id":"b","identity":{"whatsapp":"15551230000"},"type":"page.viewed"},{"id":"c","type":"not a type"}]}`,
		// The field a frame's type ignores is kept raw, as the two passes
		// keep it: any JSON value, not decoded.
		`{"type":"event","event":{"id":"e-3","customer":"c-1","text":"hi"},"events":[{"identity":5},{},{}]}`,
		`{"type":"batch","id":"b2","event":{"id":5},"events":[{"id":"a","customer":"c","text":"hi"}]}`,
	} {
		typ, events, rejs, ok := onePass([]byte(in))
		if !ok {
			t.Fatalf("%.60s: not read in one pass", in)
		}
		typ2, events2, rejs2, _ := twoPasses([]byte(in))
		if typ != typ2 || !reflect.DeepEqual(events, events2) || !reflect.DeepEqual(rejs, rejs2) {
			t.Fatalf("%.60s: one pass %s %+v %v, two %s %+v %v", in, typ, events, rejs, typ2, events2, rejs2)
		}
		if bad := strings.Contains(in, "not a type"); bad != (rejs[len(rejs)-1] != nil) {
			t.Errorf("%.60s: its last event refused %v, want %v", in, rejs[len(rejs)-1], bad)
		}
	}
	for _, in := range []string{
		`{"event":{"id":"e-1","customer":"c-1"},"type":"event"}`, // type not first
		`{"type":"event","id":"f1"}`,
		`{"type":"event","event":null}`,
		`{"type":"event","event":{}}`,
		`{"type":"event","event":{"customer":"c-1","text":"hi"}}`,
		`{"type":"event","event":"e-1"}`,
		"{\"type\":\"event\",\"event\":{\"id\":\"e-1\",\"customer\":\"c-1\",\"text\":\"\xff\"}}",
		`{"type":"event","channels":"sms","event":{"id":"e-1","customer":"c-1"}}`,
		`{"type":"event","event":{"id":"e-1","customer":"c-1"}} trailing`,
		`{"type":"event","event":{"id":"e-1","customer":"c-1","text":"` + strings.Repeat("x", journey.EventMaxBytes) + `"}}`,
		`{"type":"batch","id":"b1","events":[]}`,
		`{"type":"batch","id":"b1"}`,
		`{"type":"batch","id":"b1","events":[{"id":"a","customer":"c"},{"customer":"c"}]}`,
		`{"type":"batch","id":"b1","events":[{"id":"a","customer":"c"},"b"]}`,
		`{"type":"batch","id":"b1","events":[` + strings.Repeat(`{"id":"a"},`, journey.BatchMaxEvents) + `{"id":"a"}]}`,
		`{"type":"event","events":[{"id":"a","customer":"c"}]}`,
	} {
		if _, _, _, ok := onePass([]byte(in)); ok {
			t.Errorf("decodeFrameOnePass(%.80q) read it; want it left to two passes", in)
		}
	}
}

// A batch whose decode fails part way leaves nothing for the next frame:
// its events written so far are cleared with the rest (the fuzzer found an
// event taking the customer of the failed frame's event).
func TestDecodeFrameOnePassAfterAFailedDecode(t *testing.T) {
	for range 3 {
		// The third event fails after its customer was written.
		if _, _, _, ok := onePass([]byte(`{"type":"batch","id":"b1","events":[{"id":"a","customer":"c"},{"id":"b","customer":"c"},{"id":"z","customer":"c","text":5}]}`)); ok {
			t.Fatal("a batch with a number for a text was read in one pass")
		}
		in := []byte(`{"type":"batch","id":"b2","events":[{"id":"a","customer":"d"},{"id":"b","customer":"d"},{"id":"y","identity":{"phone":"+15551230000"}}]}`)
		_, events, rejs, ok := onePass(in)
		_, events2, rejs2, _ := twoPasses(in)
		if !ok || !reflect.DeepEqual(events, events2) || !reflect.DeepEqual(rejs, rejs2) {
			t.Fatalf("one pass %+v %v, two %+v %v", events, rejs, events2, rejs2)
		}
	}
}

// FuzzFrameDecode feeds real frames, split and mutated, to the frame and
// event decoders: they must never panic, and whatever they accept must be a
// valid event that re-encodes and decodes to the same event.
func FuzzFrameDecode(f *testing.F) {
	seeds := []string{
		`{"type":"hello","channels":["sms","whatsapp"]}`,
		`{"type":"event","event":{"id":"gw-7f3a-000123","customer":"c-42","identity":{"phone":"+15551230000"},"type":"message.received","channel":"sms","text":"my card payment failed again","data":{"amount":120.5},"time":"2026-11-22T10:00:00Z"}}`,
		`{"type":"batch","id":"b1","events":[{"id":"a","customer":"c","text":"hi"},{"id":"b","identity":{"whatsapp":"15551230000"},"type":"page.viewed"}]}`,
		`{"type":"delivered","id":"o-1"}`,
		`{"type":"event","event":{"id":"x","customer":"c","type":"profile.updated"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
		for i := 1; i < len(s); i += 7 {
			f.Add([]byte(s[:i])) // real inputs cut at many bytes
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, events, rejs, one := onePass(data)
		lower := bytes.ToLower(data)
		if one && bytes.Count(lower, []byte(`"event"`)) <= 2 && bytes.Count(lower, []byte(`"events"`)) <= 1 && !bytes.Contains(data, []byte(`\u`)) {
			// What one pass reads, two read alike (decodeFrameOnePass's
			// doc: but for a frame that names its "event" or its "events"
			// twice, in any case or with escapes; an event frame's own
			// type is one "event").
			typ2, events2, rejs2, frameRej := twoPasses(data)
			if frameRej != nil || typ != typ2 || !reflect.DeepEqual(events, events2) || !reflect.DeepEqual(rejs, rejs2) {
				t.Fatalf("%q: one pass %s %+v %v, two %s %+v %v %v", data, typ, events, rejs, typ2, events2, rejs2, frameRej)
			}
		}
		fr, rej := decodeFrame(data)
		if rej != nil {
			return
		}
		raws := fr.Events
		if len(fr.Event) > 0 {
			raws = append(raws, fr.Event)
		}
		for _, raw := range raws {
			e, rej := decodeEvent(raw)
			if rej != nil {
				continue
			}
			if journey.ValidateID("id", e.ID) != nil || journey.ValidateType(e.Type) != nil || journey.IsReservedType(e.Type) {
				t.Fatalf("accepted an invalid event: %+v", e)
			}
			again, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			e2, rej := decodeEvent(again)
			if rej != nil || e2.ID != e.ID || e2.Type != e.Type || e2.Customer != e.Customer || e2.Text != e.Text {
				t.Fatalf("re-decoding %s: %v %+v", again, rej, e2)
			}
		}
	})
}
