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
