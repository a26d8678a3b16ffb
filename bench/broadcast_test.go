package bench

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func TestDefaultBroadcastIsTheIssuesRun(t *testing.T) {
	cfg := DefaultBroadcast()
	cfg.Target = "http://127.0.0.1:8080"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if cfg.Customers != 100_000 || cfg.Rate != 10_000 || cfg.IngestRate != 5000 || cfg.Connections != 16 || cfg.Window != 64 || cfg.OptOutPercent != 5 {
		t.Errorf("DefaultBroadcast() = %+v, not the issue's run", cfg)
	}
	if got := cfg.ServerSection(); got != "broadcasts: {rate: 10000}\n" {
		t.Errorf("ServerSection() = %q", got)
	}
}

func TestBroadcastConfigValidateListsEveryProblem(t *testing.T) {
	cfg := BroadcastConfig{
		Target: "ftp://x", Token: "two words", Customers: BroadcastCustomersMax + 1, OptOutPercent: 101,
		SeedBatch: BatchSizeMax + 1, Rate: 0, IngestRate: 0, Connections: 0, Window: 0,
		IngestCustomers: 0, Warmup: -time.Second, Baseline: 0, Timeout: 0,
	}
	err := cfg.Validate()
	for _, want := range []string{"target", "token", "customers", "opt-out", "seed batch", "rate 0", "ingest rate", "connections",
		"window", "ingest customers", "warmup", "baseline", "timeout"} {
		if err == nil || !strings.Contains(err.Error(), "bench: "+want) {
			t.Errorf("Validate() = %v, want a problem naming %q", err, want)
		}
	}
	// At the limits.
	cfg = DefaultBroadcast()
	cfg.Target = "http://h"
	cfg.Customers, cfg.OptOutPercent, cfg.SeedBatch, cfg.Rate = BroadcastCustomersMax, 100, BatchSizeMax, BroadcastRateMax
	if err := cfg.Validate(); err != nil {
		t.Errorf("at the limits: %v", err)
	}
	cfg.Customers = cfg.Connections - 1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "at least connections") {
		t.Errorf("fewer customers than connections: %v", err)
	}
}

func TestOptedOutIsThePercent(t *testing.T) {
	for _, pct := range []int{0, 5, 100} {
		cfg := BroadcastConfig{OptOutPercent: pct}
		n := 0
		for i := range 10_000 {
			if cfg.optedOut(i) {
				n++
			}
		}
		if n != pct*100 {
			t.Errorf("%d%%: %d of 10,000 opted out", pct, n)
		}
	}
}

// A segment is one event per customer of the connection, with its phone,
// the last frame short, then no more frames.
func TestEncoderSegment(t *testing.T) {
	cfg := Config{Connections: 3, Customers: 16, BatchSize: 2, EventBytes: 1}
	enc := newFrameEncoder("n", 1, &cfg) // customers 1, 4, 7, 10, 13
	enc.segment(&segmentShape{CustomerPrefix: "bc-n-", PhonePrefix: "+1000042", Type: "payment.attempted"})
	type event struct {
		ID       string            `json:"id"`
		Customer string            `json:"customer"`
		Identity map[string]string `json:"identity"`
		Type     string            `json:"type"`
		Data     map[string]any    `json:"data"`
	}
	var customers, phones []string
	var sizes []int
	for range 4 {
		frame, number, events := enc.next()
		if events == 0 {
			if frame != nil {
				t.Errorf("a frame after the segment: %s", frame)
			}
			break
		}
		var f struct {
			Type   string  `json:"type"`
			ID     string  `json:"id"`
			Events []event `json:"events"`
		}
		if err := json.Unmarshal(frame, &f); err != nil {
			t.Fatalf("frame %d is not JSON: %v\n%s", number, err, frame)
		}
		if f.Type != "batch" || f.ID != fmt.Sprintf("b-%d", number) || len(f.Events) != events {
			t.Fatalf("frame %d (%d events) = %s", number, events, frame)
		}
		sizes = append(sizes, events)
		for _, ev := range f.Events {
			if ev.Type != "payment.attempted" || ev.Data["amount"] == nil {
				t.Errorf("event %+v", ev)
			}
			customers = append(customers, ev.Customer)
			phones = append(phones, ev.Identity["phone"])
		}
	}
	if fmt.Sprint(sizes) != "[2 2 1]" {
		t.Errorf("frames of %v events, want [2 2 1]", sizes)
	}
	if got := strings.Join(customers, " "); got != "bc-n-1 bc-n-4 bc-n-7 bc-n-10 bc-n-13" {
		t.Errorf("customers %s", got)
	}
	if got := strings.Join(phones, " "); got != "+10000420000001 +10000420000004 +10000420000007 +10000420000010 +10000420000013" {
		t.Errorf("phones %s", got)
	}
	if _, _, events := enc.next(); events != 0 {
		t.Errorf("the encoder goes on after its segment: %d events", events)
	}
}

