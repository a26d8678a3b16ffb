package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/journey"
	"golang.org/x/time/rate"
)

// Role of a token (PROTOCOL section 3).
type Role string

// The roles.
const (
	RoleChannel    Role = "channel"
	RoleAgent      Role = "agent"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
)

// TokenRateMax bounds auth.tokens[].rate (events plus requests a second).
const TokenRateMax = 1_000_000

// Token is one configured bearer token: exactly one of Token (the token in
// clear), TokenSHA256 (the hex SHA-256 of the token) or TokenEnv (the
// environment variable holding it; the node reads it and passes it on in
// Token).
type Token struct {
	Token       string `yaml:"token,omitempty"`
	TokenSHA256 string `yaml:"token_sha256,omitempty"`
	TokenEnv    string `yaml:"token_env,omitempty"`
	Role        Role   `yaml:"role"`
	Agent       string `yaml:"agent,omitempty"` // the agent a token of role agent names
	// Name is how the audit log and the server's log show the token
	// (default: its role); never the token itself.
	Name string `yaml:"name,omitempty"`
	// Rate bounds the events plus requests a second of this token, bursts
	// up to Rate; 0: no limit.
	Rate int `yaml:"rate,omitempty"`
}

// tokenDigest is the SHA-256 of a token: the authenticator keeps and looks
// up only digests, so neither the token in memory nor the time a look-up
// takes tells anything about a token's text.
type tokenDigest [sha256.Size]byte

// digest is the token's digest, from its clear text or its hex SHA-256.
func (t Token) digest() (tokenDigest, error) {
	var d tokenDigest
	switch {
	case t.Token != "" && t.TokenSHA256 != "":
		return d, fmt.Errorf("give one of token, token_sha256 and token_env")
	case t.Token != "":
		return sha256.Sum256([]byte(t.Token)), nil
	case t.TokenSHA256 != "":
		b, err := hex.DecodeString(t.TokenSHA256)
		if err != nil || len(b) != sha256.Size {
			return d, fmt.Errorf("token_sha256 is not 64 hex digits")
		}
		copy(d[:], b)
		return d, nil
	case t.TokenEnv != "":
		return d, fmt.Errorf("token_env %s is empty or unset", t.TokenEnv)
	default:
		return d, fmt.Errorf("one of token, token_sha256 and token_env is required")
	}
}

// principal is who made a request.
type principal struct {
	role  Role
	agent string
	name  string      // the token's name for logs; "" when none
	token tokenDigest // which token: its connections close when it is revoked
	limit *rate.Limiter
}

// auditName is how the audit log shows the principal's token.
func (p principal) auditName() string {
	if p.name != "" {
		return p.name
	}
	return string(p.role)
}

// may reports whether the principal has one of the roles; an admin may do
// all a supervisor may.
func (p principal) may(roles ...Role) bool {
	for _, r := range roles {
		if p.role == r || (r == RoleSupervisor && p.role == RoleAdmin) {
			return true
		}
	}
	return false
}

// authenticator is one immutable token list; a reload builds another.
type authenticator struct {
	tokens map[tokenDigest]principal
}

// newAuthenticator checks and indexes the tokens. old, when not nil, is
// the list being replaced: a token that stays keeps its rate limiter (and
// what it has spent), its limit updated.
func newAuthenticator(tokens []Token, old *authenticator) (*authenticator, error) {
	a := &authenticator{tokens: map[tokenDigest]principal{}}
	for i, t := range tokens {
		switch t.Role {
		case RoleChannel, RoleSupervisor, RoleAdmin:
		case RoleAgent:
			if t.Agent == "" {
				return nil, fmt.Errorf("auth.tokens[%d]: role agent needs agent", i)
			}
		default:
			return nil, fmt.Errorf("auth.tokens[%d]: unknown role %q", i, t.Role)
		}
		if t.Rate < 0 || t.Rate > TokenRateMax {
			return nil, fmt.Errorf("auth.tokens[%d]: rate %d is not in 0..%d", i, t.Rate, TokenRateMax)
		}
		d, err := t.digest()
		if err != nil {
			return nil, fmt.Errorf("auth.tokens[%d]: %w", i, err)
		}
		if _, dup := a.tokens[d]; dup {
			return nil, fmt.Errorf("auth.tokens[%d]: token given twice", i)
		}
		p := principal{role: t.Role, agent: t.Agent, name: t.Name, token: d}
		if old != nil {
			p.limit = old.tokens[d].limit
		}
		// Every token has a limiter (rate.Inf when unlimited): the
		// connections that hold it follow a reload's new rate.
		limit := rate.Inf
		if t.Rate > 0 {
			limit = rate.Limit(t.Rate)
		}
		if p.limit == nil {
			p.limit = rate.NewLimiter(limit, t.Rate)
		} else {
			p.limit.SetLimit(limit)
			p.limit.SetBurst(t.Rate)
		}
		a.tokens[d] = p
	}
	return a, nil
}

