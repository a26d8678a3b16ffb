package replay

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/journey"
)

// Options configure a Replayer. Old and New are required.
type Options struct {
	// Old is the policy the journal was recorded under (as far as the
	// operator knows it); New is the one to try.
	Old, New *journey.Policy
	// Since: inputs recorded before it only rebuild the state; zero: every
	// input is replayed.
	Since time.Time
	// SamplesMax bounds the customers a change names; default 5.
	SamplesMax int
	// ChangesMax bounds the distinct changes a report lists (a rule set
	// is bounded, so are its queues and reasons: this is a safety net);
	// default 1,000. Changes past it are counted in Report.ChangesDropped.
	ChangesMax int
}

// Defaults of Options.
const (
	SamplesMaxDefault = 5
	ChangesMaxDefault = 1000
)

// Replayer replays customers one at a time into one Report. It is not
// safe for concurrent use.
type Replayer struct {
	opts   Options
	report Report
	index  map[change]int // into report.Changes
}

// New returns a Replayer; it panics when Old or New is nil (a caller's bug).
func New(opts Options) *Replayer {
	if opts.Old == nil || opts.New == nil {
		panic("replay: Options.Old and Options.New are required")
	}
	if opts.SamplesMax <= 0 {
		opts.SamplesMax = SamplesMaxDefault
	}
	if opts.ChangesMax <= 0 {
		opts.ChangesMax = ChangesMaxDefault
	}
	r := &Replayer{opts: opts, index: map[change]int{}, report: Report{Changes: []Change{}}}
	if !opts.Since.IsZero() {
		since := opts.Since.UTC()
		r.report.Since = &since
	}
	return r
}

// Customer starts the replay of one customer; feed it the customer's
// stored events in seq order with Event, then call End.
func (r *Replayer) Customer(id string) *CustomerReplay {
	r.report.Customers++
	return &CustomerReplay{r: r, state: journey.NewCustomer(id), seen: map[change]bool{}}
}

// Report is the report so far (the Replayer may go on after it).
func (r *Replayer) Report() *Report {
	r.report.sort()
	for i, c := range r.report.Changes {
		r.index[change{c.Kind, c.What}] = i
	}
	return &r.report
}

// CustomerReplay is the replay of one customer's journal. It keeps the
// customer's recorded state (every stored event applied, as the actor
// rebuilds it) and, at each stored input, asks journey.Step what that
// state would have decided under each policy.
type CustomerReplay struct {
	r     *Replayer
	state *journey.Customer
	err   error
	// pending is an input whose stored events are still being read (a bot
	// turn's reply text follows its ai.replied).
	pending *input
	// verify: the events the old policy decided for the latest input, to
	// compare with the stored ones as they come.
	verify verification
	seen   map[change]bool // changes already counted for this customer
}

// input is one recorded input being reassembled from its stored events.
type input struct {
	before []byte // the customer's state just before it, as a snapshot
	at     time.Time
	seq    uint64 // seq of its first stored event
	in     journey.Input
	read   []journey.Event // its stored events read so far, heads only (type, actor, seq)
	done   bool            // nothing more to read for it
}

// head is the part of an event the verification compares.
func head(e *journey.Event) journey.Event {
	return journey.Event{Seq: e.Seq, Type: e.Type, Actor: e.Actor}
}

// Event feeds the customer's next stored event. Events must come in seq
// order from seq 1 (a gap is an error, reported by End).
func (c *CustomerReplay) Event(e journey.Event) {
	if c.err != nil {
		return
	}
	if e.Seq != c.state.Seq+1 {
		c.err = fmt.Errorf("replay: customer %s: event seq %d after %d", c.state.ID, e.Seq, c.state.Seq)
		return
	}
	partOfInput := false
	if p := c.pending; p != nil {
		if partOfInput = p.add(&e); partOfInput {
			p.read = append(p.read, head(&e))
		} else {
			c.finish()
		}
	}
	if c.pending == nil {
		c.pending = c.start(&e)
		partOfInput = c.pending != nil
	}
	c.check(&e, partOfInput)
	c.state.Apply(&e)
	if p := c.pending; p != nil && p.done {
		c.finish()
	}
}

// End finishes the customer's replay.
func (c *CustomerReplay) End() error {
	if c.pending != nil && c.err == nil {
		c.finish()
	}
	c.endVerify()
	return c.err
}

