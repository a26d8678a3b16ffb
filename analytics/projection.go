package analytics

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/throughline/throughline/journey"
)

// Projection is one partition's analytics: fed its stored events, in each
// customer's seq order, it keeps the figures by hour of opening.
type Projection struct {
	hours   map[int64]*Bucket   // by unix hour
	days    map[int64]*Bucket   // by the unix hour that starts the day
	tracked map[uint64]*tracked // by customer hash: the latest conversation
	seen    map[uint64]seenSeq  // by customer hash: the last applied seq
	known   map[string]struct{} // offers seen sent
	high    time.Time           // the newest recorded_at applied
}

type seenSeq struct {
	Seq uint64 `json:"seq"`
	At  int64  `json:"at"` // ms
}

// New returns an empty projection.
func New() *Projection {
	return &Projection{hours: map[int64]*Bucket{}, days: map[int64]*Bucket{}, tracked: map[uint64]*tracked{},
		seen: map[uint64]seenSeq{}, known: map[string]struct{}{}}
}

// Position is the newest recorded_at applied: a catch-up rereads the
// stored events from CatchUpMargin before it.
func (p *Projection) Position() time.Time { return p.high }

// LastSeq is the last seq applied of a customer seen within SeenFor of the
// position (ok false: not remembered).
func (p *Projection) LastSeq(customer string) (uint64, bool) {
	s, ok := p.seen[customerHash(customer)]
	return s.Seq, ok
}

// Apply feeds one stored event. An event at or below the customer's last
// applied seq is a duplicate and changes nothing; Apply reports whether it
// applied e. Events of one customer must come in seq order (a gap is the
// caller's to fill first: LastSeq says where it is).
func (p *Projection) Apply(e *journey.Event) bool {
	h := customerHash(e.Customer)
	if s, ok := p.seen[h]; ok && e.Seq <= s.Seq {
		return false
	}
	if len(p.seen) >= SeenMax {
		p.evictSeen()
	}
	p.seen[h] = seenSeq{Seq: e.Seq, At: ms(e.RecordedAt)}
	if e.RecordedAt.After(p.high) {
		p.high = e.RecordedAt
	}
	at := ms(e.RecordedAt)
	switch e.Type {
	case journey.TypeConversationOpened:
		p.opened(h, e)
		return true
	case journey.TypeProactiveSent:
		p.offerSent(e)
		return true
	case journey.TypeOfferAccepted:
		p.offerAccepted(e)
		return true
	}
	t := p.tracked[h]
	if t == nil || !t.open() {
		return true
	}
	var d struct {
		Conversation string `json:"conversation"`
		Disposition  string `json:"disposition"`
		Queue        string `json:"queue"`
		Result       string `json:"result"`
	}
	if e.Type != journey.TypeMessageReceived && e.Type != journey.TypeMessageSent {
		// Messages' data is the client's (up to 16 KiB): not decoded.
		if _, ok := conversationTypes[e.Type]; !ok {
			return true
		}
		_ = json.Unmarshal(e.Data, &d)
		if d.Conversation != "" && convHash(d.Conversation) != t.Conv {
			return true // about another conversation (a late or stray event)
		}
	}
	switch e.Type {
	case journey.TypeMessageReceived:
		if e.Actor != journey.ActorCustomer {
			return true
		}
		t.LastActivityMs = at
		t.WroteAfter = t.WroteAfter || t.Routed
		if e.Channel != "" && e.Channel != t.Channel {
			t.Channel = e.Channel
			t.step()
		}
	case journey.TypeMessageSent:
		t.LastActivityMs = at
	case journey.TypeRoutingDecided:
		p.routed(t, e)
	case journey.TypeAgentOffered:
		t.move(journey.StateOffered)
	case journey.TypeRoutingRevoked, journey.TypeCallbackScheduled:
		t.move(journey.StateQueued)
	case journey.TypeCallbackOffered:
		t.move(journey.StateCallback)
	case journey.TypeAgentAssigned:
		t.WaitingMs = 0
		t.move(journey.StateAgent)
	case journey.TypeAgentTransferred:
		if d.Queue != "" {
			t.Queue = d.Queue
		}
		t.WaitingMs = at
		t.move(journey.StateQueued)
	case journey.TypeWorkflowStep:
		switch d.Result {
		case journey.StepStarted:
			t.move(journey.StateWorkflow)
		case journey.StepBot:
			t.move(journey.StateBot)
		}
	case journey.TypeAgentWrappedUp:
		outcome := OutcomeUnresolved
		switch {
		case d.Disposition == "resolved":
			outcome = OutcomeResolvedByAgent
		case !t.WroteAfter:
			outcome = OutcomeAbandoned
		}
		p.end(t, at, outcome)
	case journey.TypeConversationClosed:
		outcome := OutcomeUnresolved
		switch {
		case t.waiting():
			outcome = OutcomeAbandoned
		case !t.Routed:
			outcome = OutcomeContained
		case !t.WroteAfter:
			outcome = OutcomeAbandoned
		}
		p.end(t, at, outcome)
	}
	return true
}

