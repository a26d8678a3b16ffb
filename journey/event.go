package journey

import (
	"encoding/json"
	"strings"
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

// Compact gives the event's id, type, channel, actor and text one
// allocation of their own, and its data another, so that nothing of it
// points into a buffer the caller reuses (a decoder's input). A resident
// customer keeps up to TimelineMax events, and a string apart is one object
// more for the collector to mark. The customer id stays apart: it outlives
// the event in the runtime's maps.
func (e *Event) Compact() {
	var b strings.Builder
	b.Grow(len(e.ID) + len(e.Type) + len(e.Channel) + len(e.Actor) + len(e.Text))
	for _, s := range [...]string{e.ID, e.Type, e.Channel, e.Actor, e.Text} {
		b.WriteString(s)
	}
	all := b.String()
	for _, f := range [...]*string{&e.ID, &e.Type, &e.Channel, &e.Actor, &e.Text} {
		n := len(*f)
		*f, all = all[:n], all[n:]
	}
	e.Customer = strings.Clone(e.Customer)
	if e.Data != nil {
		e.Data = append(json.RawMessage(nil), e.Data...)
	}
}
