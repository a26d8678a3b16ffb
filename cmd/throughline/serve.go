package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // customers' time zones must not depend on the host's tz database

	"github.com/throughline/throughline/node"
)

// failSyncEnv is a test hook: the binary's fault-injection test sets it to
// make every WAL sync after that many fail (persistence.Options.FailSyncAfter).
const failSyncEnv = "THROUGHLINE_TEST_FAIL_SYNC_AFTER"

// diskFullEnv is a test hook like failSyncEnv: after that many WAL writes
// every WAL and sstable write fails with ENOSPC
// (persistence.Options.DiskFullAfter).
const diskFullEnv = "THROUGHLINE_TEST_DISK_FULL_AFTER"

// pprofEnv, when set to an address (127.0.0.1:6060), serves
// net/http/pprof there: for profiling under the bench, not for production.
const pprofEnv = "THROUGHLINE_PPROF"

// faultsEnv is a test hook: the path of a file naming, one per line, the
// nodes whose raft and remote traffic this node drops (node.Config.FaultsFile).
const faultsEnv = "THROUGHLINE_TEST_FAULTS"

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

// stopTimeout bounds a graceful stop on SIGTERM.
const stopTimeout = 30 * time.Second

func serveMain(args []string) int {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := flags.String("config", "", "YAML configuration file (default: the built-in demo)")
	// Overrides of the config's node and cluster addresses: every node of
	// a cluster runs the same config apart from these (PROTOCOL 8).
	name := flags.String("name", "", "node.name")
	dataDir := flags.String("data", "", "node.data_dir")
	httpAddr := flags.String("http", "", "node.http")
	gossip := flags.String("gossip", "", "cluster.gossip (membership); enables the cluster")
	remote := flags.String("remote", "", "cluster.remote (node-to-node actor messages)")
	raftAddr := flags.String("raft", "", "cluster.raft (replication)")
	join := flags.String("join", "", "cluster.join: members' gossip addresses, comma-separated")
	replicas := flags.Int("replicas", 0, "cluster.replicas")
	expect := flags.Int("bootstrap-expect", 0, "cluster.bootstrap_expect")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := node.Default()
	if *configPath != "" {
		var err error
		if cfg, err = node.LoadConfig(*configPath); err != nil {
			fmt.Fprintln(os.Stderr, "throughline:", err)
			return 2
		}
	}
	for _, o := range []struct {
		flag string
		to   *string
	}{{*name, &cfg.Node.Name}, {*dataDir, &cfg.Node.DataDir}, {*httpAddr, &cfg.Node.HTTP},
		{*gossip, &cfg.Cluster.Gossip}, {*remote, &cfg.Cluster.Remote}, {*raftAddr, &cfg.Cluster.Raft}} {
		if o.flag != "" {
			*o.to = o.flag
		}
	}
	if *join != "" {
		cfg.Cluster.Join = strings.Split(*join, ",")
	}
	if *replicas != 0 {
		cfg.Cluster.Replicas = *replicas
	}
	if *expect != 0 {
		cfg.Cluster.BootstrapExpect = *expect
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "throughline: invalid configuration:\n%v\n", err)
		return 2
	}
	cfg.Logger = logger
	limit, _ := cfg.Node.MemoryLimitBytes() // Validate read it
	setGCPolicy(limit)
	if v := os.Getenv(failSyncEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "throughline: %s=%q: want a positive number\n", failSyncEnv, v)
			return 2
		}
		cfg.FailSyncAfter = n
	}
	if v := os.Getenv(diskFullEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "throughline: %s=%q: want a positive number\n", diskFullEnv, v)
			return 2
		}
		cfg.DiskFullAfter = n
	}
	// A test hook: a file naming the nodes to cut this one off from.
	cfg.FaultsFile = os.Getenv(faultsEnv)
	if *configPath == "" {
		printDemo(cfg)
	}
	if addr := os.Getenv(pprofEnv); addr != "" {
		startPprof(addr, logger)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	// SIGHUP reloads (reload); one that comes during the start waits.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// A cluster node waits for its peers at start: a signal then ends the
	// wait.
	startCtx, cancelStart := context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			logger.Info("stopping before the start completed", "signal", s.String())
			cancelStart()
		case <-started:
		}
	}()
	n, err := node.Start(startCtx, cfg)
	close(started)
	cancelStart()
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline:", err)
		return 1
	}
	if cfg.Cluster.Enabled() {
		logger.Info("serving", "node", cfg.Node.Name, "http", n.Addr(), "gossip", cfg.Cluster.Gossip, "remote", cfg.Cluster.Remote,
			"raft", cfg.Cluster.Raft, "data_dir", cfg.Node.DataDir, "partitions", cfg.Node.Partitions, "replicas", cfg.Cluster.Replicas)
	} else {
		logger.Info("serving", "http", n.Addr(), "data_dir", cfg.Node.DataDir, "partitions", cfg.Node.Partitions,
			"memory_limit_mib", limit>>20, "max_resident_customers", cfg.Node.ResidentMax(limit))
	}

	// stop shuts the node down gracefully: 0 when it stopped cleanly.
	stop := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			logger.Error("stop", "err", err)
			return 1
		}
		logger.Info("stopped")
		return 0
	}
	for {
		select {
		case <-hup:
			reload(n, *configPath, logger)
			// The certificate files are read again whatever the config
			// file's fate: a rotation needs no config change.
			if err := n.ReloadTLS(); err != nil {
				logger.Error("SIGHUP: tls reload failed; keeping the certificates in use", "err", err)
			}
			continue
		case s := <-sig:
			logger.Info("stopping", "signal", s.String())
			return stop()
		case <-n.Left():
			logger.Info("left the cluster; stopping")
			return stop()
		case err := <-n.ServeErr():
			logger.Error("gateway failed", "err", err)
			return 1
		case <-n.Failed():
			// The WAL decides at restart what was stored: never flush or
			// snapshot after a failed commit. Keep refusing for a moment so
			// clients and probes see why, then exit non-zero.
			logger.Error("store failed: refusing writes and exiting", "err", n.Err())
			time.Sleep(failExitDelay)
			return 3
		}
	}
}