// revokedBy reports whether a connection that authenticated as p under
// this list must close under next: its token is gone, or names another
// role or agent.
func revokedBy(p principal, next *authenticator) bool {
	q, ok := next.tokens[p.token]
	return !ok || q.role != p.role || q.agent != p.agent
}

// Subprotocols of the WebSocket endpoints. A browser cannot set an
// Authorization header on a WebSocket: it offers
// Sec-WebSocket-Protocol: throughline.v1, throughline.bearer.<the token in
// unpadded base64url>; the server picks throughline.v1, so the token is
// never echoed back, and never lands in a URL or an access log.
const (
	subprotocol       = "throughline.v1"
	bearerSubprotocol = "throughline.bearer."
)

// presentedToken is the request's token: the bearer token of the
// Authorization header or, when ws (WebSocket upgrades), the bearer
// subprotocol or the access_token query parameter (kept for older
// clients).
func presentedToken(r *http.Request, ws bool) string {
	if h := r.Header.Get("Authorization"); h != "" {
		// The scheme is case-insensitive (RFC 9110 section 11.1).
		if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
			return strings.TrimSpace(h[7:])
		}
		return ""
	}
	if !ws {
		return ""
	}
	for _, p := range websocket.Subprotocols(r) {
		if enc, ok := strings.CutPrefix(p, bearerSubprotocol); ok {
			if b, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
				return string(b)
			}
			return ""
		}
	}
	return r.URL.Query().Get("access_token")
}

// authenticate finds the principal of a request. It returns an
// unauthorized rejection for a missing or unknown token and forbidden when
// the role is not one of roles (with the principal, for the audit log).
func (a *authenticator) authenticate(r *http.Request, ws bool, roles ...Role) (principal, *journey.Rejection) {
	tok := presentedToken(r, ws)
	if tok == "" {
		return principal{}, journey.Rejectf(journey.CodeUnauthorized, "a bearer token is required")
	}
	p, ok := a.lookup(tok)
	if !ok {
		return principal{}, journey.Rejectf(journey.CodeUnauthorized, "unknown token")
	}
	if !p.may(roles...) {
		return p, journey.Rejectf(journey.CodeForbidden, "role %s may not do this", p.role)
	}
	return p, nil
}

// lookup finds a token by its digest: the map compares digests, never the
// token's text, so how long it takes tells nothing about a valid token.
func (a *authenticator) lookup(tok string) (principal, bool) {
	p, ok := a.tokens[sha256.Sum256([]byte(tok))]
	return p, ok
}

// spendEvents takes what a request carrying n events costs beyond the one
// its route took: each event counts one. n over the burst never fits.
func (p principal) spendEvents(n int) (time.Duration, *journey.Rejection) {
	if p.limit == nil || p.limit.Limit() == rate.Inf || n <= 1 {
		return 0, nil
	}
	if b := p.limit.Burst(); n > b {
		return 0, journey.Rejectf(journey.CodeTooLarge, "%d events are over the burst of this token's rate (%d)", n, b)
	}
	return p.spend(n - 1)
}

// spend takes n from the principal's rate limit. It answers nil when there
// was room; else rate_limited with how long to wait, or too_large when n
// is over the token's burst (it never fits).
func (p principal) spend(n int) (time.Duration, *journey.Rejection) {
	if p.limit == nil || p.limit.Limit() == rate.Inf {
		return 0, nil
	}
	now := time.Now()
	res := p.limit.ReserveN(now, n)
	if !res.OK() {
		return 0, journey.Rejectf(journey.CodeTooLarge, "%d events are over the burst of this token's rate (%d)", n, p.limit.Burst())
	}
	wait := res.DelayFrom(now)
	if wait == 0 {
		return 0, nil
	}
	res.CancelAt(now)
	return wait, journey.Rejectf(journey.CodeRateLimited, "over this token's rate of %d a second; retry in %s", p.limit.Burst(), wait.Round(time.Millisecond))
}

// waitSpend takes n from the principal's rate limit, waiting for room, in
// parts of at most the burst (so a batch larger than the burst waits
// longer rather than never fits). It calls paused once, before the first
// wait; it returns false when done closed first.
func (p principal) waitSpend(n int, done <-chan struct{}, paused func(time.Duration)) bool {
	if p.limit == nil {
		return true
	}
	told := false
	// The limit is read at each part: a reload may change it.
	for n > 0 {
		if p.limit.Limit() == rate.Inf {
			return true
		}
		k := min(n, max(1, p.limit.Burst()))
		n -= k
		res := p.limit.ReserveN(time.Now(), k)
		if !res.OK() { // the limit was removed or lowered meanwhile
			continue
		}
		wait := res.Delay()
		if wait == 0 {
			continue
		}
		if !told {
			paused(wait)
			told = true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-done:
			t.Stop()
			res.Cancel()
			return false
		}
	}
	return true
}

// retryAfter is a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return fmt.Sprint(max(1, int64(math.Ceil(d.Seconds()))))
}
