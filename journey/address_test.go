package journey

import (
	"encoding/json"
	"testing"
)

// An address encodes byte for byte as encoding/json encodes the same
// map[string]string: events recorded before it keep their bytes.
func TestAddressEncodesAsAMap(t *testing.T) {
	strs := []string{"", "phone", "+15551230000", "a@b.example", `q"uo\te`, "<b>&amp;</b>", "tab\tnl\ncr\rbs\bff\f",
		"\x00\x01\x1f\x7f", "héllo wörld ✓ 😀", "bad \xff\xfe utf8 \xc3", "line\u2028para\u2029", "\u00e9\u0301", string([]byte{0xed, 0xa0, 0x80})}
	maps := []map[string]string{nil, {}}
	for i, k := range strs {
		maps = append(maps, map[string]string{k: strs[(i+1)%len(strs)]})
		maps = append(maps, map[string]string{k: "v", strs[(i+3)%len(strs)]: k, "whatsapp": k + "x"})
	}
	for _, m := range maps {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(address(m))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("address %q encodes as %s, a map as %s", m, got, want)
		}
		// And inside a struct with omitempty, as the event data carries it.
		type data struct {
			To address `json:"to,omitempty"`
		}
		type mapData struct {
			To map[string]string `json:"to,omitempty"`
		}
		w, _ := json.Marshal(mapData{To: m})
		g, _ := json.Marshal(data{To: m})
		if string(g) != string(w) {
			t.Errorf("in a struct: %s, want %s", g, w)
		}
	}
}

func FuzzAddressEncodesAsAMap(f *testing.F) {
	f.Add("phone", "+15551230000", "email", "a@b")
	f.Add("<&>", "\u2028\xff", "\x00", `"\`)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m := map[string]string{k1: v1, k2: v2}
		want, _ := json.Marshal(m)
		got, err := json.Marshal(address(m))
		if err != nil || string(got) != string(want) {
			t.Fatalf("address %q: %s (%v), want %s", m, got, err, want)
		}
	})
}
