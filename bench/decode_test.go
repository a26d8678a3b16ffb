package bench

import (
	"encoding/json"
	"testing"
)

func TestDecodeFrame(t *testing.T) {
	var f serverFrame
	msg := `{"type":"ack","id":"ab12-0-7","customer":"c-3","seq":17,"duplicate":true}`
	if err := decodeFrame([]byte(msg), &f); err != nil {
		t.Fatal(err)
	}
	if f.kind != kindAck || string(f.id) != "ab12-0-7" || !f.duplicate {
		t.Fatalf("ack decoded as %+v", f)
	}

	// Fields in another order, extra fields of every JSON kind, white space.
	msg = ` { "extra" : {"a":[1,-2.5e3,true,null,{"b":"\"}"}]}, "acks" : [
		{"seq":1,"id":"x-1","customer":"c-1","duplicate":false},
		{"id":"x-2","error":{"message":"no \"way\"","code":"conflict"}}
	], "id":"b-4", "type":"acks" } `
	if err := decodeFrame([]byte(msg), &f); err != nil {
		t.Fatal(err)
	}
	if f.kind != kindAcks || string(f.id) != "b-4" || len(f.items) != 2 {
		t.Fatalf("acks decoded as %+v", f)
	}
	if it := f.items[0]; string(it.id) != "x-1" || it.failed || it.duplicate {
		t.Fatalf("item 0 = %+v", it)
	}
	if it := f.items[1]; string(it.id) != "x-2" || !it.failed || string(it.code) != "conflict" {
		t.Fatalf("item 1 = %+v", it)
	}

	msg = `{"type":"error","id":"","code":"bad_request","message":"not JSON"}`
	if err := decodeFrame([]byte(msg), &f); err != nil {
		t.Fatal(err)
	}
	if f.kind != kindError || len(f.id) != 0 || string(f.code) != "bad_request" || len(f.items) != 0 {
		t.Fatalf("error decoded as %+v", f)
	}

	if err := decodeFrame([]byte(`{"type":"ready"}`), &f); err != nil || f.kind != kindReady {
		t.Fatalf("ready decoded as %+v, %v", f, err)
	}
	if err := decodeFrame([]byte(`{"type":"receipt","id":"r"}`), &f); err != nil || f.kind != kindOther {
		t.Fatalf("an unknown type decoded as %+v, %v", f, err)
	}

	msg = `{"type":"outbound","id":"out-jc-1-18","customer":"jc-1","seq":18,"channel":"chat","to":{},` +
		`"text":"See \"Forgot password\"","actor":"ai","data":{}}`
	if err := decodeFrame([]byte(msg), &f); err != nil {
		t.Fatal(err)
	}
	if f.kind != kindOutbound || string(f.id) != "out-jc-1-18" || string(f.customer) != "jc-1" || string(f.text) != `See \"Forgot password\"` {
		t.Fatalf("outbound decoded as %+v", f)
	}
}

func TestDecodeFrameRejectsMalformed(t *testing.T) {
	for _, msg := range []string{
		``, `{`, `{"type":"ack"`, `{"type":ack}`, `{"type":"ack",}`, `[]`, `{"id":"a\`,
		`{"type":"ack"} x`, `{"acks":[{"id":"a"},]}`, `{"a":-}`, `{"duplicate":"yes"}`, "{\"id\":\"a\x01\"}",
	} {
		var f serverFrame
		if err := decodeFrame([]byte(msg), &f); err == nil {
			t.Errorf("decodeFrame(%q) accepted it as %+v", msg, f)
		}
	}
}

// wantFrame is what encoding/json makes of a server frame, to compare with.
type wantFrame struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Customer  string `json:"customer"` // the scanner reads it (outbound frames): a string or refused
	Text      string `json:"text"`
	Duplicate bool   `json:"duplicate"`
	Code      string `json:"code"`
	Acks      []struct {
		ID        string `json:"id"`
		Duplicate bool   `json:"duplicate"`
		Error     *struct {
			Code string `json:"code"`
		} `json:"error"`
	} `json:"acks"`
}

// FuzzDecodeFrame checks the scanner against encoding/json: whatever JSON
// decodes into the frame's shape without escapes in its strings decodes to
// the same fields, and nothing panics.
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"ack","id":"ab12-0-7","customer":"c-3","seq":17,"duplicate":false}`,
		`{"type":"acks","id":"b-1","acks":[{"id":"a","seq":1},{"id":"b","error":{"code":"too_large","message":"m"}}]}`,
		`{"type":"error","id":"e","code":"unavailable","message":"shutting down"}`,
		`{"type":"outbound","id":"o-1","to":{"phone":"+1"},"data":{"x":[1,2,{}]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var got serverFrame
		err := decodeFrame(msg, &got)
		var want wantFrame
		if json.Unmarshal(msg, &want) != nil || beyondShortcuts(msg) {
			return // the scanner may accept or refuse; it must only not panic
		}
		if err != nil {
			t.Fatalf("decodeFrame refused %q: %v", msg, err)
		}
		if string(got.id) != want.ID || got.duplicate != want.Duplicate || string(got.code) != want.Code || string(got.customer) != want.Customer {
			t.Fatalf("decodeFrame(%q) = %+v, encoding/json = %+v", msg, got, want)
		}
		if len(got.items) != len(want.Acks) {
			t.Fatalf("decodeFrame(%q): %d items, encoding/json %d", msg, len(got.items), len(want.Acks))
		}
		for i, w := range want.Acks {
			g := got.items[i]
			if string(g.id) != w.ID || g.duplicate != w.Duplicate || g.failed != (w.Error != nil) ||
				(w.Error != nil && string(g.code) != w.Error.Code) {
				t.Fatalf("decodeFrame(%q) item %d = %+v, encoding/json %+v", msg, i, g, w)
			}
		}
	})
}

// beyondShortcuts reports inputs where the scanner's documented shortcuts
// may differ from encoding/json: escapes and invalid UTF-8 (strings are
// kept raw), upper case and non-ASCII keys (encoding/json folds case), and
// null where a string is expected.
func beyondShortcuts(msg []byte) bool {
	for i, c := range msg {
		if c == '\\' || c >= 0x80 || (c >= 'A' && c <= 'Z') || (c == 'n' && i+4 <= len(msg) && string(msg[i:i+4]) == "null") {
			return true
		}
	}
	return false
}

// The reader decodes every answer while sharing the machine with the server:
// an ack, and an acks frame once its item slice has grown, allocate nothing.
func TestDecodeFrameDoesNotAllocate(t *testing.T) {
	ack := []byte(`{"type":"ack","id":"ab12-0-7","customer":"c-3","seq":17,"duplicate":false}`)
	acks := []byte(`{"type":"acks","id":"b-1","acks":[{"id":"a","customer":"c-1","seq":1,"duplicate":false},{"id":"b","error":{"code":"conflict","message":"m"}}]}`)
	var f serverFrame
	for _, msg := range [][]byte{ack, acks} {
		_ = decodeFrame(msg, &f)
		if n := testing.AllocsPerRun(100, func() { _ = decodeFrame(msg, &f) }); n != 0 {
			t.Errorf("decodeFrame(%s): %v allocations per frame, want 0", msg, n)
		}
	}
}

func TestEncoderDoesNotAllocate(t *testing.T) {
	cfg := Default()
	cfg.BatchSize = 10
	enc := newFrameEncoder("n", 0, &cfg)
	if n := testing.AllocsPerRun(100, func() { enc.next() }); n != 0 {
		t.Errorf("frameEncoder.next: %v allocations per frame, want 0", n)
	}
}