func TestLatencyRecorderSplitsByScheduledTime(t *testing.T) {
	r := newLatencyRecorder()
	r.phases = []*hdrhistogram.Histogram{newHistogram(), newHistogram()}
	r.phaseOf = func(s int64) int {
		switch {
		case s >= 200:
			return -1
		case s >= 100:
			return 1
		}
		return 0
	}
	s := &readerStats{latencies: []latencySample{{50, 10}, {99, 20}, {100, 30}, {150, 40}, {199, 50}, {200, 60}}}
	r.record(s)
	if a, b := r.phases[0].TotalCount(), r.phases[1].TotalCount(); a != 2 || b != 3 || r.h.TotalCount() != 0 {
		t.Errorf("phases hold %d and %d, the whole %d: want 2, 3, 0", a, b, r.h.TotalCount())
	}
	if r.phases[1].Max() != 50 || len(s.latencies) != 0 {
		t.Errorf("during max %d, %d left: want 50, 0", r.phases[1].Max(), len(s.latencies))
	}
}

func TestLatencyRecorderP99OfEachSecond(t *testing.T) {
	r := newLatencyRecorder()
	r.phases = []*hdrhistogram.Histogram{newHistogram(), newHistogram()}
	second := int64(time.Second)
	r.phaseOf = func(s int64) int {
		if s >= 2*second {
			return 1
		}
		return 0
	}
	s := &readerStats{}
	// Seconds 0 and 1 of the baseline: 1-200 µs and 1-200 ms; second 2
	// (during) 1-200 µs plus a partial second 3 of 99 samples, too few.
	for i := range int64(200) {
		s.latencies = append(s.latencies, latencySample{i, i + 1}, latencySample{second + i, 1000 * (i + 1)}, latencySample{2*second + i, i + 1})
		if i < secondSamplesMin-1 {
			s.latencies = append(s.latencies, latencySample{3*second + i, 5_000_000})
		}
	}
	r.record(s)
	got := r.secondP99s()
	if len(got) != 2 || len(got[0]) != 2 || len(got[1]) != 1 {
		t.Fatalf("per-second p99s %v: want two baseline seconds and one during", got)
	}
	near := func(v, want int64) bool { return v >= want*99/100 && v <= want*101/100 }
	if !near(got[0][0], 198) || !near(got[0][1], 198_000) || !near(got[1][0], 198) {
		t.Errorf("per-second p99s %v: want ~198 µs, ~198 ms, ~198 µs in time order", got)
	}
	// Bounded: past secondsMax seconds no new one is kept.
	s.latencies = s.latencies[:0]
	for i := range int64(secondsMax + 10) {
		s.latencies = append(s.latencies, latencySample{(10 + i) * second, 1})
	}
	r.record(s)
	if len(r.seconds) != secondsMax {
		t.Errorf("%d seconds kept: want %d", len(r.seconds), secondsMax)
	}
}

func TestSecondsP99(t *testing.T) {
	s := newSecondsP99([]int64{5000, 30_000, 9000, 21_000}, 10_000)
	if s.Seconds != 4 || s.MedianUs != 9000 || s.MaxUs != 30_000 || s.OverTwiceBaseline != 2 {
		t.Errorf("%+v: want 4 seconds, median 9 ms, max 30 ms, 2 over 20 ms", s)
	}
	if z := newSecondsP99(nil, 10_000); z != (SecondsP99{}) {
		t.Errorf("no seconds: %+v", z)
	}
}

