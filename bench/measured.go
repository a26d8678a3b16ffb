package bench

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The one shape every closed-loop load of ingest reports: the server
// through the gateway, the server at a deeper window, the store ceiling,
// the NATS JetStream peer and the WebSocket echo. A Row is one of them;
// its Measured is what the same recorder counted.

// MinutesMax bounds the per-minute rows of a sustained run (DurationMax).
const MinutesMax = int(DurationMax / time.Minute)

// Measured is what one load achieved in its measured period.
type Measured struct {
	Seconds         float64 `json:"seconds"`           // the measured period
	Events          int64   `json:"events"`            // acked durable in the measured period
	EventsPerSecond float64 `json:"events_per_second"` // Events / Seconds
	// AckLatency is send to ack of the events sent in the measured period
	// (from the scheduled send time in rate mode).
	AckLatency Latency `json:"ack_latency"`
	// Minutes are per-minute figures of a run measured for more than a
	// minute: degradation shows as falling rates or rising tails.
	Minutes []Minute `json:"minutes,omitempty"`
}

// Minute is one minute of the measured period: acks received in it and the
// latency of those acks.
type Minute struct {
	Minute          int     `json:"minute"` // from 1
	Seconds         float64 `json:"seconds"`
	Events          int64   `json:"events"`
	EventsPerSecond float64 `json:"events_per_second"`
	P50Us           int64   `json:"p50_us"`
	P99Us           int64   `json:"p99_us"`
	P999Us          int64   `json:"p999_us"`
}

// Row is one load of an ingest run, beside the server's.
type Row struct {
	Name        string `json:"name"`
	Connections int    `json:"connections"`
	Window      int    `json:"window"` // events in flight per connection
	Measured
	Failed int64 `json:"failed"` // answered with an error
	Lost   int64 `json:"lost"`   // sent, not answered in the drain
	// Ratio is the server's events/s (at the default window) ÷ this row's.
	Ratio float64 `json:"ratio"`
	Note  string  `json:"note,omitempty"`
}

// minuteRecorder collects acks by the minute of the measured period they
// arrived in, and their latencies. It is shared by a load's goroutines.
type minuteRecorder struct {
	mu        sync.Mutex
	warmupEnd int64 // on the load's clock, ns
	sendEnd   int64
	counts    []int64
	hists     []*hdrhistogram.Histogram
}

// newMinuteRecorder records for a measured period [warmupEnd, sendEnd); a
// period of a minute or less keeps no per-minute figures.
func newMinuteRecorder(warmupEnd, sendEnd int64) *minuteRecorder {
	r := &minuteRecorder{warmupEnd: warmupEnd, sendEnd: sendEnd}
	if d := time.Duration(sendEnd - warmupEnd); d > time.Minute {
		n := min(int((d+time.Minute-1)/time.Minute), MinutesMax)
		r.counts = make([]int64, n)
		r.hists = make([]*hdrhistogram.Histogram, n)
	}
	return r
}

// index is the minute of an ack at ackAt, or -1 outside the period.
func (r *minuteRecorder) index(ackAt int64) int {
	if ackAt < r.warmupEnd || ackAt >= r.sendEnd || len(r.counts) == 0 {
		return -1
	}
	return min(int((ackAt-r.warmupEnd)/int64(time.Minute)), len(r.counts)-1)
}

// addLocked records one ack at ackAt with latency us.
func (r *minuteRecorder) addLocked(ackAt, us int64) {
	i := r.index(ackAt)
	if i < 0 {
		return
	}
	if r.hists[i] == nil {
		r.hists[i] = newHistogram()
	}
	r.counts[i]++
	_ = r.hists[i].RecordValue(min(max(us, 1), latencyMaxMicros)) // in range: cannot fail
}

// minutes returns the rows; the last minute may be short.
func (r *minuteRecorder) minutes() []Minute {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Minute
	for i, n := range r.counts {
		start := r.warmupEnd + int64(i)*int64(time.Minute)
		end := min(start+int64(time.Minute), r.sendEnd)
		secs := time.Duration(end - start).Seconds()
		m := Minute{Minute: i + 1, Seconds: secs, Events: n, EventsPerSecond: float64(n) / secs}
		if h := r.hists[i]; h != nil {
			m.P50Us, m.P99Us, m.P999Us = h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.ValueAtQuantile(99.9)
		}
		out = append(out, m)
	}
	return out
}
