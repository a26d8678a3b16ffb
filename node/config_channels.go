package node

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"time"

	"github.com/throughline/throughline/gateway"
)

// ChannelsConfig is the `channels:` section (PROTOCOL 9): the provider
// adapters. Secrets are named environment variables, never values.
type ChannelsConfig struct {
	Twilio   *TwilioChannel   `yaml:"twilio"`
	WhatsApp *WhatsAppChannel `yaml:"whatsapp"`
	Email    *EmailChannel    `yaml:"email"`
	Webchat  *WebchatChannel  `yaml:"webchat"`
}

// ChannelLimits bound what Throughline asks of a provider; 0 takes the
// default.
type ChannelLimits struct {
	Concurrency int           `yaml:"concurrency"` // requests in flight; default 4
	Rate        float64       `yaml:"rate"`        // requests per second; default 10
	Timeout     time.Duration `yaml:"timeout"`     // one request; default 10s
	RetryMin    time.Duration `yaml:"retry_min"`   // first backoff of a retry; default 1s
	RetryMax    time.Duration `yaml:"retry_max"`   // longest backoff; default 1m
}

// TwilioChannel is channels.twilio.
type TwilioChannel struct {
	AccountSID   string        `yaml:"account_sid"`
	AuthTokenEnv string        `yaml:"auth_token_env"`
	From         string        `yaml:"from"`
	PublicURL    string        `yaml:"public_url"`
	APIBase      string        `yaml:"api_base"`
	Limits       ChannelLimits `yaml:",inline"`
}

// WhatsAppChannel is channels.whatsapp.
type WhatsAppChannel struct {
	PhoneNumberID  string        `yaml:"phone_number_id"`
	VerifyTokenEnv string        `yaml:"verify_token_env"`
	AppSecretEnv   string        `yaml:"app_secret_env"`
	AccessTokenEnv string        `yaml:"access_token_env"`
	APIBase        string        `yaml:"api_base"`
	Limits         ChannelLimits `yaml:",inline"`
}

// EmailChannel is channels.email.
type EmailChannel struct {
	From string `yaml:"from"`
	SMTP struct {
		Addr        string `yaml:"addr"`
		UsernameEnv string `yaml:"username_env"`
		PasswordEnv string `yaml:"password_env"`
		StartTLS    bool   `yaml:"starttls"`
	} `yaml:"smtp"`
	Limits ChannelLimits `yaml:",inline"`
}

// WebchatChannel is channels.webchat.
type WebchatChannel struct {
	VisitorSecretEnv string        `yaml:"visitor_secret_env"`
	AllowedOrigins   []string      `yaml:"allowed_origins"`
	TokenTTL         time.Duration `yaml:"token_ttl"` // default 24h
}

