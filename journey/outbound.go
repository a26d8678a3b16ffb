package journey

import (
	"encoding/json"
	"strings"
	"time"
)

// Outbound is a message to deliver to the customer through a channel
// gateway (PROTOCOL section 2, the "outbound" frame). It is an effect: the
// customer actor hands it to the gateway once its message.sent is durable.
type Outbound struct {
	ID       string            `json:"id"`
	Customer string            `json:"customer"`
	Seq      uint64            `json:"seq"`
	Channel  string            `json:"channel"`
	To       map[string]string `json:"to"`
	Text     string            `json:"text"`
	Actor    string            `json:"actor"`
	Data     json.RawMessage   `json:"data"`
}

// PendingOutbound is an outbound not yet confirmed by a receipt: the state
// keeps what it needs to send it again.
type PendingOutbound struct {
	Seq      uint64            `json:"seq"`
	Channel  string            `json:"channel"`
	To       map[string]string `json:"to,omitempty"`
	Text     string            `json:"text"`
	Actor    string            `json:"actor"`
	Sent     time.Time         `json:"sent"`
	Accepted bool              `json:"accepted,omitempty"` // a gateway took it over: no redelivery (not journaled)
	NextAt   time.Time         `json:"next_at,omitzero"`   // the due-work key of its redelivery, zero when unknown (after a reload)
	// Redacted: the message carries a one-time code. Text is the clear
	// text only while Clear; the journal and snapshots have it redacted, so
	// after a reload it cannot be sent again and is given up.
	Redacted bool `json:"redacted,omitempty"`
	Clear    bool `json:"-"`
	// Thread: an email's case thread, rendered in the outbound's data.
	Thread *EmailThread `json:"thread,omitempty"`
}

// redacted is the outbounds as a snapshot keeps them: no clear codes.
func redacted(obs []PendingOutbound) []PendingOutbound {
	out := make([]PendingOutbound, len(obs))
	for i, o := range obs {
		if o.Redacted && o.Clear {
			o.Text, o.Clear = redactDigits(o.Text), false
		}
		out[i] = o
	}
	return out
}

// OutboundsPendingMax bounds a customer's unconfirmed outbounds; past it the
// oldest is given up as message.failed with reason "overflow".
const OutboundsPendingMax = 64

// Receipt kinds a channel gateway sends (PROTOCOL section 2).
const (
	ReceiptAccepted  = "accepted"
	ReceiptDelivered = "delivered"
	ReceiptFailed    = "failed"
)

// Receipt is a channel gateway's word on an outbound: accepted (taken over,
// redelivery stops), delivered or failed (recorded).
type Receipt struct {
	Outbound string // the outbound id
	Kind     string
	Reason   string // for failed
}

// Reasons of message.failed.
const (
	FailedExpired  = "expired"
	FailedOverflow = "overflow"
	FailedRedacted = "redacted" // a code message whose clear text a restart lost
)

// messageSent is the data of message.sent.
type messageSent struct {
	Outbound     string       `json:"outbound"`
	Conversation string       `json:"conversation,omitempty"`
	To           address      `json:"to,omitempty"`
	Proactive    bool         `json:"proactive,omitempty"`
	Redacted     bool         `json:"redacted,omitempty"`
	Ref          string       `json:"ref,omitempty"`    // an agent's reply: the desk's idempotency key
	Thread       *EmailThread `json:"thread,omitempty"` // a reply on email: its case's thread (email.go)
}

// messageReceipt is the data of message.delivered and message.failed.
type messageReceipt struct {
	Outbound string `json:"outbound"`
	Reason   string `json:"reason,omitempty"`
}

// applyOutbound keeps the pending outbounds in step with the events.
func (c *Customer) applyOutbound(e *Event, data any) {
	switch e.Type {
	case TypeMessageSent:
		d, ok := data.(messageSent)
		if !ok && json.Unmarshal(e.Data, &d) != nil {
			return
		}
		if d.Ref != "" && strings.HasPrefix(e.Actor, ActorAgentPrefix) {
			c.recent.addLocal(replyKey(strings.TrimPrefix(e.Actor, ActorAgentPrefix), d.Ref), e.Seq, e.RecordedAt)
		}
		if len(c.Outbounds) >= OutboundsPendingMax {
			c.Outbounds = append(c.Outbounds[:0], c.Outbounds[1:]...)
		}
		text := e.Text
		c.Outbounds = append(c.Outbounds, PendingOutbound{
			Seq: e.Seq, Channel: e.Channel, To: d.To, Text: text, Actor: e.Actor, Sent: e.RecordedAt, Redacted: d.Redacted,
			Thread: d.Thread,
		})
	case TypeMessageDelivered, TypeMessageFailed:
		var d messageReceipt
		if json.Unmarshal(e.Data, &d) != nil {
			return
		}
		if _, seq, ok := ParseOutboundID(d.Outbound); ok {
			c.dropOutbound(seq)
		}
	}
}

func (c *Customer) pendingOutbound(seq uint64) *PendingOutbound {
	for i := range c.Outbounds {
		if c.Outbounds[i].Seq == seq {
			return &c.Outbounds[i]
		}
	}
	return nil
}

func (c *Customer) dropOutbound(seq uint64) {
	for i := range c.Outbounds {
		if c.Outbounds[i].Seq == seq {
			c.Outbounds = append(c.Outbounds[:i], c.Outbounds[i+1:]...)
			return
		}
	}
}

// outboundOf renders a pending outbound for the gateway.
func (c *Customer) outboundOf(p *PendingOutbound) Outbound {
	to := p.To
	if to == nil {
		to = map[string]string{}
	}
	data := json.RawMessage("{}")
	if p.Thread != nil {
		raw, err := json.Marshal(struct {
			Thread *EmailThread `json:"thread"`
		}{p.Thread})
		if err != nil {
			panic("journey: outbound data: " + err.Error())
		}
		data = raw
	}
	return Outbound{
		ID: OutboundID(c.ID, p.Seq), Customer: c.ID, Seq: p.Seq, Channel: p.Channel,
		To: to, Text: p.Text, Actor: p.Actor, Data: data,
	}
}

// addressKinds are the identity kinds that reach each channel, in the order
// they are tried.
var addressKinds = map[string][]string{
	"sms": {"phone"}, "voice": {"phone"}, "whatsapp": {"whatsapp", "phone"},
	"email": {"email"}, "web": {"web"}, "chat": {"web"}, "mobile": {"external"},
}

// AddressFor is where a channel reaches the customer: the newest identity of
// the kind the channel uses, empty when it has none (a session channel such
// as web chat is reached through the connection instead). Every outbound's
// "to" comes from here, a proactive message's as well as a reply's (the
// governance had a table of its own that left voice, chat and mobile
// without an address).
func AddressFor(identities map[string][]string, channel string) map[string]string {
	for _, k := range addressKinds[channel] {
		if vals := identities[k]; len(vals) > 0 {
			return map[string]string{k: vals[len(vals)-1]}
		}
	}
	return map[string]string{}
}
