package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
)

// ActivationConfig is the activation workload: customers with long
// histories are written, left idle until the server passivates them, then
// read once cold (the read activates each: snapshot plus the events after
// it) and once warm. The server must run with a short node.idle_timeout.
type ActivationConfig struct {
	// Target is the server's base URL. Required.
	Target string
	// Token is a channel token, ReadToken a supervisor token.
	Token, ReadToken string
	// Customers written and read. Default 200.
	Customers int
	// Events per customer. Default 1000.
	Events int
	// PassivationWait bounds the wait for the server to passivate every
	// customer. Default 60s.
	PassivationWait time.Duration
}

// Limits of the activation workload.
const (
	activationCustomersMax = 100_000
	activationEventsMax    = 1_000_000
)

// DefaultActivation is the default activation workload.
func DefaultActivation() ActivationConfig {
	return ActivationConfig{Customers: 200, Events: 1000, PassivationWait: 60 * time.Second}
}

// Validate lists every problem.
func (c *ActivationConfig) Validate() error {
	var errs []error
	if _, _, err := targetURLs(c.Target); err != nil {
		errs = append(errs, fmt.Errorf("bench: target: %w", err))
	}
	if c.Customers < 1 || c.Customers > activationCustomersMax {
		errs = append(errs, fmt.Errorf("bench: customers %d: must be 1..%d", c.Customers, activationCustomersMax))
	}
	if c.Events < 1 || c.Events > activationEventsMax {
		errs = append(errs, fmt.Errorf("bench: events %d: must be 1..%d", c.Events, activationEventsMax))
	}
	if c.PassivationWait <= 0 {
		errs = append(errs, errors.New("bench: passivation wait must be over 0"))
	}
	return errors.Join(errs...)
}

// ActivationReport is what the activation workload measured.
type ActivationReport struct {
	Customers int `json:"customers"`
	Events    int `json:"events_per_customer"`
	// PassivatedAfterSeconds: from the last write until the server had no
	// customer in memory.
	PassivatedAfterSeconds float64 `json:"passivated_after_seconds"`
	// ColdRead is GET /v1/customers/{id} of a passivated customer, from the
	// client: HTTP plus the activation. WarmRead is the same read again.
	ColdRead Latency `json:"cold_read"`
	WarmRead Latency `json:"warm_read"`
	// ServerActivation is the server's own histogram of activation times
	// (throughline_customer_activation_seconds) over the cold reads, as
	// bucket upper bounds: p50 and p99 are at most these.
	ServerActivation *BucketQuantiles `json:"server_activation,omitempty"`
}

// BucketQuantiles are quantiles read off a Prometheus histogram.
type BucketQuantiles struct {
	Count uint64 `json:"count"`
	// The upper bounds of the buckets p50, p99 and p999 fall in, in µs; 0
	// when past the last finite bucket.
	P50UsLE  int64 `json:"p50_us_le"`
	P99UsLE  int64 `json:"p99_us_le"`
	P999UsLE int64 `json:"p999_us_le"`
}

const activationMetric = "throughline_customer_activation_seconds"

// RunActivation runs the activation workload.
func RunActivation(ctx context.Context, cfg ActivationConfig) (*ActivationReport, error) {
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
	base := strings.TrimSuffix(cfg.Target, "/")
	client := newHTTPClient(10 * time.Second)
	ids := make([]string, cfg.Customers)
	for i := range ids {
		ids[i] = fmt.Sprintf("act-%s-%d", nonce, i)
	}
	if err := writeHistories(ctx, wsURL, cfg, ids); err != nil {
		return nil, err
	}
	written := time.Now()
	if err := waitPassivated(ctx, client, metricsURL, cfg.PassivationWait); err != nil {
		return nil, err
	}
	rep := &ActivationReport{Customers: cfg.Customers, Events: cfg.Events, PassivatedAfterSeconds: time.Since(written).Seconds()}
	before, _ := scrapeHistogram(ctx, client, metricsURL, activationMetric)
	if rep.ColdRead, err = timeReads(ctx, client, base, cfg.ReadToken, ids); err != nil {
		return nil, err
	}
	after, _ := scrapeHistogram(ctx, client, metricsURL, activationMetric)
	if rep.WarmRead, err = timeReads(ctx, client, base, cfg.ReadToken, ids); err != nil {
		return nil, err
	}
	if before != nil && after != nil {
		rep.ServerActivation = bucketQuantiles(before, after)
	}
	return rep, nil
}

