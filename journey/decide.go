package journey

import (
	"encoding/json"
	"strconv"
	"time"
)

// Runtime event types recorded by this package.
const (
	TypeProfileUpdated = "profile.updated"
	TypeIdentityLinked = "identity.linked"
)

// Input is what a customer actor decides on: *Inbound or *ProfilePatch.
type Input interface{ isInput() }

// Inbound is a client's event, validated by ValidateInbound and resolved to
// this customer.
type Inbound struct {
	Event Event
	// Linked are the event's identities that belong to this customer (the
	// resolver claimed them for it or found them here).
	Linked []IdentityRef
	// Stored is the store's idempotency verdict for Event.ID, filled in by
	// the actor when a Decision asked for it (NeedLookup).
	Stored *StoredID
	// Into, when set, is where the decision puts the event and its ack
	// when the event is stored alone (most are): the caller's room, which
	// it keeps until the event is answered, instead of an allocation of
	// their own.
	Into *EventAck `json:"-"`
}

// StoredID is what the store knows of an event id for this customer.
type StoredID struct {
	Seq    uint64 // seq it was stored under; 0 when not found
	Erased bool   // the id belonged to this customer before it was erased
}

// ProfilePatch merges an object into the profile (null removes a key). ID is
// the id of the profile.updated event it records; it is not an idempotency
// key (only clients' events, actor customer, are).
type ProfilePatch struct {
	ID    string
	Patch json.RawMessage
}

// Due is work that came due for this customer (DESIGN "Time"): an
// obligation recorded earlier with a due-work key.
type Due struct {
	At   time.Time
	Kind string
	Ref  string
}

func (*Inbound) isInput()      {}
func (*ProfilePatch) isInput() {}
func (*Due) isInput()          {}

// Decision is what Decide returns. For an Inbound or a ProfilePatch exactly
// one of these holds: Reject is set; NeedLookup is set (ask the store about
// the event id, then decide again with Inbound.Stored); or Ack is set, with
// Events to append (none for a duplicate). For Due, Ack is nil.
type Decision struct {
	Events     []Event
	Ack        *Ack
	Reject     *Rejection
	NeedLookup bool
	// DueAdd and DueDone change the customer's due work in the same batch
	// as Events.
	DueAdd  []Due
	DueDone []Due
	// Outbounds go to the channel gateways once the events are durable.
	Outbounds []Outbound
	// Bot asks the bot for turns; the customer actor sends them at once
	// (the answers come back as BotResult inputs after these events).
	Bot []BotRequest
	// Workflow asks the workflow runner for steps' work (a code, an HTTP
	// call); sent at once, answered by WorkflowResult inputs.
	Workflow []WorkflowTask
	// RuleErrors are rules that failed to evaluate on these events (counted
	// as not matching): the operator's to see, not the journal's.
	RuleErrors []*RuleError
	// Routing tells the routing actor of routing changes, once durable.
	Routing []RouteEffect
	// Desk holds frames for agents' desks, once durable.
	Desk []DeskMessage
	// Marks set the customer's marks of broadcasts in the same batch as
	// Events (a mark may change with no event: a where that did not hold).
	Marks []BroadcastMark
	// LookupFrom..LookupTo, with NeedLookup: the seqs of the dedup blocks
	// that may hold the id, besides its dedup key (From > To: none).
	LookupFrom, LookupTo uint64
	// DedupBlock holds ids that left the customer's memory inside the
	// idempotency window, written as one dedup block in the same batch as
	// Events (the ids of events stored before).
	DedupBlock []DedupID
	// IDsInBlocks: the client's event among Events gets no dedup key of its
	// own; its id goes to a later DedupBlock.
	IDsInBlocks bool
}

