package journey

// Broadcasts (PROTOCOL section 5): one message to every customer of a live
// segment, each customer deciding for itself.
//
// The runtime asks each target customer with a BroadcastSend. The customer
// decides once per broadcast (the broadcast id is the idempotency key of its
// proactive.* event): a `where` that does not hold skips it; otherwise its
// governance sends, holds or suppresses the message, recorded as
// proactive.sent / proactive.held / proactive.suppressed with
// data.broadcast. With a callback offer, a reply of yes within the
// broadcast's expiry records journey.callback_scheduled with
// data.broadcast; the callback waits for the resolve (BroadcastResolve),
// which sends the follow-up as a service message and, when asked, queues a
// callback task.
//
// Every change of a customer's outcome is also a mark (Decision.Marks),
// stored in the same batch as the events: the broadcast's progress is the
// count of its marks (BroadcastProgress), exact and durable, and a resumed
// broadcast skips the customers already marked.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
)

// Limits of broadcasts.
const (
	// BroadcastsKeptMax bounds the broadcasts a customer remembers (its
	// outcome, callback and resolve); past it the oldest gives way.
	BroadcastsKeptMax = 32
	// BroadcastWhereMaxChars bounds a broadcast's where expression.
	BroadcastWhereMaxChars = RuleExprMaxChars
	// BroadcastTextMaxBytes bounds a broadcast's and a resolve's message.
	BroadcastTextMaxBytes = SendTextMaxBytes
	// BroadcastWithinMax is the longest segment window.
	BroadcastWithinMax = 30 * 24 * time.Hour
	// BroadcastExpiresMax is the longest a broadcast's message (and its
	// callback offer) may stay valid.
	BroadcastExpiresMax = 7 * 24 * time.Hour
)

// A customer's outcome of a broadcast.
const (
	BroadcastSent       = "sent"
	BroadcastHeld       = "held"
	BroadcastSuppressed = "suppressed"
	BroadcastSkipped    = "skipped" // the where did not hold: not a target
)

// ReasonBroadcastCallback is the routing.decided reason of a callback task
// queued by a broadcast's resolve.
const ReasonBroadcastCallback = "broadcast_callback"

// TypeBroadcastResolved records that a customer who accepted a broadcast's
// callback was sent its resolve (data.broadcast).
const TypeBroadcastResolved = "journey.broadcast_resolved"

// BroadcastSend asks a customer for a broadcast's message.
type BroadcastSend struct {
	Broadcast     string
	Text          string
	Where         *Condition // nil: every customer of the segment
	Expires       time.Time  // the latest the message may go out; a yes counts until then
	CallbackOffer bool
}

// BroadcastResolve ends a broadcast's incident for a customer who accepted
// its callback: the follow-up message, and with Callback a callback task in
// Queue.
type BroadcastResolve struct {
	Broadcast string
	Text      string
	Callback  bool
	Queue     string
}

func (*BroadcastSend) isInput()    {}
func (*BroadcastResolve) isInput() {}

// BroadcastState is what a customer remembers of one broadcast.
type BroadcastState struct {
	ID            string            `json:"id"`
	Outcome       string            `json:"outcome"`
	Reason        string            `json:"reason,omitempty"`
	Channel       string            `json:"channel,omitempty"`
	To            map[string]string `json:"to,omitempty"`
	CallbackOffer bool              `json:"callback_offer,omitempty"`
	Expires       time.Time         `json:"expires,omitzero"`
	Sent          time.Time         `json:"sent,omitzero"` // when the message went out
	Callback      bool              `json:"callback,omitempty"`
	Resolved      bool              `json:"resolved,omitempty"`
}

// BroadcastMark is a customer's outcome of a broadcast as stored beside its
// events (EncodeMark).
type BroadcastMark struct {
	Broadcast string
	Value     []byte
}

// Mark encodes the state as a mark: outcome[:reason][|c][|r].
func (st *BroadcastState) Mark() []byte {
	var b strings.Builder
	b.WriteString(st.Outcome)
	if st.Reason != "" {
		b.WriteString(":" + st.Reason)
	}
	if st.Callback {
		b.WriteString("|c")
	}
	if st.Resolved {
		b.WriteString("|r")
	}
	return []byte(b.String())
}

// DecodeMark parses a mark. It does not allocate for the outcomes and
// reasons this version writes (progress counts scan many marks).
func DecodeMark(v []byte) (BroadcastState, error) {
	var st BroadcastState
	head, flags, _ := bytes.Cut(v, []byte("|"))
	outcome, reason, _ := bytes.Cut(head, []byte(":"))
	st.Outcome = known(outcome, BroadcastSent, BroadcastHeld, BroadcastSuppressed, BroadcastSkipped)
	if st.Outcome == "" {
		return st, fmt.Errorf("journey: mark %q: unknown outcome", v)
	}
	if len(reason) > 0 {
		if st.Reason = known(reason, ReasonNoConsent, ReasonFrequencyCap, ReasonQuietHours, ReasonNoChannel); st.Reason == "" {
			st.Reason = string(reason)
		}
	}
	for len(flags) > 0 {
		var f []byte
		f, flags, _ = bytes.Cut(flags, []byte("|"))
		switch string(f) {
		case "c":
			st.Callback = true
		case "r":
			st.Resolved = true
		default:
			return st, fmt.Errorf("journey: mark %q: unknown flag", v)
		}
	}
	return st, nil
}

