package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"
)

// ShortRun is the measured period under which the report warns that
// compaction debt may not show yet (DESIGN "Measured on these machines").
const ShortRun = 60 * time.Second

// Run runs the ingest workload against cfg.Target through the public
// protocol only: it opens cfg.Connections WebSockets to /v1/channels/ws,
// sends events for customers c-0..c-(Customers-1) for Warmup+Duration,
// waits up to 5 s for outstanding acks and reads the server's /metrics at
// the start and the end of the measured period. It then drives the server
// again at each of cfg.DeeperWindows for min(Duration, 20s), and with
// cfg.Ceilings measures, one after the other and never during a server
// run, the store ceiling (persistence's group-commit append path under
// DataDir) and the NATS JetStream peer (cfg.Peer) as long as the server
// ran, and a bare in-process WebSocket echo for min(Duration, 20s). Each is
// a Row in the same shape, with the server's rate divided by its own.
//
// Run fails when the config is invalid, a connection cannot be opened, or
// ctx ends. A problem that leaves the main figures standing (a failed
// scrape, a failed row, lost events) is a warning in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Target == "" {
		return nil, errors.New("bench: target: required")
	}
	wsURL, metricsURL, err := targetURLs(cfg.Target)
	if err != nil {
		return nil, err
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	r := newReport(&cfg, nonce)

	httpClient := newHTTPClient(scrapeTimeout)
	var before, after scrapedMetrics
	var beforeErr, afterErr error
	dc := driveConfig{
		cfg:            cfg,
		wsURL:          wsURL,
		nonce:          nonce,
		drain:          drainTimeout,
		atMeasureStart: func() { before, beforeErr = scrape(ctx, httpClient, metricsURL) },
		atMeasureEnd:   func() { after, afterErr = scrape(ctx, httpClient, metricsURL) },
	}
	res, err := drive(ctx, dc, cfg.Token)
	if err != nil {
		return nil, err
	}
	r.addDrive(res)
	r.addServerMetrics(before, beforeErr, after, afterErr)
	if cfg.Duration < ShortRun {
		r.warn("measured for %v, under %v: compaction debt may not show yet", cfg.Duration, ShortRun)
	}
	for _, w := range cfg.DeeperWindows {
		if err := r.addDeeperWindow(ctx, &cfg, wsURL, nonce, w); err != nil {
			return nil, err
		}
	}
	if cfg.Ceilings {
		if cfg.Rate > 0 {
			r.warn("the server ran open loop at %d events/s; the store ceiling, the peer and the echo run closed loop, at max rate", cfg.Rate)
		}
		if err := r.addCeilings(ctx, &cfg, nonce); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// newNonce returns 8 random hex digits: the run's part of every event id,
// so a rerun against the same data directory is not deduplicated.
func newNonce() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("bench: nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func newReport(cfg *Config, nonce string) *Report {
	return &Report{
		Config: ReportConfig{
			Target:      cfg.Target,
			Connections: cfg.Connections,
			Customers:   cfg.Customers,
			Duration:    cfg.Duration.String(),
			Warmup:      cfg.Warmup.String(),
			Rate:        cfg.Rate,
			Window:      cfg.Window,
			Deeper:      cfg.DeeperWindows,
			BatchSize:   cfg.BatchSize,
			EventBytes:  cfg.EventBytes,
			Ceilings:    cfg.Ceilings,
		},
		RunNonce: nonce,
		Errors:   map[string]int64{},
	}
}

func (r *Report) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// addDrive takes the server run's counts.
func (r *Report) addDrive(res *driveResult) {
	r.Sent, r.Acked, r.Duplicates, r.Failed = res.sent, res.acked, res.duplicates, res.failed
	r.Lost, r.Unmatched, r.Malformed = res.lost, res.unmatched, res.malformed
	r.Errors = res.errors
	r.MeasuredSeconds = res.measured.Seconds()
	r.MeasuredAcked = res.measuredAcked
	r.EventsPerSecond = float64(res.measuredAcked) / res.measured.Seconds()
	r.AckLatency = newLatency(res.latency)
	r.Minutes = res.minutes
	if res.connectionErrors > 0 {
		r.warn("%d connection errors, the first: %v", res.connectionErrors, res.firstConnectionError)
	}
	if res.lost > 0 {
		r.warn("%d events sent were not answered within %v of the end", res.lost, drainTimeout)
	}
	if res.unmatched > 0 || res.malformed > 0 {
		r.warn("%d answers named no event in flight and %d server frames were not JSON", res.unmatched, res.malformed)
	}
}

// addServerMetrics takes the memory at the end and the stalls over the
// measured period.
func (r *Report) addServerMetrics(before scrapedMetrics, beforeErr error, after scrapedMetrics, afterErr error) {
	if afterErr != nil {
		r.warn("no server metrics at the end: %v", afterErr)
		return
	}
	if v, ok := after[metricRSS]; ok {
		r.ServerMemory.RSSBytes = ptr(int64(v))
	} else {
		r.warn("the server does not expose %s", metricRSS)
	}
	if v, ok := after[metricHeapInuse]; ok {
		r.ServerMemory.HeapInuseBytes = ptr(int64(v))
	} else {
		r.warn("the server does not expose %s", metricHeapInuse)
	}
	if beforeErr != nil {
		r.warn("no server metrics at the start of the measured period: %v", beforeErr)
		return
	}
	count, okCount := diff(before, after, metricStalls)
	seconds, okSeconds := diff(before, after, metricStallSeconds)
	if !okCount || !okSeconds {
		r.warn("the server does not expose %s and %s", metricStalls, metricStallSeconds)
		return
	}
	r.WriteStalls.Count = ptr(int64(count))
	r.WriteStalls.Seconds = ptr(seconds)
}

func diff(before, after scrapedMetrics, name string) (float64, bool) {
	b, okBefore := before[name]
	a, okAfter := after[name]
	return a - b, okBefore && okAfter
}

func ptr[T any](v T) *T { return &v }

// addDeeperWindow drives the server again with window events in flight
// per connection, for min(Duration, 20s) after a warmup of at most 5 s: the
// throughput a client that keeps more in flight than a real gateway buys,
// and the latency it pays for it.
func (r *Report) addDeeperWindow(ctx context.Context, cfg *Config, wsURL, nonce string, window int) error {
	dc := *cfg
	dc.Window = window
	dc.Duration = min(cfg.Duration, CeilingDurationMax)
	dc.Warmup = min(cfg.Warmup, 5*time.Second)
	res, err := drive(ctx, driveConfig{cfg: dc, wsURL: wsURL, nonce: nonce + "w" + strconv.Itoa(window), drain: drainTimeout}, cfg.Token)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	name := "server, window " + strconv.Itoa(window)
	if err != nil {
		r.warn("%s: %v", name, err)
		return nil
	}
	row := r.rowOfDrive(name, &dc, res)
	if res.connectionErrors > 0 {
		row.Note = fmt.Sprintf("%d connection errors, the first: %v", res.connectionErrors, res.firstConnectionError)
	}
	r.Rows = append(r.Rows, row)
	return nil
}

// rowOfDrive is the row of a WebSocket drive.
func (r *Report) rowOfDrive(name string, cfg *Config, res *driveResult) Row {
	eps := float64(res.measuredAcked) / res.measured.Seconds()
	return Row{
		Name: name, Connections: cfg.Connections, Window: cfg.Window,
		Measured: Measured{
			Seconds: res.measured.Seconds(), Events: res.measuredAcked, EventsPerSecond: eps,
			AckLatency: newLatency(res.latency), Minutes: res.minutes,
		},
		Failed: res.failed, Lost: res.lost,
		Ratio: ratio(r.EventsPerSecond, eps),
	}
}

// rowOfWindowed is the row of a windowed load.
func (r *Report) rowOfWindowed(name string, wc WindowedConfig, res *WindowedResult) Row {
	row := Row{
		Name: name, Connections: wc.Connections, Window: wc.Window, Measured: res.Measured,
		Failed: res.Failed, Lost: res.Lost, Ratio: ratio(r.EventsPerSecond, res.EventsPerSecond),
	}
	if res.FirstError != "" {
		row.Note = "first error: " + res.FirstError
	}
	return row
}

// addCeilings measures, one after the other, the store ceiling and the
// NATS JetStream peer for as long as the server ran, then the WebSocket
// echo for min(Duration, 20s). One that fails is a warning; only ctx
// ending is an error.
func (r *Report) addCeilings(ctx context.Context, cfg *Config, nonce string) error {
	wc := cfg.Windowed(nonce + "s")
	runtime.GC()
	store, err := runStoreCeiling(ctx, wc, cfg.dataDir())
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.warn("store ceiling: %v", err)
	} else {
		row := r.rowOfWindowed("store ceiling: persistence group commit, 1 event per append", wc, store.WindowedResult)
		st := store.stats
		if st.Commits > 0 {
			row.Note = fmt.Sprintf("%.0f events per commit (max %d), commit+sync mean %v, %d write stalls (%v)",
				float64(st.Events)/float64(st.Commits), st.BatchEventsMax, (st.SyncTotal / time.Duration(st.Commits)).Round(time.Microsecond),
				st.WriteStalls, st.WriteStallTime.Round(time.Millisecond))
		}
		r.Rows = append(r.Rows, row)
	}

	if cfg.Peer == "" {
		r.warn("no NATS JetStream peer: its command was not found (make bench builds bin/throughline-peer)")
	} else {
		runtime.GC()
		wc := cfg.Windowed(nonce + "n")
		peer, err := RunPeer(ctx, cfg.Peer, wc, cfg.dataDir())
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			r.warn("NATS JetStream peer: %v", err)
		} else {
			row := r.rowOfWindowed(PeerRowName, wc, peer)
			if row.Note == "" {
				row.Note = PeerNote
			}
			r.Rows = append(r.Rows, row)
		}
	}

	runtime.GC()
	echo, err := r.runEchoCeiling(ctx, cfg, nonce, min(cfg.Duration, CeilingDurationMax))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.warn("websocket echo ceiling: %v", err)
	} else {
		r.Rows = append(r.Rows, *echo)
	}
	return nil
}

// runEchoCeiling drives an in-process echo with the server run's
// connections, customers, window and frames, at max rate, for d after a
// warmup of at most 5 s.
func (r *Report) runEchoCeiling(ctx context.Context, cfg *Config, nonce string, d time.Duration) (*Row, error) {
	echo, err := startEcho()
	if err != nil {
		return nil, err
	}
	defer echo.Close()
	wsURL, _, err := targetURLs(echo.URL)
	if err != nil {
		return nil, err
	}
	ec := *cfg
	ec.Rate = 0
	ec.Duration = d
	ec.Warmup = min(cfg.Warmup, 5*time.Second)
	res, err := drive(ctx, driveConfig{cfg: ec, wsURL: wsURL, nonce: nonce + "e", drain: drainTimeout}, "")
	if err != nil {
		return nil, err
	}
	if res.connectionErrors > 0 {
		return nil, fmt.Errorf("%d connection errors, the first: %w", res.connectionErrors, res.firstConnectionError)
	}
	row := r.rowOfDrive("WebSocket echo in the bench process (JSON parse + ack, nothing stored)", &ec, res)
	return &row, nil
}

func ratio(server, ceiling float64) float64 {
	if ceiling <= 0 {
		return 0
	}
	return server / ceiling
}
