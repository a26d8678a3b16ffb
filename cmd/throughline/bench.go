package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/throughline/throughline/bench"
)

// Tokens of a server the bench starts itself.
const (
	benchToken     = "bench-secret"
	benchReadToken = "bench-read-secret"
)

func benchMain(args []string) int {
	if len(args) >= 1 {
		switch args[0] {
		case "ingest":
			return benchIngest(args[1:])
		case "activation":
			return benchActivation(args[1:])
		case "journey":
			return benchJourney(args[1:])
		case "agents":
			return benchAgents(args[1:])
		case "broadcast":
			return benchBroadcast(args[1:])
		case "cluster":
			return benchCluster(args[1:])
		case "memory":
			return benchMemory(args[1:])
		case "idle":
			return benchIdle(args[1:])
		}
	}
	fmt.Fprintln(os.Stderr, "usage: throughline bench ingest|activation|journey|agents|broadcast|cluster|memory|idle [flags]   (-h for the flags)")
	return 2
}

func benchIngest(args []string) int {
	cfg := bench.Default()
	fs := flag.NewFlagSet("bench ingest", flag.ContinueOnError)
	fs.StringVar(&cfg.Target, "target", "", "base URL of a running server (default: start one with a stated config)")
	fs.StringVar(&cfg.Token, "token", "", "channel token for --target")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "channel WebSocket connections")
	fs.IntVar(&cfg.Customers, "customers", cfg.Customers, "customers driven, spread over the connections")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured period (short runs hide compaction debt)")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "period before measuring")
	fs.IntVar(&cfg.Rate, "rate", 0, "events/s in total, open loop (0: max rate, closed loop)")
	fs.IntVar(&cfg.Window, "window", cfg.Window, "events in flight per connection (default: a gateway's, 64 events or 4 batch frames)")
	deeper := fs.String("deeper", "", "deeper windows to drive the server at again, comma separated, each a row (default 256, or 4x the window with --batch; \"none\": none)")
	fs.IntVar(&cfg.BatchSize, "batch", 0, "events per batch frame (0 or 1: single event frames)")
	fs.IntVar(&cfg.EventBytes, "event-bytes", cfg.EventBytes, "approximate text size of an event")
	fs.BoolVar(&cfg.Ceilings, "ceilings", cfg.Ceilings, "measure the store ceiling, the NATS JetStream peer and the WebSocket echo in the same run")
	fs.StringVar(&cfg.Peer, "peer", "", "the peer command (default: "+bench.PeerCommand+" beside this binary or on PATH; \"none\": no peer)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	keep := fs.Bool("keep", false, "keep the started server's data directory")
	if !parseBenchFlags(fs, args) {
		return 2
	}
	if err := windowFlags(fs, &cfg, *deeper); err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.Target == "" {
		srv, err := startBenchServer(ctx, "", "", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "throughline bench:", err)
			return 1
		}
		defer srv.stop(*keep)
		cfg.Target, cfg.Token, cfg.DataDir = srv.url, benchToken, srv.dir
		fmt.Fprintf(os.Stderr, "bench: started a server at %s (data in %s; config: no ai section, so no bot)\n", srv.url, srv.dir)
	}
	report, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 1
	}
	return printReport(report, *asJSON)
}

// windowFlags fills in the windows and the peer the flags left to their
// defaults: a gateway's window for the batch size, deeper windows of 256
// events (4x the window with batch frames), the peer beside this binary.
func windowFlags(fs *flag.FlagSet, cfg *bench.Config, deeper string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["window"] {
		cfg.Window = bench.DefaultWindow(cfg.BatchSize)
	}
	switch {
	case deeper == "none":
		cfg.DeeperWindows = nil
	case deeper != "":
		cfg.DeeperWindows = nil
		for _, w := range strings.Split(deeper, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(w))
			if err != nil {
				return fmt.Errorf("--deeper %q: %w", deeper, err)
			}
			cfg.DeeperWindows = append(cfg.DeeperWindows, n)
		}
	case cfg.BatchSize > 1:
		cfg.DeeperWindows = []int{4 * cfg.Window}
	}
	switch cfg.Peer {
	case "none":
		cfg.Peer = ""
	case "":
		cfg.Peer = bench.FindPeer()
	}
	return cfg.Validate()
}

