// Command throughline-peer is the NATS JetStream peer of `throughline
// bench ingest`: it starts an embedded NATS server with JetStream (file
// store in a temporary directory under -data-dir, every write synced, as
// Throughline acks only what is synced) and drives it with the same
// windowed load the bench drives the server's store with (bench.DriveWindowed:
// the same events, ids, customers, connections and window), then prints
// what it measured as JSON on stdout. It is a separate command so that the
// throughline binary does not link nats-server; make bench builds it as
// bin/throughline-peer, where bench ingest finds it.
//
// Each connection is its own NATS client connection with its own
// JetStream context publishing asynchronously, at most -window acks
// pending; event e goes to subject ev.<customer> with header Nats-Msg-Id
// set to its id, so the stream stores it once within the duplicate
// window, as Throughline stores an event id once.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/throughline/throughline/bench"
)

func main() {
	os.Exit(run())
}

func run() int {
	def := bench.Default()
	wc := def.Windowed("")
	var dataDir string
	dedup := peerDedupWindow
	fs := flag.NewFlagSet("throughline-peer", flag.ContinueOnError)
	fs.IntVar(&wc.Connections, "connections", wc.Connections, "NATS client connections, each publishing its customers' events")
	fs.IntVar(&wc.Customers, "customers", wc.Customers, "customers, spread over the connections as bench ingest spreads them")
	fs.IntVar(&wc.Window, "window", wc.Window, "async publishes with acks pending per connection")
	fs.IntVar(&wc.EventBytes, "event-bytes", wc.EventBytes, "approximate text size of an event")
	fs.DurationVar(&wc.Warmup, "warmup", wc.Warmup, "period before measuring")
	fs.DurationVar(&wc.Duration, "duration", wc.Duration, "measured period")
	fs.StringVar(&wc.Nonce, "nonce", "peer", "the run's part of every event id")
	fs.StringVar(&dataDir, "data-dir", os.TempDir(), "where the JetStream store's temporary directory goes (the server's disk)")
	fs.DurationVar(&dedup, "dedup-window", dedup, "the stream's duplicate window for Nats-Msg-Id")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res, err := measure(ctx, wc, dataDir, dedup)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughline-peer:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "throughline-peer:", err)
		return 1
	}
	return 0
}

// peerDedupWindow is the stream's default duplicate window: PROTOCOL
// section 1's idempotency window for event ids.
const peerDedupWindow = 24 * time.Hour
