package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gorilla/websocket"
)

// Limits of a drive.
const (
	// drainTimeout is how long the readers wait for outstanding answers
	// after the writers stop; what is still unanswered then is lost.
	drainTimeout = 5 * time.Second
	// dialParallel bounds the connections being opened at once.
	dialParallel = 32
	// handshakeTimeout bounds one WebSocket upgrade.
	handshakeTimeout = 10 * time.Second
	// wsBufferBytes is gorilla's read and write buffer per connection.
	wsBufferBytes = 8 << 10
	// latencyMaxMicros is the histogram's top: 60 s.
	latencyMaxMicros = 60_000_000
)

// driveConfig is one drive: the server run and the echo ceiling use the same
// code with different targets and periods.
type driveConfig struct {
	cfg   Config // Connections, Customers, Window, BatchSize, EventBytes, Rate, Warmup, Duration
	wsURL string
	// wsURLs, when set, spreads the connections over several servers
	// (connection i dials wsURLs[i % len]) in place of wsURL.
	wsURLs []string
	nonce  string
	drain  time.Duration // how long to wait for answers after the writers stop
	// atMeasureStart and atMeasureEnd, when set, run at the end of the
	// warmup and when the writers are told to stop (metric scrapes).
	atMeasureStart, atMeasureEnd func()
	// until, when set, replaces the fixed measured period: it runs after
	// the warmup (and atMeasureStart) with the drive's clock, and the
	// writers stop when it returns. cfg.Duration is then not used.
	until func(ctx context.Context, clk *clock)
	// phases and phaseOf, when set, split the latencies: phaseOf names the
	// phase (0..phases-1, or -1 for none) of an event scheduled in the
	// measured period, and the result has a histogram per phase.
	phases  int
	phaseOf func(scheduled int64) int
	// segment, when set, makes every connection send its customers'
	// segment events, one each, then stop (seedSegment).
	segment *segmentShape
	// customerPrefix, when set, names customer i <customerPrefix><i>
	// instead of c-<i>.
	customerPrefix string
}

// driveResult is what the clients of one drive counted.
type driveResult struct {
	sent, acked, duplicates, failed, lost, unmatched, malformed int64
	measuredAcked                                               int64
	errors                                                      map[string]int64
	latency                                                     *hdrhistogram.Histogram
	phases                                                      []*hdrhistogram.Histogram // a phased drive's, by phase
	seconds                                                     [][]int64                 // a phased drive's p99 of each second, by phase (secondP99s)
	measured                                                    time.Duration
	minutes                                                     []Minute // of a measured period over a minute
	connectionErrors                                            int
	firstConnectionError                                        error
}

// latencyRecorder is the drive's ack latency histogram, in µs, shared by
// the readers. A phased drive has one histogram per phase instead.
type latencyRecorder struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
	// phaseOf, when set, names the phase of a sample by its scheduled time:
	// an index into phases, or -1 for none (not recorded).
	phaseOf func(scheduled int64) int
	phases  []*hdrhistogram.Histogram
	// seconds, in a phased drive, holds a coarse histogram of each phase's
	// every second (by scheduled time), at most secondsMax of them.
	seconds map[phaseSecond]*hdrhistogram.Histogram
	// minutes, when set, also files each sample under the minute its ack
	// arrived in (scheduled + latency).
	minutes *minuteRecorder
}

func newLatencyRecorder() *latencyRecorder {
	return &latencyRecorder{h: newHistogram()}
}

// record moves the reader's collected latencies into the histogram (its
// phase's, in a phased drive).
func (r *latencyRecorder) record(s *readerStats) {
	r.mu.Lock()
	for _, v := range s.latencies {
		h, us := r.h, min(max(v.us, 1), latencyMaxMicros) // in range: recording cannot fail
		if r.phaseOf != nil {
			i := r.phaseOf(v.scheduled)
			if i < 0 || i >= len(r.phases) {
				continue
			}
			h = r.phases[i]
			r.recordSecond(phaseSecond{i, v.scheduled / int64(time.Second)}, us)
		}
		_ = h.RecordValue(us)
		if r.minutes != nil {
			r.minutes.mu.Lock()
			r.minutes.addLocked(v.scheduled+v.us*int64(time.Microsecond), v.us)
			r.minutes.mu.Unlock()
		}
	}
	r.mu.Unlock()
	s.latencies = s.latencies[:0]
}

