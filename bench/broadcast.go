package bench

// `throughline bench broadcast`: one broadcast to a large segment while live
// ingest runs, against the bar (PROTOCOL section 5): the time to
// reach every target, the send rate achieved, and the live ingest's ack
// latency during the broadcast next to the same ingest measured just before
// it, on the same connections and customers.
//
// The run, in order:
//  1. the segment: Customers customers, each a payment.attempted with a
//     phone identity, posted in batches of 1000 over HTTP;
//  2. a channel gateway that says hello for sms and accepts every outbound,
//     counting them (the outbound path is exercised as in production);
//  3. the baseline: the ingest workload (Run) at IngestRate for Baseline;
//  4. the same ingest again, and when its warmup ends the broadcast is
//     posted; GET /v1/broadcasts/{id} is polled until it is done;
//  5. server memory (/metrics) before the broadcast and after it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// BroadcastConfig is one `throughline bench broadcast` run.
type BroadcastConfig struct {
	// Target is the server's base URL; required.
	Target string
	// Token is a channel token; ReadToken a supervisor token.
	Token, ReadToken string
	// Customers is the segment's size. Default 100,000.
	Customers int
	// Rate is the broadcast's targets per second the server was configured
	// with (broadcasts.rate), as reported; the bench does not set it on a
	// --target server. Default 10,000.
	Rate int
	// IngestRate is the live ingest, events per second, open loop, over
	// IngestConnections connections of 64 events in flight at most.
	// Default 5,000 over 16.
	IngestRate, IngestConnections int
	// Baseline is how long the ingest is measured without the broadcast.
	// Default 20s.
	Baseline time.Duration
	// Timeout bounds the wait for the broadcast to be done. Default 5m.
	Timeout time.Duration
}

// DefaultBroadcast is the run.
func DefaultBroadcast() BroadcastConfig {
	return BroadcastConfig{Customers: 100_000, Rate: 10_000, IngestRate: 5_000, IngestConnections: 16,
		Baseline: 20 * time.Second, Timeout: 5 * time.Minute}
}

// Validate lists every problem.
func (c *BroadcastConfig) Validate() error {
	var errs []error
	if c.Target == "" {
		errs = append(errs, errors.New("target: required"))
	}
	if c.Customers < 1 || c.Customers > CustomersMax*10 {
		errs = append(errs, fmt.Errorf("customers: %d not in 1..%d", c.Customers, CustomersMax*10))
	}
	if c.IngestRate < 1 || c.IngestRate > RateMax {
		errs = append(errs, fmt.Errorf("ingest-rate: %d not in 1..%d", c.IngestRate, RateMax))
	}
	if c.IngestConnections < 1 || c.IngestConnections > ConnectionsMax {
		errs = append(errs, fmt.Errorf("ingest-connections: %d not in 1..%d", c.IngestConnections, ConnectionsMax))
	}
	if c.Baseline < time.Second || c.Baseline > DurationMax {
		errs = append(errs, fmt.Errorf("baseline: %v not in 1s..%v", c.Baseline, DurationMax))
	}
	if c.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("timeout: %v under 1s", c.Timeout))
	}
	return errors.Join(errs...)
}

// BroadcastReport is what the run measured.
type BroadcastReport struct {
	Customers       int     `json:"customers"`
	ConfiguredRate  int     `json:"configured_rate"`
	IngestRate      int     `json:"ingest_rate"`
	SegmentSeconds  float64 `json:"segment_seconds"` // to create the segment
	Broadcast       string  `json:"broadcast"`
	State           string  `json:"state"`
	Targeted        int     `json:"targeted"`
	Sent            int     `json:"sent"`
	Held            int     `json:"held"`
	Suppressed      int     `json:"suppressed"`
	ReachSeconds    float64 `json:"reach_seconds"`    // 202 to state done
	SendRate        float64 `json:"send_rate"`        // targeted / reach_seconds
	OutboundsSeen   int64   `json:"outbounds_seen"`   // outbound frames the sms gateway got
	IngestBaseline  Latency `json:"ingest_baseline"`  // ack latency without the broadcast
	IngestDuring    Latency `json:"ingest_during"`    // ack latency while it ran
	P99Ratio        float64 `json:"p99_ratio"`        // during / baseline
	RSSBeforeBytes  float64 `json:"rss_before_bytes"` // server, before the broadcast
	RSSAfterBytes   float64 `json:"rss_after_bytes"`  // server, once it is done
	HeapAfterBytes  float64 `json:"heap_after_bytes"` // Go heap in use, once it is done
	ActiveCustomers float64 `json:"active_customers"` // customer actors in memory, once done
}

