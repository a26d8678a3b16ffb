package journey

import (
	"encoding/json"
	"time"
)

// Event is the unit of the journey (PROTOCOL section 1). Inbound events carry
// the client's fields; stored events add Seq, Actor and RecordedAt, and
// Customer is the resolved customer id.
type Event struct {
	ID         string            `json:"id"`
	Customer   string            `json:"customer,omitempty"`
	Identity   map[string]string `json:"identity,omitempty"`
	Type       string            `json:"type"`
	Channel    string            `json:"channel,omitempty"`
	Text       string            `json:"text,omitempty"`
	Data       json.RawMessage   `json:"data,omitempty"`
	Time       *time.Time        `json:"time,omitempty"`
	Seq        uint64            `json:"seq,omitempty"`
	Actor      string            `json:"actor,omitempty"`
	RecordedAt time.Time         `json:"recorded_at,omitzero"`
}

// Actors of stored events.
const (
	ActorCustomer = "customer"
	ActorSystem   = "system"
)
