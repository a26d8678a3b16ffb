package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BroadcastConfig is one `throughline bench broadcast` run: a segment of
// Customers customers, one broadcast to it, and live ingest to other
// customers measured before and during the broadcast. Start from
// DefaultBroadcast(); RunBroadcast uses the fields as given after
// Validate. cmd/ only binds flags.
type BroadcastConfig struct {
	// Target is the server's base URL. Required.
	Target string
	// Token is a channel-role token (the segment, the opt-outs, the live
	// ingest, the sms gateway). Default "".
	Token string
	// SupervisorToken posts and polls the broadcast. Default "".
	SupervisorToken string
	// Customers is the segment: each gets one payment.attempted with its
	// own phone, so the broadcast targets it. Default 100,000;
	// 1..BroadcastCustomersMax.
	Customers int
	// OptOutPercent of the segment (customer i when i % 100 is under it)
	// has its profile's consent for sms set to false, so the broadcast
	// suppresses it with no_consent; the others leave consent unset,
	// which counts as consent unless the server's
	// governance.require_consent is true. Default 5; 0..100.
	OptOutPercent int
	// SeedBatch is the events per batch frame of the segment. Default
	// 1000; 1..BatchSizeMax.
	SeedBatch int
	// Rate is the server's broadcasts.rate, in targets per second: a
	// server the command starts is configured with it (ServerSection);
	// with --target it is what the server is said to run with, and the
	// bar is judged against it. Default 10,000; 1..BroadcastRateMax.
	Rate int
	// IngestRate is the live ingest in events per second, single-event
	// frames, open loop (latency from each event's scheduled time), to
	// IngestCustomers customers outside the segment. Default 5,000;
	// 1..RateMax.
	IngestRate int
	// Connections carry the live ingest and, before it, the segment.
	// Default 16; 1..ConnectionsMax.
	Connections int
	// Window is the most live events in flight on one connection.
	// Default 64; 1..WindowMax.
	Window int
	// IngestCustomers are the live ingest's customers. Default 1000;
	// Connections..CustomersMax.
	IngestCustomers int
	// Warmup runs the live ingest before the baseline, unmeasured (it
	// creates the live customers). Default 5s; 0..DurationMax.
	Warmup time.Duration
	// Baseline is the live ingest measured before the broadcast, on the
	// same connections at the same rate. Default 20s; 1s..DurationMax.
	Baseline time.Duration
	// Timeout bounds the wait for the broadcast to be done; past it the
	// broadcast is cancelled and the report says so. Default 5m;
	// 1s..DurationMax.
	Timeout time.Duration
}

// Limits of a broadcast run.
const (
	// BroadcastCustomersMax bounds BroadcastConfig.Customers: a segment
	// customer's phone number carries its index in segmentPhoneDigits.
	BroadcastCustomersMax = 1_000_000
	// BroadcastRateMax bounds BroadcastConfig.Rate.
	BroadcastRateMax = 1_000_000
	// broadcastEvent is the segment's event type.
	broadcastEvent = "payment.attempted"
	// broadcastWithin is the segment's window.
	broadcastWithin = "1h"
	// broadcastChannel is where the segment is reached: its customers
	// have a phone and nothing else.
	broadcastChannel = "sms"
	// broadcastText is the broadcast's message.
	broadcastText = "We know about the payment problem; a fix is expected within 2 hours. Reply YES for a callback."
	// broadcastPoll is how often the broadcast's state is read: the
	// resolution of the time to done.
	broadcastPoll = 50 * time.Millisecond
	// broadcastMemoryEvery is how often server memory is read while the
	// broadcast runs, for its peak.
	broadcastMemoryEvery = time.Second
	// optOutParallel bounds the profile patches in flight.
	optOutParallel = 32
	// seedTimeout bounds the segment's creation.
	seedTimeout = 10 * time.Minute
	// outboundWaitMax bounds the wait, after done, for the outbounds of
	// the sent messages still on their way to the sms gateway; the wait
	// also ends after drainTimeout without a new one.
	outboundWaitMax = 30 * time.Second
	// httpBodyMax bounds a broadcast answer read.
	httpBodyMax = 1 << 20
)

// The bars of the issue: 100,000 targets reached at 10,000/s ("about
// 10 s") with ingest ack p99 at most 2x its value without the broadcast.
// "About" is taken as at least BarBroadcastRateShare of the rate.
const (
	BarBroadcastRateShare = 0.9
	BarIngestP99Ratio     = 2.0
)

