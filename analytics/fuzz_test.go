package analytics

import (
	"testing"
	"time"
)

// FuzzStateDecode feeds saved projections, real and mutated, to Decode (a
// saved record read back after a crash or by another version): never a
// panic, and what it accepts answers and encodes again.
func FuzzStateDecode(f *testing.F) {
	p := New()
	if b, err := p.Encode(); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"hours":{"1":{}},"seen":{"2":{}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			return
		}
		now := time.Unix(1_800_000_000, 0)
		_ = p.Part(now.Add(-time.Hour), now, now, nil)
		if _, err := p.Encode(); err != nil {
			t.Fatalf("decoded %q does not encode: %v", b, err)
		}
	})
}