// start recognizes the first stored event of an input the customer's actor
// stepped: a customer's event (with the identity.linked before it), a
// profile patch, or the bot's turn (its ai.kb_searched). Other events
// (receipts, due work, agents' work, broadcasts) are applied as recorded.
func (c *CustomerReplay) start(e *journey.Event) *input {
	if e.RecordedAt.Before(c.r.opts.Since) {
		return nil
	}
	p := &input{at: e.RecordedAt, seq: e.Seq}
	switch {
	case e.Type == journey.TypeIdentityLinked && e.Actor == journey.ActorSystem:
		var d struct {
			Identities []journey.IdentityRef `json:"identities"`
		}
		if json.Unmarshal(e.Data, &d) != nil {
			return nil
		}
		p.in = &journey.Inbound{Linked: d.Identities}
	case e.Actor == journey.ActorCustomer:
		p.in, p.done = &journey.Inbound{Event: clientEvent(e)}, true
	case e.Type == journey.TypeProfileUpdated && e.Actor == journey.ActorSystem:
		p.in, p.done = &journey.ProfilePatch{ID: e.ID, Patch: e.Data}, true
	case e.Type == journey.TypeRuleFired && strings.HasPrefix(e.Actor, journey.ActorRulePrefix):
		var d struct {
			Timer uint64 `json:"timer"`
		}
		if json.Unmarshal(e.Data, &d) != nil || d.Timer == 0 {
			return nil // a rule that fired at once is part of its trigger's input
		}
		p.in, p.done = &journey.Due{At: e.RecordedAt, Kind: journey.DueRuleTimer, Ref: strconv.FormatUint(d.Timer, 10)}, true
	case e.Type == journey.TypeAIKBSearched && e.Actor == journey.ActorAI:
		var d struct {
			Query    string   `json:"query"`
			Articles []string `json:"articles"`
		}
		_ = json.Unmarshal(e.Data, &d)
		p.in = &journey.BotResult{Query: d.Query, Articles: d.Articles}
	default:
		return nil
	}
	p.before = c.state.EncodeSnapshot()
	p.read = append(p.read, head(e))
	return p
}

// add reads the next stored event into an input still being read; false:
// the event is not part of it (the input is complete as read).
func (p *input) add(e *journey.Event) bool {
	switch in := p.in.(type) {
	case *journey.Inbound:
		if e.Actor != journey.ActorCustomer {
			return false
		}
		in.Event, p.done = clientEvent(e), true
		return true
	case *journey.BotResult:
		return p.addBotTurn(in, e)
	}
	return false
}

// addBotTurn reads a bot turn back from its ai.replied and the reply's
// message.sent. A reply the bot held back (it handed over) was never
// recorded: it stands as a placeholder, so a new config judges it by its
// intent, confidence and sentiment alone.
func (p *input) addBotTurn(in *journey.BotResult, e *journey.Event) bool {
	switch {
	case e.Type == journey.TypeMessageFailed && e.Actor == journey.ActorSystem && in.Conversation == "":
		return true // an overflowing outbound given up before the reply
	case e.Type == journey.TypeAIReplied && e.Actor == journey.ActorAI && in.Conversation == "":
		var d struct {
			Conversation string  `json:"conversation"`
			InReplyTo    uint64  `json:"in_reply_to"`
			Intent       string  `json:"intent"`
			Confidence   float64 `json:"confidence"`
			Sentiment    float64 `json:"sentiment"`
			Brain        string  `json:"brain"`
			Fallback     string  `json:"fallback"`
			Escalated    string  `json:"escalated"`
		}
		_ = json.Unmarshal(e.Data, &d)
		in.Conversation, in.InReplyTo, in.Confidence, in.Sentiment = d.Conversation, d.InReplyTo, d.Confidence, d.Sentiment
		in.Brain, in.Fallback = d.Brain, d.Fallback
		if d.Intent != journey.IntentUnknown {
			in.Intent = d.Intent
		}
		switch d.Escalated {
		case "":
		case journey.ReasonBotFailed:
			in.Err, p.done = "the bot failed (as recorded)", true
		default:
			in.Text, p.done = HeldReplyText, true
		}
		return true
	case e.Type == journey.TypeMessageSent && e.Actor == journey.ActorAI && in.Conversation != "":
		in.Text, p.done = e.Text, true
		return true
	}
	return false
}

// HeldReplyText stands for a bot reply that was held back when recorded.
const HeldReplyText = "(a bot reply held back when recorded)"

