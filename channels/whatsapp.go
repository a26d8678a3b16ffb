package channels

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/throughline/throughline/journey"
)

// WhatsApp Cloud API: the verification handshake, signed webhooks and the
// messages endpoint (PROTOCOL 9).

// ChannelWhatsApp is WhatsApp's channel.
const ChannelWhatsApp = "whatsapp"

// WhatsApp's limits of one webhook, past which the rest is ignored.
const (
	WhatsAppMessagesMax = 1000 // messages and statuses of one post
)

// WhatsAppVerify answers the subscription handshake: the challenge when
// hub.mode is subscribe and hub.verify_token is the configured token
// (constant time); false otherwise (403).
func WhatsAppVerify(q url.Values, verifyToken string) (string, bool) {
	if verifyToken == "" || q.Get("hub.mode") != "subscribe" {
		return "", false
	}
	if !hmac.Equal([]byte(q.Get("hub.verify_token")), []byte(verifyToken)) {
		return "", false
	}
	return q.Get("hub.challenge"), true
}

// WhatsAppSignature is X-Hub-Signature-256 of a body: "sha256=" + hex of
// its HMAC-SHA256 keyed by the app secret.
func WhatsAppSignature(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyWhatsApp reports whether header signs body (constant time); an
// empty secret or header never verifies.
func VerifyWhatsApp(appSecret string, body []byte, header string) bool {
	if appSecret == "" || header == "" {
		return false
	}
	return hmac.Equal([]byte(WhatsAppSignature(appSecret, body)), []byte(header))
}

// WhatsAppStatus is a status of a message Throughline sent.
type WhatsAppStatus struct {
	ProviderID string // the message id the status names
	Outbound   string // biz_opaque_callback_data: the outbound id sent with it, "" when absent
	Kind       string // journey.ReceiptDelivered or ReceiptFailed
	Reason     string // for failed: the error code
}

// WhatsAppWebhook is what one webhook post carries.
type WhatsAppWebhook struct {
	Events   []journey.Event   // message.received, in the order posted
	Names    map[string]string // wa_id -> the contact's profile name
	Statuses []WhatsAppStatus  // receipts (sent is none)
}

type waWebhook struct {
	Entry []struct {
		Changes []struct {
			Value struct {
				Contacts []struct {
					WaID    string `json:"wa_id"`
					Profile struct {
						Name string `json:"name"`
					} `json:"profile"`
				} `json:"contacts"`
				Messages []waMessage `json:"messages"`
				Statuses []struct {
					ID       string `json:"id"`
					Status   string `json:"status"`
					Callback string `json:"biz_opaque_callback_data"`
					Errors   []struct {
						Code  json.Number `json:"code"`
						Title string      `json:"title"`
					} `json:"errors"`
				} `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type waMessage struct {
	From      string `json:"from"`
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Type      string `json:"type"`
	Text      struct {
		Body string `json:"body"`
	} `json:"text"`
	Interactive struct {
		Type        string `json:"type"`
		ButtonReply struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"button_reply"`
		ListReply struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"list_reply"`
	} `json:"interactive"`
	Button struct {
		Text    string `json:"text"`
		Payload string `json:"payload"`
	} `json:"button"`
	Context struct {
		ID string `json:"id"`
	} `json:"context"`
}

// DecodeWhatsApp maps a webhook's JSON: messages of type text, interactive
// (button_reply, list_reply: their titles) and button become
// message.received with id wa:<message id>, identity whatsapp from, channel
// whatsapp; other types are recorded with data.type and no text. Statuses
// delivered and read become delivered, failed becomes failed.
func DecodeWhatsApp(body []byte) (WhatsAppWebhook, error) {
	var w waWebhook
	if err := json.Unmarshal(body, &w); err != nil {
		return WhatsAppWebhook{}, badf("whatsapp webhook: %v", err)
	}
	out := WhatsAppWebhook{Names: map[string]string{}}
	n := 0
	for _, e := range w.Entry {
		for _, ch := range e.Changes {
			v := ch.Value
			for _, c := range v.Contacts {
				if c.WaID != "" && c.Profile.Name != "" && len(out.Names) < WhatsAppMessagesMax {
					out.Names[c.WaID] = c.Profile.Name
				}
			}
			for _, m := range v.Messages {
				if n++; n > WhatsAppMessagesMax {
					return out, nil
				}
				if ev, ok := whatsAppEvent(m); ok {
					out.Events = append(out.Events, ev)
				}
			}
			for _, s := range v.Statuses {
				if n++; n > WhatsAppMessagesMax {
					return out, nil
				}
				st := WhatsAppStatus{ProviderID: s.ID, Outbound: s.Callback}
				switch s.Status {
				case "delivered", "read":
					st.Kind = journey.ReceiptDelivered
				case "failed":
					st.Kind, st.Reason = journey.ReceiptFailed, "failed"
					if len(s.Errors) > 0 && s.Errors[0].Code != "" {
						st.Reason = "whatsapp_" + s.Errors[0].Code.String()
					}
				default:
					continue // sent, deleted, warning: no receipt
				}
				if s.ID != "" || s.Callback != "" {
					out.Statuses = append(out.Statuses, st)
				}
			}
		}
	}
	return out, nil
}

func whatsAppEvent(m waMessage) (journey.Event, bool) {
	if m.ID == "" || m.From == "" {
		return journey.Event{}, false
	}
	d := map[string]any{"type": m.Type}
	var text string
	switch m.Type {
	case "text":
		text = m.Text.Body
	case "interactive":
		switch m.Interactive.Type {
		case "button_reply":
			text, d["reply_id"] = m.Interactive.ButtonReply.Title, m.Interactive.ButtonReply.ID
		case "list_reply":
			text, d["reply_id"] = m.Interactive.ListReply.Title, m.Interactive.ListReply.ID
		}
		d["interactive"] = m.Interactive.Type
	case "button":
		text, d["payload"] = m.Button.Text, m.Button.Payload
	}
	if m.Context.ID != "" {
		d["context"] = m.Context.ID
	}
	return journey.Event{
		ID: eventID("wa:", m.ID), Identity: map[string]string{"whatsapp": m.From},
		Type: journey.TypeMessageReceived, Channel: ChannelWhatsApp, Text: cutText(text), Data: data(d),
	}, true
}

// WhatsAppAccount is what the messages endpoint needs of the configuration.
type WhatsAppAccount struct {
	PhoneNumberID string
	APIBase       string // https://graph.facebook.com/v21.0
}

// WhatsAppMessageRequest is the messages request of an outbound: endpoint
// and JSON body (a text message; the outbound id rides as
// biz_opaque_callback_data, which statuses echo). The caller adds the
// bearer access token.
func WhatsAppMessageRequest(a WhatsAppAccount, o journey.Outbound) (string, []byte, error) {
	to := o.To["whatsapp"]
	if to == "" {
		to = o.To["phone"]
	}
	if to == "" {
		return "", nil, badf("outbound %s has no whatsapp number", o.ID)
	}
	body, err := json.Marshal(map[string]any{
		"messaging_product": "whatsapp", "recipient_type": "individual",
		"to": strings.TrimPrefix(to, "+"), "type": "text",
		"text": map[string]any{"body": o.Text, "preview_url": false}, "biz_opaque_callback_data": o.ID,
	})
	if err != nil {
		return "", nil, err
	}
	return strings.TrimRight(a.APIBase, "/") + "/" + url.PathEscape(a.PhoneNumberID) + "/messages", body, nil
}

// WhatsAppSendResult reads the messages endpoint's answer: 2xx takes it
// over with messages[0].id; a 4xx fails with the error's code.
func WhatsAppSendResult(status int, body []byte) SendResult {
	r := classify(status)
	var v struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
		Error struct {
			Code json.Number `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &v)
	switch {
	case r.Taken && len(v.Messages) > 0:
		r.ProviderID = v.Messages[0].ID
	case !r.Taken && !r.Retry && v.Error.Code != "":
		if _, err := strconv.ParseInt(v.Error.Code.String(), 10, 64); err == nil {
			r.Code = "whatsapp_" + v.Error.Code.String()
		}
	}
	return r
}
