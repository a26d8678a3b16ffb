package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/time/rate"

	"github.com/throughline/throughline/channels"
	"github.com/throughline/throughline/journey"
)

// Senders deliver the outbounds of a configured provider through the same
// machinery as WebSocket gateways: the provider taking a message is the
// receipt accepted (redelivery stops), a permanent refusal is
// message.failed with the provider's code, and a transient failure (5xx,
// 429, a timeout, a refused connection) is retried with jittered
// exponential backoff until the outbound expires. While a retry waits, the
// customer's redeliveries of the same outbound are ignored.

// Limits of a sender.
const (
	// senderQueueMax bounds the outbounds waiting for a worker; past it an
	// outbound is dropped and comes back with its due work (30 s).
	senderQueueMax = 4096
	// senderInFlightMax bounds the outbounds a sender holds (queued,
	// sending or waiting to retry).
	senderInFlightMax = 10_000
	// senderRetryFor bounds how long a sender retries one outbound (the
	// journey gives it up at 24 h anyway).
	senderRetryFor = 24 * time.Hour
	senderRetryMin = time.Second
	senderRetryMax = time.Minute
	// providerBodyMax bounds a provider's answer read.
	providerBodyMax = 64 << 10
)

// provider sends one outbound to a provider. It must honour ctx.
type provider interface {
	send(ctx context.Context, o journey.Outbound) channels.SendResult
}

// sender runs one provider's deliveries: Concurrency workers, a rate
// limiter, a timeout per request and the retries.
type sender struct {
	name    string
	limits  ProviderLimits
	p       provider
	receipt func(journey.Receipt)
	log     *slog.Logger
	// confirm: the provider taking a message is as far as its delivery can
	// be known (SMTP): record delivered, not only accepted.
	confirm bool

	queue   chan journey.Outbound
	limiter *rate.Limiter
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu struct {
		sync.Mutex
		held map[string]*held // outbound id -> its delivery
	}
	// retryMin and retryMax bound the backoff (tests shorten them).
	retryMin, retryMax time.Duration
}

type held struct {
	attempts int
	deadline time.Time
	timer    *time.Timer
}

func newSender(name string, l ProviderLimits, p provider, receipt func(journey.Receipt), log *slog.Logger) *sender {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{
		name: name, limits: l, p: p, receipt: receipt, log: log.With("provider", name),
		queue:   make(chan journey.Outbound, senderQueueMax),
		limiter: rate.NewLimiter(rate.Limit(l.Rate), max(1, int(l.Rate))),
		ctx:     ctx, cancel: cancel, retryMin: senderRetryMin, retryMax: senderRetryMax,
	}
	if l.RetryMin > 0 {
		s.retryMin = l.RetryMin
	}
	if l.RetryMax > 0 {
		s.retryMax = l.RetryMax
	}
	s.mu.held = map[string]*held{}
	_, s.confirm = p.(*smtpSend)
	for range l.Concurrency {
		s.wg.Add(1)
		go s.work()
	}
	return s
}

// enqueue takes an outbound unless it is already held; it never blocks.
func (s *sender) enqueue(o journey.Outbound) {
	s.mu.Lock()
	if _, ok := s.mu.held[o.ID]; ok || len(s.mu.held) >= senderInFlightMax || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.mu.held[o.ID] = &held{deadline: time.Now().Add(senderRetryFor)}
	s.mu.Unlock()
	s.push(o)
}

func (s *sender) push(o journey.Outbound) {
	select {
	case s.queue <- o:
	default:
		s.forget(o.ID) // full: its due work brings it back
	}
}

func (s *sender) forget(id string) {
	s.mu.Lock()
	delete(s.mu.held, id)
	s.mu.Unlock()
}

func (s *sender) work() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case o := <-s.queue:
			if s.limiter.Wait(s.ctx) != nil {
				return
			}
			ctx, cancel := context.WithTimeout(s.ctx, s.limits.Timeout)
			r := s.p.send(ctx, o)
			cancel()
			s.done(o, r)
		}
	}
}

func (s *sender) done(o journey.Outbound, r channels.SendResult) {
	switch {
	case r.Taken:
		s.forget(o.ID)
		kind := journey.ReceiptAccepted
		if s.confirm {
			kind = journey.ReceiptDelivered
		}
		s.receipt(journey.Receipt{Outbound: o.ID, Kind: kind})
	case r.Retry:
		s.retry(o, r.Code)
	default:
		s.forget(o.ID)
		s.log.Info("provider refused a message", "code", r.Code)
		s.receipt(journey.Receipt{Outbound: o.ID, Kind: journey.ReceiptFailed, Reason: r.Code})
	}
}

