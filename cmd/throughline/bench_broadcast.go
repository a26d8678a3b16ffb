package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/throughline/throughline/bench"
)

// benchBroadcast measures one broadcast to a large segment while live
// ingest runs: the time to reach every target, the send rate, and ingest
// ack latency during the broadcast against just before it (issue 7).
func benchBroadcast(args []string) int {
	cfg := bench.DefaultBroadcast()
	fs := flag.NewFlagSet("bench broadcast", flag.ContinueOnError)
	fs.StringVar(&cfg.Target, "target", "", "base URL of a running server, used as is (default: start one with broadcasts.rate set to --rate)")
	fs.StringVar(&cfg.Token, "token", "", "channel token for --target")
	fs.StringVar(&cfg.SupervisorToken, "supervisor-token", "", "supervisor token for --target (posts and polls the broadcast)")
	fs.IntVar(&cfg.Customers, "customers", cfg.Customers, "customers in the segment, created by the bench (one payment.attempted each, with a phone)")
	fs.IntVar(&cfg.OptOutPercent, "opt-out", cfg.OptOutPercent, "percent of the segment whose sms consent is set to false")
	fs.IntVar(&cfg.SeedBatch, "seed-batch", cfg.SeedBatch, "events per batch frame creating the segment")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "broadcast targets/s: the started server's broadcasts.rate; with --target, what the server runs with (for the bar)")
	fs.IntVar(&cfg.IngestRate, "ingest-rate", cfg.IngestRate, "live ingest events/s in total, open loop, single-event frames")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "channel WebSocket connections of the live ingest (and the segment's creation)")
	fs.IntVar(&cfg.Window, "window", cfg.Window, "live events in flight per connection at most")
	fs.IntVar(&cfg.IngestCustomers, "ingest-customers", cfg.IngestCustomers, "customers of the live ingest, outside the segment")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "live ingest before the baseline, not measured")
	fs.DurationVar(&cfg.Baseline, "baseline", cfg.Baseline, "live ingest measured before the broadcast")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "longest wait for the broadcast to be done (then it is cancelled)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	keep := fs.Bool("keep", false, "keep the started server's directory (config, data, log)")
	if !parseBenchFlags(fs, args) {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var shown string
	if cfg.Target == "" {
		if err := cfg.Validate(); err != nil && !strings.Contains(err.Error(), "target") {
			fmt.Fprintln(os.Stderr, "throughline bench:", err)
			return 2
		}
		section := cfg.ServerSection()
		srv, err := startBenchServer(ctx, "", "", func(string) (string, error) { return section, nil })
		if err != nil {
			fmt.Fprintln(os.Stderr, "throughline bench:", err)
			return 1
		}
		defer srv.stop(*keep)
		cfg.Target, cfg.Token, cfg.SupervisorToken = srv.url, benchToken, benchReadToken
		shown = srv.config
		fmt.Fprintf(os.Stderr, "bench: started a server at %s (directory %s; broadcasts.rate %d, no ai section)\n", srv.url, srv.dir, cfg.Rate)
	}
	report, err := bench.RunBroadcast(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 1
	}
	report.ServerConfig = shown
	return printReport(report, *asJSON)
}
