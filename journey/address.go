package journey

import (
	"slices"

	"github.com/throughline/throughline/internal/jsonenc"
)

// address is an identity to deliver to, kind to value, as the data of
// message.sent and of proactive.* events carry it ("to"). It encodes
// itself as encoding/json encodes a map[string]string (keys sorted,
// strings escaped alike): the reflection of a map's encoding was a fifth
// of the allocations of a broadcast target's step.
type address map[string]string

// MarshalJSON implements json.Marshaler.
func (a address) MarshalJSON() ([]byte, error) {
	if a == nil {
		return []byte("null"), nil
	}
	var buf [8]string
	keys := buf[:0]
	size := 2
	for k, v := range a {
		keys = append(keys, k)
		size += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		b = jsonenc.AppendString(b, a[k])
	}
	return append(b, '}'), nil
}
