package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // customers' time zones must not depend on the host's tz database

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/cluster"
	"github.com/throughline/throughline/gateway"
	"github.com/throughline/throughline/persistence"
)

// failSyncEnv is a test hook: the binary's fault-injection test sets it to
// make every WAL sync after that many fail (persistence.Options.FailSyncAfter).
const failSyncEnv = "THROUGHLINE_TEST_FAIL_SYNC_AFTER"

// pprofEnv, when set to an address (127.0.0.1:6060), serves
// net/http/pprof there: for profiling under the bench, not for production.
const pprofEnv = "THROUGHLINE_PPROF"

func startPprof(addr string, logger *slog.Logger) {
	go func() {
		// DefaultServeMux carries the handlers net/http/pprof registers.
		err := http.ListenAndServe(addr, http.DefaultServeMux)
		logger.Error("pprof listener", "addr", addr, "err", err)
	}()
}

// failExitDelay is how long a node whose store failed keeps answering
// (unavailable, /readyz 503) before it exits non-zero.
const failExitDelay = time.Second

func serveMain(args []string) int {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := flags.String("config", "", "YAML configuration file (default: the built-in demo)")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := Default()
	if *configPath != "" {
		var err error
		if cfg, err = LoadConfig(*configPath); err != nil {
			fmt.Fprintln(os.Stderr, "throughline:", err)
			return 2
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "throughline: invalid configuration:\n%v\n", err)
		return 2
	}
	if *configPath == "" {
		printDemo(cfg)
	}
	for _, s := range cfg.ignoredSections() {
		logger.Warn("configuration section not acted on by this version", "section", s)
	}
	if addr := os.Getenv(pprofEnv); addr != "" {
		startPprof(addr, logger)
	}
	node, err := startNode(cfg, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline:", err)
		return 1
	}
	logger.Info("serving", "http", node.gw.Addr(), "data_dir", cfg.Node.DataDir, "partitions", cfg.Node.Partitions)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		logger.Info("stopping", "signal", s.String())
		if err := node.stop(30 * time.Second); err != nil {
			logger.Error("stop", "err", err)
			return 1
		}
		logger.Info("stopped")
		return 0
	case err := <-node.serveErr:
		logger.Error("gateway failed", "err", err)
		return 1
	case <-node.engine.Failed():
		// The WAL decides at restart what was stored: never flush or
		// snapshot after a failed commit. Keep refusing for a moment so
		// clients and probes see why, then exit non-zero.
		logger.Error("store failed: refusing writes and exiting", "err", node.engine.Err())
		time.Sleep(failExitDelay)
		return 3
	}
}

// node is one running server: store, actors, gateway.
type node struct {
	engine   persistence.Engine
	rt       *actors.Runtime
	gw       *gateway.Server
	serveErr chan error
}

