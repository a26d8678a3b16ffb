package journey

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Step is the customer's whole handling of one input: it decides (Decide),
// applies the events to c at once, and lets the journey react to them: the
// conversation opens or moves, armed timers are cancelled, rules fire, the
// bot is asked or hands over, messages go out. The returned Decision holds
// every event in seq order (already applied to c), the due-work changes, the
// ack, and the effects to release once the events are durable.
//
// Step changes c; it has no goroutines, clock or I/O: now is the time.
func Step(p *Policy, c *Customer, in Input, now time.Time) Decision {
	d := step(p, c, in, now)
	if len(d.Events) > 0 { // appended: the block goes with its events
		d.DedupBlock = c.recent.handOver(c.Seq)
	}
	d.IDsInBlocks = c.recent.lastKind() == idInBlock
	return d
}

func step(p *Policy, c *Customer, in Input, now time.Time) Decision {
	switch in := in.(type) {
	case *Inbound:
		digest := digestID(in.Event.ID)
		d := decideInboundDigest(c, in, now, digest)
		if d.Reject != nil || d.NeedLookup || len(d.Events) == 0 {
			return d
		}
		s := newStepper(p, c, now, d)
		defer s.release()
		s.inbound, s.hasInbound = digest, true
		s.checkCode(&s.d.Events[len(s.d.Events)-1])
		return s.applyAndReact()
	case *ProfilePatch:
		d := decideProfile(c, in, now)
		if d.Reject != nil {
			return d
		}
		s := newStepper(p, c, now, d)
		defer s.release()
		return s.applyAndReact()
	}
	s := newStepper(p, c, now, Decision{})
	defer s.release()
	s.input(in)
	s.reactToRecorded()
	return s.d
}

// input decides an input that starts with no events of its own.
func (s *stepper) input(in Input) {
	switch in := in.(type) {
	case *Due:
		s.due(in)
	case *BotResult:
		s.botResult(in)
	case *Receipt:
		s.receipt(in)
	case *WorkflowResult:
		s.workflowResult(in)
	case *RouteOffer:
		s.routeOffer(in)
	case *DeskCommand:
		s.deskCommand(in)
	case *RevokeOffer:
		s.revokeOffer(in)
	case *BroadcastSend:
		s.broadcastSend(in)
	case *BroadcastResolve:
		s.broadcastResolve(in)
	case *ReleaseAgent:
		s.releaseAgent(in)
	default:
		panic("journey: unknown input")
	}
}

// StepEventsMax bounds the events one input may cause; reactions past it
// are dropped (a rule set that would loop cannot run away).
const StepEventsMax = 128

// stepper accumulates one Step's decision while applying it.
type stepper struct {
	p   *Policy
	c   *Customer
	now time.Time
	at  time.Time // recorded_at of the events it records
	d   Decision
	// routed: a route of a rule was taken for the event being reacted to
	// (only the first route of an event takes effect); bypassed: it took the
	// conversation from the bot, so the bot does not answer the event.
	routed, bypassed bool
	// reactions are the events recorded in reaction; those from reacted on
	// are still to be shown to the rules (those of a rule never are). The
	// array is kept across Steps (up to reactionsKept).
	reactions []Event
	reacted   int
	// scratch is where event data is written as JSON before it is copied
	// to its length (kept across Steps up to scratchKept bytes).
	scratch []byte
	// code is the verdict on a customer message carrying a workflow's code.
	code *codeVerdict
	// inbound is the digest of the inbound event's id (the last of the
	// decided events) when hasInbound: the step is of an inbound event.
	inbound    idDigest
	hasInbound bool
}

// steppers are reused: one per Step was a tenth of the bytes an ingested
// event allocated.
var steppers = sync.Pool{New: func() any { return new(stepper) }}

