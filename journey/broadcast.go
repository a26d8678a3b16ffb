package journey

import "encoding/json"

// MarksBroadcast reports whether events of the type may name a broadcast in
// data.broadcast (and so mark the customer for it).
func MarksBroadcast(eventType string) bool {
	switch eventType {
	case TypeProactiveSent, TypeProactiveHeld, TypeProactiveSuppressed, TypeCallbackScheduled:
		return true
	}
	return false
}

// BroadcastOf is the broadcast an event names in data.broadcast, "" when
// none.
func BroadcastOf(e *Event) string {
	if !MarksBroadcast(e.Type) || len(e.Data) == 0 {
		return ""
	}
	var d struct {
		Broadcast string `json:"broadcast"`
	}
	if json.Unmarshal(e.Data, &d) != nil {
		return ""
	}
	return d.Broadcast
}