// move changes the conversation's state and adds the step it makes.
func (t *tracked) move(state string) {
	t.State = state
	t.step()
}

// opened starts following a customer's new conversation; the one it
// follows decides repeat contact, the FCR of that one, and whether the
// path continues.
func (p *Projection) opened(h uint64, e *journey.Event) {
	var d struct {
		Conversation string `json:"conversation"`
		State        string `json:"state"`
		Channel      string `json:"channel"`
		Previous     string `json:"previous"`
		Queue        string `json:"queue"`
	}
	if json.Unmarshal(e.Data, &d) != nil || d.Conversation == "" {
		return
	}
	at := ms(e.RecordedAt)
	t := &tracked{Conv: convHash(d.Conversation), Hour: e.RecordedAt.Unix() / 3600, OpenedMs: at, State: d.State,
		Channel: d.Channel, Queue: d.Queue, LastActivityMs: at}
	b := p.bucketAt(t.Hour)
	if prev := p.tracked[h]; prev != nil && prev.Conv == convHash(d.Previous) && d.Previous != "" {
		switch {
		case prev.open():
			// Its end never reached the projection: it is no longer followed.
			if pb := p.bucketAt(prev.Hour); pb != nil {
				pb.Untracked++
			}
		case at-prev.EndedMs <= FCRWindow.Milliseconds():
			if b != nil {
				b.Repeat++
			}
			if pb := p.bucketAt(prev.Hour); pb != nil && prev.Resolved {
				pb.Reopened++
			}
			if at-prev.EndedMs <= LinkWithin.Milliseconds() {
				t.Steps = append([]string(nil), prev.Steps...)
			}
		}
	}
	if b != nil {
		b.Conversations++
	}
	t.step()
	if _, ok := p.tracked[h]; !ok {
		p.evictTracked()
	}
	p.tracked[h] = t
}

// routed: the first hand-over to a person is the conversation's
// escalation, by reason (a rule's route counts as "rule").
func (p *Projection) routed(t *tracked, e *journey.Event) {
	var d journey.RoutingDecided
	if json.Unmarshal(e.Data, &d) != nil || d.Deferred {
		return
	}
	if !t.Routed {
		t.Routed = true
		reason := d.Reason
		if d.Rule != "" {
			reason = journey.ReasonRule
		}
		if reason == "" {
			reason = "unknown"
		}
		if b := p.bucketAt(t.Hour); b != nil {
			b.Escalations.add(reason, false, ReasonsMax)
		}
	}
	if d.Queue != "" {
		t.Queue = d.Queue
	}
	if t.WaitingMs == 0 {
		t.WaitingMs = ms(e.RecordedAt)
	}
	t.move(journey.StateQueued)
}

// end records a conversation's outcome in the bucket it opened in.
func (p *Projection) end(t *tracked, at int64, outcome string) {
	t.EndedMs, t.State, t.WaitingMs = at, journey.StateClosed, 0
	t.Resolved = outcome == OutcomeContained || outcome == OutcomeResolvedByAgent
	b := p.bucketAt(t.Hour)
	if b == nil {
		return
	}
	switch outcome {
	case OutcomeContained:
		b.Contained++
		b.Resolution.Add(max(t.LastActivityMs-t.OpenedMs, 0))
	case OutcomeResolvedByAgent:
		b.ResolvedByAgent++
		b.Resolution.Add(max(at-t.OpenedMs, 0))
	case OutcomeAbandoned:
		b.Abandoned++
		b.DropOffs.add(t.lastStep(), false, DropOffsMax)
	case OutcomeUnresolved:
		b.Unresolved++
	}
	b.Paths.add(pathKey(t.Steps), t.Resolved, PathsMax)
}

func (p *Projection) offerSent(e *journey.Event) {
	offer := offerOf(e)
	if offer == "" {
		return
	}
	if _, ok := p.known[offer]; !ok && len(p.known) < KnownOffersMax {
		p.known[offer] = struct{}{}
	}
	if b := p.bucketAt(e.RecordedAt.Unix() / 3600); b != nil {
		b.OffersSent.add(offer, false, OffersMax)
	}
}

