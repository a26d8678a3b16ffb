package journey

import "github.com/throughline/throughline/internal/jsonenc"

// address is an identity to deliver to, kind to value, as the data of
// message.sent and of proactive.* events carry it ("to"). It encodes
// itself as encoding/json encodes a map[string]string (keys sorted,
// strings escaped alike): the reflection of a map's encoding was a fifth
// of the allocations of a broadcast target's step.
type address map[string]string

// MarshalJSON implements json.Marshaler.
func (a address) MarshalJSON() ([]byte, error) {
	size := 2
	for k, v := range a {
		size += len(k) + len(v) + 6
	}
	return jsonenc.AppendStringMap(make([]byte, 0, size), a), nil
}
