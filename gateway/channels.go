package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/channels"
	"github.com/throughline/throughline/journey"
)

// ChannelsConfig configures the provider adapters of PROTOCOL section 9.
// A nil provider is not configured: its endpoints answer 404 and its
// channels stay with WebSocket gateways. Secrets are values here; the node
// reads them from the environment variables its config names.
type ChannelsConfig struct {
	Twilio   *TwilioConfig
	WhatsApp *WhatsAppConfig
	Email    *EmailConfig
	Webchat  *WebchatConfig
	// DemoShop serves /demo/shop, a page with the chat widget, and a token
	// endpoint for it without authentication: the built-in demo only.
	DemoShop bool
}

// ProviderLimits bounds what Throughline asks of one provider. The zero
// value of a field means its default.
type ProviderLimits struct {
	Concurrency int           // requests in flight; default 4
	Rate        float64       // requests per second; default 10
	Timeout     time.Duration // one request; default 10s
	// RetryMin and RetryMax bound the backoff of retries; default 1s, 1m.
	RetryMin, RetryMax time.Duration
}

func (l *ProviderLimits) ensureDefaults() {
	if l.Concurrency <= 0 {
		l.Concurrency = 4
	}
	if l.Rate <= 0 {
		l.Rate = 10
	}
	if l.Timeout <= 0 {
		l.Timeout = 10 * time.Second
	}
}

// TwilioConfig is channels.twilio: SMS and Voice.
type TwilioConfig struct {
	AccountSID string
	AuthToken  string
	From       string
	PublicURL  string // the base URL Twilio calls, as it signs it
	APIBase    string // default https://api.twilio.com
	Limits     ProviderLimits
}

// WhatsAppConfig is channels.whatsapp: the WhatsApp Cloud API.
type WhatsAppConfig struct {
	PhoneNumberID string
	VerifyToken   string
	AppSecret     string
	AccessToken   string
	APIBase       string // default https://graph.facebook.com/v21.0
	Limits        ProviderLimits
}

// EmailConfig is channels.email: replies over SMTP.
type EmailConfig struct {
	From     string // "Support <support@example.com>" or an address
	SMTPAddr string // host:port
	Username string // with Password: SMTP AUTH PLAIN; empty: none
	Password string
	StartTLS bool // require STARTTLS (else plain: a local relay)
	Limits   ProviderLimits
}

// WebchatConfig is channels.webchat.
type WebchatConfig struct {
	Secret         []byte        // signs visitor tokens
	AllowedOrigins []string      // Origins the visitor WebSocket accepts
	TokenTTL       time.Duration // default 24h
}

// providers is the server's adapters: the senders outbounds go to and the
// state their endpoints share.
type providers struct {
	s        *Server
	cfg      ChannelsConfig
	log      *slog.Logger
	sms      *sender // nil when not configured
	whatsapp *sender
	email    *sender
	voice    *voiceCalls
	webchat  *webchatHub
	waIDs    *providerIDs // WhatsApp message id -> outbound id
}

// newProviders starts the senders of the configured providers; stop stops
// them.
func newProviders(s *Server, cfg ChannelsConfig) *providers {
	p := &providers{s: s, cfg: cfg, log: s.log.With("subsystem", "channels"), waIDs: newProviderIDs(providerIDsMax)}
	receipt := func(r journey.Receipt) { p.receipt(r) }
	if t := cfg.Twilio; t != nil {
		t.Limits.ensureDefaults()
		if t.APIBase == "" {
			t.APIBase = "https://api.twilio.com"
		}
		p.sms = newSender("twilio", t.Limits, &twilioSMS{cfg: t, client: httpClient(t.Limits)}, receipt, p.log)
		p.voice = newVoiceCalls()
	}
	if w := cfg.WhatsApp; w != nil {
		w.Limits.ensureDefaults()
		if w.APIBase == "" {
			w.APIBase = "https://graph.facebook.com/v21.0"
		}
		p.whatsapp = newSender("whatsapp", w.Limits, &whatsAppSend{cfg: w, client: httpClient(w.Limits), ids: p.waIDs}, receipt, p.log)
	}
	if e := cfg.Email; e != nil {
		e.Limits.ensureDefaults()
		p.email = newSender("email", e.Limits, &smtpSend{cfg: e}, receipt, p.log)
	}
	if w := cfg.Webchat; w != nil {
		if w.TokenTTL <= 0 {
			w.TokenTTL = 24 * time.Hour
		}
		p.webchat = newWebchatHub()
	}
	return p
}