func newStepper(p *Policy, c *Customer, now time.Time, d Decision) *stepper {
	if p == nil {
		p = &Policy{}
	}
	s := steppers.Get().(*stepper)
	*s = stepper{p: p, c: c, now: now, at: recordTime(c, now), d: d, reactions: s.reactions, scratch: s.scratch}
	return s
}

// reactionsKept is the most reactions a pooled stepper's array keeps room
// for (one Event is ~200 bytes).
const reactionsKept = 16

// scratchKept is the largest scratch array a pooled stepper keeps.
const scratchKept = 4 << 10

// release gives the stepper back once its Step returned its decision; it
// keeps nothing of the customer or the decision.
func (s *stepper) release() {
	r := s.reactions
	clear(r) // nothing of the customer stays in the pool
	if cap(r) > reactionsKept {
		r = nil
	}
	b := s.scratch
	clear(b[:cap(b)])
	if cap(b) > scratchKept {
		b = nil
	}
	*s = stepper{reactions: r[:0], scratch: b[:0]}
	steppers.Put(s)
}

// applyAndReact applies the decided events and reacts to each.
func (s *stepper) applyAndReact() Decision {
	n := len(s.d.Events)
	for i := range n {
		if i == n-1 && s.hasInbound {
			s.c.apply(&s.d.Events[i], nil, &s.inbound)
		} else {
			s.c.apply(&s.d.Events[i], nil, nil)
		}
	}
	for i := range n {
		s.react(&s.d.Events[i]) // read only: what react records is appended
	}
	return s.d
}

// record appends an event of the runtime, applies it and returns its seq.
func (s *stepper) record(typ, actor string, data any, channel, text string) uint64 {
	if len(s.d.Events) >= StepEventsMax {
		return 0
	}
	raw, err := marshalData(data, &s.scratch)
	if err != nil {
		panic("journey: event data: " + err.Error())
	}
	seq := s.c.Seq + 1
	e := Event{
		ID: runtimeID(seq), Customer: s.c.ID, Type: typ, Channel: channel, Text: text,
		Data: raw, Seq: seq, Actor: actor, RecordedAt: s.at,
	}
	s.c.apply(&e, data, nil)
	s.d.Events = append(s.d.Events, e)
	s.routingEffects(&e)
	s.noteMark(&e, data)
	if !strings.HasPrefix(actor, ActorRulePrefix) && s.p.Rules != nil {
		s.reactions = append(s.reactions, e)
	}
	return seq
}

// react is the journey's answer to one applied event.
func (s *stepper) react(ev *Event) {
	e := *ev
	s.routed, s.bypassed = false, false
	s.emailCase(e)
	if e.Actor == ActorCustomer && e.Type == TypeMessageReceived {
		if s.broadcastReply(e) {
			s.bypassed = true // a yes to a broadcast's callback offer is not the bot's
		} else {
			s.openConversation(e)
		}
	}
	s.cancelTimers(ev)
	s.fireRules(ev)
	if s.code != nil && s.code.seq == e.Seq {
		s.codeReply()
	}
	if e.Actor == ActorCustomer {
		s.callbackReply(e)
	}
	if e.Actor == ActorCustomer && e.Type == TypeMessageReceived && !s.bypassed {
		s.botTurn(e)
	}
	s.reactToRecorded()
}

// reactToRecorded shows the events recorded in reaction to the rules: a
// rule with on: may name them, and they may cancel timers. Events of rules
// never trigger rules; StepEventsMax bounds the whole chain.
func (s *stepper) reactToRecorded() {
	for s.reacted < len(s.reactions) {
		e := &s.reactions[s.reacted] // read only, like react's
		s.reacted++
		s.routed, s.bypassed = false, false
		s.cancelTimers(e)
		s.fireRules(e)
	}
}

// openConversation opens the bot's conversation for a customer message
// when none is open (a closed one is followed by a new one naming it).
func (s *stepper) openConversation(e Event) {
	if s.p.Bot == nil || s.c.Conversation.Open() {
		return
	}
	s.open(StateBot, e.Channel, "", 0, e.Text)
}