// retry schedules the outbound again after a jittered backoff (half to all
// of min * 2^attempts, at most max), until its deadline.
func (s *sender) retry(o journey.Outbound, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.mu.held[o.ID]
	if h == nil || s.ctx.Err() != nil {
		return
	}
	d := s.retryMin << min(h.attempts, 20)
	if d > s.retryMax || d <= 0 {
		d = s.retryMax
	}
	d = d/2 + rand.N(d/2+1)
	h.attempts++
	if time.Now().Add(d).After(h.deadline) {
		delete(s.mu.held, o.ID)
		return
	}
	if h.attempts == 1 || h.attempts%10 == 0 {
		s.log.Warn("provider unavailable; retrying", "code", code, "attempts", h.attempts, "backoff", d)
	}
	h.timer = time.AfterFunc(d, func() { s.push(o) })
}

// stop ends the workers and the waiting retries; what they held comes back
// with the customers' due work after a restart.
func (s *sender) stop() {
	s.cancel()
	s.mu.Lock()
	for _, h := range s.mu.held {
		if h.timer != nil {
			h.timer.Stop()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// postProvider makes one request and classifies the answer with classify;
// a transport error or timeout is transient.
func postProvider(ctx context.Context, client *http.Client, req *http.Request, classify func(int, []byte) channels.SendResult) channels.SendResult {
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return channels.SendResult{Retry: true, Code: "unreachable"}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, providerBodyMax))
	if err != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return channels.SendResult{Retry: true, Code: "unreachable"}
	}
	return classify(resp.StatusCode, body)
}

// twilioSMS sends SMS through Twilio's Messages API.
type twilioSMS struct {
	cfg    *TwilioConfig
	client *http.Client
}

func (t *twilioSMS) send(ctx context.Context, o journey.Outbound) channels.SendResult {
	callback := ""
	if t.cfg.PublicURL != "" {
		callback = strings.TrimRight(t.cfg.PublicURL, "/") + twilioStatusPath + "?outbound=" + urlQueryEscape(o.ID)
	}
	endpoint, form, err := channels.TwilioMessageRequest(channels.TwilioAccount{SID: t.cfg.AccountSID, From: t.cfg.From, APIBase: t.cfg.APIBase}, o, callback)
	if err != nil {
		return channels.SendResult{Code: "no_address"}
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return channels.SendResult{Code: "bad_api_base"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(t.cfg.AccountSID, t.cfg.AuthToken)
	return postProvider(ctx, t.client, req, channels.TwilioSendResult)
}

// whatsAppSend sends text messages through the Cloud API.
type whatsAppSend struct {
	cfg    *WhatsAppConfig
	client *http.Client
	ids    *providerIDs
}

func (w *whatsAppSend) send(ctx context.Context, o journey.Outbound) channels.SendResult {
	endpoint, body, err := channels.WhatsAppMessageRequest(channels.WhatsAppAccount{PhoneNumberID: w.cfg.PhoneNumberID, APIBase: w.cfg.APIBase}, o)
	if err != nil {
		return channels.SendResult{Code: "no_address"}
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return channels.SendResult{Code: "bad_api_base"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.cfg.AccessToken)
	r := postProvider(ctx, w.client, req, channels.WhatsAppSendResult)
	if r.Taken {
		w.ids.put(r.ProviderID, o.ID)
	}
	return r
}

// smtpSend sends replies over SMTP with emersion/go-smtp: per-command
// deadlines, STARTTLS and AUTH PLAIN, and SMTP reply codes as errors
// (net/smtp is frozen and has neither timeouts nor typed replies).
type smtpSend struct {
	cfg *EmailConfig
}

func (m *smtpSend) send(ctx context.Context, o journey.Outbound) channels.SendResult {
	msg, err := channels.ComposeEmail(m.cfg.From, o, time.Now())
	if err != nil {
		return channels.SendResult{Code: "no_address"}
	}
	err = m.deliver(ctx, msg)
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return channels.SendResult{Taken: true, ProviderID: msg.MessageID}
	case errors.As(err, &se) && se.Code >= 500:
		return channels.SendResult{Code: fmt.Sprintf("smtp_%d", se.Code)}
	case errors.As(err, &se):
		return channels.SendResult{Retry: true, Code: fmt.Sprintf("smtp_%d", se.Code)}
	default:
		return channels.SendResult{Retry: true, Code: "unreachable"}
	}
}

func (m *smtpSend) deliver(ctx context.Context, msg channels.OutgoingEmail) error {
	deadline, _ := ctx.Deadline()
	conn, err := (&net.Dialer{Deadline: deadline}).DialContext(ctx, "tcp", m.cfg.SMTPAddr)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	_ = conn.SetDeadline(deadline)
	var c *smtp.Client
	if m.cfg.StartTLS {
		host, _, _ := net.SplitHostPort(m.cfg.SMTPAddr)
		if c, err = smtp.NewClientStartTLS(conn, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			_ = conn.Close()
			return err
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	timeout := time.Until(deadline)
	c.CommandTimeout, c.SubmissionTimeout = timeout, timeout
	if m.cfg.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", m.cfg.Username, m.cfg.Password)); err != nil {
			return err
		}
	}
	if err := c.SendMail(msg.From, []string{msg.To}, bytes.NewReader(msg.Message)); err != nil {
		return err
	}
	return c.Quit()
}