func httpClient(l ProviderLimits) *http.Client {
	return &http.Client{Timeout: l.Timeout, Transport: &http.Transport{MaxConnsPerHost: l.Concurrency, IdleConnTimeout: 90 * time.Second}}
}

// take is the OutboundRouter's taker: outbounds on a configured provider's
// channels are Throughline's to deliver (true); the rest go to WebSocket
// gateways. It must not block.
func (p *providers) take(o journey.Outbound) bool {
	switch o.Channel {
	case channels.ChannelSMS:
		if p.sms != nil {
			p.sms.enqueue(o)
			return true
		}
	case channels.ChannelVoice:
		if p.voice != nil {
			p.voice.deliver(o, p.receipt)
			return true
		}
	case channels.ChannelWhatsApp:
		if p.whatsapp != nil {
			p.whatsapp.enqueue(o)
			return true
		}
	case journey.ChannelEmail:
		if p.email != nil {
			p.email.enqueue(o)
			return true
		}
	case channels.ChannelWeb:
		if p.webchat != nil && p.webchat.knows(o.Customer) {
			p.webchat.deliver(o, p.receipt)
			return true
		}
	}
	return false
}

// receipt records a provider's word on an outbound; refusals (an unknown
// id) and a stopping runtime are logged, not retried: the customer's due
// work sends an unconfirmed outbound again.
func (p *providers) receipt(r journey.Receipt) {
	p.s.rt.Receipt(r, func(rej *journey.Rejection) {
		if rej != nil {
			p.log.Debug("receipt not recorded", "kind", r.Kind, "code", rej.Code)
		}
	})
}

// receiptWait records a receipt and waits for its answer (a webhook answers
// once it is durable).
func (p *providers) receiptWait(ctx context.Context, r journey.Receipt) *journey.Rejection {
	done := make(chan *journey.Rejection, 1)
	p.s.rt.Receipt(r, func(rej *journey.Rejection) { done <- rej })
	select {
	case rej := <-done:
		return rej
	case <-ctx.Done():
		return journey.Rejectf(journey.CodeUnavailable, "no answer in time")
	}
}

func (p *providers) stop() {
	for _, s := range []*sender{p.sms, p.whatsapp, p.email} {
		if s != nil {
			s.stop()
		}
	}
	if p.webchat != nil {
		p.webchat.closeAll()
	}
}

// ingest delivers one provider event (admitted like any HTTP event) and
// waits for its answer.
func (p *providers) ingest(ctx context.Context, e journey.Event) actors.Result {
	start := time.Now()
	if rej := journey.ValidateInbound(&e); rej != nil {
		return actors.Result{Reject: rej}
	}
	res := make(chan actors.Result, 1)
	p.s.deliver(ctx, e, 0, true, func(x actors.Result) { res <- x })
	out := awaitResult(ctx, res)
	p.s.count(out, start)
	return out
}

// providerIDs maps provider message ids to outbound ids, bounded: past the
// bound the oldest half is forgotten (statuses then fall back to the id
// the provider echoes, or are dropped; the outbound's due work stays).
type providerIDs struct {
	mu    sync.Mutex
	ids   map[string]string
	order []string
	max   int
}

const providerIDsMax = 100_000

func newProviderIDs(max int) *providerIDs {
	return &providerIDs{ids: map[string]string{}, max: max}
}

func (m *providerIDs) put(providerID, outbound string) {
	if providerID == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.order) >= m.max {
		for _, k := range m.order[:m.max/2] {
			delete(m.ids, k)
		}
		m.order = append([]string(nil), m.order[m.max/2:]...)
	}
	m.ids[providerID] = outbound
	m.order = append(m.order, providerID)
}

func (m *providerIDs) get(providerID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ids[providerID]
}
