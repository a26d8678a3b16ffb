package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/throughline/throughline/bench"
	"github.com/throughline/throughline/node"
)

// benchJourney measures bot turns: inbound message to the bot's outbound
// reply at the channel gateway, with the builtin brain (DESIGN
// "Performance").
func benchJourney(args []string) int {
	cfg := bench.DefaultJourney()
	fs := flag.NewFlagSet("bench journey", flag.ContinueOnError)
	fs.StringVar(&cfg.Target, "target", "", "base URL of a running server with the demo bot (default: start one with a stated config)")
	fs.StringVar(&cfg.Token, "token", "", "channel token for --target")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "bot turns/s in total, open loop")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "channel WebSocket connections, each saying hello for chat")
	fs.IntVar(&cfg.Customers, "customers", cfg.Customers, "customers, spread over the connections, one turn in flight each")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured period")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "period before measuring (creates the customers)")
	fs.StringVar(&cfg.Handover, "handover", cfg.Handover, "the server's hand-over text (ai.handover), for --target")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	keep := fs.Bool("keep", false, "keep the started server's directory (config, data, log)")
	if !parseBenchFlags(fs, args) {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var shown string
	if cfg.Target == "" {
		var intents, abridged string
		srv, err := startBenchServer(ctx, "", "", func(dir string) (string, error) {
			var sections string
			var err error
			sections, intents, abridged, err = journeyBenchSections(dir)
			return sections, err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "throughline bench:", err)
			return 1
		}
		defer srv.stop(*keep)
		cfg.Target, cfg.Token = srv.url, benchToken
		shown = strings.Replace(srv.config, intents, abridged, 1)
		fmt.Fprintf(os.Stderr, "bench: started a server at %s (directory %s; the demo bot, ai.escalate_below %v)\n", srv.url, srv.dir, bench.JourneyEscalateBelow)
	}
	report, err := bench.RunJourney(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 1
	}
	report.ServerConfig = shown
	return printReport(report, *asJSON)
}

// journeyBenchSections writes the demo's knowledge base from the binary
// into dir/kb and returns the demo journey's sections (its bot, rules,
// governance and queues) with ai.escalate_below at
// bench.JourneyEscalateBelow, under which none of the bench's questions
// falls. It also returns the intents as written in them and abridged: the
// report names them instead of listing their examples.
func journeyBenchSections(dir string) (sections, intents, abridged string, err error) {
	kb := filepath.Join(dir, "kb")
	articles, err := writeDemoKnowledge(kb)
	if err != nil {
		return "", "", "", err
	}
	data, err := fs.ReadFile(node.DemoFS, "demo/intents.yaml")
	if err != nil {
		return "", "", "", err
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, "- name: "); ok {
			names = append(names, name)
		}
	}
	intents = indentLines(string(data), "    ")
	abridged = fmt.Sprintf("    # the demo's %d intents, from node/demo/intents.yaml: %s\n", len(names), strings.Join(names, ", "))
	sections = fmt.Sprintf(`ai:
  brain: builtin
  escalate_below: %v   # the demo's is 0.55; the bench's questions score 0.56 to 1.00
  default_queue: general
  intents:
%sknowledge: %q   # the demo's articles: %s
queues:
  - {name: general}
  - {name: billing, skills: [billing]}
  - {name: vip, skills: [vip]}
rules:   # the demo's, without the one that starts a workflow
%sgovernance:
%s`, bench.JourneyEscalateBelow, intents, kb, strings.Join(articles, ", "),
		indentLines(node.DemoRules, "  "), indentLines(node.DemoGovernance, "  "))
	return sections, intents, abridged, nil
}

// writeDemoKnowledge writes the demo's articles into dir and returns their
// file names.
func writeDemoKnowledge(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	names, err := fs.Glob(node.DemoFS, "demo/kb/*.md")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range names {
		data, err := fs.ReadFile(node.DemoFS, name)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), data, 0o644); err != nil {
			return nil, err
		}
		out = append(out, filepath.Base(name))
	}
	return out, nil
}

// indentLines prefixes every non-empty line of s with by; the result has
// no blank first or last line and ends in a newline.
func indentLines(s, by string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
