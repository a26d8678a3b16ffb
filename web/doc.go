// Package web is the browser app of PROTOCOL section 10: the agent desk and
// the supervisor's dashboard (live queues and agents, any customer's
// journey, broadcasts, analytics). It is static files only, embedded in the
// binary with go:embed and served by the gateway at / (web.enabled: false
// turns it off).
//
// The files are plain JavaScript modules, CSS and one HTML page: no build
// step, no framework, no request leaves the node (the gateway sends a
// Content-Security-Policy that forbids any). The app speaks only the public
// contract: the HTTP API of section 3 and the agent WebSocket of section 4.
//
// The package imports nothing of the project and has no goroutines.
package web