// open records a new conversation in a state and arms its inactivity
// check; asked is the customer message that opened it, if any.
func (s *stepper) open(state, channel, queue string, priority int, asked string) *Conversation {
	d := conversationOpened{State: state, Channel: channel, Queue: queue, Priority: priority, Asked: cut(asked, SummaryTextMax)}
	if prev := s.c.Conversation; prev != nil {
		d.Previous = prev.ID
	}
	if d.Channel == "" {
		d.Channel = s.c.LastChannel
	}
	d.Conversation = ConversationID(s.c.ID, s.c.Seq+1)
	if s.record(TypeConversationOpened, ActorSystem, d, d.Channel, "") == 0 {
		return nil
	}
	s.d.DueAdd = append(s.d.DueAdd, Due{At: s.at.Add(s.p.ConversationIdle), Kind: DueConversationIdle, Ref: d.Conversation})
	return s.c.Conversation
}

// botTurn asks the bot about a customer message, or hands over at once
// when the customer asks for a person.
func (s *stepper) botTurn(e Event) {
	cv := s.c.Conversation
	if s.p.Bot == nil || !cv.Open() || cv.State != StateBot || strings.TrimSpace(e.Text) == "" {
		return
	}
	if WantsHuman(e.Text) {
		s.handover(ReasonAskedHuman)
		return
	}
	s.d.Bot = append(s.d.Bot, BotRequest{
		Customer: s.c.ID, Conversation: cv.ID, InReplyTo: e.Seq, Text: e.Text,
		History: s.c.history(cv, e.Seq), Profile: s.c.ProfileCopy(),
	})
}

// history is the conversation's messages before seq, as the bot sees them.
func (c *Customer) history(cv *Conversation, before uint64) []BotTurn {
	var turns []BotTurn
	for _, e := range c.timeline.last(before-1, TimelineMax, c.ID) {
		if e.RecordedAt.Before(cv.Opened) || e.Text == "" {
			continue
		}
		switch {
		case e.Type == TypeMessageReceived && e.Actor == ActorCustomer:
			turns = append(turns, BotTurn{Role: "customer", Text: e.Text})
		case e.Type == TypeMessageSent && e.Actor == ActorAI:
			turns = append(turns, BotTurn{Role: "bot", Text: e.Text})
		case e.Type == TypeMessageSent && strings.HasPrefix(e.Actor, ActorAgentPrefix):
			turns = append(turns, BotTurn{Role: "agent", Text: e.Text})
		}
	}
	return turns[max(len(turns)-BotHistoryMax, 0):]
}

// botResult records the bot's turn: the search, the reply and its message,
// or the hand-over when the reply is not good enough.
func (s *stepper) botResult(r *BotResult) {
	cv := s.c.Conversation
	if s.p.Bot == nil || !cv.Open() || cv.ID != r.Conversation || cv.State != StateBot || r.InReplyTo <= cv.Answered {
		return // the conversation moved on; the answer is stale
	}
	articles := r.Articles
	if articles == nil {
		articles = []string{}
	}
	s.record(TypeAIKBSearched, ActorAI, kbSearched{Conversation: cv.ID, Query: r.Query, Articles: articles}, "", "")
	s.makeRoom(2)
	intent := r.Intent
	if intent == "" {
		intent = IntentUnknown
	}
	reply := aiReplied{
		Conversation: cv.ID, InReplyTo: r.InReplyTo, Intent: intent, Confidence: r.Confidence,
		Sentiment: r.Sentiment, Articles: articles, Brain: r.Brain, Fallback: r.Fallback,
	}
	if reason := s.escalation(r); reason != "" {
		reply.Escalated = reason
		s.record(TypeAIReplied, ActorAI, reply, cv.Channel, "")
		s.handover(reason)
		return
	}
	reply.Outbound = OutboundID(s.c.ID, s.c.Seq+2)
	s.record(TypeAIReplied, ActorAI, reply, cv.Channel, "")
	s.send(ActorAI, cv.Channel, r.Text, messageSent{Conversation: cv.ID})
}

