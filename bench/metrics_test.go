package bench

import (
	"strings"
	"testing"
)

const sampleMetrics = `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.2345678e+08
# HELP go_memstats_heap_inuse_bytes Number of heap bytes that are in use.
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 6.4e+07
# TYPE throughline_store_write_stalls_total counter
throughline_store_write_stalls_total{reason="l0 file count"} 3
throughline_store_write_stalls_total{reason="memtable count"} 2
# TYPE throughline_store_write_stall_seconds_total counter
throughline_store_write_stall_seconds_total 1.5
# TYPE throughline_ack_seconds histogram
throughline_ack_seconds_bucket{le="0.001"} 10
throughline_ack_seconds_bucket{le="+Inf"} 12
throughline_ack_seconds_sum 0.02
throughline_ack_seconds_count 12
something_untyped 7
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 0.0001
go_gc_duration_seconds_sum 0.004
go_gc_duration_seconds_count 9
`

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(sampleMetrics))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		metricRSS:           123456780,
		metricHeapInuse:     64e6,
		metricStalls:        5, // summed over its series
		metricStallSeconds:  1.5,
		"something_untyped": 7,
		metricGCCycles:      9, // a summary keeps its count only
	}
	for name, v := range want {
		if m[name] != v {
			t.Errorf("%s = %v, want %v", name, m[name], v)
		}
	}
	if _, ok := m["throughline_ack_seconds"]; ok {
		t.Errorf("histogram kept as a value: %v", m)
	}
	if _, err := parseMetrics(strings.NewReader("not metrics {{{\n")); err == nil {
		t.Error("parseMetrics accepted garbage")
	}
}

func TestServerMetricsDiffOverMeasuredPeriod(t *testing.T) {
	before := scrapedMetrics{metricStalls: 2, metricStallSeconds: 0.5, metricRSS: 1, metricHeapInuse: 1}
	after := scrapedMetrics{metricStalls: 5, metricStallSeconds: 1.75, metricRSS: 300 << 20, metricHeapInuse: 100 << 20}
	r := newReport(&Config{}, "n")
	r.addServerMetrics(before, nil, after, nil)
	if r.WriteStalls.Count == nil || *r.WriteStalls.Count != 3 || r.WriteStalls.Seconds == nil || *r.WriteStalls.Seconds != 1.25 {
		t.Errorf("stalls %+v: want 3 and 1.25 s, the difference", r.WriteStalls)
	}
	if *r.ServerMemory.RSSBytes != 300<<20 || *r.ServerMemory.HeapInuseBytes != 100<<20 {
		t.Errorf("memory %+v: want the values at the end", r.ServerMemory)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings %q", r.Warnings)
	}
	var md strings.Builder
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Pebble write stalls | 3 (1.25 s) |", "| server RSS / heap in use | 300.0 MiB / 100.0 MiB |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestFormatting(t *testing.T) {
	cases := []struct{ got, want string }{
		{formatCount(1234567.4), "1,234,567"},
		{formatCount(999), "999"},
		{formatMicros(850), "850 µs"},
		{formatMicros(1250), "1.25 ms"},
		{formatMicros(2_500_000), "2.50 s"},
		{formatErrors(map[string]int64{"unavailable": 2, "conflict": 1}), "conflict: 1, unavailable: 2"},
		{formatErrors(nil), "none"},
		{string(appendString(nil, "a\"b\\c\x01é\xff")), `"a\"b\\c\u0001é\ufffd"`},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
