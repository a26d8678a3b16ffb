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

// An event frame is read in one pass when it starts with its type; any
// frame the one pass might read otherwise than the two passes (no event,
// a null or empty one, one without an id, invalid UTF-8, a field of the
// wrong type) is left to them.
func TestDecodeEventFrameInOnePass(t *testing.T) {
	in := `{"type":"event","id":"f1","event":{"id":"e-1","customer":"c-1","identity":{"phone":"+15551230000"},"type":"message.received","channel":"sms","text":"hi","data":{"n":1},"time":"2026-11-22T10:00:00Z"}}`
	e, rej, ok := decodeEventFrame([]byte(in))
	if !ok || rej != nil {
		t.Fatalf("decodeEventFrame = %v, %v", ok, rej)
	}
	fr, _ := decodeFrame([]byte(in))
	want, _ := decodeEvent(fr.Event)
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("one pass %+v, two %+v", e, want)
	}
	if _, rej, ok := decodeEventFrame([]byte(`{"type":"event","event":{"id":"e-2","customer":"c-1","type":"not a type"}}`)); !ok || rej == nil || rej.Code != journey.CodeBadRequest {
		t.Errorf("a bad type: %v, %v; want read and refused", ok, rej)
	}
	for _, in := range []string{
		`{"event":{"id":"e-1","customer":"c-1"},"type":"event"}`, // type not first
		`{"type":"event","id":"f1"}`,
		`{"type":"event","event":null}`,
		`{"type":"event","event":{}}`,
		`{"type":"event","event":{"customer":"c-1","text":"hi"}}`,
		`{"type":"event","event":"e-1"}`,
		`{"type":"event","event":{"id":"e-1","customer":"c-1","text":"\xff"}}`,
		"{\"type\":\"event\",\"event\":{\"id\":\"e-1\",\"customer\":\"c-1\",\"text\":\"\xff\"}}",
		`{"type":"event","channels":"sms","event":{"id":"e-1","customer":"c-1"}}`,
		`{"type":"event","event":{"id":"e-1","customer":"c-1"}} trailing`,
		`{"type":"event","event":{"id":"e-1","customer":"c-1","text":"` + strings.Repeat("x", journey.EventMaxBytes) + `"}}`,
	} {
		if _, _, ok := decodeEventFrame([]byte(in)); ok {
			t.Errorf("decodeEventFrame(%.80q) read it; want it left to two passes", in)
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
		oneE, oneRej, one := decodeEventFrame(data)
		fr, rej := decodeFrame(data)
		if one && bytes.Count(data, []byte(`"event"`)) == 1 {
			// What one pass reads, two read alike (decodeEventFrame's
			// doc: but for a frame with the key "event" twice).
			if rej != nil || fr.Type != "event" || len(fr.Event) == 0 {
				t.Fatalf("one pass read %q, two refused it: %v", data, rej)
			}
			twoE, twoRej := decodeEvent(fr.Event)
			if !reflect.DeepEqual(oneE, twoE) || !reflect.DeepEqual(oneRej, twoRej) {
				t.Fatalf("%q: one pass %+v %v, two %+v %v", data, oneE, oneRej, twoE, twoRej)
			}
		}
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
