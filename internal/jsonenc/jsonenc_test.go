package jsonenc

import (
	"encoding/json"
	"testing"
)

// AppendString must produce what encoding/json produces, so clients can
// parse every ack whatever the id holds, and stored event data keeps its
// bytes.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote"back\slash`, "tab\tnl\ncr\r", "bs\bff\f", "\x00\x1f\x7f", "<a&b>",
		"é ü 日本 🎉", "\u2028\u2029", "bad\xffutf8 \xc3", string([]byte{0xed, 0xa0, 0x80}), "gw/7f3a-000123"} {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendStringMatchesEncodingJSON(f *testing.F) {
	f.Add("phone")
	f.Add("<&>\u2028\xff\x00\"\\")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// AppendStringMap and AppendRaw write what encoding/json writes for a
// map[string]string and a json.RawMessage.
func TestMapAndRawMatchEncodingJSON(t *testing.T) {
	for _, m := range []map[string]string{nil, {}, {"phone": "+1555"}, {"phone": "+1", "email": "a@b", "<": "&"}} {
		want, _ := json.Marshal(m)
		if got := AppendStringMap(nil, m); string(got) != string(want) {
			t.Errorf("AppendStringMap(%v) = %s, want %s", m, got, want)
		}
	}
	if got, _ := AppendRaw(nil, nil); string(got) != "null" {
		t.Errorf("AppendRaw(nil) = %s, want null", got)
	}
	for _, raw := range []string{`{}`, `{"a":1}`, ` { "a" : [1, 2] } `, `{"t":"<b>&</b>"}`, "{\"t\":\"\u2028\"}", `"x"`, `null`} {
		want, _ := json.Marshal(json.RawMessage(raw))
		got, err := AppendRaw(nil, []byte(raw))
		if err != nil || string(got) != string(want) {
			t.Errorf("AppendRaw(%s) = %s, %v; want %s", raw, got, err, want)
		}
	}
	for _, raw := range []string{`{`, `{"a":}`, `{"a":1} x`} {
		if _, err := AppendRaw(nil, []byte(raw)); err == nil {
			t.Errorf("AppendRaw(%s): no error", raw)
		}
	}
}

func FuzzAppendRawMatchesEncodingJSON(f *testing.F) {
	f.Add([]byte(`{"a":"<b>","c":[1, 2]}`))
	f.Add([]byte(` "\u2028" `))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) == 0 {
			return // null, as for a nil RawMessage (encoding/json refuses an empty one)
		}
		want, werr := json.Marshal(json.RawMessage(raw))
		got, err := AppendRaw(nil, raw)
		if (werr == nil) != (err == nil) || (err == nil && string(got) != string(want)) {
			t.Fatalf("AppendRaw(%q) = %s, %v; encoding/json %s, %v", raw, got, err, want, werr)
		}
	})
}
