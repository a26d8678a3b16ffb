package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/throughline/throughline/channels"
	"github.com/throughline/throughline/journey"
)

// The one route table: every endpoint the server answers is declared here
// once, with how it authenticates and which roles may call it. The mux is
// built from it and nothing else, and the wrapper of each route enforces
// what its row says before the handler runs: the Origin of a WebSocket
// upgrade, the token and its role, the token's rate, and the limit of
// requests in flight. routes_test.go calls every row with every kind of
// caller.

// authKind is how a route authenticates its caller.
type authKind string

const (
	// authNone: anyone (probes, metrics, the web app's files).
	authNone authKind = "none"
	// authToken: a bearer token of one of the route's roles.
	authToken authKind = "token"
	// authSignature: a provider's signature over the request (Twilio,
	// WhatsApp), verified by the handler; a missing or wrong one is 403.
	authSignature authKind = "signature"
	// authVisitor: a web chat visitor token the site's backend obtained,
	// verified by the handler.
	authVisitor authKind = "visitor"
)

// route is one row of the table.
type route struct {
	pattern string // a net/http ServeMux pattern: "GET /v1/queues"
	auth    authKind
	roles   []Role // authToken: who may (an admin may all a supervisor may)
	// assigned: an agent may only for a customer whose conversation is
	// assigned to it; the handler checks, as it must read the customer.
	assigned bool
	// ws: a WebSocket upgrade. Its token may also come in the
	// Sec-WebSocket-Protocol header or the access_token parameter; its
	// Origin is checked (authToken); it takes no request slot, being
	// bounded by the connection limit.
	ws bool
	// auditRefused: a refusal is recorded in the audit log.
	auditRefused bool
	// probe: never refused for load (liveness, readiness, metrics).
	probe bool
	// when: the configuration serves this route (nil: always).
	when    func(*Server) bool
	handler http.HandlerFunc
}

func (s *Server) routeTable() []route {
	anyRole := []Role{RoleChannel, RoleAgent, RoleSupervisor}
	sup := []Role{RoleSupervisor}
	admin := []Role{RoleAdmin}
	twilio := func(s *Server) bool { return s.cfg.Channels.Twilio != nil }
	whatsApp := func(s *Server) bool { return s.cfg.Channels.WhatsApp != nil }
	email := func(s *Server) bool { return s.cfg.Channels.Email != nil }
	webchat := func(s *Server) bool { return s.cfg.Channels.Webchat != nil }
	demoShop := func(s *Server) bool { return s.cfg.Channels.Webchat != nil && s.cfg.Channels.DemoShop }
	web := func(s *Server) bool { return s.cfg.Web != nil }
	p := s.providers // nil unless a provider is configured; then every provider route is off
	return []route{
		{pattern: "GET /v1/channels/ws", auth: authToken, roles: []Role{RoleChannel}, ws: true, handler: s.serveChannelWS},
		{pattern: "GET /v1/agents/ws", auth: authToken, roles: []Role{RoleAgent, RoleSupervisor}, ws: true, handler: s.serveAgentWS},
		{pattern: "POST /v1/events", auth: authToken, roles: []Role{RoleChannel}, handler: s.postEvents},
		{pattern: "GET /v1/whoami", auth: authToken, roles: anyRole, handler: s.getWhoami},
		{pattern: "GET /v1/queues", auth: authToken, roles: sup, handler: s.getQueues},
		{pattern: "GET /v1/agents", auth: authToken, roles: sup, handler: s.getAgents},
		{pattern: "GET /v1/customers", auth: authToken, roles: sup, handler: s.findCustomer},
		{pattern: "GET /v1/customers/{id}", auth: authToken, roles: []Role{RoleAgent, RoleSupervisor}, assigned: true, handler: s.getCustomer},
		{pattern: "GET /v1/customers/{id}/timeline", auth: authToken, roles: []Role{RoleAgent, RoleSupervisor}, assigned: true, handler: s.getTimeline},
		{pattern: "GET /v1/customers/{id}/next-best-action", auth: authToken, roles: []Role{RoleAgent, RoleSupervisor}, assigned: true, handler: s.getNextBestAction},
		{pattern: "PATCH /v1/customers/{id}/profile", auth: authToken, roles: []Role{RoleChannel, RoleSupervisor}, handler: s.patchProfile},
		{pattern: "GET /v1/customers/{id}/export", auth: authToken, roles: admin, auditRefused: true, handler: s.exportCustomer},
		{pattern: "DELETE /v1/customers/{id}", auth: authToken, roles: admin, auditRefused: true, handler: s.deleteCustomer},
		{pattern: "GET /v1/audit", auth: authToken, roles: admin, auditRefused: true, handler: s.getAudit},
		{pattern: "GET /v1/cluster", auth: authToken, roles: sup, handler: s.getCluster},
		{pattern: "POST /v1/cluster/leave", auth: authToken, roles: admin, handler: s.postClusterLeave},
		{pattern: "GET /v1/analytics/journeys", auth: authToken, roles: sup, handler: s.getJourneyAnalytics},
		{pattern: "POST /v1/broadcasts", auth: authToken, roles: sup, handler: s.postBroadcast},
		{pattern: "GET /v1/broadcasts", auth: authToken, roles: sup, handler: s.listBroadcasts},
		{pattern: "GET /v1/broadcasts/{id}", auth: authToken, roles: sup, handler: s.getBroadcast},
		{pattern: "DELETE /v1/broadcasts/{id}", auth: authToken, roles: sup, handler: s.deleteBroadcast},
		{pattern: "POST /v1/broadcasts/{id}/resolve", auth: authToken, roles: sup, handler: s.resolveBroadcast},

		{pattern: "POST " + twilioSMSPath, auth: authSignature, when: twilio, handler: p.postTwilioSMS},
		{pattern: "POST " + twilioStatusPath, auth: authSignature, when: twilio, handler: p.postTwilioStatus},
		{pattern: "POST " + twilioVoicePath, auth: authSignature, when: twilio, handler: p.postTwilioVoice},
		{pattern: "POST " + channels.VoiceGatherPath, auth: authSignature, when: twilio, handler: p.postTwilioGather},
		// The verification handshake is checked by the verify token.
		{pattern: "GET " + whatsAppPath, auth: authSignature, when: whatsApp, handler: p.getWhatsApp},
		{pattern: "POST " + whatsAppPath, auth: authSignature, when: whatsApp, handler: p.postWhatsApp},
		{pattern: "POST " + emailPath, auth: authToken, roles: []Role{RoleChannel}, when: email, handler: p.postEmail},
		{pattern: "POST /v1/webchat/token", auth: authToken, roles: []Role{RoleChannel}, when: webchat, handler: p.issueToken},
		// Its Origin is checked against channels.webchat.allowed_origins.
		{pattern: "GET /v1/webchat/ws", auth: authVisitor, ws: true, when: webchat, handler: p.serveWebchatWS},
		{pattern: "GET /v1/webchat/widget.js", auth: authNone, when: webchat, handler: serveWidget},
		// The built-in demo's shop and its "backend": tokens for any
		// visitor, no authentication.
		{pattern: "GET /demo/shop", auth: authNone, when: demoShop, handler: serveShop},
		{pattern: "POST /demo/shop/token", auth: authNone, when: demoShop, handler: p.issueToken},

		{pattern: "GET /{$}", auth: authNone, when: web, handler: s.serveWebIndex},
		{pattern: "GET /app/", auth: authNone, when: web, handler: s.serveWebAsset},
		{pattern: "GET /healthz", auth: authNone, probe: true, handler: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{pattern: "GET /readyz", auth: authNone, probe: true, handler: s.readyz},
		{pattern: "GET /metrics", auth: authNone, probe: true, handler: promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}).ServeHTTP},
		{pattern: "/", auth: authNone, handler: func(w http.ResponseWriter, r *http.Request) {
			writeError(w, rejectf404("no such endpoint: %s %s", r.Method, r.URL.Path))
		}},
	}
}

