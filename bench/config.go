package bench

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Limits on a Config. Everything the workload holds is bounded by one of them.
const (
	// ConnectionsMax bounds Config.Connections.
	ConnectionsMax = 10_000
	// CustomersMax bounds Config.Customers.
	CustomersMax = 10_000_000
	// BatchSizeMax bounds Config.BatchSize (PROTOCOL section 2: a batch frame
	// carries at most 1000 events).
	BatchSizeMax = 1000
	// WindowMax bounds Config.Window.
	WindowMax = 65_536
	// DeeperWindowsMax bounds Config.DeeperWindows.
	DeeperWindowsMax = 8
	// GatewayWindow is the events a real gateway keeps in flight on one
	// connection: the default Window.
	GatewayWindow = 64
	// GatewayWindowFrames is the batch frames a real gateway keeps in
	// flight on one connection: the default Window with batch frames.
	GatewayWindowFrames = 4
	// DurationMax bounds Config.Duration and Config.Warmup.
	DurationMax = 24 * time.Hour
	// RateMax bounds Config.Rate, in events per second.
	RateMax = 10_000_000
	// EventBytesMax bounds Config.EventBytes: the whole event stays under the
	// protocol's 64 KiB.
	EventBytesMax = 60_000
	// FrameBytesMax bounds BatchSize*EventBytes, the size of one batch frame.
	FrameBytesMax = 16 << 20
)

// Config is one `throughline bench ingest` run. Start from Default(); Run uses
// the fields as given (a zero field is not replaced by its default) after
// Validate. cmd/ only binds flags to these fields.
type Config struct {
	// Target is the server's base URL, such as http://127.0.0.1:8080 (https
	// for TLS). The workload dials ws://HOST/v1/channels/ws and scrapes
	// http://HOST/metrics. Required by Run; default "".
	Target string
	// Token is the channel-role bearer token sent on every WebSocket upgrade.
	// Default "" (no Authorization header).
	Token string
	// Connections is the number of WebSocket connections, each with one
	// writer and one reader goroutine. Default 16; 1..ConnectionsMax.
	Connections int
	// Customers is the number of customers, c-0..c-(Customers-1). Customer i
	// always travels on connection i % Connections, so its events keep their
	// order. Default 1000; Connections..CustomersMax.
	Customers int
	// Duration is the measured period, after Warmup. Short runs hide
	// compaction debt. Default 60s; at most DurationMax.
	Duration time.Duration
	// Warmup runs the same load before the measured period and is excluded
	// from the figures. Default 5s; 0..DurationMax.
	Warmup time.Duration
	// Rate is the total offered load in events per second, spread evenly over
	// the connections, open loop: latency counts from each event's scheduled
	// send time, so a slow server cannot hide its queueing (no coordinated
	// omission). 0 means as fast as acks allow (closed loop, Window events in
	// flight per connection). Default 0; 0..RateMax.
	Rate int
	// Window is the most events in flight (sent, not yet answered) on one
	// connection. It paces the closed loop at Rate 0 and bounds memory in
	// rate mode. Default 64, what a real gateway keeps in flight
	// (DefaultWindow: 4 frames with batch frames); 1..WindowMax and at
	// least BatchSize.
	Window int
	// DeeperWindows are windows the server is driven at again, each for
	// min(Duration, 20s) after the main run, reported as extra rows: what
	// keeping more in flight than a gateway does buys and costs. Default
	// [256]; each 1..WindowMax and at least BatchSize; at most
	// DeeperWindowsMax of them.
	DeeperWindows []int
	// BatchSize is the number of events per frame: 0 or 1 sends single
	// `event` frames, N > 1 sends `batch` frames of N events. Default 0;
	// 0..BatchSizeMax.
	BatchSize int
	// EventBytes is the approximate size of an event's text, in bytes.
	// Default 200; 1..EventBytesMax.
	EventBytes int
	// Ceilings runs, after the server run, what its figures are compared
	// with: the store ceiling (persistence's own group-commit append path
	// under DataDir, as long as the server ran), the NATS JetStream peer
	// (when Peer is set, as long as the server ran) and a bare in-process
	// WebSocket echo (min(Duration, 20s)). Default true.
	Ceilings bool
	// Peer is the path of the peer command (bench/cmd/peer, built by make
	// bench as bin/throughline-peer), which runs an embedded NATS JetStream
	// server against the same load. Default "": no peer row (a warning).
	Peer string
	// DataDir is where the Pebble ceiling makes its temporary database; put
	// it on the same disk as the server's data (cmd passes the parent of the
	// server's data directory). Default "": os.TempDir().
	DataDir string
}