// known is the one of names that b spells, "" when none.
func known(b []byte, names ...string) string {
	for _, n := range names {
		if string(b) == n {
			return n
		}
	}
	return ""
}

// BroadcastProgress counts a broadcast's marks (PROTOCOL section 3, GET
// /v1/broadcasts/{id}).
type BroadcastProgress struct {
	Targeted          int            `json:"targeted"`
	Sent              int            `json:"sent"`
	Held              int            `json:"held"`
	Suppressed        map[string]int `json:"suppressed"`
	CallbacksAccepted int            `json:"callbacks_accepted"`
}

// NewBroadcastProgress has every suppression reason at zero.
func NewBroadcastProgress() BroadcastProgress {
	return BroadcastProgress{Suppressed: map[string]int{
		ReasonNoConsent: 0, ReasonFrequencyCap: 0, ReasonQuietHours: 0, ReasonNoChannel: 0,
	}}
}

// Count adds one customer's mark; a mark that does not decode is an error.
func (p *BroadcastProgress) Count(mark []byte) error {
	st, err := DecodeMark(mark)
	if err != nil {
		return err
	}
	if st.Outcome == BroadcastSkipped {
		return nil
	}
	p.Targeted++
	switch st.Outcome {
	case BroadcastSent:
		p.Sent++
	case BroadcastHeld:
		p.Held++
	case BroadcastSuppressed:
		p.Suppressed[st.Reason]++
	}
	if st.Callback {
		p.CallbacksAccepted++
	}
	return nil
}

// Merge adds another part's counts (partitions count their own).
func (p *BroadcastProgress) Merge(o BroadcastProgress) {
	p.Targeted += o.Targeted
	p.Sent += o.Sent
	p.Held += o.Held
	p.CallbacksAccepted += o.CallbacksAccepted
	for k, n := range o.Suppressed {
		p.Suppressed[k] += n
	}
}

// Condition is a compiled CEL expression over `customer` (a broadcast's
// where), as rules see the customer.
type Condition struct {
	Source string
	prog   ruleProgram
}

// conditionEnv sees customer only (as offers do): a where naming event
// does not compile.
var conditionEnv = sync.OnceValues(func() (*cel.Env, error) { return cel.NewEnv(customerEnvOptions()...) })

// CompileCondition compiles a where expression; its errors say what is
// wrong with it.
func CompileCondition(src string) (*Condition, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty expression")
	}
	if len(src) > BroadcastWhereMaxChars {
		return nil, fmt.Errorf("longer than %d characters", BroadcastWhereMaxChars)
	}
	env, err := conditionEnv()
	if err != nil {
		return nil, err
	}
	prog, _, err := compileExpr(env, src, "bool", cel.BoolType)
	if err != nil {
		return nil, err
	}
	return &Condition{Source: src, prog: prog}, nil
}

// holds evaluates the condition on the customer; an evaluation error (a
// missing key) counts as not holding, as for rules.
func (cond *Condition) holds(view RuleCustomer) bool {
	ok, err := cond.prog.eval(newRuleVars(&Event{}, nil, view))
	return err == nil && ok
}

// broadcast is the state of a broadcast the customer remembers, nil when
// none.
func (c *Customer) broadcast(id string) *BroadcastState {
	for i := range c.Broadcasts {
		if c.Broadcasts[i].ID == id {
			return &c.Broadcasts[i]
		}
	}
	return nil
}

// Broadcast is a copy of the state of a broadcast the customer remembers.
func (c *Customer) Broadcast(id string) (BroadcastState, bool) {
	if st := c.broadcast(id); st != nil {
		return *st, true
	}
	return BroadcastState{}, false
}

// applyBroadcastVerdict keeps a broadcast's state from its proactive.*
// event (applyRules decoded its data).
func (c *Customer) applyBroadcastVerdict(e *Event, d *proactiveData) {
	if d.Broadcast == "" {
		return
	}
	st := c.broadcast(d.Broadcast)
	if st == nil {
		c.Broadcasts = pushBounded(c.Broadcasts, BroadcastState{ID: d.Broadcast}, BroadcastsKeptMax)
		st = &c.Broadcasts[len(c.Broadcasts)-1]
	}
	switch e.Type {
	case TypeProactiveSent:
		st.Outcome, st.Sent = BroadcastSent, e.RecordedAt
	case TypeProactiveHeld:
		st.Outcome = BroadcastHeld
	default:
		st.Outcome = BroadcastSuppressed
	}
	st.Reason, st.Channel, st.To = d.Reason, d.Channel, d.To
	st.CallbackOffer = st.CallbackOffer || d.CallbackOffer
	if !d.Expires.IsZero() {
		st.Expires = d.Expires
	}
}