type broadcastStatusBody struct {
	State      string         `json:"state"`
	Targeted   int            `json:"targeted"`
	Sent       int            `json:"sent"`
	Held       int            `json:"held"`
	Suppressed map[string]int `json:"suppressed"`
}

// RunBroadcast runs the workload.
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
	r := &BroadcastReport{Customers: cfg.Customers, ConfiguredRate: cfg.Rate, IngestRate: cfg.IngestRate}
	start := time.Now()
	if err := createSegment(ctx, cfg, nonce); err != nil {
		return nil, err
	}
	r.SegmentSeconds = time.Since(start).Seconds()
	gw, err := newSMSGateway(ctx, wsURL, cfg.Token)
	if err != nil {
		return nil, err
	}
	defer gw.close()

	ingest := Default()
	ingest.Target, ingest.Token = cfg.Target, cfg.Token
	ingest.Connections, ingest.Customers, ingest.Rate, ingest.Window = cfg.IngestConnections, 1000, cfg.IngestRate, 64
	ingest.Duration, ingest.Warmup, ingest.Ceilings = cfg.Baseline, 3*time.Second, false
	base, err := Run(ctx, ingest)
	if err != nil {
		return nil, fmt.Errorf("baseline ingest: %w", err)
	}
	r.IngestBaseline = base.AckLatency

	client := &http.Client{Timeout: 10 * time.Second}
	before, _ := scrape(ctx, client, metricsURL)
	r.RSSBeforeBytes = before["process_resident_memory_bytes"]

	// The ingest runs over the broadcast: measured from the 202 for as long
	// as the broadcast would take at its rate, plus a margin.
	expected := time.Duration(float64(cfg.Customers)/float64(max(cfg.Rate, 1))*float64(time.Second)) + 2*time.Second
	during := ingest
	during.Duration = expected
	type runResult struct {
		rep *Report
		err error
	}
	done := make(chan runResult, 1)
	go func() {
		rep, err := Run(ctx, during)
		done <- runResult{rep, err}
	}()
	select {
	case <-time.After(during.Warmup):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := r.broadcast(ctx, client, cfg); err != nil {
		return nil, err
	}
	res := <-done
	if res.err != nil {
		return nil, fmt.Errorf("ingest during the broadcast: %w", res.err)
	}
	r.IngestDuring = res.rep.AckLatency
	if r.IngestBaseline.P99Us > 0 {
		r.P99Ratio = float64(r.IngestDuring.P99Us) / float64(r.IngestBaseline.P99Us)
	}
	after, _ := scrape(ctx, client, metricsURL)
	r.RSSAfterBytes = after["process_resident_memory_bytes"]
	r.HeapAfterBytes = after["go_memstats_heap_inuse_bytes"]
	r.ActiveCustomers = after["throughline_active_customers"]
	r.OutboundsSeen = gw.outbounds.Load()
	return r, nil
}

