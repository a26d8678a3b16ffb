package channels

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/throughline/throughline/journey"
)

// Twilio: SMS webhooks, status callbacks and the Messages API (PROTOCOL 9).

// Channels Twilio carries.
const (
	ChannelSMS   = "sms"
	ChannelVoice = "voice"
)

// TwilioSignature is X-Twilio-Signature for a request: base64 of the
// HMAC-SHA1, keyed by the auth token, of the full URL Twilio called (the
// public URL, path and query) followed by every POST parameter's name and
// value, sorted by name (a repeated name's values in order).
func TwilioSignature(authToken, fullURL string, form url.Values) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(fullURL))
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range form {
			if !yield(k) {
				return
			}
		}
	}) {
		vals := slices.Clone(form[k])
		slices.Sort(vals)
		for _, v := range vals {
			mac.Write([]byte(k))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyTwilio reports whether signature is the request's (constant time);
// an empty auth token or signature never verifies.
func VerifyTwilio(authToken, fullURL string, form url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	want := TwilioSignature(authToken, fullURL, form)
	return hmac.Equal([]byte(want), []byte(signature))
}

// TwilioSMS maps an incoming SMS webhook to a message.received: id
// twilio:<MessageSid>, identity phone From, channel sms, text Body.
func TwilioSMS(form url.Values) (journey.Event, error) {
	sid, from := form.Get("MessageSid"), form.Get("From")
	if sid == "" {
		sid = form.Get("SmsSid")
	}
	if sid == "" || from == "" {
		return journey.Event{}, badf("twilio sms without MessageSid or From")
	}
	d := map[string]any{"to": form.Get("To")}
	if n, err := strconv.Atoi(form.Get("NumMedia")); err == nil && n > 0 {
		d["num_media"] = n
	}
	return journey.Event{
		ID: eventID("twilio:", sid), Identity: map[string]string{"phone": from},
		Type: journey.TypeMessageReceived, Channel: ChannelSMS, Text: cutText(form.Get("Body")),
		Data: data(d),
	}, nil
}

// TwilioStatus maps a message status callback to a receipt of outbound
// (the id Throughline put in the callback URL): delivered becomes delivered,
// failed and undelivered become failed with the ErrorCode (else the
// status); other statuses (queued, sent, ...) are no receipt (false).
func TwilioStatus(outbound string, form url.Values) (journey.Receipt, bool) {
	status := form.Get("MessageStatus")
	if status == "" {
		status = form.Get("SmsStatus")
	}
	switch status {
	case "delivered", "read":
		return journey.Receipt{Outbound: outbound, Kind: journey.ReceiptDelivered}, true
	case "failed", "undelivered":
		reason := status
		if code := form.Get("ErrorCode"); code != "" {
			reason = "twilio_" + code
		}
		return journey.Receipt{Outbound: outbound, Kind: journey.ReceiptFailed, Reason: reason}, true
	}
	return journey.Receipt{}, false
}

// TwilioAccount is what the Messages API needs of the configuration.
type TwilioAccount struct {
	SID     string
	From    string
	APIBase string // https://api.twilio.com
}

// TwilioMessageRequest is the Messages API request of an SMS outbound: the
// endpoint and its form (To, From, Body, StatusCallback); the caller adds
// basic auth sid:token. statusCallback is the URL Twilio reports to.
func TwilioMessageRequest(a TwilioAccount, o journey.Outbound, statusCallback string) (string, url.Values, error) {
	to := o.To["phone"]
	if to == "" {
		return "", nil, badf("outbound %s has no phone", o.ID)
	}
	form := url.Values{"To": {to}, "From": {a.From}, "Body": {o.Text}}
	if statusCallback != "" {
		form.Set("StatusCallback", statusCallback)
	}
	endpoint := strings.TrimRight(a.APIBase, "/") + "/2010-04-01/Accounts/" + url.PathEscape(a.SID) + "/Messages.json"
	return endpoint, form, nil
}

// TwilioSendResult reads the Messages API's answer: 2xx takes it over with
// the message's sid; a 4xx fails with Twilio's error code.
func TwilioSendResult(status int, body []byte) SendResult {
	r := classify(status)
	var v struct {
		SID  string          `json:"sid"`
		Code json.RawMessage `json:"code"`
	}
	_ = json.Unmarshal(body, &v)
	if r.Taken {
		r.ProviderID = v.SID
	} else if !r.Retry && len(v.Code) > 0 && string(v.Code) != "null" {
		r.Code = "twilio_" + strings.Trim(string(v.Code), `"`)
	}
	return r
}
