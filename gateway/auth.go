package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/throughline/throughline/journey"
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

// Token is one configured bearer token.
type Token struct {
	Token string `yaml:"token"`
	Role  Role   `yaml:"role"`
	Agent string `yaml:"agent,omitempty"` // the agent a token of role agent names
	// Name is how the audit log shows the token (default: its role); never
	// the token itself.
	Name string `yaml:"name,omitempty"`
}

// principal is who made a request.
type principal struct {
	role  Role
	agent string
	name  string // the token's name for the audit log; "" when none
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

type authenticator struct {
	tokens map[string]principal
}

func newAuthenticator(tokens []Token) (*authenticator, error) {
	a := &authenticator{tokens: map[string]principal{}}
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
		if t.Token == "" {
			return nil, fmt.Errorf("auth.tokens[%d]: empty token", i)
		}
		if _, dup := a.tokens[t.Token]; dup {
			return nil, fmt.Errorf("auth.tokens[%d]: token given twice", i)
		}
		a.tokens[t.Token] = principal{role: t.Role, agent: t.Agent, name: t.Name}
	}
	return a, nil
}

// authenticate finds the principal of a request: the bearer token of the
// Authorization header or, when allowQuery (WebSocket upgrades from
// browsers), the access_token query parameter. It returns an unauthorized
// rejection for a missing or unknown token and forbidden when the role is not
// one of roles (with the principal, for the audit log).
func (a *authenticator) authenticate(r *http.Request, allowQuery bool, roles ...Role) (principal, *journey.Rejection) {
	tok := ""
	if h := r.Header.Get("Authorization"); h != "" {
		// The scheme is case-insensitive (RFC 9110 section 11.1).
		if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
			tok = strings.TrimSpace(h[7:])
		}
	} else if allowQuery {
		tok = r.URL.Query().Get("access_token")
	}
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

func (a *authenticator) lookup(tok string) (principal, bool) {
	p, ok := a.tokens[tok]
	return p, ok
}
