package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/throughline/throughline/bench"
)

// benchMemory measures the live heap per resident customer (DESIGN
// "Performance": memory per resident customer) in this process.
func benchMemory(args []string) int {
	cfg := bench.DefaultMemory()
	fs := flag.NewFlagSet("bench memory", flag.ContinueOnError)
	customers := fs.String("customers", "1000,100000", "customer counts measured, comma separated, each in a fresh runtime (the documented set: 1000,100000,1000000)")
	fs.IntVar(&cfg.Events, "events", cfg.Events, "events ingested per customer")
	fs.IntVar(&cfg.EventBytes, "event-bytes", cfg.EventBytes, "approximate text size of an event")
	fs.IntVar(&cfg.InFlight, "in-flight", cfg.InFlight, "events handed to the runtime and not answered yet, at most")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "where the store's temporary directory goes (default: the system's temporary directory)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Customers = nil
	for _, s := range strings.Split(*customers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(os.Stderr, "throughline bench: --customers %q: %v\n", *customers, err)
			return 2
		}
		cfg.Customers = append(cfg.Customers, n)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := bench.RunMemory(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return 1
	}
	return printReport(report, *asJSON)
}