// buildMux registers the table's routes the configuration serves, each
// behind its wrapper, and records their patterns.
func (s *Server) buildMux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range s.routeTable() {
		if rt.when != nil && !rt.when(s) {
			continue
		}
		mux.Handle(rt.pattern, s.guard(rt))
		s.patterns = append(s.patterns, rt.pattern)
	}
	return mux
}

type principalKey struct{}

// principalOf is the caller a route of kind authToken authenticated.
func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p
}

// guard enforces a route's row, then calls its handler.
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every answer is what its Content-Type says: a browser must not
		// guess a JSON error or an upload into a script.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !rt.ws && !rt.probe {
			select {
			case s.requests <- struct{}{}:
				defer func() { <-s.requests }()
			default:
				s.metrics.overloaded.Inc()
				w.Header().Set("Retry-After", "1")
				writeError(w, journey.Rejectf(journey.CodeUnavailable, "too many requests in flight (%d); retry later", cap(s.requests)))
				return
			}
		}
		if rt.auth != authToken {
			rt.handler(w, r)
			return
		}
		if rt.ws && !s.originAllowed(r) {
			writeError(w, journey.Rejectf(journey.CodeForbidden, "origin %s is not allowed (auth.allowed_origins)", r.Header.Get("Origin")))
			return
		}
		p, rej := s.auth.Load().authenticate(r, rt.ws, rt.roles...)
		if rej != nil {
			if rt.auditRefused {
				s.audit(r, p, auditRefused, r.Method+" "+r.URL.Path, string(rej.Code))
			}
			writeError(w, rej)
			return
		}
		if wait, rej := p.spend(1); rej != nil {
			s.refuseRate(w, wait, rej)
			return
		}
		rt.handler(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// refuseRate answers a request over its token's rate: 429 rate_limited
// with Retry-After, or the rejection (too_large) when it can never fit.
func (s *Server) refuseRate(w http.ResponseWriter, wait time.Duration, rej *journey.Rejection) {
	s.metrics.rateLimited.Inc()
	if rej.Code == journey.CodeRateLimited {
		w.Header().Set("Retry-After", retryAfter(wait))
	}
	writeError(w, rej)
}

// originAllowed reports whether a WebSocket upgrade may proceed: a client
// that sends no Origin (not a browser), a page of this server (the Origin's
// host is the request's Host), or an origin of auth.allowed_origins. A
// token alone is not enough in a browser: another site's page could use
// one a person signed in with.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host)
}
