package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/throughline/throughline/bench"
)

// benchIdle measures what an idle channel WebSocket costs the server's RSS.
func benchIdle(args []string) int {
	cfg := bench.DefaultIdle()
	fs := flag.NewFlagSet("bench idle", flag.ContinueOnError)
	fs.StringVar(&cfg.Target, "target", "", "base URL of a running server (default: start one with a stated config)")
	fs.StringVar(&cfg.Token, "token", "", "channel token for --target")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "idle channel WebSockets opened")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "wait after the last hello before the second reading (a round of the server's pings falls in 35 s)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if !parseBenchFlags(fs, args) {
		return 2
	}
	// A descriptor per connection here and in the server: Go raises a
	// process's open-file limit to its hard limit at start.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Target == "" {
		// The flags first: a bad one is told before a server starts.
		check := cfg
		check.Target, check.Token = "http://127.0.0.1", benchToken
		if err := check.Validate(); err != nil {
			fmt.Fprintln(os.Stderr, "throughline bench:", err)
			return 2
		}
		srv, err := startBenchServer(ctx, "", "", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "throughline bench:", err)
			return 1
		}
		defer srv.stop(false)
		cfg.Target, cfg.Token = srv.url, benchToken
		fmt.Fprintf(os.Stderr, "bench: started a server at %s (the default config)\n", srv.url)
	}
	report, err := bench.RunIdle(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 1
	}
	return printReport(report, *asJSON)
}