// applyBroadcast keeps the broadcasts' state of a callback scheduled or a
// resolve (the proactive.* verdicts come through applyBroadcastVerdict).
func (c *Customer) applyBroadcast(e *Event) {
	if e.Type != TypeCallbackScheduled && e.Type != TypeBroadcastResolved {
		return
	}
	st := c.broadcast(BroadcastOf(e))
	if st == nil {
		return // not a broadcast's, or forgotten (BroadcastsKeptMax)
	}
	if e.Type == TypeCallbackScheduled {
		st.Callback = true
	} else {
		st.Resolved = true
	}
}

// noteMark adds the mark of the broadcast an event recorded just now names.
func (s *stepper) noteMark(e *Event, data any) {
	if !MarksBroadcast(e.Type) {
		return
	}
	// The broadcast from the value the data was encoded from; decoding
	// the data again was an eighth of a broadcast target's allocations.
	id := ""
	switch d := data.(type) {
	case proactiveData:
		id = d.Broadcast
	case map[string]string:
		id = d["broadcast"]
	default:
		id = BroadcastOf(e)
	}
	if st := s.c.broadcast(id); st != nil {
		s.d.Marks = append(s.d.Marks, BroadcastMark{Broadcast: st.ID, Value: st.Mark()})
	}
}

// broadcastSend decides the customer's outcome of a broadcast, once.
func (s *stepper) broadcastSend(in *BroadcastSend) {
	if s.c.broadcast(in.Broadcast) != nil {
		return // decided before: the broadcast id is the idempotency key
	}
	if in.Where != nil && !in.Where.holds(s.ruleView()) {
		st := BroadcastState{ID: in.Broadcast, Outcome: BroadcastSkipped}
		s.d.Marks = append(s.d.Marks, BroadcastMark{Broadcast: in.Broadcast, Value: st.Mark()})
		return
	}
	base := proactiveData{Broadcast: in.Broadcast, CallbackOffer: in.CallbackOffer}
	s.sendProactive(ActorSystem, base, in.Text, "", in.Expires)
}

// broadcastReply schedules the callback of the latest broadcast that offered
// one, when a customer message says yes within its expiry; true when it did
// (the bot does not answer that yes).
func (s *stepper) broadcastReply(e Event) bool {
	if e.Type != TypeMessageReceived || !isYes(e.Text) {
		return false
	}
	if cv := s.c.Conversation; cv.Open() && cv.State == StateCallback {
		return false // the conversation's own callback offer takes it
	}
	for i := len(s.c.Broadcasts) - 1; i >= 0; i-- {
		st := &s.c.Broadcasts[i]
		if st.Outcome != BroadcastSent || !st.CallbackOffer || st.Resolved || e.RecordedAt.Before(st.Sent) {
			continue
		}
		if st.Callback || (!st.Expires.IsZero() && e.RecordedAt.After(st.Expires)) {
			return false // the latest offer is taken or has lapsed
		}
		s.record(TypeCallbackScheduled, ActorSystem, map[string]string{"broadcast": st.ID}, "", "")
		return true
	}
	return false
}

// broadcastResolve sends a resolve's follow-up to a customer who accepted
// the broadcast's callback, once, and queues its callback task.
func (s *stepper) broadcastResolve(in *BroadcastResolve) {
	st := s.c.broadcast(in.Broadcast)
	if st == nil || !st.Callback || st.Resolved {
		return
	}
	id, channel := st.ID, st.Channel
	s.record(TypeBroadcastResolved, ActorSystem, map[string]string{"broadcast": id}, "", "")
	// A service message: consent and channel, no cap, no quiet hours.
	v := s.p.Governance.Decide(ProactiveInput{Now: s.at, Profile: s.c.Profile, LastChannel: s.c.LastChannel, Identities: s.c.Identities, Service: true})
	if v.Outcome == OutcomeSend {
		s.send(ActorSystem, v.Channel, in.Text, messageSent{To: v.To})
		channel = v.Channel
	}
	if in.Callback {
		s.queueCallback(id, channel, in.Queue)
	}
}

// queueCallback puts a callback task for the customer in the queue: a new
// conversation, or the bot's open one, routed with kind callback. A
// customer already with a person (or waiting for one) keeps that.
func (s *stepper) queueCallback(broadcast, channel, queue string) {
	cv := s.c.Conversation
	if cv.Open() && cv.State != StateBot && cv.State != StateWorkflow {
		return
	}
	if !cv.Open() {
		if cv = s.open(StateQueued, channel, queue, 0, ""); cv == nil {
			return
		}
	}
	s.record(TypeRoutingDecided, ActorSystem, RoutingDecided{
		Conversation: cv.ID, Reason: ReasonBroadcastCallback, Queue: queue, Kind: KindCallback,
		Broadcast: broadcast, Summary: cv.summary(),
	}, "", "")
}

// MarksBroadcast reports whether events of the type may name a broadcast in
// data.broadcast (and so mark the customer for it).
func MarksBroadcast(eventType string) bool {
	switch eventType {
	case TypeProactiveSent, TypeProactiveHeld, TypeProactiveSuppressed, TypeCallbackScheduled, TypeBroadcastResolved:
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