// Ack answers an inbound event once the events behind it are durable.
type Ack struct {
	ID        string `json:"id"`
	Customer  string `json:"customer"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// Decide is the first half of Step: it decides what an input does to the
// customer, at time now, without reacting to it. It does not change c: the caller applies the returned events (in order) at once,
// so the next input decides on current state.
func Decide(c *Customer, in Input, now time.Time) Decision {
	switch in := in.(type) {
	case *Inbound:
		return decideInbound(c, in, now)
	case *ProfilePatch:
		return decideProfile(c, in, now)
	case *Due:
		return decideDue(c, in, now)
	default:
		panic("journey: unknown input")
	}
}

func decideInbound(c *Customer, in *Inbound, now time.Time) Decision {
	return decideInboundDigest(c, in, now, digestID(in.Event.ID))
}

// decideInboundDigest is decideInbound given the digest of the event's id:
// Step keeps it to add the id to the recent ids without hashing it again.
func decideInboundDigest(c *Customer, in *Inbound, now time.Time, digest idDigest) Decision {
	e := in.Event
	if seq, ok := c.recent.find(digest); ok {
		return Decision{Ack: &Ack{ID: e.ID, Customer: c.ID, Seq: seq, Duplicate: true}}
	}
	if may, from, to := c.recent.mayHold(digest, now); may {
		if seq, ok := c.recent.findLeft(digest); ok {
			return Decision{Ack: &Ack{ID: e.ID, Customer: c.ID, Seq: seq, Duplicate: true}}
		}
		if in.Stored == nil {
			return Decision{NeedLookup: true, LookupFrom: from, LookupTo: to}
		}
		if in.Stored.Seq > 0 {
			return Decision{Ack: &Ack{ID: e.ID, Customer: c.ID, Seq: in.Stored.Seq, Duplicate: true}}
		}
	}
	if in.Stored != nil && in.Stored.Erased {
		return Decision{Reject: reject(CodeConflict, "event %s belonged to an erased customer", e.ID)}
	}
	at := recordTime(c, now)
	var events []Event
	var link identityLinkedData
	for _, id := range in.Linked {
		if !c.HasIdentity(id) {
			link.Identities = append(link.Identities, id)
		}
	}
	seq := c.Seq
	if len(link.Identities) > 0 {
		seq++
		data, _ := json.Marshal(link)
		events = append(events, Event{
			ID: runtimeID(seq), Customer: c.ID, Type: TypeIdentityLinked,
			Data: data, Seq: seq, Actor: ActorSystem, RecordedAt: at,
		})
	}
	seq++
	e.Customer, e.Seq, e.Actor, e.RecordedAt = c.ID, seq, ActorCustomer, at
	if len(events) == 0 {
		// Most inbound events store themselves alone: the event and its ack
		// in one allocation instead of two (every event had both), or in
		// the caller's room (Inbound.Into).
		one := in.Into
		if one == nil {
			one = new(EventAck)
		}
		*one = EventAck{Events: [1]Event{e}, Ack: Ack{ID: e.ID, Customer: c.ID, Seq: seq}}
		return Decision{Events: one.Events[:], Ack: &one.Ack}
	}
	events = append(events, e)
	return Decision{Events: events, Ack: &Ack{ID: e.ID, Customer: c.ID, Seq: seq}}
}

// EventAck is an inbound event that is stored alone, with its ack.
type EventAck struct {
	Events [1]Event
	Ack    Ack
}

func decideProfile(c *Customer, in *ProfilePatch, now time.Time) Decision {
	if r := ValidateID("id", in.ID); r != nil {
		return Decision{Reject: r}
	}
	if len(in.Patch) > DataMaxBytes {
		return Decision{Reject: reject(CodeTooLarge, "profile patch is larger than %d bytes", DataMaxBytes)}
	}
	var patch map[string]any
	if err := json.Unmarshal(in.Patch, &patch); err != nil || patch == nil {
		return Decision{Reject: reject(CodeBadRequest, "profile patch must be a JSON object")}
	}
	merged := cloneProfile(c.Profile)
	mergeProfile(merged, patch)
	if b, _ := json.Marshal(merged); len(b) > ProfileMaxBytes {
		return Decision{Reject: reject(CodeTooLarge, "profile would be larger than %d bytes", ProfileMaxBytes)}
	}
	seq := c.Seq + 1
	e := Event{
		ID: in.ID, Customer: c.ID, Type: TypeProfileUpdated, Data: in.Patch,
		Seq: seq, Actor: ActorSystem, RecordedAt: recordTime(c, now),
	}
	return Decision{Events: []Event{e}, Ack: &Ack{ID: in.ID, Customer: c.ID, Seq: seq}}
}

// recordTime is now, never before the customer's last recorded_at, so
// recorded_at follows seq order.
func recordTime(c *Customer, now time.Time) time.Time {
	now = now.UTC()
	if now.Before(c.LastAt) {
		return c.LastAt
	}
	return now
}

// runtimeID names an event the runtime records. Client ids are idempotency
// keys in their own space (only events whose actor is customer are), so the
// two cannot collide.
func runtimeID(seq uint64) string {
	return "rt-" + strconv.FormatUint(seq, 10)
}

type identityLinkedData struct {
	Identities []IdentityRef `json:"identities"`
}

func cloneProfile(p map[string]any) map[string]any {
	out := make(map[string]any, len(p))
	for k, v := range p {
		if m, ok := v.(map[string]any); ok {
			v = cloneProfile(m)
		}
		out[k] = v
	}
	return out
}

// decideDue discharges due work. No kind of due work is defined yet, so work
// of a kind this version does not know is discharged without events rather
// than delivered again forever.
func decideDue(_ *Customer, in *Due, _ time.Time) Decision {
	return Decision{DueDone: []Due{*in}}
}