// reload re-reads the config file on SIGHUP and applies what can change
// while the node runs (node.Reload); a file that cannot be read or a part
// that is bad is logged and the node keeps what it had.
func reload(n *node.Node, configPath string, logger *slog.Logger) {
	if configPath == "" {
		logger.Warn("SIGHUP: no --config file to reload (the built-in demo)")
		return
	}
	cfg, err := node.LoadConfig(configPath)
	if err == nil {
		err = n.Reload(cfg)
	}
	if err != nil {
		logger.Error("SIGHUP: reload refused; keeping the old configuration", "config", configPath, "err", err)
		return
	}
	logger.Info("SIGHUP: reloaded", "config", configPath)
}

func printDemo(cfg node.Config) {
	fmt.Fprintln(os.Stderr, "throughline: no --config: running the built-in demo configuration")
	fmt.Fprintf(os.Stderr, "  http:     http://%s   data: %s\n", cfg.Node.HTTP, cfg.Node.DataDir)
	fmt.Fprintf(os.Stderr, "  web:      http://%s/ (sign in with alice-secret or sup-secret)   demo shop: http://%s/demo/shop\n", cfg.Node.HTTP, cfg.Node.HTTP)
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
	fmt.Fprintf(os.Stderr, "  bot:      builtin brain, hands over under confidence %.2f to queue %s\n", cfg.AI.EscalateBelow, cfg.AI.DefaultQueue)
	fmt.Fprintf(os.Stderr, "  intents:  %s\n", strings.Join(intents, ", "))
	fmt.Fprintf(os.Stderr, "  articles: %s\n", strings.Join(cfg.DemoArticles(), ", "))
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
