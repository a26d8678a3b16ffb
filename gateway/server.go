package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/throughline/throughline/actors"
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
	// DrainTimeout bounds how long Shutdown waits for in-flight events to be
	// answered before closing connections. Default 10s.
	DrainTimeout time.Duration
	// Channels configures the provider adapters (PROTOCOL 9); the zero
	// value: none.
	Channels ChannelsConfig
	// Web is the web app served at / (PROTOCOL 10): index.html and the
	// files under app/; nil: none.
	Web fs.FS
	// Leave starts this node's departure from its cluster (POST
	// /v1/cluster/leave); nil: a cluster of one (409).
	Leave func() error
}

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
		c.FrameMaxBytes = 16 << 20
	}
	if c.BodyMaxBytes <= 0 {
		c.BodyMaxBytes = 16 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
}

// Server serves the gateway.
type Server struct {
	cfg     Config
	rt      *actors.Runtime
	auth    *authenticator
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
}

// drainer is a WebSocket Shutdown drains and closes.
type drainer interface{ drainAndClose(ctx context.Context) }

// New builds a server. ready reports whether the node can take writes (the
// store has not failed); reg receives the gateway's metrics and is served at
// /metrics through gatherer.
func New(cfg Config, rt *actors.Runtime, logger *slog.Logger, reg prometheus.Registerer, gatherer prometheus.Gatherer, ready func() error) (*Server, error) {
	cfg.ensureDefaults()
	auth, err := newAuthenticator(cfg.Tokens)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, rt: rt, auth: auth, log: logger.With("subsystem", "gateway"), ready: ready}
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

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/channels/ws", s.serveChannelWS)
	mux.HandleFunc("GET /v1/agents/ws", s.serveAgentWS)
	mux.HandleFunc("GET /v1/queues", s.getQueues)
	mux.HandleFunc("GET /v1/agents", s.getAgents)
	mux.HandleFunc("POST /v1/events", s.postEvents)
	mux.HandleFunc("GET /v1/whoami", s.getWhoami)
	mux.HandleFunc("GET /v1/customers", s.findCustomer)
	mux.HandleFunc("GET /v1/customers/{id}", s.getCustomer)
	mux.HandleFunc("GET /v1/customers/{id}/timeline", s.getTimeline)
	mux.HandleFunc("GET /v1/customers/{id}/next-best-action", s.getNextBestAction)
	mux.HandleFunc("PATCH /v1/customers/{id}/profile", s.patchProfile)
	mux.HandleFunc("GET /v1/customers/{id}/export", s.exportCustomer)
	mux.HandleFunc("DELETE /v1/customers/{id}", s.deleteCustomer)
	mux.HandleFunc("GET /v1/audit", s.getAudit)
	mux.HandleFunc("GET /v1/cluster", s.getCluster)
	mux.HandleFunc("POST /v1/cluster/leave", s.postClusterLeave)
	mux.HandleFunc("GET /v1/analytics/journeys", s.getJourneyAnalytics)
	mux.HandleFunc("POST /v1/broadcasts", s.postBroadcast)
	mux.HandleFunc("GET /v1/broadcasts", s.listBroadcasts)
	mux.HandleFunc("GET /v1/broadcasts/{id}", s.getBroadcast)
	mux.HandleFunc("DELETE /v1/broadcasts/{id}", s.deleteBroadcast)
	mux.HandleFunc("POST /v1/broadcasts/{id}/resolve", s.resolveBroadcast)
	if c := cfg.Channels; c.Twilio != nil || c.WhatsApp != nil || c.Email != nil || c.Webchat != nil {
		s.providers = newProviders(s, cfg.Channels)
		s.providers.mount(mux)
		take := s.providers.take
		s.outbound.taker.Store(&take)
	}
	if cfg.Web != nil {
		s.mountWeb(mux, cfg.Web)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, rejectf404("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	return s, nil
}

// Listen binds the address; Addr then tells the bound address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen %s: %w", s.cfg.Addr, err)
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
