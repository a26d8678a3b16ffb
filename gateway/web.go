package gateway

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/throughline/throughline/journey"
)

// The web app (PROTOCOL section 10) and the two small reads it needs beyond
// section 3: who a token is, and which customer an identity belongs to.

// serveWebIndex is GET /: the app's index.html.
func (s *Server) serveWebIndex(w http.ResponseWriter, r *http.Request) {
	webHeaders(w, r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(s.webIndex)
}

// serveWebAsset is GET /app/...: the app's files. A missing one keeps the
// API's JSON 404.
func (s *Server) serveWebAsset(w http.ResponseWriter, r *http.Request) {
	if _, err := fs.Stat(s.cfg.Web, strings.TrimPrefix(r.URL.Path, "/")); err != nil {
		writeError(w, rejectf404("no such file: %s", r.URL.Path))
		return
	}
	webHeaders(w, r)
	s.webAssets.ServeHTTP(w, r)
}

// webHeaders keep the app to its own origin: no script, style, image or
// connection elsewhere (the app works offline and makes no third-party
// request), no framing, no referrer.
func webHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self' ws://"+r.Host+" wss://"+r.Host+"; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

// getWhoami is GET /v1/whoami (an extension of PROTOCOL section 3): the
// role of the request's token and, for an agent, its agent id; any role.
func (s *Server) getWhoami(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	out := map[string]string{"role": string(p.role)}
	if p.agent != "" {
		out["agent"] = p.agent
	}
	writeJSON(w, http.StatusOK, out)
}

// findCustomer is GET /v1/customers?phone=... (or email, whatsapp, web,
// external, any identity kind; exactly one): the customer the identity
// belongs to, 404 when none (an extension of PROTOCOL section 3, for a
// supervisor looking a journey up). It never creates a customer.
func (s *Server) findCustomer(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if len(q) != 1 {
		writeError(w, journey.Rejectf(journey.CodeBadRequest, "name exactly one identity, as ?phone=... or ?email=..."))
		return
	}
	var kind, value string
	for k, v := range q {
		kind, value = k, v[0]
	}
	customer, err := s.rt.LookupIdentity(r.Context(), kind, value)
	switch {
	case err != nil:
		writeError(w, err)
	case customer == "":
		writeError(w, rejectf404("no customer has %s %s", kind, value))
	default:
		writeJSON(w, http.StatusOK, map[string]string{"customer": customer})
	}
}
