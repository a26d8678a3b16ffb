package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The server metrics the report reads (DESIGN "Performance").
const (
	metricRSS          = "process_resident_memory_bytes"
	metricHeapInuse    = "go_memstats_heap_inuse_bytes"
	metricStalls       = "throughline_store_write_stalls_total"
	metricStallSeconds = "throughline_store_write_stall_seconds_total"
	// metricGCCycles is the count of the Go collector's summary of GC
	// pauses: the collections completed (a summary keeps only its count).
	metricGCCycles = "go_gc_duration_seconds_count"
	// metricCPUSeconds is the server process's user and system CPU time.
	metricCPUSeconds = "process_cpu_seconds_total"
)

// Limits of a scrape.
const (
	scrapeTimeout  = 5 * time.Second
	scrapeBytesMax = 16 << 20
)

// scrapedMetrics maps a metric name to its value summed over its series; a
// name the server does not expose is absent.
type scrapedMetrics map[string]float64

// scrape reads the server's /metrics (Prometheus text format).
func scrape(ctx context.Context, client *http.Client, metricsURL string) (scrapedMetrics, error) {
	families, err := scrapeFamilies(ctx, client, metricsURL)
	if err != nil {
		return nil, err
	}
	return sumFamilies(families), nil
}

// scrapeFamilies reads and parses the server's /metrics.
func scrapeFamilies(ctx context.Context, client *http.Client, metricsURL string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: scrape %s: %w", metricsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: scrape %s: %s", metricsURL, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, scrapeBytesMax))
	if err != nil {
		return nil, fmt.Errorf("bench: parse metrics: %w", err)
	}
	return families, nil
}

// memoryOf is the server's RSS and Go heap in use among m; nil where the
// server does not expose one.
func memoryOf(m scrapedMetrics) Memory {
	var out Memory
	if v, ok := m[metricRSS]; ok {
		out.RSSBytes = ptr(int64(v))
	}
	if v, ok := m[metricHeapInuse]; ok {
		out.HeapInuseBytes = ptr(int64(v))
	}
	return out
}

// parseMetrics parses the Prometheus text format, keeping counters, gauges
// and untyped samples.
func parseMetrics(r io.Reader) (scrapedMetrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("bench: parse metrics: %w", err)
	}
	return sumFamilies(families), nil
}

// sumFamilies sums each family's samples over its series.
func sumFamilies(families map[string]*dto.MetricFamily) scrapedMetrics {
	out := scrapedMetrics{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			if v, ok := sampleValue(mf.GetType(), m); ok {
				out[name] += v
			}
			if mf.GetType() == dto.MetricType_SUMMARY {
				out[name+"_count"] += float64(m.GetSummary().GetSampleCount())
			}
		}
	}
	return out
}

func sampleValue(t dto.MetricType, m *dto.Metric) (float64, bool) {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), true
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), true
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}