func testBroadcastReport() *BroadcastReport {
	cfg := DefaultBroadcast()
	cfg.Target = "http://127.0.0.1:8080"
	r := newBroadcastReport(&cfg, "abcd1234")
	r.Segment.Acked, r.Segment.Sent, r.Segment.OptedOut = 100_000, 100_000, 5000
	r.Broadcast.ID, r.Broadcast.DoneSeconds = "bc-1", 10.5
	r.addStatus(&broadcastStatus{State: "done", Targeted: 100_000, Sent: 95_000, Suppressed: map[string]int64{"no_consent": 5000}})
	base, during := newHistogram(), newHistogram()
	for i := range int64(1000) {
		_ = base.RecordValue(1000 + i)
		_ = during.RecordValue(1000 + 5*i)
	}
	r.addLive(&driveResult{errors: map[string]int64{}, phases: []*hdrhistogram.Histogram{base, during},
		seconds: [][]int64{{1900, 2000, 1800}, {2000, 9000, 3000, 4500}}})
	r.addOutbounds(outboundStats{frames: 95_000, unique: 95_000, segment: 95_000, arrived: true, firstAfter: 10 * time.Millisecond, lastAfter: 10 * time.Second})
	r.judge(&cfg)
	return r
}

func TestBroadcastReportJudgesTheBars(t *testing.T) {
	r := testBroadcastReport()
	if r.Broadcast.SuppressedTotal != 5000 || int(r.Broadcast.TargetsPerSecond) != 9523 {
		t.Errorf("suppressed %d, rate %.0f", r.Broadcast.SuppressedTotal, r.Broadcast.TargetsPerSecond)
	}
	if r.Ingest.P99Ratio < 2.8 || r.Ingest.P99Ratio > 3.2 {
		t.Errorf("p99 ratio %.2f: want about 3", r.Ingest.P99Ratio)
	}
	if r.Outbounds.Missing != 0 || r.Outbounds.PerSecond != 9500 {
		t.Errorf("outbounds %+v", r.Outbounds)
	}
	pass := map[string]bool{}
	for _, b := range r.Bars {
		pass[b.Name] = b.Pass
	}
	if !pass["targets reached (sent + held + suppressed)"] || !pass["send rate (targeted ÷ time to done)"] || pass["ingest ack p99 during ÷ before"] {
		t.Errorf("bars %+v: want the targets and the rate passed, the ratio failed", r.Bars)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings %q", r.Warnings)
	}
	// Not done, too slow: both fail.
	r.Broadcast.DoneSeconds = 20
	r.addStatus(&broadcastStatus{State: "cancelled", Targeted: 100_000, Sent: 50_000})
	cfg := DefaultBroadcast()
	r.judge(&cfg)
	for _, b := range r.Bars[:2] {
		if b.Pass {
			t.Errorf("bar %+v passed for a cancelled broadcast", b)
		}
	}
}

func TestBroadcastReportRenders(t *testing.T) {
	r := testBroadcastReport()
	r.ServerConfig = "broadcasts: {rate: 10000}\n"
	r.GCCycles.During = cyclesBetween(ptr[int64](4), ptr[int64](5))
	r.ServerCPU.During = coresBetween(serverReading{cpu: ptr(10.0), at: time.Unix(100, 0)}, serverReading{cpu: ptr(25.0), at: time.Unix(110, 0)})
	r.ServerCPU.MicrosPerTarget = ptr(150.0)
	var md strings.Builder
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## throughline bench broadcast",
		"| targets reached (sent + held + suppressed) | = 100,000 | 100,000 | **PASS** |",
		"| send rate (targeted ÷ time to done) | ≥ 9,000/s | 9,524/s | **PASS** |",
		"| ingest ack p99 during ÷ before | ≤ 2.0 |",
		"| **time from the 202 to done** | **10.50 s** |",
		"| targeted / sent / held / suppressed | 100000 / 95000 / 0 / 5000 |",
		"no_consent: 5000",
		"ingest ack p50 / p99 / p999 / max, before",
		"| ingest ack p99 of each second, median / max: before; during | 1.90 ms / 2.00 ms (3 s); 3.00 ms / 9.00 ms (4 s), 2 of 4 seconds over twice the baseline's p99 |",
		"| outbounds: first / last after the 202, rate | 0.01 s / 10.00 s, 9,500/s |",
		"| server RSS before / peak / after | n/a / n/a / n/a |",
		"| server GC cycles in the baseline / during the broadcast | n/a / 1 |",
		"| server CPU in the baseline / during the broadcast, added per target | n/a / 1.50 cores, 150 µs |",
		"```yaml\nbroadcasts: {rate: 10000}\n```",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"config", "segment", "broadcast", "outbounds", "ingest", "server_memory", "server_gc_cycles", "server_cpu", "bars"} {
		if back[key] == nil {
			t.Errorf("JSON lacks %q: %s", key, data)
		}
	}
	if strings.Contains(string(data), "warned") {
		t.Errorf("JSON carries internal state: %s", data)
	}
}