// escalation is why a bot reply must not go out, "" when it may.
func (s *stepper) escalation(r *BotResult) string {
	b := s.p.Bot
	switch {
	case r.Err != "":
		return ReasonBotFailed
	case r.Intent != "" && contains(b.BlockedTopics, r.Intent):
		return ReasonBlockedTopic
	case r.Sentiment < b.FrustrationBelow:
		return ReasonFrustration
	case r.Sentiment < 0 && trend(append(append([]float64(nil), s.c.Conversation.Sentiments...), r.Sentiment)) == "falling":
		return ReasonFrustration
	case r.Confidence < b.EscalateBelow || strings.TrimSpace(r.Text) == "":
		return ReasonLowConfidence
	}
	return ""
}

// handover routes the bot's conversation to a person, with the summary,
// and tells the customer.
func (s *stepper) handover(reason string) {
	cv := s.c.Conversation
	queue, priority := cv.Queue, cv.Priority // a rule's deferred route
	if queue == "" {
		queue, priority = s.p.Bot.DefaultQueue, s.p.Bot.DefaultPriority
	}
	s.record(TypeRoutingDecided, ActorAI, RoutingDecided{
		Conversation: cv.ID, Reason: reason, Queue: queue, Priority: priority, Summary: cv.summary(),
	}, "", "")
	s.send(ActorAI, cv.Channel, s.p.Bot.Handover, messageSent{Conversation: cv.ID})
}

// send records a message to the customer and its outbound: the gateway gets
// it once durable, and a due-work key sends it again until a receipt.
func (s *stepper) send(actor, channel, text string, d messageSent) uint64 {
	s.makeRoom(1)
	if d.To == nil {
		d.To = AddressFor(s.c.Identities, channel)
	}
	if channel == ChannelEmail && d.Thread == nil {
		d.Thread = s.c.emailThread()
	}
	d.Outbound = OutboundID(s.c.ID, s.c.Seq+1)
	seq := s.record(TypeMessageSent, actor, d, channel, text)
	if seq == 0 {
		return 0
	}
	p := s.c.pendingOutbound(seq)
	p.NextAt = s.at.Add(s.p.OutboundRetry)
	s.d.DueAdd = append(s.d.DueAdd, Due{At: p.NextAt, Kind: DueOutbound, Ref: strconv.FormatUint(seq, 10)})
	s.d.Outbounds = append(s.d.Outbounds, s.c.outboundOf(p))
	return seq
}

// makeRoom gives up the oldest unconfirmed outbound when no room is left
// for one more. Callers that name the next outbound's id before sending
// call it first, so the id they compute is the message.sent's.
//
// It also reserves room for the events the caller is about to record
// (events: a proactive.sent then its message.sent are two): growing the
// step's events one at a time copied the first into a second array on
// every broadcast target.
func (s *stepper) makeRoom(events int) {
	s.d.Events = slices.Grow(s.d.Events, events)
	if len(s.c.Outbounds) >= OutboundsPendingMax {
		oldest := s.c.Outbounds[0]
		s.record(TypeMessageFailed, ActorSystem, messageReceipt{Outbound: OutboundID(s.c.ID, oldest.Seq), Reason: FailedOverflow}, oldest.Channel, "")
		s.dueDoneOutbound(&oldest)
	}
}

func (s *stepper) dueDoneOutbound(p *PendingOutbound) {
	if !p.NextAt.IsZero() {
		s.d.DueDone = append(s.d.DueDone, Due{At: p.NextAt, Kind: DueOutbound, Ref: strconv.FormatUint(p.Seq, 10)})
	}
}

