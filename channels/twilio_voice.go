package channels

import (
	"bytes"
	"encoding/xml"
	"net/url"
	"strconv"

	"github.com/throughline/throughline/journey"
)

// Twilio Voice: call webhooks and the TwiML answers (PROTOCOL 9).

// Voice event types.
const (
	TypeCallStarted = "call.started"
	TypeCallEnded   = "call.ended"
)

// VoiceGatherPath is the path Twilio posts what it gathered to.
const VoiceGatherPath = "/v1/channels/twilio/voice/gather"

// TwilioCallStarted maps a call's first webhook to call.started (identity
// phone From, channel voice, data.call the CallSid).
func TwilioCallStarted(form url.Values) (journey.Event, error) {
	sid, from := form.Get("CallSid"), form.Get("From")
	if sid == "" || from == "" {
		return journey.Event{}, badf("twilio call without CallSid or From")
	}
	return journey.Event{
		ID: eventID("twilio:", sid+":started"), Identity: map[string]string{"phone": from},
		Type: TypeCallStarted, Channel: ChannelVoice, Data: data(map[string]string{"call": sid, "to": form.Get("To")}),
	}, nil
}

// TwilioCallEnded maps CallStatus completed to call.ended; false for any
// other status.
func TwilioCallEnded(form url.Values) (journey.Event, bool) {
	sid, from := form.Get("CallSid"), form.Get("From")
	if form.Get("CallStatus") != "completed" || sid == "" || from == "" {
		return journey.Event{}, false
	}
	d := map[string]string{"call": sid}
	if dur := form.Get("CallDuration"); dur != "" {
		d["duration_s"] = dur
	}
	return journey.Event{
		ID: eventID("twilio:", sid+":ended"), Identity: map[string]string{"phone": from},
		Type: TypeCallEnded, Channel: ChannelVoice, Data: data(d),
	}, true
}

// TwilioGathered maps a Gather's result (SpeechResult, else Digits) to a
// message.received on voice. turn is the gather's number in the call (from
// the action URL Throughline wrote), so a retried post is a duplicate and a
// repeated answer is not. False when nothing was gathered.
func TwilioGathered(form url.Values, turn int) (journey.Event, bool, error) {
	sid, from := form.Get("CallSid"), form.Get("From")
	if sid == "" || from == "" {
		return journey.Event{}, false, badf("twilio gather without CallSid or From")
	}
	text, input := form.Get("SpeechResult"), "speech"
	if text == "" {
		text, input = form.Get("Digits"), "dtmf"
	}
	if text == "" {
		return journey.Event{}, false, nil
	}
	d := map[string]any{"call": sid, "input": input}
	if c, err := strconv.ParseFloat(form.Get("Confidence"), 64); err == nil {
		d["confidence"] = c
	}
	return journey.Event{
		ID: eventID("twilio:", sid+":"+strconv.Itoa(turn)), Identity: map[string]string{"phone": from},
		Type: journey.TypeMessageReceived, Channel: ChannelVoice, Text: cutText(text), Data: data(d),
	}, true, nil
}

// Greeting is what the journey knows when a call starts.
type Greeting struct {
	Name        string // the profile's name, "" when unknown
	CaseSubject string // the subject of the latest open case, "" when none
}

// Text is the greeting said to the caller.
func (g Greeting) Text() string {
	s := "Hello"
	if g.Name != "" {
		s += " " + g.Name
	}
	s += "."
	if g.CaseSubject != "" {
		s += " I see you wrote to us about " + g.CaseSubject + "."
	}
	return s + " How can I help you?"
}

// twiml elements.
type (
	twimlResponse struct {
		XMLName xml.Name `xml:"Response"`
		Items   []any
	}
	twimlSay struct {
		XMLName xml.Name `xml:"Say"`
		Text    string   `xml:",chardata"`
	}
	twimlGather struct {
		XMLName       xml.Name `xml:"Gather"`
		Input         string   `xml:"input,attr"`
		Action        string   `xml:"action,attr"`
		Method        string   `xml:"method,attr"`
		SpeechTimeout string   `xml:"speechTimeout,attr"`
		Say           *twimlSay
	}
	twimlRedirect struct {
		XMLName xml.Name `xml:"Redirect"`
		Method  string   `xml:"method,attr"`
		URL     string   `xml:",chardata"`
	}
	twimlEnqueue struct {
		XMLName xml.Name `xml:"Enqueue"`
		Queue   string   `xml:",chardata"`
	}
)

// EmptyTwiML answers a webhook with nothing to do.
const EmptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

func renderTwiML(items ...any) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	if err := xml.NewEncoder(&b).Encode(twimlResponse{Items: items}); err != nil {
		panic("channels: twiml: " + err.Error())
	}
	return b.Bytes()
}

func gatherURL(turn int) string { return VoiceGatherPath + "?turn=" + strconv.Itoa(turn) }

// gather says text inside a Gather of speech and digits whose result goes
// to turn; when the caller says nothing, the call comes back to the same
// turn.
func gather(text string, turn int) []any {
	g := twimlGather{Input: "speech dtmf", Action: gatherURL(turn), Method: "POST", SpeechTimeout: "auto"}
	if text != "" {
		g.Say = &twimlSay{Text: text}
	}
	return []any{g, twimlRedirect{Method: "POST", URL: gatherURL(turn)}}
}

// VoiceGreet is the TwiML answering a call: the greeting, then a Gather of
// speech or digits for turn 1.
func VoiceGreet(g Greeting) []byte { return renderTwiML(gather(g.Text(), 1)...) }

// VoiceSay answers a gathered turn with the bot's answer and gathers the
// next turn.
func VoiceSay(text string, next int) []byte { return renderTwiML(gather(text, next)...) }

// VoiceEnqueue says the hand-over message and puts the call in the queue.
func VoiceEnqueue(text, queue string) []byte {
	var items []any
	if text != "" {
		items = append(items, twimlSay{Text: text})
	}
	return renderTwiML(append(items, twimlEnqueue{Queue: queue})...)
}
