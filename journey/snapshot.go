package journey

import (
	"encoding/json"
	"fmt"
	"time"
)

// snapshotVersion guards the snapshot format; a snapshot of another version
// is ignored and the customer is rebuilt from its events.
const snapshotVersion = 1

type snapshot struct {
	Version      int                 `json:"v"`
	ID           string              `json:"id"`
	Seq          uint64              `json:"seq"`
	Identities   map[string][]string `json:"identities,omitempty"`
	Profile      map[string]any      `json:"profile,omitempty"`
	LastAt       time.Time           `json:"last_at"`
	Conversation *Conversation       `json:"conversation,omitempty"`
	Cases        []Case              `json:"cases,omitempty"`
	LastAgent    string              `json:"last_agent,omitempty"`
	Timeline     []Event             `json:"timeline,omitempty"`
	Recent       []recentEntry       `json:"recent,omitempty"`
	Complete     bool                `json:"complete"`
}

// EncodeSnapshot encodes the state for the store.
func (c *Customer) EncodeSnapshot() []byte {
	b, err := json.Marshal(snapshot{
		Version: snapshotVersion, ID: c.ID, Seq: c.Seq, Identities: c.Identities,
		Profile: c.Profile, LastAt: c.LastAt, Conversation: c.Conversation, Cases: c.Cases,
		LastAgent: c.LastAgent, Timeline: c.timeline.last(c.Seq, TimelineMax),
		Recent: c.recent.entries(), Complete: c.recent.complete,
	})
	if err != nil {
		panic(fmt.Sprintf("journey: snapshot of %s: %v", c.ID, err))
	}
	return b
}

// DecodeSnapshot rebuilds a customer from a snapshot. An error means the
// snapshot is unusable and the customer must be rebuilt from its events.
func DecodeSnapshot(data []byte) (*Customer, error) {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("journey: decode snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("journey: snapshot version %d, want %d", s.Version, snapshotVersion)
	}
	c := NewCustomer(s.ID)
	c.Seq, c.LastAt, c.Conversation, c.Cases, c.LastAgent = s.Seq, s.LastAt, s.Conversation, s.Cases, s.LastAgent
	if s.Identities != nil {
		c.Identities = s.Identities
	}
	if s.Profile != nil {
		c.Profile = s.Profile
	}
	for _, e := range s.Timeline {
		c.timeline.push(e)
	}
	for _, r := range s.Recent {
		c.recent.add(r.ID, r.Seq, r.At)
	}
	c.recent.complete = s.Complete
	return c, nil
}

// Rebuild is the state of a customer from its snapshot (nil: none) and the
// stored events after it, in seq order.
func Rebuild(id string, snap []byte, events []Event) *Customer {
	var c *Customer
	if snap != nil {
		if s, err := DecodeSnapshot(snap); err == nil && s.ID == id {
			c = s
		}
	}
	if c == nil {
		c = NewCustomer(id)
	}
	for i := range events {
		if events[i].Seq <= c.Seq {
			continue
		}
		c.Apply(&events[i])
	}
	return c
}

// Context is the journey context of PROTOCOL section 3.
type Context struct {
	Customer     string              `json:"customer"`
	Identities   map[string][]string `json:"identities"`
	Profile      map[string]any      `json:"profile"`
	Conversation *Conversation       `json:"conversation"`
	Cases        []Case              `json:"cases"`
	LastAgent    string              `json:"last_agent,omitempty"`
	Timeline     []Event             `json:"timeline"`
	Seq          uint64              `json:"seq"`
}

// Context is the customer's journey context as of durable seq upTo: what
// readers may see (nothing before it is durable). It shares nothing with the
// state, so it may be encoded on another goroutine.
func (c *Customer) Context(upTo uint64) Context {
	ids := make(map[string][]string, len(c.Identities))
	for k, v := range c.Identities {
		ids[k] = append([]string(nil), v...)
	}
	var conv *Conversation
	if c.Conversation != nil {
		cc := *c.Conversation
		conv = &cc
	}
	return Context{
		Customer: c.ID, Identities: ids, Profile: cloneProfile(c.Profile), Conversation: conv,
		Cases: append([]Case{}, c.Cases...), LastAgent: c.LastAgent,
		Timeline: c.Timeline(upTo, ContextTimelineSize), Seq: upTo,
	}
}
