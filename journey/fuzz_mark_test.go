package journey

import "testing"

// FuzzDecodeMark: a broadcast's mark (read back from the store for
// progress and resolve) never panics, and what decodes encodes to a mark
// that decodes the same.
func FuzzDecodeMark(f *testing.F) {
	for _, s := range []string{"sent", "held|c", "suppressed:no_consent", "sent|c|r", "suppressed:frequency_cap|r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		st, err := DecodeMark(v)
		if err != nil {
			return
		}
		// A mark holds the outcome, the reason and the two flags.
		again, err := DecodeMark(st.Mark())
		if err != nil || again.Outcome != st.Outcome || again.Reason != st.Reason || again.Callback != st.Callback || again.Resolved != st.Resolved {
			t.Fatalf("%q decoded to %+v, whose mark %q decodes to %+v (%v)", v, st, st.Mark(), again, err)
		}
	})
}