// markdowner is a report that renders as Markdown.
type markdowner interface{ Markdown(io.Writer) error }

func printReport(report markdowner, asJSON bool) int {
	var err error
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = report.Markdown(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 1
	}
	return 0
}

// benchActivation measures how fast a passivated customer with a long
// history comes back (DESIGN "Performance").
func benchActivation(args []string) int {
	cfg := bench.DefaultActivation()
	fs := flag.NewFlagSet("bench activation", flag.ContinueOnError)
	fs.StringVar(&cfg.Target, "target", "", "base URL of a running server with a short node.idle_timeout (default: start one)")
	fs.StringVar(&cfg.Token, "token", "", "channel token for --target")
	fs.StringVar(&cfg.ReadToken, "read-token", "", "supervisor token for --target")
	fs.IntVar(&cfg.Customers, "customers", cfg.Customers, "customers written, passivated and read")
	fs.IntVar(&cfg.Events, "events", cfg.Events, "events per customer")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if !parseBenchFlags(fs, args) {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Target == "" {
		srv, err := startBenchServer(ctx, "  idle_timeout: 1s\n", "", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "throughline bench:", err)
			return 1
		}
		defer srv.stop(false)
		cfg.Target, cfg.Token, cfg.ReadToken = srv.url, benchToken, benchReadToken
		fmt.Fprintf(os.Stderr, "bench: started a server at %s (node.idle_timeout: 1s)\n", srv.url)
	}
	report, err := bench.RunActivation(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 1
	}
	return printReport(report, *asJSON)
}

// benchServer is a server subprocess of this binary: separate from the
// client so its memory and CPU are its own.
type benchServer struct {
	cmd    *exec.Cmd
	url    string
	dir    string
	config string // as written to dir/config.yaml
	done   chan error
	log    string // path of the server's log
}

// benchConfig is the stated configuration of a started server: defaults,
// one channel token, no ai section (no bot), data in a fresh directory.
const benchConfig = `node:
  data_dir: %q
  http: %q
%sauth:
  tokens:
    - {token: %q, role: channel}
    - {token: %q, role: supervisor}
%s`

// startBenchServer starts a server; nodeExtra adds lines to its node
// section, tokens lines to auth.tokens, and sections, when not nil, returns more top-level sections
// given the server's directory (where it may write files they name).
func startBenchServer(ctx context.Context, nodeExtra, tokens string, sections func(dir string) (string, error)) (*benchServer, error) {
	return launchBenchServer(ctx, nodeExtra, tokens, sections, true)
}

// launchBenchServer is startBenchServer; wait false returns once the
// process runs (nodes of a cluster are ready only together).
func launchBenchServer(ctx context.Context, nodeExtra, tokens string, sections func(dir string) (string, error), wait bool) (*benchServer, error) {
	dir, err := os.MkdirTemp("", "throughline-bench-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	config := fmt.Sprintf(benchConfig, filepath.Join(dir, "data"), addr, nodeExtra, benchToken, benchReadToken, tokens)
	if sections != nil {
		more, err := sections(dir)
		if err != nil {
			return nil, err
		}
		config += more
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &benchServer{cmd: cmd, url: "http://" + addr, dir: dir, config: config, done: make(chan error, 1), log: logFile.Name()}
	go func() { s.done <- cmd.Wait(); logFile.Close() }()
	if !wait {
		return s, nil
	}
	return s, s.waitReady(ctx)
}

// waitReady polls /readyz for 30 s; a server that does not get ready is
// stopped.
func (s *benchServer) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("server exited at start (%v); see %s", err, s.log)
		case <-ctx.Done():
			s.stop(false)
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(true)
			return errors.New("server not ready after 30s; see " + s.log)
		}
	}
}

func (s *benchServer) stop(keep bool) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		s.done <- <-s.done
	}
	if !keep {
		_ = os.RemoveAll(s.dir)
	}
}

// handedOut are the ports freeAddr gave: the kernel may give a closed
// port again at once, and a cluster's nodes need distinct ones.
var handedOut sync.Map

func freeAddr() (string, error) {
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, seen := handedOut.LoadOrStore(addr, true); !seen {
			return addr, nil
		}
	}
}
