package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/cluster"
	"github.com/throughline/throughline/gateway"
	"github.com/throughline/throughline/persistence"
)

// Node is one running Throughline server: its store, actors and gateway.
// Start builds one from a Config; Stop shuts it down in order. A program
// may run several in one process (each with its own data dir and
// addresses), as tests and benches do.
type Node struct {
	cfg      Config
	logger   *slog.Logger
	engine   persistence.Engine
	cluster  *clusterNode // nil: a cluster of one
	rt       *actors.Runtime
	gw       *gateway.Server
	httpCert *certHolder // node.tls; nil: plain HTTP
	serveErr chan error

	stopOnce sync.Once
	stopErr  error
}

// Start opens the node's store, starts its actors and its gateway, and
// serves HTTP until Stop. cfg must be valid (Validate); its Logger (nil:
// slog.Default()) receives every subsystem's logs. ctx bounds the start
// only.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		// Scheduling latency and GC pauses: what ack tails are made of on a
		// small machine.
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/latencies:seconds$|^/gc/pauses:seconds$`)},
	)), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	memoryLimit, err := cfg.Node.MemoryLimitBytes()
	if err != nil {
		return nil, fmt.Errorf("node.memory_limit: %w", err)
	}
	opts := persistence.Options{Partitions: cfg.Node.Partitions, Logger: logger, Registerer: reg, FailSyncAfter: cfg.FailSyncAfter, DiskFullAfter: cfg.DiskFullAfter,
		LastSeqsMax: cfg.Node.lastSeqsMax(memoryLimit)}
	if err := os.MkdirAll(cfg.Node.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	engine, err := persistence.Open(cfg.Node.DataDir, opts)
	if err != nil {
		return nil, err
	}
	var cn *clusterNode
	if cfg.Cluster.Enabled() {
		if cn, err = startCluster(ctx, cfg, logger, engine); err != nil {
			_ = engine.Close()
			return nil, err
		}
	}
	n, err := start(cfg, memoryLimit, logger, reg, engine, cn)
	if err != nil {
		if cn != nil {
			_ = cn.close()
		}
		_ = engine.Close()
		return nil, err
	}
	return n, nil
}

// start wires actors and gateway over an open store; memoryLimit is
// node.memory_limit in bytes (Start read it for the store).
func start(cfg Config, memoryLimit int64, logger *slog.Logger, reg *prometheus.Registry, engine persistence.Engine, cn *clusterNode) (*Node, error) {
	activation := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "throughline_customer_activation_seconds",
		Help:    "Time to activate a customer actor: load its snapshot and the events after it.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 1.5, 24),
	})
	reg.MustRegister(activation)
	table, err := cluster.Local(cfg.Node.Name, cfg.Node.Partitions)
	if err != nil {
		return nil, err
	}
	policy, brain, err := cfg.journeyPolicy()
	if err != nil {
		return nil, err
	}
	outbound, desks := gateway.NewOutboundRouter(), gateway.NewDesks()
	queues, agents := cfg.routing()
	acfg := actors.Config{
		IdleTimeout: cfg.Node.IdleTimeout, Logger: logger, Node: cfg.Node.Name, Table: table,
		ObserveActivation: func(d time.Duration) { activation.Observe(d.Seconds()) },
		Policy:            policy, Deliver: outbound.Deliver, DeliverHere: outbound.DeliverIfServed, Desk: desks.Deliver,
		Queues: queues, Agents: agents, DeskGrace: cfg.Node.DeskGrace, BroadcastRate: cfg.Broadcasts.Rate,
		AuditRetention: cfg.Audit.Retention, AuditMax: cfg.Audit.MaxEntries,
	}
	acfg.Memory = actors.MemoryConfig{Limit: memoryLimit}
	acfg.ResidentMax = cfg.Node.ResidentMax(memoryLimit)
	ready := engine.Err
	actorsEngine := engine
	var leave func() error
	if cn != nil {
		leave = cn.leave
		reg.MustRegister(newClusterCollector(cn))
		acfg.Remote, acfg.Cluster, actorsEngine = cfg.Cluster.Remote, cn, cn.repl
		acfg.RemoteTLS = cn.tls
		ready = func() error {
			if err := engine.Err(); err != nil {
				return err
			}
			return cn.ready()
		}
	}
	if brain != nil {
		acfg.Bot = botFunc(brain, reg)
	}
	acfg.OfferResponded = offerResponses(reg)
	rt, err := actors.Start(acfg, actorsEngine)
	if err != nil {
		return nil, err
	}
	if cn != nil {
		cn.attach(rt)
	}
	gcfg := gateway.Config{
		Addr: cfg.Node.HTTP, Tokens: cfg.Auth.gatewayTokens(), AllowedOrigins: cfg.Auth.AllowedOrigins,
		MaxConcurrentRequests: cfg.Node.MaxConcurrentRequests, ConnCredit: cfg.Node.ConnCredit, MaxConnections: cfg.Node.MaxConnections,
		Outbound: outbound, Desks: desks, Channels: cfg.gatewayChannels(), Web: cfg.Web.files(), Leave: leave,
	}
	cfg.Node.gatewayTransport(&gcfg)
	var httpCert *certHolder
	if cfg.Node.TLS != nil {
		if httpCert, err = newCertHolder("node.tls", *cfg.Node.TLS); err != nil {
			_ = rt.Stop(context.Background())
			return nil, err
		}
		gcfg.TLS = serverTLS(httpCert)
	}
	gw, err := gateway.New(gcfg, rt, logger, reg, reg, ready)
	if err == nil {
		err = gw.Listen()
	}
	if err != nil {
		_ = rt.Stop(context.Background())
		return nil, err
	}
	n := &Node{cfg: cfg, logger: logger, engine: engine, cluster: cn, rt: rt, gw: gw, httpCert: httpCert, serveErr: make(chan error, 1)}
	go func() {
		if err := gw.Serve(); err != nil {
			n.serveErr <- err
		}
	}()
	return n, nil
}

// Addr is the address the node's HTTP API listens on.
func (n *Node) Addr() string { return n.gw.Addr() }

// Left is closed once a node that was asked to leave its cluster (POST
// /v1/cluster/leave) holds no replica: it may stop. Never closed on a
// cluster of one.
func (n *Node) Left() <-chan struct{} {
	if n.cluster == nil {
		return nil
	}
	return n.cluster.left
}

// Failed is closed when the node's store has failed: the node then refuses
// writes and should exit (the WAL decides at restart what was stored).
func (n *Node) Failed() <-chan struct{} { return n.engine.Failed() }

// Err is why the store failed, nil while it has not.
func (n *Node) Err() error { return n.engine.Err() }

// ServeErr delivers the error that ended the HTTP server, if it ended
// before Stop.
func (n *Node) ServeErr() <-chan error { return n.serveErr }

// Reload applies the parts of a freshly read configuration that can change
// while the node runs (a SIGHUP re-reads the file): today the auth
// section's tokens. Each part is checked before it is applied; a bad part
// is refused whole, keeps what the node had, and its problems are in the
// error, while the other parts still apply. Every other setting keeps the
// value the node started with.
func (n *Node) Reload(cfg Config) error {
	var errs []error
	if err := n.reloadAuth(cfg.Auth); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// reloadAuth replaces the tokens: the next request sees the new ones and
// every WebSocket of a revoked token is closed. auth.allowed_origins keeps
// its value from the start.
func (n *Node) reloadAuth(auth AuthConfig) error {
	if errs := auth.validate(); len(errs) > 0 {
		return fmt.Errorf("reload: auth (the old tokens stay): %w", errors.Join(errs...))
	}
	if err := n.gw.SetTokens(auth.gatewayTokens()); err != nil {
		return fmt.Errorf("reload: auth (the old tokens stay): %w", err)
	}
	n.logger.Info("reloaded the auth tokens", "tokens", len(auth.Tokens))
	return nil
}

// Stop shuts down in order: stop accepting and answer what is in flight,
// passivate every customer (drain appends, write snapshots), close the
// store. ctx bounds it. Safe to call twice: later calls return the first
// one's result.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		errs := []error{n.gw.Shutdown(ctx), n.rt.Stop(ctx)}
		if n.cluster != nil {
			errs = append(errs, n.cluster.close())
		}
		n.stopErr = errors.Join(append(errs, n.engine.Close())...)
	})
	return n.stopErr
}
