package gateway

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/throughline/throughline/channels"
	"github.com/throughline/throughline/journey"
)

// Voice is a session channel: the bot's answer to what a caller said goes
// back in the TwiML that answers the gather. Outbounds on voice wait here
// for the caller's customer's next gather response.

// Limits of voice calls.
const (
	voicePendingMax          = 8      // outbounds kept per customer for its next gather
	voiceCustomersMax        = 10_000 // customers with outbounds kept
	voiceAnswerWait          = 6 * time.Second
	voiceMoreWait            = 150 * time.Millisecond // after the first answer, for the rest of the turn
	voiceTurnMax             = 1000
	voiceRepeatPrompt        = "Sorry, I did not catch that. Could you say it again?"
	voiceHandoverDefaultText = "Please hold while I connect you with a person."
)

type voiceCalls struct {
	mu      sync.Mutex
	waiting map[string]chan journey.Outbound // customer -> the gather waiting for its answer
	pending map[string][]journey.Outbound    // customer -> outbounds that came with no gather waiting
}

func newVoiceCalls() *voiceCalls {
	return &voiceCalls{waiting: map[string]chan journey.Outbound{}, pending: map[string][]journey.Outbound{}}
}

// deliver hands an outbound to the customer's waiting gather (delivered), or
// keeps it for the next one (accepted). It never blocks.
func (v *voiceCalls) deliver(o journey.Outbound, receipt func(journey.Receipt)) {
	v.mu.Lock()
	if ch := v.waiting[o.Customer]; ch != nil {
		select {
		case ch <- o:
			v.mu.Unlock()
			receipt(journey.Receipt{Outbound: o.ID, Kind: journey.ReceiptDelivered})
			return
		default:
		}
	}
	q, ok := v.pending[o.Customer]
	switch {
	case slices.ContainsFunc(q, func(p journey.Outbound) bool { return p.ID == o.ID }):
	case !ok && len(v.pending) >= voiceCustomersMax:
		v.mu.Unlock()
		return // its due work brings it back
	default:
		if len(q) >= voicePendingMax {
			q = q[1:]
		}
		v.pending[o.Customer] = append(q, o)
	}
	v.mu.Unlock()
	receipt(journey.Receipt{Outbound: o.ID, Kind: journey.ReceiptAccepted})
}

// wait registers the customer's gather before its event is delivered, so
// the answer cannot pass it by; collect then gathers the answer.
func (v *voiceCalls) wait(customer string) chan journey.Outbound {
	ch := make(chan journey.Outbound, voicePendingMax)
	v.mu.Lock()
	v.waiting[customer] = ch
	for _, o := range v.pending[customer] {
		ch <- o
	}
	delete(v.pending, customer)
	v.mu.Unlock()
	return ch
}

func (v *voiceCalls) done(customer string, ch chan journey.Outbound) {
	v.mu.Lock()
	if v.waiting[customer] == ch {
		delete(v.waiting, customer)
	}
	v.mu.Unlock()
}

// collect waits for the first answer (up to wait), then for the
// rest of the turn.
func collect(ctx context.Context, ch chan journey.Outbound, wait time.Duration) []journey.Outbound {
	var out []journey.Outbound
	first := time.NewTimer(wait)
	defer first.Stop()
	select {
	case o := <-ch:
		out = append(out, o)
	case <-first.C:
		return nil
	case <-ctx.Done():
		return nil
	}
	more := time.NewTimer(voiceMoreWait)
	defer more.Stop()
	for {
		select {
		case o := <-ch:
			out = append(out, o)
		case <-more.C:
			return out
		case <-ctx.Done():
			return out
		}
	}
}

// postTwilioVoice is POST /v1/channels/twilio/voice: a call starts (or its
// status says it ended).
func (p *providers) postTwilioVoice(w http.ResponseWriter, r *http.Request) {
	form, ok := p.twilioForm(w, r)
	if !ok {
		return
	}
	if p.callEnded(w, r, form) {
		return
	}
	e, err := channels.TwilioCallStarted(form)
	if err != nil {
		writeError(w, journey.Rejectf(journey.CodeBadRequest, "%v", err))
		return
	}
	res := p.ingest(r.Context(), e)
	if res.Reject != nil {
		writeError(w, res.Reject)
		return
	}
	var g channels.Greeting
	if c, exists, err := p.s.rt.Context(r.Context(), res.Ack.Customer); err == nil && exists {
		g = greetingOf(c)
	}
	writeTwiML(w, channels.VoiceGreet(g))
}