// DefaultBroadcast is the run (Target still to be set).
func DefaultBroadcast() BroadcastConfig {
	return BroadcastConfig{
		Customers: 100_000, OptOutPercent: 5, SeedBatch: 1000, Rate: 10_000,
		IngestRate: 5000, Connections: 16, Window: 64, IngestCustomers: 1000,
		Warmup: 5 * time.Second, Baseline: 20 * time.Second, Timeout: 5 * time.Minute,
	}
}

// Validate lists every problem.
func (c *BroadcastConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("bench: "+format, args...)) }
	if _, _, err := targetURLs(c.Target); err != nil {
		bad("target: %v", err)
	}
	for name, tok := range map[string]string{"token": c.Token, "supervisor token": c.SupervisorToken} {
		if strings.ContainsFunc(tok, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
			bad("%s: must be printable characters without spaces", name)
		}
	}
	if c.Customers < 1 || c.Customers > BroadcastCustomersMax {
		bad("customers %d: must be 1..%d", c.Customers, BroadcastCustomersMax)
	}
	if c.OptOutPercent < 0 || c.OptOutPercent > 100 {
		bad("opt-out %d%%: must be 0..100", c.OptOutPercent)
	}
	if c.SeedBatch < 1 || c.SeedBatch > BatchSizeMax {
		bad("seed batch %d: must be 1..%d", c.SeedBatch, BatchSizeMax)
	}
	if c.Rate < 1 || c.Rate > BroadcastRateMax {
		bad("rate %d: must be 1..%d targets/s", c.Rate, BroadcastRateMax)
	}
	if c.IngestRate < 1 || c.IngestRate > RateMax {
		bad("ingest rate %d: must be 1..%d events/s", c.IngestRate, RateMax)
	}
	if c.Connections < 1 || c.Connections > ConnectionsMax {
		bad("connections %d: must be 1..%d", c.Connections, ConnectionsMax)
	} else if c.Customers < c.Connections {
		bad("customers %d: must be at least connections (%d): every connection sends its share of the segment", c.Customers, c.Connections)
	}
	if c.Window < 1 || c.Window > WindowMax {
		bad("window %d: must be 1..%d", c.Window, WindowMax)
	}
	if c.IngestCustomers < max(1, c.Connections) || c.IngestCustomers > CustomersMax {
		bad("ingest customers %d: must be connections (%d)..%d", c.IngestCustomers, c.Connections, CustomersMax)
	}
	if c.Warmup < 0 || c.Warmup > DurationMax {
		bad("warmup %v: must be 0..%v", c.Warmup, DurationMax)
	}
	if c.Baseline < time.Second || c.Baseline > DurationMax {
		bad("baseline %v: must be 1s..%v", c.Baseline, DurationMax)
	}
	if c.Timeout < time.Second || c.Timeout > DurationMax {
		bad("timeout %v: must be 1s..%v", c.Timeout, DurationMax)
	}
	return errors.Join(errs...)
}

// ServerSection is the top-level config section a server started for the
// run needs: its broadcasts.rate.
func (c *BroadcastConfig) ServerSection() string {
	return fmt.Sprintf("broadcasts: {rate: %d}\n", c.Rate)
}

// broadcastStatus is GET /v1/broadcasts/{id} (PROTOCOL section 3).
type broadcastStatus struct {
	ID                string           `json:"id"`
	State             string           `json:"state"`
	Targeted          int64            `json:"targeted"`
	Sent              int64            `json:"sent"`
	Held              int64            `json:"held"`
	Suppressed        map[string]int64 `json:"suppressed"`
	CallbacksAccepted int64            `json:"callbacks_accepted"`
}

// broadcastPhases are the live ingest's latency phases: the baseline is
// what was scheduled from the warmup's end until the broadcast was posted,
// during what was scheduled from then until it was seen done.
const (
	phaseBaseline = iota
	phaseDuring
	phaseCount
)

// broadcastRun is the state of one run shared by its steps.
type broadcastRun struct {
	cfg                  *BroadcastConfig
	base, metricsURL, ws string
	http                 *http.Client
	nonce, segmentPrefix string
	phoneDigits          string
	bcStart, bcEnd       atomic.Int64 // the live drive's clock: the broadcast posted, seen done
	report               *BroadcastReport
}

