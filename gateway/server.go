package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// Config of the gateway. The zero value of a field means its default.
type Config struct {
	// Addr to listen on. Default 127.0.0.1:8080.
	Addr string
	// Tokens are the bearer tokens and their roles.
	Tokens []Token
	// ConnCredit is how many events one WebSocket may have in flight
	// (received, not yet answered); when spent, the reader stops reading.
	// Default 1024.
	ConnCredit int
	// SendQueue is how many frames may wait for a connection's writer; a
	// client that lets it fill is disconnected. Default 8192.
	SendQueue int
	// Desks routes the runtime's frames for agents to their desks; nil: a
	// router of the server's own.
	Desks *Desks
	// Outbound routes the runtime's outbounds to channel connections; nil:
	// a router of the server's own (outbounds then reach it only if the
	// runtime was given its Deliver).
	Outbound *OutboundRouter
	// MaxConnections is the limit of open WebSockets; past it upgrades are
	// refused with 503. Default 10000.
	MaxConnections int
	// FrameMaxBytes is the largest WebSocket frame read; a larger one closes
	// the connection (1009). Default 16 MiB (a batch of 1000 events).
	FrameMaxBytes int64
	// BodyMaxBytes is the largest HTTP request body. Default 16 MiB.
	BodyMaxBytes int64
	// WriteTimeout bounds one WebSocket write. Default 10s.
	WriteTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers (a slow-loris
	// client is cut off). Default 10s.
	ReadHeaderTimeout time.Duration
	// HeaderMaxBytes bounds a request's headers. Default 64 KiB.
	HeaderMaxBytes int
	// HTTPReadTimeout bounds reading a request's body (not a WebSocket's
	// frames). Default 30s.
	HTTPReadTimeout time.Duration
	// HTTPWriteTimeout bounds answering a request (a streamed export: each
	// of its pages; not a WebSocket). Default 30s.
	HTTPWriteTimeout time.Duration
	// HTTPIdleTimeout closes a keep-alive connection idle this long.
	// Default 120s.
	HTTPIdleTimeout time.Duration
	// WSPingInterval is how often the server pings every WebSocket.
	// Default 30s.
	WSPingInterval time.Duration
	// WSIdleTimeout closes a WebSocket that sent nothing (no frame, no
	// pong) for this long. Default 90s; more than WSPingInterval.
	WSIdleTimeout time.Duration
	// TLS, when set, serves HTTPS and WSS with it (its GetCertificate
	// picks the certificate of each handshake); nil: plain HTTP.
	TLS *tls.Config
	// DrainTimeout bounds how long Shutdown waits for in-flight events to be
	// answered before closing connections. Default 10s.
	DrainTimeout time.Duration
	// Channels configures the provider adapters (PROTOCOL 9); the zero
	// value: none.
	Channels ChannelsConfig
	// Web is the web app served at / (PROTOCOL 10): index.html and the
	// files under app/; nil: none.
	Web fs.FS
	// AllowedOrigins are the origins, besides the server's own, whose
	// pages may open the token WebSockets (agents, channels); a browser's
	// upgrade from another Origin is refused with 403. Clients that send
	// no Origin are not browsers and pass.
	AllowedOrigins []string
	// MaxConcurrentRequests bounds the HTTP requests in flight (WebSockets
	// and the probes /healthz, /readyz, /metrics aside); past it requests
	// answer 503 unavailable. Default 1024.
	MaxConcurrentRequests int
	// Leave starts this node's departure from its cluster (POST
	// /v1/cluster/leave); nil: a cluster of one (409).
	Leave func() error
}

// MaxConcurrentRequestsDefault is Config.MaxConcurrentRequests' default.
const MaxConcurrentRequestsDefault = 1024

func (c *Config) ensureDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.ConnCredit <= 0 {
		c.ConnCredit = 1024
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 8192
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 10000
	}
	if c.FrameMaxBytes <= 0 {
		c.FrameMaxBytes = journey.FrameMaxBytesDefault
	}
	if c.BodyMaxBytes <= 0 {
		c.BodyMaxBytes = journey.BodyMaxBytesDefault
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxConcurrentRequests <= 0 {
		c.MaxConcurrentRequests = MaxConcurrentRequestsDefault
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.HeaderMaxBytes <= 0 {
		c.HeaderMaxBytes = journey.HeaderMaxBytesDefault
	}
	if c.HTTPReadTimeout <= 0 {
		c.HTTPReadTimeout = 30 * time.Second
	}
	if c.HTTPWriteTimeout <= 0 {
		c.HTTPWriteTimeout = 30 * time.Second
	}
	if c.HTTPIdleTimeout <= 0 {
		c.HTTPIdleTimeout = 120 * time.Second
	}
	if c.WSPingInterval <= 0 {
		c.WSPingInterval = 30 * time.Second
	}
	if c.WSIdleTimeout <= 0 {
		c.WSIdleTimeout = 3 * c.WSPingInterval
	}
}

// Server serves the gateway.
type Server struct {
	cfg     Config
	rt      *actors.Runtime
	auth    atomic.Pointer[authenticator] // replaced whole by SetTokens
	log     *slog.Logger
	metrics *metrics
	ready   func() error // nil when ready
	http    *http.Server
	ln      net.Listener

	mu struct {
		sync.Mutex
		closing  bool
		conns    map[drainer]struct{}
		reserved int // upgrades admitted and not yet registered
	}
	wg sync.WaitGroup // every goroutine the server starts

	outbound  *OutboundRouter
	desks     *Desks
	connIDs   uint64     // under mu: the last channel connection id given
	providers *providers // the provider adapters, nil when none is configured

	gatherer  prometheus.Gatherer
	requests  chan struct{}  // a slot per HTTP request in flight (MaxConcurrentRequests)
	patterns  []string       // the route table's patterns the mux serves
	mux       *http.ServeMux // the routes; the server's handler wraps it (withDeadlines)
	webIndex  []byte         // the web app's index.html; nil: no web app
	webAssets http.Handler   // the web app's files
}

// drainer is a WebSocket Shutdown drains and closes, and SetTokens closes
// when its token is revoked.
type drainer interface {
	drainAndClose(ctx context.Context)
	principal() principal
	closeWith(code int, reason string)
}

// tokenRevoked is the close reason of a WebSocket whose token was revoked.
const tokenRevoked = "token revoked"

// SetTokens replaces the token list (a reload): the next request sees the
// new one. Every WebSocket that authenticated with a token no longer
// listed, or listed with another role or agent, is closed with 4001 and
// the reason "token revoked". A token that stays keeps what it spent of
// its rate. A bad list changes nothing.
func (s *Server) SetTokens(tokens []Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := newAuthenticator(tokens, s.auth.Load())
	if err != nil {
		return err
	}
	s.auth.Store(next)
	for c := range s.mu.conns {
		if p := c.principal(); revokedBy(p, next) {
			s.log.Info("token revoked: closing its connection", "token", p.auditName())
			s.metrics.revoked.Inc()
			c.closeWith(CloseTokenRevoked, tokenRevoked)
		}
	}
	return nil
}

// CloseTokenRevoked is the WebSocket close code of a connection whose token
// was revoked (4000-4999: private use, RFC 6455 section 7.4.2).
const CloseTokenRevoked = 4001

// New builds a server. ready reports whether the node can take writes (the
// store has not failed); reg receives the gateway's metrics and is served at
// /metrics through gatherer.
func New(cfg Config, rt *actors.Runtime, logger *slog.Logger, reg prometheus.Registerer, gatherer prometheus.Gatherer, ready func() error) (*Server, error) {
	cfg.ensureDefaults()
	auth, err := newAuthenticator(cfg.Tokens, nil)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, rt: rt, log: logger.With("subsystem", "gateway"), ready: ready, gatherer: gatherer,
		requests: make(chan struct{}, cfg.MaxConcurrentRequests)}
	s.auth.Store(auth)
	s.mu.conns = map[drainer]struct{}{}
	s.outbound = cfg.Outbound
	if s.outbound == nil {
		s.outbound = NewOutboundRouter()
	}
	s.desks = cfg.Desks
	if s.desks == nil {
		s.desks = NewDesks()
	}
	s.metrics = newMetrics(reg)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "throughline_active_customers", Help: "Customer actors in memory.",
	}, func() float64 { return float64(rt.ActiveCustomers.Load()) }))
	registerMemoryMetrics(reg, rt)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "throughline_customer_activations_total", Help: "Customer actor activations.",
	}, func() float64 { return float64(rt.Activations.Load()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "throughline_rule_errors_total", Help: "Rule evaluations that failed (a missing key, a type error); they count as not matching.",
	}, func() float64 { return float64(rt.RuleErrors.Load()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "throughline_analytics_dropped_events_total", Help: "Durable events the analytics queue had no room for; the projection read them back from the store.",
	}, func() float64 { return float64(rt.AnalyticsDropped.Load()) }))

	if c := cfg.Channels; c.Twilio != nil || c.WhatsApp != nil || c.Email != nil || c.Webchat != nil {
		s.providers = newProviders(s, cfg.Channels)
		take := s.providers.take
		s.outbound.taker.Store(&take)
	}
	if cfg.Web != nil {
		index, err := fs.ReadFile(cfg.Web, "index.html")
		if err != nil {
			return nil, fmt.Errorf("gateway: the web app has no index.html: %w", err)
		}
		s.webIndex, s.webAssets = index, http.FileServerFS(cfg.Web)
	}
	s.mux = s.buildMux()
	s.http = &http.Server{
		Handler:           s.withDeadlines(s.mux),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    cfg.HeaderMaxBytes,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Listen binds the address; Addr then tells the bound address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen %s: %w", s.cfg.Addr, err)
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting, lets every WebSocket finish the events it has in
// flight (up to DrainTimeout), closes them, and waits for the server's
// goroutines. http.Server.Shutdown does not close hijacked connections:
// the gateway tracks and closes its own. Safe to call twice.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.mu.closing = true
	conns := make([]drainer, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.http.Shutdown(ctx)
	if s.providers != nil {
		s.providers.stop()
	}
	drain, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
	defer cancel()
	for _, c := range conns {
		c.drainAndClose(drain)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("gateway: shutdown: %w", ctx.Err())
	}
	return err
}

// goTracked starts a goroutine the server waits for at shutdown.
func (s *Server) goTracked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	closing := s.mu.closing
	s.mu.Unlock()
	var err error
	switch {
	case closing || s.rt.Stopping():
		err = errors.New("shutting down")
	case s.ready != nil:
		err = s.ready()
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
		return
	}
	if s.rt.MemoryPressure() {
		// Still ready (reads, receipts, acks go on) but refusing new work.
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "memory": "pressure"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