// receipt handles a channel gateway's accepted, delivered or failed.
func (s *stepper) receipt(r *Receipt) {
	customer, seq, ok := ParseOutboundID(r.Outbound)
	if !ok || customer != s.c.ID || seq > s.c.Seq {
		s.d.Reject = reject(CodeBadRequest, "unknown outbound id %q", r.Outbound)
		return
	}
	p := s.c.pendingOutbound(seq)
	if p == nil {
		return // already confirmed or given up: a late or repeated receipt
	}
	switch r.Kind {
	case ReceiptAccepted:
		// Redelivery stops: the due work, when it comes, finds the outbound
		// accepted and only discharges itself. Nothing is written now, so an
		// accepted costs the hot path no commit; after a restart the flag is
		// lost and the outbound is sent once more (delivery is at least once).
		p.Accepted = true
	case ReceiptDelivered, ReceiptFailed:
		typ := TypeMessageDelivered
		if r.Kind == ReceiptFailed {
			typ = TypeMessageFailed
		}
		s.dueDoneOutbound(p)
		s.record(typ, ActorSystem, messageReceipt{Outbound: r.Outbound, Reason: cut(r.Reason, ReasonMaxChars)}, p.Channel, "")
	default:
		s.d.Reject = reject(CodeBadRequest, "unknown receipt %q", r.Kind)
	}
}

// ReasonMaxChars bounds a failed receipt's reason as recorded.
const ReasonMaxChars = 256

// due discharges a piece of due work; work of a kind this version does not
// know is discharged without events rather than delivered forever.
func (s *stepper) due(in *Due) {
	if in.Kind == DueRouted {
		return // a marker, not work: it stays until the conversation ends
	}
	s.d.DueDone = append(s.d.DueDone, *in)
	switch in.Kind {
	case DueOfferExpiry:
		s.dueOfferExpiry(in)
	case DueCallback:
		s.dueCallback(in)
	case DueOutbound:
		s.dueOutbound(in)
	case DueConversationIdle:
		s.dueIdle(in)
	case DueRuleTimer:
		s.dueTimer(in)
	case DueProactiveRelease:
		s.dueRelease(in)
	case DueWorkflowExpire:
		s.dueWorkflowExpire(in)
	}
}

func (s *stepper) dueOutbound(in *Due) {
	seq, err := strconv.ParseUint(in.Ref, 10, 64)
	p := s.c.pendingOutbound(seq)
	if err != nil || p == nil || (!p.NextAt.IsZero() && !p.NextAt.Equal(in.At)) {
		return // confirmed, or a repeat of work already rescheduled
	}
	if p.Accepted {
		p.NextAt = time.Time{} // taken over: this was its last due work
		return
	}
	if p.Redacted && !p.Clear {
		s.record(TypeMessageFailed, ActorSystem, messageReceipt{Outbound: OutboundID(s.c.ID, seq), Reason: FailedRedacted}, p.Channel, "")
		return
	}
	if !s.now.Before(p.Sent.Add(s.p.OutboundExpiry)) {
		s.record(TypeMessageFailed, ActorSystem, messageReceipt{Outbound: OutboundID(s.c.ID, seq), Reason: FailedExpired}, p.Channel, "")
		return
	}
	p.NextAt = s.now.Add(s.p.OutboundRetry)
	s.d.DueAdd = append(s.d.DueAdd, Due{At: p.NextAt, Kind: DueOutbound, Ref: in.Ref})
	s.d.Outbounds = append(s.d.Outbounds, s.c.outboundOf(p))
}

func (s *stepper) dueIdle(in *Due) {
	cv := s.c.Conversation
	if !cv.Idles() || cv.ID != in.Ref {
		return
	}
	if closeAt := cv.LastActivity.Add(s.p.ConversationIdle); s.now.Before(closeAt) {
		s.d.DueAdd = append(s.d.DueAdd, Due{At: closeAt, Kind: DueConversationIdle, Ref: in.Ref})
		return
	}
	s.record(TypeConversationClosed, ActorSystem, conversationClosed{Conversation: cv.ID, Reason: ReasonInactive}, "", "")
}