func startNode(cfg Config, logger *slog.Logger) (*node, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		// Scheduling latency and GC pauses: what ack tails are made of on a
		// small machine.
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/latencies:seconds$|^/gc/pauses:seconds$`)},
	)), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := persistence.Options{Partitions: cfg.Node.Partitions, Logger: logger, Registerer: reg}
	if v := os.Getenv(failSyncEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s=%q: want a positive number", failSyncEnv, v)
		}
		opts.FailSyncAfter = n
	}
	if err := os.MkdirAll(cfg.Node.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	engine, err := persistence.Open(cfg.Node.DataDir, opts)
	if err != nil {
		return nil, err
	}
	activation := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "throughline_customer_activation_seconds",
		Help:    "Time to activate a customer actor: load its snapshot and the events after it.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 1.5, 24),
	})
	reg.MustRegister(activation)
	table, err := cluster.Local(cfg.Node.Name, cfg.Node.Partitions)
	if err != nil {
		_ = engine.Close()
		return nil, err
	}
	policy, brain, err := cfg.journeyPolicy()
	if err != nil {
		_ = engine.Close()
		return nil, err
	}
	outbound, desks := gateway.NewOutboundRouter(), gateway.NewDesks()
	queues, agents := cfg.routing()
	acfg := actors.Config{
		IdleTimeout: cfg.Node.IdleTimeout, Logger: logger, Node: cfg.Node.Name, Table: table,
		ObserveActivation: func(d time.Duration) { activation.Observe(d.Seconds()) },
		Policy:            policy, Deliver: outbound.Deliver, Desk: desks.Deliver,
		Queues: queues, Agents: agents, DeskGrace: cfg.Node.DeskGrace,
	}
	if brain != nil {
		acfg.Bot = botFunc(brain, reg)
	}
	acfg.OfferResponded = offerResponses(reg)
	rt, err := actors.Start(acfg, engine)
	if err != nil {
		_ = engine.Close()
		return nil, err
	}
	gw, err := gateway.New(gateway.Config{
		Addr: cfg.Node.HTTP, Tokens: cfg.Auth.Tokens, ConnCredit: cfg.Node.ConnCredit, MaxConnections: cfg.Node.MaxConnections,
		Outbound: outbound, Desks: desks,
	}, rt, logger, reg, reg, engine.Err)
	if err == nil {
		err = gw.Listen()
	}
	if err != nil {
		_ = rt.Stop(context.Background())
		_ = engine.Close()
		return nil, err
	}
	n := &node{engine: engine, rt: rt, gw: gw, serveErr: make(chan error, 1)}
	go func() {
		if err := gw.Serve(); err != nil {
			n.serveErr <- err
		}
	}()
	return n, nil
}

// stop shuts down in order: stop accepting and answer what is in flight,
// passivate every customer (drain appends, write snapshots), close the store.
func (n *node) stop(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return errors.Join(n.gw.Shutdown(ctx), n.rt.Stop(ctx), n.engine.Close())
}

func printDemo(cfg Config) {
	fmt.Fprintln(os.Stderr, "throughline: no --config: running the built-in demo configuration")
	fmt.Fprintf(os.Stderr, "  http:     http://%s   data: %s\n", cfg.Node.HTTP, cfg.Node.DataDir)
	fmt.Fprintln(os.Stderr, "  tokens:")
	for _, t := range cfg.Auth.Tokens {
		extra := ""
		if t.Agent != "" {
			extra = " (agent " + t.Agent + ")"
		}
		fmt.Fprintf(os.Stderr, "    %-14s %s%s\n", t.Token, t.Role, extra)
	}
	var queues, rules, intents []string
	for _, q := range cfg.Queues {
		queues = append(queues, q.Name)
	}
	for _, r := range cfg.Rules {
		rules = append(rules, r.ID)
	}
	for _, in := range cfg.AI.Intents {
		intents = append(intents, in.Name)
	}
	articles, _ := fs.Glob(cfg.demoKnowledge, "*.md")
	fmt.Fprintf(os.Stderr, "  bot:      builtin brain, hands over under confidence %.2f to queue %s\n", cfg.AI.EscalateBelow, cfg.AI.DefaultQueue)
	fmt.Fprintf(os.Stderr, "  intents:  %s\n", strings.Join(intents, ", "))
	fmt.Fprintf(os.Stderr, "  articles: %s\n", strings.Join(articles, ", "))
	fmt.Fprintf(os.Stderr, "  queues:   %s\n", strings.Join(queues, ", "))
	for _, a := range cfg.Agents {
		fmt.Fprintf(os.Stderr, "  agent:    %s (skills %s, capacity %d): desk at ws://%s/v1/agents/ws\n", a.ID, strings.Join(a.Skills, ", "), a.Capacity.Total, cfg.Node.HTTP)
	}
	fmt.Fprintf(os.Stderr, "  rules:    %s\n", strings.Join(rules, ", "))
	var offers []string
	for _, o := range cfg.Offers {
		offers = append(offers, o.ID)
	}
	fmt.Fprintf(os.Stderr, "  offers:   %s (GET /v1/customers/{id}/next-best-action)\n", strings.Join(offers, ", "))
}
