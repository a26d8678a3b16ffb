package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/throughline/throughline/cluster"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/node"
	"github.com/throughline/throughline/persistence"
	"github.com/throughline/throughline/replay"
)

// Limits of throughline replay.
const (
	replayCustomersDefault = 10_000
	replayCustomersMax     = 10_000_000
	replaySamplesMax       = 100
)

// replayArgs are the flags of throughline replay.
type replayArgs struct {
	config, oldConfig, data string
	since                   time.Duration
	customers, samples      int
	json                    bool
}

func replayMain(args []string) int {
	var a replayArgs
	flags := flag.NewFlagSet("replay", flag.ContinueOnError)
	flags.StringVar(&a.config, "config", "", "the new YAML configuration to try (required)")
	flags.StringVar(&a.oldConfig, "old-config", "", "the configuration the journal was recorded under (default: the built-in demo, what serve runs without --config)")
	flags.StringVar(&a.data, "data", "", "the data dir to replay (required; opened read-only: stop the server first)")
	flags.DurationVar(&a.since, "since", 0, "replay only the inputs recorded in this last while, e.g. 24h (default: the whole journal)")
	flags.IntVar(&a.customers, "customers", replayCustomersDefault, "replay at most this many customers")
	flags.IntVar(&a.samples, "samples", replay.SamplesMaxDefault, "sample customers named per change")
	flags.BoolVar(&a.json, "json", false, "print the report as JSON instead of Markdown")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if err := a.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "throughline replay:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := runReplay(ctx, a, time.Now(), logger, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "throughline replay:", err)
		return 1
	}
	return 0
}

// validate lists every problem of the flags in one error.
func (a *replayArgs) validate() error {
	var errs []error
	if a.config == "" {
		errs = append(errs, errors.New("--config: required (the new configuration to try)"))
	}
	if a.data == "" {
		errs = append(errs, errors.New("--data: required (the data dir to replay)"))
	}
	if a.since < 0 {
		errs = append(errs, fmt.Errorf("--since %v: must not be negative", a.since))
	}
	if a.customers < 1 || a.customers > replayCustomersMax {
		errs = append(errs, fmt.Errorf("--customers %d: must be in [1, %d]", a.customers, replayCustomersMax))
	}
	if a.samples < 1 || a.samples > replaySamplesMax {
		errs = append(errs, fmt.Errorf("--samples %d: must be in [1, %d]", a.samples, replaySamplesMax))
	}
	return errors.Join(errs...)
}

// runReplay replays the data dir and writes the report to out. now is the
// end of the --since window.
func runReplay(ctx context.Context, a replayArgs, now time.Time, logger *slog.Logger, out io.Writer) error {
	oldPolicy, err := replayPolicy(a.oldConfig)
	if err != nil {
		return fmt.Errorf("--old-config: %w", err)
	}
	newPolicy, err := replayPolicy(a.config)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	if _, err := os.Stat(filepath.Join(a.data, cluster.DataDirFile)); err == nil {
		return fmt.Errorf("%s is a cluster node's data dir: replay reads a single node's only", a.data)
	}
	reader, err := persistence.OpenReader(a.data, logger)
	if errors.Is(err, persistence.ErrInUse) {
		return fmt.Errorf("the data dir is in use; stop the server or copy it: %w", err)
	}
	if err != nil {
		return err
	}
	defer reader.Close()
	opts := replay.Options{Old: oldPolicy, New: newPolicy, SamplesMax: a.samples}
	if a.since > 0 {
		opts.Since = now.Add(-a.since)
	}
	report, err := replayCustomers(ctx, reader, replay.New(opts), a.customers)
	if err != nil {
		return err
	}
	if a.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	return report.WriteMarkdown(out)
}

// replayPolicy is the policy of a config file; "" is the built-in demo.
func replayPolicy(path string) (*journey.Policy, error) {
	cfg := node.Default()
	if path != "" {
		var err error
		if cfg, err = node.LoadConfig(path); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg.Policy()
}

// replayCustomers streams the customers of the store, one at a time and
// each one's events one at a time, into the replayer, up to max customers.
func replayCustomers(ctx context.Context, reader *persistence.Reader, r *replay.Replayer, max int) (*replay.Report, error) {
	n := 0
	truncated := false
	var failed error
	err := reader.Customers(ctx, func(id string) bool {
		if n == max {
			truncated = true
			return false
		}
		n++
		c := r.Customer(id)
		if err := reader.Events(ctx, id, func(e journey.Event) bool { c.Event(e); return true }); err != nil {
			failed = err
			return false
		}
		if err := c.End(); err != nil {
			failed = err
			return false
		}
		return true
	})
	if err = errors.Join(err, failed); err != nil {
		return nil, err
	}
	report := r.Report()
	report.Truncated = truncated
	return report, nil
}