// clientEvent is the event as its client sent it: what the runtime added
// when storing it removed.
func clientEvent(e *journey.Event) journey.Event {
	in := *e
	in.Customer, in.Seq, in.Actor, in.RecordedAt = "", 0, "", time.Time{}
	return in
}

// finish steps the pending input under both policies and counts what
// changes.
func (c *CustomerReplay) finish() {
	p := c.pending
	c.pending = nil
	if bot, ok := p.in.(*journey.BotResult); ok && bot.Conversation == "" {
		return // a search without its reply: nothing to replay
	}
	if in, ok := p.in.(*journey.Inbound); ok && in.Event.Type == "" {
		return // an identity.linked without its event
	}
	old, oldRejected, err := c.step(c.r.opts.Old, p)
	if err == nil {
		var new []journey.Event
		var newRejected bool
		if new, newRejected, err = c.step(c.r.opts.New, p); err == nil {
			if oldRejected || newRejected {
				// Stored, so accepted when recorded: a runtime that refuses
				// it now is not the one that recorded it. Nothing to compare.
				c.endVerify()
				c.r.report.addMismatch(Sample{Customer: c.state.ID, Seq: p.seq, At: p.at.UTC()}, c.r.opts.SamplesMax)
				return
			}
			c.count(p, old, new)
			return
		}
	}
	c.err = fmt.Errorf("replay: customer %s: input at seq %d: %w", c.state.ID, p.seq, err)
}

// step is what the customer, as it was before the input, decides under a
// policy; now is the input's recorded time, so quiet hours and caps see
// the time they saw.
func (c *CustomerReplay) step(policy *journey.Policy, p *input) (events []journey.Event, rejected bool, err error) {
	state, err := journey.DecodeSnapshot(p.before)
	if err != nil {
		return nil, false, err
	}
	d := journey.Step(policy, state, p.in, p.at)
	if d.NeedLookup { // the ids window is not complete: the store had not seen the id
		in := *p.in.(*journey.Inbound)
		in.Stored = &journey.StoredID{}
		d = journey.Step(policy, state, &in, p.at)
	}
	return d.Events, d.Reject != nil, nil
}

func (c *CustomerReplay) count(p *input, old, new []journey.Event) {
	rep := &c.r.report
	rep.Inputs++
	at := Sample{Customer: c.state.ID, Seq: p.seq, At: p.at.UTC()}
	c.endVerify()
	c.verify = verification{open: true, events: old, at: p.at, sample: at}
	if len(old) > 0 {
		c.verify.at = old[len(old)-1].RecordedAt
	}
	for _, e := range p.read { // the stored events read with the input
		c.check(&e, true)
	}
	changes := diff(outcomeOf(old), outcomeOf(new))
	if len(changes) > 0 {
		rep.Changed++
	}
	for _, ch := range changes {
		c.r.add(ch, at, !c.seen[ch])
		c.seen[ch] = true
	}
}

// verification compares the stored events of an input with what the old
// policy decided for it.
type verification struct {
	open     bool
	events   []journey.Event // decided, not yet compared
	at       time.Time       // recorded_at of the decided events
	mismatch bool
	sample   Sample
}

// check compares a stored event with what the old policy decided at the
// same seq: a difference means the old policy is not the one the journal
// was recorded under (or the runtime changed since), and the report says
// how often. Once the decided events are all matched, a next stored event
// of the same recorded_at that is no input's belongs to the same batch:
// stored but not decided, a mismatch too. partOfInput: e is (part of) a
// recorded input.
func (c *CustomerReplay) check(e *journey.Event, partOfInput bool) {
	v := &c.verify
	if !v.open {
		return
	}
	if len(v.events) > 0 {
		if want := v.events[0]; want.Seq != e.Seq || want.Type != e.Type || want.Actor != e.Actor {
			v.mismatch = true
		}
		v.events = v.events[1:]
		return
	}
	if !partOfInput && e.RecordedAt.Equal(v.at) {
		v.mismatch = true
	}
	c.endVerify()
}

// endVerify closes the comparison of the latest input; decided events
// never stored count as a mismatch too.
func (c *CustomerReplay) endVerify() {
	v := &c.verify
	if v.open && (v.mismatch || len(v.events) > 0) {
		c.r.report.addMismatch(v.sample, c.r.opts.SamplesMax)
	}
	*v = verification{}
}