// RunBroadcast runs the broadcast workload against cfg.Target:
//  1. it connects a channel gateway that says hello for sms and answers
//     every outbound with accepted, counting them;
//  2. it creates the segment: one payment.attempted with a phone identity
//     per customer, in batch frames over Connections WebSockets, closed
//     loop, every answer awaited; then sets OptOutPercent of them to no
//     sms consent with profile patches;
//  3. it starts the live ingest (the ingest workload's client, single
//     events, open loop at IngestRate, Window in flight per connection)
//     to IngestCustomers other customers; after Warmup and Baseline it
//     posts the broadcast and polls GET /v1/broadcasts/{id} every 50 ms
//     until it is done, reading server memory every second; then the
//     ingest stops;
//  4. it waits for the outbounds of the sent messages (up to 30 s, or
//     5 s without a new one).
//
// The live ingest's ack latency is split by when each event was
// scheduled: before the broadcast (the baseline) and during it.
//
// It fails when the config is invalid, a connection cannot be opened, the
// broadcast is not accepted (a server without broadcasts answers 404), or
// ctx ends; the rest is counted or warned about in the report.
func RunBroadcast(ctx context.Context, cfg BroadcastConfig) (*BroadcastReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	wsURL, metricsURL, err := targetURLs(cfg.Target)
	if err != nil {
		return nil, err
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	n, _ := strconv.ParseUint(nonce, 16, 64)
	run := &broadcastRun{
		cfg: &cfg, base: strings.TrimSuffix(metricsURL, "/metrics"), metricsURL: metricsURL, ws: wsURL,
		http:          newHTTPClient(scrapeTimeout),
		nonce:         nonce,
		segmentPrefix: "bc-" + nonce + "-",
		// A number of the run's own: a phone that belongs to an earlier
		// run's customer would stay there (PROTOCOL section 1).
		phoneDigits: fmt.Sprintf("+1%06d", n%1_000_000),
		report:      newBroadcastReport(&cfg, nonce),
	}
	run.bcStart.Store(math.MaxInt64)
	run.bcEnd.Store(math.MaxInt64)

	gw, err := dialOutboundGateway(ctx, wsURL, cfg.Token, run.segmentPrefix)
	if err != nil {
		return nil, err
	}
	defer gw.close()

	if err := run.seed(ctx); err != nil {
		return nil, err
	}
	if err := run.optOut(ctx); err != nil {
		return nil, err
	}
	var status *broadcastStatus
	var bcErr error
	res, err := drive(ctx, run.liveDrive(func(ctx context.Context, clk *clock) {
		status, bcErr = run.broadcast(ctx, clk, gw)
	}), cfg.Token)
	if err != nil {
		return nil, err
	}
	if bcErr != nil {
		return nil, bcErr
	}
	run.report.addLive(res)
	run.report.addStatus(status)
	waitOutbounds(ctx, gw, status.Sent)
	gw.close()
	run.report.addOutbounds(gw.snapshot(), gw.readErr, gw.writeErr)
	run.report.judge(&cfg)
	return run.report, nil
}

// seed creates the segment and reports how fast.
func (run *broadcastRun) seed(ctx context.Context) error {
	cfg := run.cfg
	dc := driveConfig{
		cfg: Config{
			Connections: cfg.Connections, Customers: cfg.Customers, BatchSize: cfg.SeedBatch,
			Window: 2 * cfg.SeedBatch, EventBytes: 1,
		},
		wsURL: run.ws, nonce: run.nonce + "s",
		segment: &segmentShape{CustomerPrefix: run.segmentPrefix, PhonePrefix: run.phoneDigits, Type: broadcastEvent},
	}
	res, err := seedSegment(ctx, dc, cfg.Token, seedTimeout)
	if err != nil {
		return err
	}
	run.report.addSeed(res)
	return nil
}

// seedSegment sends every connection's segment events, closed loop, and
// waits for every answer (until timeout).
func seedSegment(ctx context.Context, dc driveConfig, token string, timeout time.Duration) (*driveResult, error) {
	clk := &clock{}
	hist := newLatencyRecorder()
	clients, err := dialAll(ctx, dc, token, clk, hist)
	if err != nil {
		return nil, err
	}
	clk.base = time.Now()
	clk.sendEnd = math.MaxInt64
	stop := make(chan struct{})
	var writers, readers sync.WaitGroup
	for _, c := range clients {
		readers.Go(c.read)
		writers.Go(func() { c.write(stop, 0, 0) })
	}
	waitDrained(ctx, clients, clk.base.Add(timeout))
	elapsed := time.Since(clk.base)
	close(stop)
	closeAll(clients)
	writers.Wait()
	readers.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return collect(clients, hist, elapsed), nil
}

// optedOut says whether segment customer i opts out of sms.
func (c *BroadcastConfig) optedOut(i int) bool { return i%100 < c.OptOutPercent }

// optOut sets the opted-out customers' sms consent to false.
func (run *broadcastRun) optOut(ctx context.Context) error {
	cfg := run.cfg
	start := time.Now()
	next := make(chan int)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range optOutParallel {
		wg.Go(func() {
			for i := range next {
				err := run.request(ctx, http.MethodPatch, "/v1/customers/"+run.segmentPrefix+strconv.Itoa(i)+"/profile",
					cfg.Token, []byte(`{"consent":{"`+broadcastChannel+`":false}}`), http.StatusOK, nil)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	for i := range cfg.Customers {
		if !cfg.optedOut(i) {
			continue
		}
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s := &run.report.Segment
	s.OptedOut, s.OptOutsFailed, s.OptOutSeconds = ok.Load(), failed.Load(), time.Since(start).Seconds()
	if err, _ := firstErr.Load().(error); err != nil {
		run.report.warn("%d opt-out profile patches failed, the first: %v", failed.Load(), err)
	}
	return nil
}

// liveDrive is the live ingest: the ingest workload's drive, with its
// latencies split into the baseline and the broadcast, ending when during
// returns.
func (run *broadcastRun) liveDrive(during func(ctx context.Context, clk *clock)) driveConfig {
	cfg := run.cfg
	return driveConfig{
		cfg: Config{
			Connections: cfg.Connections, Customers: cfg.IngestCustomers, Rate: cfg.IngestRate,
			Window: cfg.Window, EventBytes: Default().EventBytes, Warmup: cfg.Warmup,
		},
		wsURL: run.ws, nonce: run.nonce + "l", drain: drainTimeout,
		until:  during,
		phases: phaseCount,
		phaseOf: func(scheduled int64) int {
			switch {
			case scheduled >= run.bcEnd.Load():
				return -1
			case scheduled >= run.bcStart.Load():
				return phaseDuring
			}
			return phaseBaseline
		},
		customerPrefix: "bl-" + run.nonce + "-",
	}
}

// broadcast runs the baseline, then posts the broadcast and polls it until
// it is done (or Timeout, when it is cancelled), reading server memory
// before, every second while it runs, and when done.
func (run *broadcastRun) broadcast(ctx context.Context, clk *clock, gw *outboundGateway) (*broadcastStatus, error) {
	cfg, r := run.cfg, run.report
	if !sleepUntil(ctx, clk, clk.warmupEnd) {
		return nil, ctx.Err()
	}
	start := run.readServer(ctx)
	if !sleepUntil(ctx, clk, clk.warmupEnd+int64(cfg.Baseline)) {
		return nil, ctx.Err()
	}
	before := run.readServer(ctx)
	r.Memory.Before = before.Memory
	peak := r.Memory.Before
	r.GCCycles.Baseline = cyclesBetween(start.cycles, before.cycles)
	r.ServerCPU.Baseline = coresBetween(start, before)

	body, err := json.Marshal(map[string]any{
		"segment":        map[string]string{"event": broadcastEvent, "within": broadcastWithin},
		"message":        map[string]string{"text": broadcastText},
		"callback_offer": true,
	})
	if err != nil {
		return nil, err
	}
	run.bcStart.Store(clk.now())
	posted := time.Now()
	var created struct {
		ID string `json:"id"`
	}
	if err := run.request(ctx, http.MethodPost, "/v1/broadcasts", cfg.SupervisorToken, body, http.StatusAccepted, &created); err != nil {
		return nil, err
	}
	accepted := time.Now()
	gw.markStart(accepted)
	if created.ID == "" {
		return nil, errors.New("bench: POST /v1/broadcasts: 202 without an id")
	}
	r.Broadcast.ID = created.ID
	r.Broadcast.AcceptSeconds = accepted.Sub(posted).Seconds()

	path := "/v1/broadcasts/" + created.ID
	var st broadcastStatus
	ticker := time.NewTicker(broadcastPoll)
	defer ticker.Stop()
	lastMemory := accepted
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ticker.C:
		}
		st = broadcastStatus{}
		err := run.request(ctx, http.MethodGet, path, cfg.SupervisorToken, nil, http.StatusOK, &st)
		r.Broadcast.Polls++
		if err != nil {
			r.Broadcast.PollsFailed++
			if r.Broadcast.PollsFailed == 1 {
				r.warn("polling the broadcast: %v", err)
			}
		}
		if err == nil && st.State != "running" {
			break
		}
		if time.Since(accepted) > cfg.Timeout {
			r.warn("the broadcast was not done after %v: cancelled; its counts are those at the cancel", cfg.Timeout)
			if err := run.request(ctx, http.MethodDelete, path, cfg.SupervisorToken, nil, http.StatusNoContent, nil); err != nil {
				r.warn("cancelling the broadcast: %v", err)
			}
			st = broadcastStatus{}
			if err := run.request(ctx, http.MethodGet, path, cfg.SupervisorToken, nil, http.StatusOK, &st); err != nil {
				return nil, err
			}
			break
		}
		if time.Since(lastMemory) >= broadcastMemoryEvery {
			lastMemory = time.Now()
			peak = peakMemory(peak, run.readServer(ctx).Memory)
		}
	}
	run.bcEnd.Store(clk.now())
	r.Broadcast.DoneSeconds = time.Since(accepted).Seconds()
	done := run.readServer(ctx)
	r.Memory.After = done.Memory
	r.Memory.Peak = peakMemory(peak, r.Memory.After)
	r.GCCycles.During = cyclesBetween(before.cycles, done.cycles)
	r.ServerCPU.During = coresBetween(before, done)
	if d, base := r.ServerCPU.During, r.ServerCPU.Baseline; d != nil && base != nil && st.Targeted > 0 {
		// The broadcast's own share: the CPU above the baseline's.
		added := (*d - *base) * done.at.Sub(before.at).Seconds()
		r.ServerCPU.MicrosPerTarget = ptr(added / float64(st.Targeted) * 1e6)
	}
	return &st, nil
}

// coresBetween is the server's CPU time from a to b over the time between
// the reads: the cores it kept busy (nil when either was not read).
func coresBetween(a, b serverReading) *float64 {
	if a.cpu == nil || b.cpu == nil || !b.at.After(a.at) {
		return nil
	}
	return ptr((*b.cpu - *a.cpu) / b.at.Sub(a.at).Seconds())
}

// cyclesBetween is b - a, or nil when either was not read.
func cyclesBetween(a, b *int64) *int64 {
	if a == nil || b == nil {
		return nil
	}
	return ptr(*b - *a)
}

// request sends an HTTP request with a bearer token and JSON body (nil:
// none), wants the status, and decodes the answer into out (nil: ignored).
func (run *broadcastRun) request(ctx context.Context, method, path, token string, body []byte, want int, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, run.base+path, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := run.http.Do(req)
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, httpBodyMax))
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("bench: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("bench: %s %s: %w", method, path, err)
		}
	}
	return nil
}

// serverReading is one scrape of the server: its memory, the collections
// it has completed and the CPU seconds it has used (nil: not read).
type serverReading struct {
	Memory
	cycles *int64
	cpu    *float64
	at     time.Time
}

// readServer reads, in one scrape, the server's RSS and Go heap in use, how
// many collections it has completed and its CPU time; a failed read is a
// warning, once.
func (run *broadcastRun) readServer(ctx context.Context) serverReading {
	at := time.Now()
	m, err := scrape(ctx, run.http, run.metricsURL)
	if err != nil {
		run.report.warnOnce("memory", "server memory: %v", err)
		return serverReading{at: at}
	}
	out := memoryOf(m)
	if out.RSSBytes == nil || out.HeapInuseBytes == nil {
		run.report.warnOnce("memory", "the server does not expose %s and %s", metricRSS, metricHeapInuse)
	}
	read := serverReading{Memory: out, at: at}
	if v, ok := m[metricGCCycles]; ok {
		read.cycles = ptr(int64(v))
	}
	if v, ok := m[metricCPUSeconds]; ok {
		read.cpu = ptr(v)
	}
	return read
}

// peakMemory is the larger of each figure.
func peakMemory(a, b Memory) Memory {
	larger := func(x, y *int64) *int64 {
		if x == nil || (y != nil && *y > *x) {
			return y
		}
		return x
	}
	return Memory{RSSBytes: larger(a.RSSBytes, b.RSSBytes), HeapInuseBytes: larger(a.HeapInuseBytes, b.HeapInuseBytes)}
}

// waitOutbounds waits until the gateway has had sent outbounds,
// drainTimeout passes without a new one, outboundWaitMax passes
// or ctx ends.
func waitOutbounds(ctx context.Context, gw *outboundGateway, sent int64) {
	deadline := time.Now().Add(outboundWaitMax)
	last, lastChange := int64(-1), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n := gw.uniqueOutbounds()
		if n >= sent {
			return
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > drainTimeout {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(broadcastPoll):
		}
	}
}