// validateChannels lists every problem of the section, including a named
// environment variable that is unset.
func (c *Config) validateChannels() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	env := func(key, name string, required bool) {
		switch {
		case name == "" && required:
			add("channels.%s: required (the name of an environment variable)", key)
		case name != "" && os.Getenv(name) == "":
			add("channels.%s: environment variable %s is not set", key, name)
		}
	}
	limits := func(p string, l ChannelLimits) {
		if l.Concurrency < 0 || l.Concurrency > 1000 {
			add("channels.%s.concurrency: %d is not in 1..1000", p, l.Concurrency)
		}
		if l.Rate < 0 || l.Rate > 100_000 {
			add("channels.%s.rate: %v is not in 0..100000", p, l.Rate)
		}
		if l.Timeout < 0 || l.Timeout > 5*time.Minute {
			add("channels.%s.timeout: %s is not within 0..5m", p, l.Timeout)
		}
	}
	baseURL := func(key, v string, required bool) {
		if v == "" {
			if required {
				add("channels.%s: required", key)
			}
			return
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("channels.%s: %q is not an http(s) URL", key, v)
		}
	}
	ch := c.Channels
	if t := ch.Twilio; t != nil {
		if t.AccountSID == "" {
			add("channels.twilio.account_sid: required")
		}
		if t.From == "" {
			add("channels.twilio.from: required")
		}
		env("twilio.auth_token_env", t.AuthTokenEnv, true)
		baseURL("twilio.public_url", t.PublicURL, true)
		baseURL("twilio.api_base", t.APIBase, false)
		limits("twilio", t.Limits)
	}
	if w := ch.WhatsApp; w != nil {
		if w.PhoneNumberID == "" {
			add("channels.whatsapp.phone_number_id: required")
		}
		env("whatsapp.verify_token_env", w.VerifyTokenEnv, true)
		env("whatsapp.app_secret_env", w.AppSecretEnv, true)
		env("whatsapp.access_token_env", w.AccessTokenEnv, true)
		baseURL("whatsapp.api_base", w.APIBase, false)
		limits("whatsapp", w.Limits)
	}
	if e := ch.Email; e != nil {
		if _, err := mail.ParseAddress(e.From); err != nil {
			add("channels.email.from: %q is not an address", e.From)
		}
		if _, _, err := net.SplitHostPort(e.SMTP.Addr); err != nil {
			add("channels.email.smtp.addr: %q is not host:port", e.SMTP.Addr)
		}
		env("email.smtp.username_env", e.SMTP.UsernameEnv, false)
		env("email.smtp.password_env", e.SMTP.PasswordEnv, false)
		if (e.SMTP.UsernameEnv == "") != (e.SMTP.PasswordEnv == "") {
			add("channels.email.smtp: username_env and password_env go together")
		}
		limits("email", e.Limits)
	}
	if w := ch.Webchat; w != nil {
		env("webchat.visitor_secret_env", w.VisitorSecretEnv, true)
		if len(w.AllowedOrigins) == 0 {
			add("channels.webchat.allowed_origins: at least one origin")
		}
		for i, o := range w.AllowedOrigins {
			if u, err := url.Parse(o); err != nil || u.Host == "" || u.Path != "" {
				add("channels.webchat.allowed_origins[%d]: %q is not an origin (scheme://host[:port])", i, o)
			}
		}
		if w.TokenTTL < 0 {
			add("channels.webchat.token_ttl: %s is negative", w.TokenTTL)
		}
	}
	return errs
}

// gatewayChannels reads the secrets from the environment into the
// gateway's configuration.
func (c *Config) gatewayChannels() gateway.ChannelsConfig {
	var g gateway.ChannelsConfig
	lim := func(l ChannelLimits) gateway.ProviderLimits {
		return gateway.ProviderLimits{Concurrency: l.Concurrency, Rate: l.Rate, Timeout: l.Timeout, RetryMin: l.RetryMin, RetryMax: l.RetryMax}
	}
	ch := c.Channels
	if t := ch.Twilio; t != nil {
		g.Twilio = &gateway.TwilioConfig{AccountSID: t.AccountSID, AuthToken: os.Getenv(t.AuthTokenEnv), From: t.From,
			PublicURL: t.PublicURL, APIBase: t.APIBase, Limits: lim(t.Limits)}
	}
	if w := ch.WhatsApp; w != nil {
		g.WhatsApp = &gateway.WhatsAppConfig{PhoneNumberID: w.PhoneNumberID, VerifyToken: os.Getenv(w.VerifyTokenEnv),
			AppSecret: os.Getenv(w.AppSecretEnv), AccessToken: os.Getenv(w.AccessTokenEnv), APIBase: w.APIBase, Limits: lim(w.Limits)}
	}
	if e := ch.Email; e != nil {
		g.Email = &gateway.EmailConfig{From: e.From, SMTPAddr: e.SMTP.Addr, Username: os.Getenv(e.SMTP.UsernameEnv),
			Password: os.Getenv(e.SMTP.PasswordEnv), StartTLS: e.SMTP.StartTLS, Limits: lim(e.Limits)}
	}
	if w := ch.Webchat; w != nil {
		g.Webchat = &gateway.WebchatConfig{Secret: []byte(os.Getenv(w.VisitorSecretEnv)), AllowedOrigins: w.AllowedOrigins, TokenTTL: w.TokenTTL}
	}
	if c.demoWebchatSecret != nil {
		g.Webchat = &gateway.WebchatConfig{Secret: c.demoWebchatSecret, AllowedOrigins: demoOrigins(c.Node.HTTP)}
		g.DemoShop = true
	}
	return g
}

// demoOrigins are the origins a browser on the demo's address sends.
func demoOrigins(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	out := []string{"http://" + addr}
	if host == "127.0.0.1" || host == "0.0.0.0" || host == "::1" || host == "" {
		out = append(out, "http://localhost:"+port, "http://127.0.0.1:"+port)
	}
	return out
}
