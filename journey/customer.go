package journey

import (
	"encoding/json"
	"math"
	"time"
)

// Customer is one customer's journey in memory: who they are on every
// channel, their profile, the latest stored events, the open conversation and
// cases, and the bounded data that idempotency needs. The customer actor owns
// it; Apply is the only way it changes.
type Customer struct {
	ID           string
	Seq          uint64              // last applied event's seq
	Identities   map[string][]string // kind -> normalized values, oldest first
	Profile      map[string]any      // merged profile patches
	LastAt       time.Time           // recorded_at of the last applied event
	Conversation *Conversation       // the open conversation, nil when none
	Cases        []Case              // open and resolved cases, oldest first
	LastAgent    string              // the agent who helped last
	Tags         []string            // tags rules gave, at most TagsMax
	Stage        string              // the journey stage a rule set
	LastChannel  string              // channel of the latest customer event that named one
	Outbounds    []PendingOutbound   // outbounds awaiting a receipt, oldest first
	Timers       []Timer             // rules' armed timers, oldest first
	Held         []HeldMessage       // proactive messages held by quiet hours
	Workflow     *WorkflowRun        // the running workflow, nil when none
	Broadcasts   []BroadcastState    // the latest broadcasts that asked the customer, oldest first
	timeline     timeline            // the latest TimelineMax events, encoded (timeline.go)
	recent       recentIDs           // event ids inside the idempotency window
	counts       eventCounts         // recent recorded_at per event type, for rules' count()
	proactive    []int64             // recorded_at (unix ns) of proactive messages that count against the cap
	offerMarks   []offerMark         // offers sent and answered, for the offers' caps (offers_state.go)
}

// TagsMax bounds a customer's tags; past it the oldest gives way.
const TagsMax = 32

// Case is a customer's case (PROTOCOL section 3).
type Case struct {
	ID      string    `json:"id"`
	Status  string    `json:"status"`
	Subject string    `json:"subject,omitempty"`
	Opened  time.Time `json:"opened"`
	// Thread: the message ids of an email case (email.go), oldest first;
	// ThreadAt: when it last grew.
	Thread   []string  `json:"thread,omitempty"`
	ThreadAt time.Time `json:"thread_at,omitzero"`
}

// NewCustomer is the state of a customer with no events.
// Identities and Profile stay nil until the first identity and the first
// patch: two empty maps were a tenth of what a resident customer costs
// beyond its events (bench memory). Reading a nil map is reading an empty
// one.
func NewCustomer(id string) *Customer {
	return &Customer{ID: id, recent: newRecentIDs()}
}

// Apply changes the state by one stored event. Events must come in seq
// order; Apply cannot fail (a broken invariant panics). The dedup block
// the event sealed, if any, was stored with it (Step hands it over).
func (c *Customer) Apply(e *Event) {
	c.apply(e, nil, nil)
	c.recent.stored(math.MaxUint64)
}

// Durable tells the customer its events up to seq are durable: the dedup
// blocks their appends carried are in the store, which answers for their
// ids from now on.
func (c *Customer) Durable(seq uint64) { c.recent.landed(seq) }

// apply is Apply given, when the event was recorded just now, the value its
// data was encoded from: the decoders of a proactive.* and a message.sent
// take it instead of decoding the data again (a broadcast records both for
// every target); and given digest, the digest of a customer event's id
// (Step's, from its decision: SHA-256 once an event, not twice).
func (c *Customer) apply(e *Event, data any, digest *idDigest) {
	if e.Seq != c.Seq+1 {
		panic("journey: Apply out of order: customer " + c.ID)
	}
	c.Seq = e.Seq
	if e.RecordedAt.After(c.LastAt) {
		c.LastAt = e.RecordedAt
	}
	if e.Actor == ActorCustomer {
		// Only clients' ids are idempotency keys; the runtime's own events
		// carry ids of their own that no client can collide with.
		if digest == nil {
			c.recent.add(e.ID, e.Seq, e.RecordedAt)
		} else {
			c.recent.addClient(recentEntry{id: *digest, seq: e.Seq, at: unixNanos(e.RecordedAt)})
		}
	}
	c.timeline.push(e, c.ID)
	if e.Actor == ActorCustomer && e.Channel != "" && e.Channel != c.LastChannel {
		c.LastChannel = Intern(e.Channel)
	}
	c.counts.add(e.Type, e.RecordedAt)
	c.applyConversation(e)
	c.applyOutbound(e, data)
	c.applyRules(e, data)
	c.applyWorkflow(e)
	c.applyBroadcast(e)
	c.applyOffers(e)
	c.applyEmail(e)
	switch e.Type {
	case TypeProfileUpdated:
		var patch map[string]any
		if json.Unmarshal(e.Data, &patch) == nil {
			if c.Profile == nil {
				c.Profile = make(map[string]any, len(patch))
			}
			mergeProfile(c.Profile, patch)
		}
	case TypeIdentityLinked:
		var d identityLinkedData
		if json.Unmarshal(e.Data, &d) == nil {
			for _, id := range d.Identities {
				c.addIdentity(id)
			}
		}
	}
}

// HasIdentity reports whether the customer already holds the identity.
func (c *Customer) HasIdentity(id IdentityRef) bool {
	for _, v := range c.Identities[id.Kind] {
		if v == id.Value {
			return true
		}
	}
	return false
}

func (c *Customer) addIdentity(id IdentityRef) {
	if c.HasIdentity(id) {
		return
	}
	vals, ok := c.Identities[id.Kind]
	if !ok && len(c.Identities) >= IdentityKindsMax {
		return
	}
	if len(vals) >= IdentitiesPerKind {
		vals = vals[1:] // the oldest value of a kind gives way; the index keeps it
	}
	if c.Identities == nil {
		c.Identities = make(map[string][]string, 1)
	}
	c.Identities[id.Kind] = append(vals, id.Value)
}

// ProfileCopy is the profile, sharing nothing with the state.
func (c *Customer) ProfileCopy() map[string]any { return cloneProfile(c.Profile) }

// Timeline returns the latest stored events with seq <= upTo, oldest first,
// at most n.
func (c *Customer) Timeline(upTo uint64, n int) []Event {
	return c.timeline.last(upTo, n, c.ID)
}

// mergeProfile applies a merge patch: null removes a key, objects merge one
// level at a time, anything else replaces.
func mergeProfile(dst, patch map[string]any) {
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			cur, ok := dst[k].(map[string]any)
			if !ok {
				cur = map[string]any{}
			}
			mergeProfile(cur, pv)
			dst[k] = cur
		default:
			dst[k] = v
		}
	}
}