// phaseSecond names one second of a phase: the second of the drive's
// clock the samples were scheduled in.
type phaseSecond struct {
	phase  int
	second int64
}

const (
	// secondsMax bounds the seconds a phased drive keeps a histogram of
	// (20 KB each): bench broadcast's default baseline and timeout.
	secondsMax = 360
	// secondSamplesMin is the fewest samples of a second whose p99 counts
	// (a phase's partial first and last seconds may hold a few).
	secondSamplesMin = 100
)

// recordSecond files a sample (µs) under its phase and second, in a histogram
// of two significant digits (p99 within 1%): the per-second p99s say
// whether a phase's tail is a few bad seconds or all of it.
func (r *latencyRecorder) recordSecond(k phaseSecond, us int64) {
	h := r.seconds[k]
	if h == nil {
		if r.seconds == nil {
			r.seconds = map[phaseSecond]*hdrhistogram.Histogram{}
		}
		if len(r.seconds) >= secondsMax {
			return
		}
		h = hdrhistogram.New(1, latencyMaxMicros, 2)
		r.seconds[k] = h
	}
	_ = h.RecordValue(us)
}

// secondP99s is the p99 (µs) of each second of each phase with at least
// secondSamplesMin samples, in time order.
func (r *latencyRecorder) secondP99s() [][]int64 {
	keys := make([]phaseSecond, 0, len(r.seconds))
	for k, h := range r.seconds {
		if h.TotalCount() >= secondSamplesMin {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b phaseSecond) int { return cmp.Compare(a.second, b.second) })
	out := make([][]int64, len(r.phases))
	for _, k := range keys {
		out[k.phase] = append(out[k.phase], r.seconds[k].ValueAtQuantile(99))
	}
	return out
}

// drive opens the connections, sends for Warmup+Duration, drains, closes
// and counts.
func drive(ctx context.Context, dc driveConfig, token string) (*driveResult, error) {
	cfg := &dc.cfg
	clk := &clock{}
	hist := newLatencyRecorder()
	if dc.phaseOf != nil {
		hist.phaseOf = dc.phaseOf
		for range dc.phases {
			hist.phases = append(hist.phases, newHistogram())
		}
	}
	clients, err := dialAll(ctx, dc, token, clk, hist)
	if err != nil {
		return nil, err
	}
	clk.base = time.Now()
	clk.warmupEnd = int64(cfg.Warmup)
	clk.sendEnd = int64(cfg.Warmup + cfg.Duration)
	if dc.until != nil {
		clk.sendEnd = math.MaxInt64 // the writers stop when until returns
	} else {
		hist.minutes = newMinuteRecorder(clk.warmupEnd, clk.sendEnd) // before the readers start
	}

	framePeriod := 0.0 // ns between frames of one connection; 0: closed loop
	if cfg.Rate > 0 {
		framePeriod = 1e9 * float64(cfg.batch()) * float64(cfg.Connections) / float64(cfg.Rate)
	}
	stop := make(chan struct{})
	var writers, readers sync.WaitGroup
	for i, c := range clients {
		phase := int64(framePeriod * float64(i) / float64(len(clients)))
		readers.Go(c.read)
		writers.Go(func() { c.write(stop, framePeriod, phase) })
	}

	canceled := !sleepUntil(ctx, clk, clk.warmupEnd)
	if !canceled && dc.atMeasureStart != nil {
		dc.atMeasureStart()
	}
	measured := cfg.Duration
	if dc.until != nil {
		if !canceled {
			dc.until(ctx, clk)
			canceled = ctx.Err() != nil
		}
		measured = time.Duration(clk.now() - clk.warmupEnd)
	} else {
		canceled = canceled || !sleepUntil(ctx, clk, clk.sendEnd)
	}
	close(stop)
	if !canceled && dc.atMeasureEnd != nil {
		dc.atMeasureEnd()
	}
	// A writer blocked on a server that stopped reading, or a reader waiting
	// for answers that never come, is ended by closing its connection.
	drainEnd := time.Now().Add(dc.drain)
	waitUntil(ctx, &writers, drainEnd)
	waitDrained(ctx, clients, drainEnd)
	closeAll(clients)
	writers.Wait()
	readers.Wait()
	if canceled {
		return nil, ctx.Err()
	}
	res := collect(clients, hist, measured)
	if hist.minutes != nil {
		res.minutes = hist.minutes.minutes()
	}
	return res, nil
}