func (p *Projection) offerAccepted(e *journey.Event) {
	offer, _, ok := journey.OfferResponseOf(e)
	if !ok || offer == "" {
		return
	}
	if _, known := p.known[offer]; !known {
		return // never sent here: not counted (and a client cannot grow the map)
	}
	if b := p.bucketAt(e.RecordedAt.Unix() / 3600); b != nil {
		b.OffersAccepted.add(offer, false, OffersMax)
	}
}

func offerOf(e *journey.Event) string {
	if !mayNameOffer(e.Data) {
		return "" // most messages: no decoding (a broadcast's 10,000 a second)
	}
	var d struct {
		Offer string `json:"offer"`
	}
	_ = json.Unmarshal(e.Data, &d)
	return d.Offer
}

// mayNameOffer is false when data certainly has no "offer" key:
// encoding/json matches a key whatever its letters' case, and a \u escape
// can spell any letter. The key is looked for with both its quotes, so a
// broadcast's "callback_offer" does not send every one of its messages
// through the decoder.
func mayNameOffer(data []byte) bool {
	if bytes.Contains(data, []byte(`\u`)) {
		return true
	}
	const key = `"offer"`
	for i := 0; i+len(key) <= len(data); i++ {
		if data[i] == '"' && bytes.EqualFold(data[i:i+len(key)], []byte(key)) {
			return true
		}
	}
	return false
}

// bucketAt is the bucket of an hour: its hour bucket, or its day's once
// rolled up; nil when the hour is past the retention (as of the newest
// event applied).
func (p *Projection) bucketAt(hour int64) *Bucket {
	if b := p.hours[hour]; b != nil {
		return b
	}
	if b := p.days[dayOf(hour)]; b != nil {
		return b
	}
	if hour+1 <= p.high.Add(-Retention).Unix()/3600 {
		return nil
	}
	b := newBucket()
	p.hours[hour] = b
	return b
}

func dayOf(hour int64) int64 { return hour - ((hour%24)+24)%24 }

// Prune rolls hour buckets older than RollupAfter into day buckets, drops
// buckets past the retention, and forgets conversations ended more than
// FCRWindow ago and seqs older than SeenFor.
func (p *Projection) Prune(now time.Time) {
	rollup := now.Add(-RollupAfter).Unix() / 3600
	drop := now.Add(-Retention).Unix() / 3600
	for h, b := range p.hours {
		if h+1 > rollup {
			continue
		}
		delete(p.hours, h)
		if h+1 <= drop {
			continue
		}
		d := p.days[dayOf(h)]
		if d == nil {
			d = newBucket()
			p.days[dayOf(h)] = d
		}
		d.Merge(b, true)
	}
	for d := range p.days {
		if d+24 <= drop {
			delete(p.days, d)
		}
	}
	forget := ms(now.Add(-FCRWindow))
	for h, t := range p.tracked {
		if !t.open() && t.EndedMs < forget {
			delete(p.tracked, h)
		}
	}
	old := ms(p.high.Add(-SeenFor))
	for h, s := range p.seen {
		if s.At < old {
			delete(p.seen, h)
		}
	}
}

// evictSeen forgets the oldest eighth of the seqs remembered.
func (p *Projection) evictSeen() {
	ats := make([]int64, 0, len(p.seen))
	for _, s := range p.seen {
		ats = append(ats, s.At)
	}
	cut := nthSmallest(ats, len(ats)/8)
	for h, s := range p.seen {
		if s.At <= cut {
			delete(p.seen, h)
		}
	}
}

func nthSmallest(v []int64, n int) int64 {
	slices.Sort(v)
	return v[min(n, len(v)-1)]
}

// conversationTypes are the types besides messages that move a followed
// conversation.
var conversationTypes = map[string]struct{}{
	journey.TypeConversationClosed: {}, journey.TypeRoutingDecided: {}, journey.TypeAgentOffered: {},
	journey.TypeRoutingRevoked: {}, journey.TypeAgentAssigned: {}, journey.TypeAgentTransferred: {},
	journey.TypeAgentWrappedUp: {}, journey.TypeCallbackOffered: {}, journey.TypeCallbackScheduled: {},
	journey.TypeWorkflowStep: {},
}

// Types are the event types that change a projection: a catch-up finds
// the customers to read by them (the segment index).
var Types = []string{
	journey.TypeConversationOpened, journey.TypeConversationClosed, journey.TypeRoutingDecided,
	journey.TypeAgentOffered, journey.TypeRoutingRevoked, journey.TypeAgentAssigned, journey.TypeAgentTransferred,
	journey.TypeAgentWrappedUp, journey.TypeCallbackOffered, journey.TypeCallbackScheduled, journey.TypeWorkflowStep,
	journey.TypeMessageReceived, journey.TypeMessageSent, journey.TypeProactiveSent, journey.TypeOfferAccepted,
}
