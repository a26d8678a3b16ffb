package journey

import (
	"encoding/json"
	"testing"
)

func TestCheckJSONUTF8NamesTheField(t *testing.T) {
	cases := []struct {
		name, raw, want string
	}{
		{"valid", `{"id":"e1","text":"héllo","data":{"a":["x",1,true,null,{"b":"\u00e9\ud83d\ude00"}]}}`, ""},
		{"text", "{\"id\":\"e1\",\"text\":\"bad \xff here\"}", "text: invalid UTF-8"},
		{"nested data", "{\"id\":\"e1\",\"data\":{\"order\":{\"note\":\"\xc3\x28\"}}}", "data.order.note: invalid UTF-8"},
		{"array item", "{\"data\":{\"items\":[\"ok\",{\"n\":\"\xe2\x82\"}]}}", "data.items[1].n: invalid UTF-8"},
		{"identity value", "{\"identity\":{\"email\":\"a\xfe@b.c\"}}", "identity.email: invalid UTF-8"},
		{"key", "{\"data\":{\"k\xff\":1}}", "data: invalid UTF-8 in a key"},
		{"encoded surrogate", "{\"text\":\"\xed\xa0\x80\"}", "text: invalid UTF-8"},
		{"lone high surrogate escape", `{"data":{"t":"x\ud800y"}}`, "data.t: invalid UTF-8"},
		{"lone low surrogate escape", `{"id":"\udc00"}`, "id: invalid UTF-8"},
		{"escaped quote before bad byte", "{\"text\":\"a\\\"b\xff\"}", "text: invalid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := CheckJSONUTF8("", []byte(c.raw))
			if c.want == "" {
				if r != nil {
					t.Fatalf("refused valid JSON: %v", r.Message)
				}
				return
			}
			if r == nil || r.Code != CodeBadRequest || r.Message != c.want {
				t.Fatalf("got %+v, want bad_request %q", r, c.want)
			}
		})
	}
}

func TestCheckJSONUTF8Prefix(t *testing.T) {
	r := CheckJSONUTF8("data", []byte("{\"x\":\"\xff\"}"))
	if r == nil || r.Message != "data.x: invalid UTF-8" {
		t.Fatalf("got %+v", r)
	}
	// Not JSON but not UTF-8 either: refused without a field.
	r = CheckJSONUTF8("", []byte("{\"x\":\xff"))
	if r == nil || r.Message != "event: invalid UTF-8" {
		t.Fatalf("got %+v", r)
	}
}

// FuzzCheckJSONUTF8: whatever encoding/json would change by replacing bytes
// with U+FFFD is refused, and valid JSON is never refused.
func FuzzCheckJSONUTF8(f *testing.F) {
	f.Add([]byte(`{"id":"e1","data":{"a":["\ud83d\ude00"]}}`))
	f.Add([]byte("{\"text\":\"\xff\"}"))
	f.Add([]byte(`{"t":"\ud800"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return
		}
		r := CheckJSONUTF8("", raw)
		// A document that survives decoding unchanged in its strings holds
		// no replacement the client did not send.
		if r == nil && containsReplacementNotInInput(raw, v) {
			t.Fatalf("accepted %q, which decodes with U+FFFD it did not send", raw)
		}
	})
}

// containsReplacementNotInInput: v has more U+FFFD than raw spells.
func containsReplacementNotInInput(raw []byte, v any) bool {
	return countFFFD(v) > countSpelled(raw)
}

func countFFFD(v any) int {
	n := 0
	switch x := v.(type) {
	case string:
		for _, r := range x {
			if r == '\uFFFD' {
				n++
			}
		}
	case []any:
		for _, e := range x {
			n += countFFFD(e)
		}
	case map[string]any:
		for k, e := range x {
			n += countFFFD(k) + countFFFD(e)
		}
	}
	return n
}

// countSpelled counts U+FFFD written in raw, as bytes or as \ufffd.
func countSpelled(raw []byte) int {
	n := 0
	s := string(raw)
	for i := 0; i < len(s); i++ {
		if len(s)-i >= 3 && s[i:i+3] == "\uFFFD" {
			n++
		}
		if len(s)-i >= 6 && (s[i:i+6] == `\ufffd` || s[i:i+6] == `\uFFFD`) {
			n++
		}
	}
	return n
}
