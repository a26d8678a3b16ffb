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

// benchAgents measures routing and agent desks: escalation to offer, and
// an assigned customer's inbound event to the agent's screen (DESIGN
// "Performance").
func benchAgents(args []string) int {
	cfg := bench.DefaultAgents()
	fs := flag.NewFlagSet("bench agents", flag.ContinueOnError)
	fs.StringVar(&cfg.Target, "target", "", "base URL of a running server configured as the bench states (default: start one)")
	fs.StringVar(&cfg.Token, "token", "", "channel token for --target")
	fs.StringVar(&cfg.DeskTokenPrefix, "desk-token-prefix", cfg.DeskTokenPrefix, "agent a000's desk token is this prefix + a000, for --target")
	fs.IntVar(&cfg.Agents, "agents", cfg.Agents, "agent desks connected and available (a000, a001, ...)")
	fs.IntVar(&cfg.AgentCapacity, "capacity", cfg.AgentCapacity, "each agent's capacity")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "escalations/s in total, open loop, each a new customer")
	fs.IntVar(&cfg.EventsRate, "events-rate", cfg.EventsRate, "events/s in total sent to assigned customers")
	fs.DurationVar(&cfg.EventGap, "event-gap", cfg.EventGap, "time from the accept to a conversation's first event, and between its events")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "channel WebSocket connections")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured period")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "period before measuring")
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
		tokens, sections := cfg.ServerSections()
		srv, err := startBenchServer(ctx, "", tokens, func(string) (string, error) { return sections, nil })
		if err != nil {
			fmt.Fprintln(os.Stderr, "throughline bench:", err)
			return 1
		}
		defer srv.stop(*keep)
		cfg.Target, cfg.Token = srv.url, benchToken
		shown = abridgeAgents(srv.config, &cfg, tokens, sections)
		fmt.Fprintf(os.Stderr, "bench: started a server at %s (directory %s; %d agents, no ai section)\n", srv.url, srv.dir, cfg.Agents)
	}
	report, err := bench.RunAgents(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 1
	}
	report.ServerConfig = shown
	return printReport(report, *asJSON)
}

// abridgeAgents shows a started server's config with the agents' tokens
// and the agents list each as their first line and a comment.
func abridgeAgents(config string, cfg *bench.AgentsConfig, tokens, sections string) string {
	first := func(s string) string { return s[:strings.IndexByte(s, '\n')+1] }
	agents, _, _ := strings.Cut(sections, "queues:\n")
	agents = strings.TrimPrefix(agents, "agents:\n")
	if cfg.Agents > 1 {
		last := bench.AgentID(cfg.Agents - 1)
		config = strings.Replace(config, tokens, first(tokens)+fmt.Sprintf("    # ... and so on up to %s (%d agent tokens)\n", last, cfg.Agents), 1)
		config = strings.Replace(config, agents, first(agents)+fmt.Sprintf("  # ... and so on up to %s (%d agents)\n", last, cfg.Agents), 1)
	}
	return config
}