// writeHistories writes cfg.Events events to every customer in batch
// frames of up to 1000 and waits for every ack.
func writeHistories(ctx context.Context, wsURL string, cfg ActivationConfig, ids []string) error {
	ws, _, err := (&websocket.Dialer{HandshakeTimeout: handshakeTimeout, TLSClientConfig: tlsConfig()}).DialContext(ctx, wsURL, http.Header{"Authorization": {"Bearer " + cfg.Token}})
	if err != nil {
		return fmt.Errorf("bench: dial %s: %w", wsURL, err)
	}
	defer ws.Close()
	text := strings.Repeat("history ", 25)
	for _, id := range ids {
		for sent := 0; sent < cfg.Events; {
			n := min(BatchSizeMax, cfg.Events-sent)
			var b strings.Builder
			b.WriteString(`{"type":"batch","events":[`)
			for j := range n {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"id":"%s-%d","customer":"%s","channel":"chat","text":"%s"}`, id, sent+j, id, text)
			}
			b.WriteString(`]}`)
			if err := ws.WriteMessage(websocket.TextMessage, []byte(b.String())); err != nil {
				return fmt.Errorf("bench: write: %w", err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return fmt.Errorf("bench: read acks: %w", err)
			}
			var acks struct {
				Type string
				Acks []struct{ Error *struct{ Code string } }
			}
			if err := json.Unmarshal(msg, &acks); err != nil || acks.Type != "acks" || len(acks.Acks) != n {
				return fmt.Errorf("bench: unexpected answer to a batch: %.200s", msg)
			}
			for _, a := range acks.Acks {
				if a.Error != nil {
					return fmt.Errorf("bench: an event was refused: %s", a.Error.Code)
				}
			}
			sent += n
		}
	}
	return ctx.Err()
}

// waitPassivated polls until the server has no customer in memory.
func waitPassivated(ctx context.Context, client *http.Client, metricsURL string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		m, err := scrape(ctx, client, metricsURL)
		if err == nil && m["throughline_active_customers"] == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: customers still in memory after %v (is node.idle_timeout short?)", wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// timeReads reads every customer's context once, one at a time.
func timeReads(ctx context.Context, client *http.Client, base, token string, ids []string) (Latency, error) {
	h := hdrhistogram.New(1, 60_000_000, 3)
	for _, id := range ids {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/customers/"+id, nil)
		if err != nil {
			return Latency{}, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return Latency{}, fmt.Errorf("bench: read %s: %w", id, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			return Latency{}, fmt.Errorf("bench: read %s: %s", id, resp.Status)
		}
		_ = h.RecordValue(took.Microseconds())
	}
	return newLatency(h), nil
}

// scrapeHistogram reads one histogram of the server's /metrics: its first
// series.
func scrapeHistogram(ctx context.Context, client *http.Client, metricsURL, name string) (*dto.Histogram, error) {
	return scrapeHistogramSeries(ctx, client, metricsURL, name, "", "")
}

// scrapeHistogramSeries reads the series of a histogram whose label has
// value (the first series when label is empty).
func scrapeHistogramSeries(ctx context.Context, client *http.Client, metricsURL, name, label, value string) (*dto.Histogram, error) {
	families, err := scrapeFamilies(ctx, client, metricsURL)
	if err != nil {
		return nil, err
	}
	mf, ok := families[name]
	if !ok {
		return nil, fmt.Errorf("bench: %s not exposed", name)
	}
	for _, m := range mf.GetMetric() {
		if m.GetHistogram() != nil && (label == "" || hasLabel(m, label, value)) {
			return m.GetHistogram(), nil
		}
	}
	return nil, fmt.Errorf("bench: %s{%s=%q} not exposed", name, label, value)
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// bucketQuantiles estimates p50, p99 and p999 of what was observed between
// two scrapes, as the upper bound of the bucket each falls in, rounded up to
// a whole µs. A quantile past the last finite bucket stays 0. A nil before
// counts as a histogram with no observations.
func bucketQuantiles(before, after *dto.Histogram) *BucketQuantiles {
	prev := map[float64]uint64{}
	for _, b := range before.GetBucket() {
		prev[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	total := after.GetSampleCount() - before.GetSampleCount()
	q := &BucketQuantiles{Count: total}
	if total == 0 {
		return q
	}
	for _, b := range after.GetBucket() {
		n := float64(b.GetCumulativeCount() - prev[b.GetUpperBound()])
		us := int64(math.Ceil(b.GetUpperBound()*1e6 - 1e-6))
		if q.P50UsLE == 0 && n >= 0.5*float64(total) {
			q.P50UsLE = us
		}
		if q.P99UsLE == 0 && n >= 0.99*float64(total) {
			q.P99UsLE = us
		}
		if q.P999UsLE == 0 && n >= 0.999*float64(total) {
			q.P999UsLE = us
		}
	}
	return q
}

// Markdown writes the activation report.
func (r *ActivationReport) Markdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("## throughline bench activation\n\n| figure | value |\n|---|---|\n")
	row(&b, "customers × events each", strconv.Itoa(r.Customers)+" × "+strconv.Itoa(r.Events))
	row(&b, "all passivated after", fmt.Sprintf("%.1f s", r.PassivatedAfterSeconds))
	row(&b, "cold read (HTTP + activation) p50 / p99 / p999 / max", formatLatency(&r.ColdRead))
	row(&b, "warm read (HTTP only) p50 / p99 / p999 / max", formatLatency(&r.WarmRead))
	if q := r.ServerActivation; q != nil {
		row(&b, "server activation p50 / p99 (bucket bounds)", fmt.Sprintf("≤ %s / ≤ %s (%d activations)", formatMicros(q.P50UsLE), formatMicros(q.P99UsLE), q.Count))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