// sleepUntil sleeps until the drive's clock reaches t; false when ctx ended
// first.
func sleepUntil(ctx context.Context, clk *clock, t int64) bool {
	d := time.Duration(t - clk.now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitUntil waits for wg until deadline or ctx's end.
func waitUntil(ctx context.Context, wg *sync.WaitGroup, deadline time.Time) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// waitDrained waits until every client has nothing in flight, deadline or
// ctx's end.
func waitDrained(ctx context.Context, clients []*client, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for _, c := range clients {
		select {
		case <-c.drained:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// collect merges the clients' counts once their goroutines have returned.
func collect(clients []*client, hist *latencyRecorder, measured time.Duration) *driveResult {
	r := &driveResult{errors: map[string]int64{}, latency: hist.h, phases: hist.phases, measured: measured}
	if hist.phaseOf != nil {
		hist.mu.Lock()
		r.seconds = hist.secondP99s()
		hist.mu.Unlock()
	}
	for _, c := range clients {
		s := &c.stats
		r.sent += c.sent
		r.acked += s.acked
		r.duplicates += s.duplicates
		r.failed += s.failed
		r.measuredAcked += s.measuredAcked
		r.unmatched += s.unmatched
		r.malformed += s.malformed
		for code, n := range s.errors {
			r.errors[code] += *n
		}
		for _, err := range []error{c.writeErr, c.readErr} {
			if err != nil {
				r.connectionErrors++
				if r.firstConnectionError == nil {
					r.firstConnectionError = err
				}
			}
		}
	}
	r.lost = r.sent - r.acked - r.failed
	return r
}

// dialAll opens cfg.Connections connections, dialParallel at a time; on any
// failure it closes those it opened.
func dialAll(ctx context.Context, dc driveConfig, token string, clk *clock, hist *latencyRecorder) ([]*client, error) {
	cfg := &dc.cfg
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	clients := make([]*client, cfg.Connections)
	errs := make([]error, cfg.Connections)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(dialParallel, cfg.Connections) {
		wg.Go(func() {
			for i := range next {
				url := dc.wsURL
				if len(dc.wsURLs) > 0 {
					url = dc.wsURLs[i%len(dc.wsURLs)]
				}
				ws, bc, err := dial(ctx, url, header)
				if err != nil {
					errs[i] = fmt.Errorf("bench: connection %d: %w", i, err)
					continue
				}
				enc := newFrameEncoder(dc.nonce, i, cfg)
				if dc.customerPrefix != "" {
					enc.custPrefix = []byte(dc.customerPrefix)
				}
				if dc.segment != nil {
					enc.segment(dc.segment)
				}
				clients[i] = newClient(ws, bc, enc, cfg, clk, hist)
			}
		})
	}
	for i := range clients {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			closeAll(clients)
			return nil, err
		}
	}
	return clients, nil
}

// closeAll closes the clients at once: each close may wait up to
// controlTimeout on a server that does not read.
func closeAll(clients []*client) {
	var wg sync.WaitGroup
	for _, c := range clients {
		if c != nil {
			wg.Go(c.close)
		}
	}
	wg.Wait()
}

// dial opens one connection whose writes are buffered after the handshake.
func dial(ctx context.Context, wsURL string, header http.Header) (*websocket.Conn, *bufConn, error) {
	var bc *bufConn
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			bc = newBufConn(c)
			return bc, nil
		},
		HandshakeTimeout: handshakeTimeout,
		ReadBufferSize:   wsBufferBytes,
		WriteBufferSize:  wsBufferBytes,
		TLSClientConfig:  tlsConfig(),
	}
	ws, resp, err := d.DialContext(ctx, wsURL, header)
	if err != nil {
		if resp != nil {
			return nil, nil, fmt.Errorf("dial %s: %s: %w", wsURL, resp.Status, err)
		}
		return nil, nil, fmt.Errorf("dial %s: %w", wsURL, err)
	}
	bc.startBuffering()
	return ws, bc, nil
}

// sortedCodes returns the error codes in order, for stable output.
func sortedCodes(m map[string]int64) []string {
	codes := make([]string, 0, len(m))
	for code := range m {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	return codes
}
