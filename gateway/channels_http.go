package gateway

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/channels"
	"github.com/throughline/throughline/journey"
)

// The provider endpoints of PROTOCOL section 9. Each checks the provider's
// signature first (403 and nothing stored when missing or wrong), and
// answers only once what it carried is durable: a provider retry after a
// crash finds it stored, and a retry of a stored message is a duplicate.

const (
	twilioSMSPath    = "/v1/channels/twilio/sms"
	twilioStatusPath = "/v1/channels/twilio/status"
	twilioVoicePath  = "/v1/channels/twilio/voice"
	whatsAppPath     = "/v1/channels/whatsapp"
	emailPath        = "/v1/channels/email"
	// webhookBodyMax bounds a provider's webhook body (a raw mail may be
	// larger: the server's BodyMaxBytes).
	webhookBodyMax = journey.WebhookBodyMaxBytes
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// mount adds the configured providers' endpoints.
func forbidden(w http.ResponseWriter, what string) {
	writeError(w, journey.Rejectf(journey.CodeForbidden, "%s", what))
}

// twilioForm reads and verifies a Twilio post: the signature covers
// public_url + the path and query + the sorted form.
func (p *providers) twilioForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhookBodyMax))
	if err != nil {
		writeError(w, journey.Rejectf(journey.CodeTooLarge, "body: %v", err))
		return nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		form = nil
	}
	full := strings.TrimRight(p.cfg.Twilio.PublicURL, "/") + r.URL.RequestURI()
	if form == nil || !channels.VerifyTwilio(p.cfg.Twilio.AuthToken, full, form, r.Header.Get("X-Twilio-Signature")) {
		forbidden(w, "X-Twilio-Signature is missing or wrong")
		return nil, false
	}
	return form, true
}

// postTwilioSMS is POST /v1/channels/twilio/sms.
func (p *providers) postTwilioSMS(w http.ResponseWriter, r *http.Request) {
	form, ok := p.twilioForm(w, r)
	if !ok {
		return
	}
	e, err := channels.TwilioSMS(form)
	if err != nil {
		writeError(w, journey.Rejectf(journey.CodeBadRequest, "%v", err))
		return
	}
	if res := p.ingest(r.Context(), e); res.Reject != nil {
		writeError(w, res.Reject)
		return
	}
	writeTwiML(w, []byte(channels.EmptyTwiML))
}

// postTwilioStatus is POST /v1/channels/twilio/status: a message status
// callback for the outbound its URL names.
func (p *providers) postTwilioStatus(w http.ResponseWriter, r *http.Request) {
	form, ok := p.twilioForm(w, r)
	if !ok {
		return
	}
	rc, ok := channels.TwilioStatus(r.URL.Query().Get("outbound"), form)
	if ok {
		if rej := p.receiptWait(r.Context(), rc); rej != nil && rej.Code == journey.CodeUnavailable {
			writeError(w, rej) // Twilio retries
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// getWhatsApp is GET /v1/channels/whatsapp: the verification handshake.
func (p *providers) getWhatsApp(w http.ResponseWriter, r *http.Request) {
	challenge, ok := channels.WhatsAppVerify(r.URL.Query(), p.cfg.WhatsApp.VerifyToken)
	if !ok {
		forbidden(w, "hub.verify_token is wrong")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, challenge)
}

// postWhatsApp is POST /v1/channels/whatsapp: messages in order, the
// contacts' names into empty profiles, statuses as receipts.
func (p *providers) postWhatsApp(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhookBodyMax))
	if err != nil {
		writeError(w, journey.Rejectf(journey.CodeTooLarge, "body: %v", err))
		return
	}
	if !channels.VerifyWhatsApp(p.cfg.WhatsApp.AppSecret, body, r.Header.Get("X-Hub-Signature-256")) {
		forbidden(w, "X-Hub-Signature-256 is missing or wrong")
		return
	}
	hook, err := channels.DecodeWhatsApp(body)
	if err != nil {
		writeError(w, journey.Rejectf(journey.CodeBadRequest, "%v", err))
		return
	}
	for _, e := range hook.Events {
		waID := e.Identity["whatsapp"]
		res := p.ingest(r.Context(), e)
		if res.Reject != nil {
			if res.Reject.Code == journey.CodeBadRequest || res.Reject.Code == journey.CodeConflict {
				continue // a message Meta cannot fix by retrying
			}
			writeError(w, res.Reject) // Meta retries; what was stored is a duplicate then
			return
		}
		if name := hook.Names[waID]; name != "" {
			if rej := p.fillName(r, res.Ack.Customer, name); rej != nil {
				writeError(w, rej)
				return
			}
		}
	}
	for _, st := range hook.Statuses {
		outbound := p.waIDs.get(st.ProviderID)
		if outbound == "" {
			outbound = st.Outbound
		}
		if outbound == "" {
			continue
		}
		if rej := p.receiptWait(r.Context(), journey.Receipt{Outbound: outbound, Kind: st.Kind, Reason: st.Reason}); rej != nil && rej.Code == journey.CodeUnavailable {
			writeError(w, rej)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// fillName sets the profile's name from WhatsApp when it has none.
func (p *providers) fillName(r *http.Request, customer, name string) *journey.Rejection {
	c, exists, err := p.s.rt.Context(r.Context(), customer)
	if err != nil {
		return rejection(err)
	}
	if _, has := c.Profile["name"]; !exists || has {
		return nil
	}
	patch, _ := json.Marshal(map[string]string{"name": name})
	done := make(chan *journey.Rejection, 1)
	p.s.rt.PatchProfile(customer, journey.ProfilePatch{ID: "wa-name:" + customer, Patch: patch}, func(res actors.Result, _ map[string]any) {
		done <- res.Reject
	})
	select {
	case rej := <-done:
		return rej
	case <-r.Context().Done():
		return journey.Rejectf(journey.CodeUnavailable, "client gone")
	}
}

// postEmail is POST /v1/channels/email (role channel): one raw RFC 5322
// message.
func (p *providers) postEmail(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "message/rfc822" {
		writeError(w, journey.Rejectf(journey.CodeBadRequest, "Content-Type must be message/rfc822"))
		return
	}
	body, err := p.s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	e, err := channels.ParseEmail(body)
	if err != nil {
		writeError(w, journey.Rejectf(journey.CodeBadRequest, "%v", err))
		return
	}
	res := p.ingest(r.Context(), e)
	if res.Reject != nil {
		writeError(w, res.Reject)
		return
	}
	writeJSON(w, http.StatusOK, map[string]journey.Ack{"ack": *res.Ack})
}
