package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/throughline/throughline/bench"
)

// benchCluster starts three nodes (and one single node for the same-run
// comparison) as subprocesses of this binary, or drives given ones.
func benchCluster(args []string) int {
	load := bench.Default()
	load.Duration, load.Warmup, load.Window = 20*time.Second, 3*time.Second, 64
	cc := bench.ClusterConfig{Kill: true}
	fs := flag.NewFlagSet("bench cluster", flag.ContinueOnError)
	targets := fs.String("targets", "", "base URLs of a running cluster's nodes, comma-separated (default: start three nodes on loopback); with --targets nothing is killed")
	fs.StringVar(&cc.Token, "token", "", "channel token for --targets")
	fs.StringVar(&cc.ReadToken, "read-token", "", "supervisor token for --targets")
	nodes := fs.Int("nodes", 3, "nodes to start")
	partitions := fs.Int("partitions", 16, "node.partitions of the started nodes")
	single := fs.Bool("single", true, "measure one node without a cluster in the same run first")
	fs.IntVar(&load.Connections, "connections", load.Connections, "channel WebSocket connections, spread over the nodes")
	fs.IntVar(&load.Customers, "customers", load.Customers, "customers driven")
	fs.DurationVar(&load.Duration, "duration", load.Duration, "measured period of each phase")
	fs.DurationVar(&load.Warmup, "warmup", load.Warmup, "period before measuring, each phase")
	fs.IntVar(&load.Window, "window", load.Window, "events in flight per connection")
	fs.IntVar(&load.EventBytes, "event-bytes", load.EventBytes, "approximate text size of an event")
	fs.IntVar(&cc.Batch, "batch", 100, "events per batch frame in the batch phases")
	fs.IntVar(&cc.FailoverRate, "failover-rate", 5000, "events/s, open loop, during the kill")
	fs.BoolVar(&cc.Kill, "kill", true, "kill -9 the node leading the most partitions mid-run (started nodes only)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if !parseBenchFlags(fs, args) {
		return 2
	}
	load.Ceilings = false
	load.Target = "http://127.0.0.1" // validated shape only; the phases dial the nodes
	if err := load.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 2
	}
	if *nodes < 3 || *nodes > 5 {
		fmt.Fprintln(os.Stderr, "throughline bench: --nodes must be 3..5")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *targets != "" {
		for i, u := range strings.Split(*targets, ",") {
			cc.Nodes = append(cc.Nodes, bench.ClusterTarget{Name: fmt.Sprintf("node %d", i+1), URL: u})
		}
		cc.Kill = false
	} else {
		servers, err := startBenchCluster(ctx, *nodes, *partitions)
		for _, s := range servers {
			defer s.stop(false)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "throughline bench:", err)
			return 1
		}
		for i, s := range servers {
			cc.Nodes = append(cc.Nodes, bench.ClusterTarget{Name: fmt.Sprintf("n%d", i+1), URL: s.url, Kill: func() error {
				if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					return err
				}
				err := <-s.done
				s.done <- err
				return nil
			}})
		}
		cc.Token, cc.ReadToken = benchToken, benchReadToken
		fmt.Fprintf(os.Stderr, "bench: started %d nodes (%d partitions, replicas 3, no bot): %s\n", *nodes, *partitions, nodeURLs(cc.Nodes))
		if *single {
			srv, err := startBenchServer(ctx, fmt.Sprintf("  partitions: %d\n", *partitions), "", nil)
			if err != nil {
				fmt.Fprintln(os.Stderr, "throughline bench:", err)
				return 1
			}
			defer srv.stop(false)
			cc.Single = &bench.ClusterTarget{Name: "single", URL: srv.url}
			fmt.Fprintf(os.Stderr, "bench: started one node without a cluster at %s for comparison\n", srv.url)
		}
	}
	cc.Load = load
	report, err := bench.RunCluster(ctx, cc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 1
	}
	return printReport(report, *asJSON)
}

func nodeURLs(ts []bench.ClusterTarget) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name+" "+t.URL)
	}
	return strings.Join(out, ", ")
}

// startBenchCluster launches n nodes of one cluster and waits until each is
// ready (a member, every partition led).
func startBenchCluster(ctx context.Context, n, partitions int) ([]*benchServer, error) {
	var servers []*benchServer
	var first string
	for i := range n {
		gossip, err1 := freeAddr()
		remote, err2 := freeAddr()
		raft, err3 := freeAddr()
		if err := errors.Join(err1, err2, err3); err != nil {
			return servers, err
		}
		if i == 0 {
			first = gossip
		}
		join := ""
		if i > 0 {
			join = fmt.Sprintf("  join: [%q]\n", first)
		}
		section := fmt.Sprintf("cluster:\n  gossip: %q\n  remote: %q\n  raft: %q\n  replicas: 3\n  bootstrap_expect: %d\n%s", gossip, remote, raft, n, join)
		s, err := launchBenchServer(ctx, fmt.Sprintf("  name: n%d\n  partitions: %d\n", i+1, partitions), "",
			func(string) (string, error) { return section, nil }, false)
		if err != nil {
			return servers, err
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		if err := s.waitReady(ctx); err != nil {
			return servers, err
		}
	}
	return servers, nil
}
