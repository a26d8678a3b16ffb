package gateway

import (
	"net/http"
	"testing"
)

// FuzzCloudEvents feeds CloudEvents bodies (structured, batch, binary
// mode) to their decoders: never a panic, and an accepted event is valid.
func FuzzCloudEvents(f *testing.F) {
	for _, s := range []string{
		`{"specversion":"1.0","id":"ce-1","source":"/shop","type":"payment.attempted","subject":"c-42","data":{"amount":12}}`,
		`[{"specversion":"1.0","id":"ce-1","source":"/s","type":"page.viewed","subject":"c"}]`,
		`{"specversion":"1.0","id":"ce-2","source":"/s","type":"message.received","subject":"c","data":{"text":"hi","channel":"sms"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if e, _, rej := decodeStructuredCloudEvent(body); rej == nil && e.ID == "" {
			t.Fatalf("accepted %q without an id", body)
		}
		if raws, rej := decodeCloudEventBatch(body); rej == nil {
			for _, raw := range raws {
				_, _, _ = decodeStructuredCloudEvent(raw)
			}
		}
		h := http.Header{}
		h.Set("ce-specversion", "1.0")
		h.Set("ce-id", "ce-b")
		h.Set("ce-source", "/s")
		h.Set("ce-type", "payment.attempted")
		h.Set("ce-subject", "c")
		_, _, _ = decodeBinaryCloudEvent(h, body)
	})
}