// broadcast posts the broadcast and polls it until done.
func (r *BroadcastReport) broadcast(ctx context.Context, client *http.Client, cfg BroadcastConfig) error {
	body := `{"segment":{"event":"payment.attempted","within":"1h"},"message":{"text":"We know about the payment problem; a fix is expected in 2 hours."}}`
	var created struct{ ID string }
	start := time.Now()
	if err := call(ctx, client, "POST", cfg.Target+"/v1/broadcasts", cfg.ReadToken, body, http.StatusAccepted, &created); err != nil {
		return err
	}
	r.Broadcast = created.ID
	deadline := start.Add(cfg.Timeout)
	for {
		var st broadcastStatusBody
		if err := call(ctx, client, "GET", cfg.Target+"/v1/broadcasts/"+created.ID, cfg.ReadToken, "", http.StatusOK, &st); err != nil {
			return err
		}
		if st.State != "running" || time.Now().After(deadline) {
			r.ReachSeconds = time.Since(start).Seconds()
			r.State, r.Targeted, r.Sent, r.Held = st.State, st.Targeted, st.Sent, st.Held
			for _, n := range st.Suppressed {
				r.Suppressed += n
			}
			r.SendRate = float64(r.Targeted) / r.ReachSeconds
			return nil
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// createSegment posts the segment's events, four requests at a time.
func createSegment(ctx context.Context, cfg BroadcastConfig, nonce string) error {
	client := &http.Client{Timeout: 60 * time.Second}
	const per = 1000
	batches := make(chan int)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range batches {
				var b strings.Builder
				b.WriteString(`{"events":[`)
				for i := first; i < min(first+per, cfg.Customers); i++ {
					if i > first {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"id":"pay-%s-%d","identity":{"phone":"+1%03d%07d"},"type":"payment.attempted","channel":"sms","data":{"amount":12.5}}`,
						nonce, i, 200+i/10_000_000, i%10_000_000)
				}
				b.WriteString("]}")
				if err := call(ctx, client, "POST", cfg.Target+"/v1/events", cfg.Token, b.String(), http.StatusOK, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
loop:
	for first := 0; first < cfg.Customers; first += per {
		select {
		case batches <- first:
		case err = <-errs:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
	}
	close(batches)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// call makes one request and decodes the answer into out (nil: discard).
func call(ctx context.Context, client *http.Client, method, url, token, body string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("bench: %s %s: %d %s", method, url, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// smsGateway is a channel connection that serves sms and accepts every
// outbound.
type smsGateway struct {
	ws        *websocket.Conn
	outbounds atomic.Int64
	done      chan struct{}
}

func newSMSGateway(ctx context.Context, wsURL, token string) (*smsGateway, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, fmt.Errorf("bench: sms gateway: %w", err)
	}
	g := &smsGateway{ws: ws, done: make(chan struct{})}
	if err := ws.WriteJSON(map[string]any{"type": "hello", "channels": []string{"sms"}}); err != nil {
		ws.Close()
		return nil, err
	}
	go g.read()
	return g, nil
}

func (g *smsGateway) read() {
	defer close(g.done)
	var f struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	for {
		_, data, err := g.ws.ReadMessage()
		if err != nil {
			return
		}
		f.Type, f.ID = "", ""
		if json.Unmarshal(data, &f) != nil || f.Type != "outbound" {
			continue
		}
		g.outbounds.Add(1)
		if g.ws.WriteJSON(map[string]string{"type": "accepted", "id": f.ID}) != nil {
			return
		}
	}
}

func (g *smsGateway) close() {
	g.ws.Close()
	<-g.done
}

// Markdown renders the report.
func (r *BroadcastReport) Markdown(w io.Writer) error {
	ms := func(us int64) string { return fmt.Sprintf("%.2f ms", float64(us)/1000) }
	mb := func(b float64) string { return fmt.Sprintf("%.0f MB", b/1e6) }
	_, err := fmt.Fprintf(w, `## bench broadcast

| | |
|---|---|
| segment | %d customers (payment.attempted, sms), created in %.1f s |
| broadcast | %s: %s, %d targeted, %d sent, %d held, %d suppressed |
| **time to reach every target** | **%.2f s** (configured broadcasts.rate %d/s) |
| **send rate achieved** | **%.0f targets/s** |
| outbounds taken by the sms gateway | %d |
| live ingest | %d events/s, open loop, 64 in flight per connection at most |
| ingest ack p50 / p99 / p999 without the broadcast | %s / %s / %s |
| ingest ack p50 / p99 / p999 during the broadcast | %s / %s / %s |
| **p99 during / without** | **%.2f** (bar: at most 2) |
| server RSS before / after | %s / %s |
| server Go heap in use after; customers in memory | %s; %.0f |
`, r.Customers, r.SegmentSeconds, r.Broadcast, r.State, r.Targeted, r.Sent, r.Held, r.Suppressed,
		r.ReachSeconds, r.ConfiguredRate, r.SendRate, r.OutboundsSeen, r.IngestRate,
		ms(r.IngestBaseline.P50Us), ms(r.IngestBaseline.P99Us), ms(r.IngestBaseline.P999Us),
		ms(r.IngestDuring.P50Us), ms(r.IngestDuring.P99Us), ms(r.IngestDuring.P999Us),
		r.P99Ratio, mb(r.RSSBeforeBytes), mb(r.RSSAfterBytes), mb(r.HeapAfterBytes), r.ActiveCustomers)
	return err
}