// greetingOf is what the journey knows worth saying: the name and the
// latest open case.
func greetingOf(c journey.Context) channels.Greeting {
	var g channels.Greeting
	if name, ok := c.Profile["name"].(string); ok {
		g.Name = name
	}
	for i := len(c.Cases) - 1; i >= 0; i-- {
		if c.Cases[i].Status == "open" && c.Cases[i].Subject != "" {
			g.CaseSubject = c.Cases[i].Subject
			break
		}
	}
	return g
}

// postTwilioGather is POST /v1/channels/twilio/voice/gather: what the caller
// said or typed is a message; the bot's answer is said back, or the call is
// enqueued on hand-over.
func (p *providers) postTwilioGather(w http.ResponseWriter, r *http.Request) {
	form, ok := p.twilioForm(w, r)
	if !ok {
		return
	}
	if p.callEnded(w, r, form) {
		return
	}
	turn, err := strconv.Atoi(r.URL.Query().Get("turn"))
	if err != nil || turn < 1 || turn > voiceTurnMax {
		turn = voiceTurnMax
	}
	e, gathered, err := channels.TwilioGathered(form, turn)
	switch {
	case err != nil:
		writeError(w, journey.Rejectf(journey.CodeBadRequest, "%v", err))
		return
	case !gathered:
		writeTwiML(w, channels.VoiceSay(voiceRepeatPrompt, turn))
		return
	}
	// The caller's customer is known by the call's phone: resolve it first
	// so the gather waits before its event can be answered.
	if rej := journey.ValidateInbound(&e); rej != nil {
		writeError(w, rej)
		return
	}
	customer, _, err := p.s.rt.Resolve(r.Context(), &journey.Event{ID: e.ID, Identity: e.Identity})
	if err != nil {
		writeError(w, err)
		return
	}
	// A conversation already waiting for a person gets no bot answer: the
	// call joins its queue without waiting for one.
	wait := voiceAnswerWait
	if c, exists, err := p.s.rt.Context(r.Context(), customer); err == nil && exists && handedOver(c.Conversation) {
		wait = voiceMoreWait
	}
	ch := p.voice.wait(customer)
	defer p.voice.done(customer, ch)
	res := p.ingest(r.Context(), e)
	if res.Reject != nil {
		writeError(w, res.Reject)
		return
	}
	answers := collect(r.Context(), ch, wait)
	var texts []string
	for _, o := range answers {
		texts = append(texts, o.Text)
		p.receipt(journey.Receipt{Outbound: o.ID, Kind: journey.ReceiptDelivered})
	}
	text := strings.Join(texts, " ")
	if c, exists, err := p.s.rt.Context(r.Context(), res.Ack.Customer); err == nil && exists && handedOver(c.Conversation) {
		if text == "" {
			text = voiceHandoverDefaultText
		}
		writeTwiML(w, channels.VoiceEnqueue(text, c.Conversation.Queue))
		return
	}
	if text == "" {
		text = voiceRepeatPrompt
	}
	writeTwiML(w, channels.VoiceSay(text, turn+1))
}

// handedOver: the conversation waits for, or is with, a person.
func handedOver(cv *journey.Conversation) bool {
	if cv == nil || cv.Queue == "" {
		return false
	}
	switch cv.State {
	case journey.StateQueued, journey.StateOffered, journey.StateAgent, journey.StateCallback:
		return true
	}
	return false
}

// callEnded records call.ended for CallStatus completed and answers it.
func (p *providers) callEnded(w http.ResponseWriter, r *http.Request, form map[string][]string) bool {
	e, ok := channels.TwilioCallEnded(form)
	if !ok {
		return false
	}
	if res := p.ingest(r.Context(), e); res.Reject != nil {
		writeError(w, res.Reject)
		return true
	}
	writeTwiML(w, []byte(channels.EmptyTwiML))
	return true
}

func writeTwiML(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