// Default returns the default Config (Target still to be set).
func Default() Config {
	return Config{
		Connections:   16,
		Customers:     1000,
		Duration:      60 * time.Second,
		Warmup:        5 * time.Second,
		Window:        GatewayWindow,
		DeeperWindows: []int{256},
		EventBytes:    200,
		Ceilings:      true,
	}
}

// DefaultWindow is the default Window for a batch size: GatewayWindow
// events, or GatewayWindowFrames frames of batch frames.
func DefaultWindow(batch int) int {
	if batch > 1 {
		return GatewayWindowFrames * batch
	}
	return GatewayWindow
}

// Validate reports every problem of the Config in one error (nil when
// valid). An empty Target is allowed here; Run requires it.
func (c *Config) Validate() error {
	var problems []error
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("bench: "+format, args...))
	}
	if c.Target != "" {
		if _, _, err := targetURLs(c.Target); err != nil {
			bad("target: %v", err)
		}
	}
	for _, r := range c.Token {
		if r < 0x21 || r == 0x7f {
			bad("token: must be printable characters without spaces")
			break
		}
	}
	if c.Connections < 1 || c.Connections > ConnectionsMax {
		bad("connections %d: must be 1..%d", c.Connections, ConnectionsMax)
	}
	if c.Customers < 1 || c.Customers > CustomersMax {
		bad("customers %d: must be 1..%d", c.Customers, CustomersMax)
	} else if c.Customers < c.Connections {
		bad("customers %d: must be at least connections (%d): every connection drives its own customers", c.Customers, c.Connections)
	}
	if c.Duration <= 0 || c.Duration > DurationMax {
		bad("duration %v: must be over 0 and at most %v", c.Duration, DurationMax)
	}
	if c.Warmup < 0 || c.Warmup > DurationMax {
		bad("warmup %v: must be 0..%v", c.Warmup, DurationMax)
	}
	if c.Rate < 0 || c.Rate > RateMax {
		bad("rate %d: must be 0 (max rate) ..%d events/s", c.Rate, RateMax)
	}
	if c.BatchSize < 0 || c.BatchSize > BatchSizeMax {
		bad("batch size %d: must be 0..%d", c.BatchSize, BatchSizeMax)
	}
	if c.Window < 1 || c.Window > WindowMax {
		bad("window %d: must be 1..%d", c.Window, WindowMax)
	} else if c.Window < c.BatchSize {
		bad("window %d: must be at least the batch size (%d)", c.Window, c.BatchSize)
	}
	if len(c.DeeperWindows) > DeeperWindowsMax {
		bad("deeper windows: at most %d", DeeperWindowsMax)
	}
	for _, w := range c.DeeperWindows {
		if w < 1 || w > WindowMax || w < c.BatchSize {
			bad("deeper window %d: must be 1..%d and at least the batch size (%d)", w, WindowMax, c.BatchSize)
		}
	}
	if c.EventBytes < 1 || c.EventBytes > EventBytesMax {
		bad("event bytes %d: must be 1..%d", c.EventBytes, EventBytesMax)
	} else if c.BatchSize > 1 && c.BatchSize*c.EventBytes > FrameBytesMax {
		bad("batch size %d x event bytes %d: a frame must stay under %d bytes", c.BatchSize, c.EventBytes, FrameBytesMax)
	}
	return errors.Join(problems...)
}

// batch is the number of events per frame, at least 1.
func (c *Config) batch() int {
	return max(1, c.BatchSize)
}

// dataDir is DataDir or the system's temporary directory.
func (c *Config) dataDir() string {
	if c.DataDir == "" {
		return os.TempDir()
	}
	return c.DataDir
}

// targetURLs derives the WebSocket and metrics URLs from a base URL.
func targetURLs(target string) (wsURL, metricsURL string, err error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", "", err
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("%q has no host", target)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%q: a base URL has no query or fragment", target)
	}
	base := *u
	base.Path = trimSlash(u.Path)
	base.RawPath = ""
	metrics := base
	metrics.Path += "/metrics"
	ws := base
	ws.Path += "/v1/channels/ws"
	switch u.Scheme {
	case "http":
		ws.Scheme = "ws"
	case "https":
		ws.Scheme = "wss"
	default:
		return "", "", fmt.Errorf("%q: scheme must be http or https", target)
	}
	return ws.String(), metrics.String(), nil
}

func trimSlash(p string) string {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}
