package channels

import (
	"encoding/xml"
	"net/url"
	"strings"
	"testing"

	"github.com/throughline/throughline/journey"
)

// Twilio's documented example (webhook security): auth token 12345.
var (
	twilioDocURL  = "https://mycompany.com/myapp.php?foo=1&bar=2"
	twilioDocForm = url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"},
		"From": {"+14158675309"}, "To": {"+18005551212"}}
	twilioDocSig = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
)

func TestTwilioSignature(t *testing.T) {
	if got := TwilioSignature("12345", twilioDocURL, twilioDocForm); got != twilioDocSig {
		t.Fatalf("signature %q, want Twilio's documented %q", got, twilioDocSig)
	}
	other := url.Values{}
	for k, v := range twilioDocForm {
		other[k] = v
	}
	other.Set("Digits", "9999")
	cases := []struct {
		name, token, url, sig string
		form                  url.Values
		want                  bool
	}{
		{"valid", "12345", twilioDocURL, twilioDocSig, twilioDocForm, true},
		{"invalid", "12345", twilioDocURL, "AAAADt4T1cUTdK1PDd93/VVr8B8=", twilioDocForm, false},
		{"missing", "12345", twilioDocURL, "", twilioDocForm, false},
		{"replayed with another body", "12345", twilioDocURL, twilioDocSig, other, false},
		{"replayed to another URL", "12345", twilioDocURL + "&x=1", twilioDocSig, twilioDocForm, false},
		{"another token", "54321", twilioDocURL, twilioDocSig, twilioDocForm, false},
		{"no token configured", "", twilioDocURL, twilioDocSig, twilioDocForm, false},
	}
	for _, c := range cases {
		if got := VerifyTwilio(c.token, c.url, c.form, c.sig); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// twilioSMSSample is an incoming SMS webhook as Twilio documents it.
const twilioSMSSample = "ToCountry=US&ToState=CA&SmsMessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&NumMedia=0&ToCity=SAN+FRANCISCO" +
	"&FromZip=94105&SmsSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&FromState=CA&SmsStatus=received&FromCity=SAN+FRANCISCO" +
	"&Body=my+card+payment+failed+again&FromCountry=US&To=%2B15017250604&ToZip=94105&NumSegments=1" +
	"&MessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&AccountSid=AC0123&From=%2B15558675310&ApiVersion=2010-04-01"

func TestTwilioSMS(t *testing.T) {
	form, _ := url.ParseQuery(twilioSMSSample)
	e, err := TwilioSMS(form)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "twilio:SM1f0e8ae6ade43cb3c0ce4525424e404f" || e.Identity["phone"] != "+15558675310" || e.Channel != "sms" ||
		e.Text != "my card payment failed again" || e.Type != journey.TypeMessageReceived {
		t.Errorf("event %+v", e)
	}
	if rej := journey.ValidateInbound(&e); rej != nil {
		t.Errorf("not a valid event: %v", rej)
	}
	if _, err := TwilioSMS(url.Values{"Body": {"x"}}); err == nil {
		t.Error("an SMS without MessageSid was taken")
	}
}

func TestTwilioStatus(t *testing.T) {
	for _, c := range []struct {
		form     url.Values
		kind, rs string
		ok       bool
	}{
		{url.Values{"MessageStatus": {"delivered"}}, journey.ReceiptDelivered, "", true},
		{url.Values{"MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}}, journey.ReceiptFailed, "twilio_30003", true},
		{url.Values{"MessageStatus": {"failed"}}, journey.ReceiptFailed, "failed", true},
		{url.Values{"MessageStatus": {"sent"}}, "", "", false},
	} {
		r, ok := TwilioStatus("out-5-c-1", c.form)
		if ok != c.ok || r.Kind != c.kind || r.Reason != c.rs || (ok && r.Outbound != "out-5-c-1") {
			t.Errorf("%v: %+v %v", c.form, r, ok)
		}
	}
}

func TestTwilioMessageRequest(t *testing.T) {
	a := TwilioAccount{SID: "AC0123", From: "+15550001111", APIBase: "https://api.twilio.com/"}
	o := journey.Outbound{ID: "out-7-c-1", Channel: "sms", To: map[string]string{"phone": "+15551230000"}, Text: "hello"}
	endpoint, form, err := TwilioMessageRequest(a, o, "https://cx.example.com/v1/channels/twilio/status?outbound=out-7-c-1")
	if err != nil || endpoint != "https://api.twilio.com/2010-04-01/Accounts/AC0123/Messages.json" ||
		form.Get("To") != "+15551230000" || form.Get("From") != "+15550001111" || form.Get("Body") != "hello" || !strings.Contains(form.Get("StatusCallback"), "outbound=out-7-c-1") {
		t.Fatalf("%s %v %v", endpoint, form, err)
	}
	if _, _, err := TwilioMessageRequest(a, journey.Outbound{ID: "x"}, ""); err == nil {
		t.Error("an outbound without phone was rendered")
	}
	// Answers as the Messages API documents them.
	ok := TwilioSendResult(201, []byte(`{"sid":"SM1234567890abcdef","status":"queued","to":"+15551230000"}`))
	bad := TwilioSendResult(400, []byte(`{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`))
	down := TwilioSendResult(503, []byte(`oops`))
	limited := TwilioSendResult(429, []byte(`{"code":20429}`))
	if !ok.Taken || ok.ProviderID != "SM1234567890abcdef" || bad.Taken || bad.Retry || bad.Code != "twilio_21211" || !down.Retry || !limited.Retry {
		t.Errorf("ok %+v bad %+v down %+v limited %+v", ok, bad, down, limited)
	}
}

// A voice call as Twilio posts it, then a speech gather.
func TestTwilioVoice(t *testing.T) {
	call := url.Values{"CallSid": {"CA5a1d2f"}, "AccountSid": {"AC0123"}, "From": {"+15551230000"}, "To": {"+15550001111"},
		"CallStatus": {"ringing"}, "Direction": {"inbound"}, "ApiVersion": {"2010-04-01"}}
	e, err := TwilioCallStarted(call)
	if err != nil || e.Type != TypeCallStarted || e.Channel != "voice" || e.Identity["phone"] != "+15551230000" || !strings.Contains(string(e.Data), `"call":"CA5a1d2f"`) {
		t.Fatalf("%+v %v", e, err)
	}
	if _, ok := TwilioCallEnded(call); ok {
		t.Error("a ringing call ended")
	}
	call.Set("CallStatus", "completed")
	if e, ok := TwilioCallEnded(call); !ok || e.Type != TypeCallEnded {
		t.Errorf("completed: %+v %v", e, ok)
	}
	g := url.Values{"CallSid": {"CA5a1d2f"}, "From": {"+15551230000"}, "SpeechResult": {"I want to talk to a person"}, "Confidence": {"0.92"}}
	e, ok, err := TwilioGathered(g, 2)
	if err != nil || !ok || e.Text != "I want to talk to a person" || e.ID != "twilio:CA5a1d2f:2" || !strings.Contains(string(e.Data), `"input":"speech"`) {
		t.Fatalf("gathered %+v %v %v", e, ok, err)
	}
	d, ok, _ := TwilioGathered(url.Values{"CallSid": {"CA5a1d2f"}, "From": {"+15551230000"}, "Digits": {"42"}}, 3)
	if !ok || d.Text != "42" || !strings.Contains(string(d.Data), `"input":"dtmf"`) {
		t.Errorf("digits %+v", d)
	}
	if _, ok, _ := TwilioGathered(url.Values{"CallSid": {"CA5a1d2f"}, "From": {"+1555"}}, 3); ok {
		t.Error("nothing gathered was taken")
	}

	greet := string(VoiceGreet(Greeting{Name: "Ana", CaseSubject: "Double charge & refund"}))
	for _, want := range []string{`<Gather input="speech dtmf" action="/v1/channels/twilio/voice/gather?turn=1" method="POST"`,
		"I see you wrote to us about Double charge &amp; refund.", "Hello Ana."} {
		if !strings.Contains(greet, want) {
			t.Errorf("greeting lacks %q:\n%s", want, greet)
		}
	}
	var parsed struct {
		XMLName xml.Name
		Gather  struct {
			Say string `xml:"Say"`
		} `xml:"Gather"`
		Redirect string `xml:"Redirect"`
	}
	if err := xml.Unmarshal([]byte(greet), &parsed); err != nil || parsed.XMLName.Local != "Response" || parsed.Redirect == "" {
		t.Errorf("greeting is not TwiML: %v %+v", err, parsed)
	}
	if say := string(VoiceSay("Try the card again", 3)); !strings.Contains(say, "<Say>Try the card again</Say>") || !strings.Contains(say, "turn=3") {
		t.Errorf("say: %s", say)
	}
	if enq := string(VoiceEnqueue("Connecting you", "billing")); !strings.Contains(enq, "<Say>Connecting you</Say><Enqueue>billing</Enqueue>") {
		t.Errorf("enqueue: %s", enq)
	}
}

func FuzzTwilioSMS(f *testing.F) {
	f.Add(twilioSMSSample)
	f.Add("MessageSid=SM1&From=%2B1&Body=%FF%FE")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		e, err := TwilioSMS(form)
		if err != nil {
			return
		}
		if journey.ValidateID("id", e.ID) != nil {
			t.Fatalf("invalid id %q", e.ID)
		}
		if e.Text != "" && len(e.Text) > TextMaxBytes {
			t.Fatal("text not bounded")
		}
	})
}

func FuzzTwilioSignature(f *testing.F) {
	f.Add("12345", twilioDocURL, "CallSid=CA1&Digits=1234", "Digits=9")
	f.Fuzz(func(t *testing.T, token, u, body, other string) {
		form, err := url.ParseQuery(body)
		if err != nil || token == "" {
			return
		}
		sig := TwilioSignature(token, u, form)
		if !VerifyTwilio(token, u, form, sig) {
			t.Fatal("its own signature does not verify")
		}
		if VerifyTwilio(token, u, form, sig[:len(sig)-2]+"x=") && !strings.HasSuffix(sig, "x=") {
			t.Fatal("a changed signature verifies")
		}
		o, err := url.ParseQuery(other)
		if err == nil && TwilioSignature(token, u, o) != sig && VerifyTwilio(token, u, o, sig) {
			t.Fatal("another body verifies")
		}
	})
}
