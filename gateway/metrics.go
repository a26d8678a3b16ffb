package gateway

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the gateway. Labels are bounded: never a customer id.
type metrics struct {
	acks        *ackStats              // ingested, duplicates, ack latency
	rejected    *prometheus.CounterVec // by code
	connections *prometheus.GaugeVec   // by endpoint
	slowClosed  prometheus.Counter
	rateLimited prometheus.Counter     // requests and frames over their token's rate
	overloaded  prometheus.Counter     // requests refused at max concurrent requests
	revoked     prometheus.Counter     // connections closed by a token's revocation
	idleClosed  *prometheus.CounterVec // by endpoint
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		acks: newAckStats(),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "throughline_events_rejected_total", Help: "Inbound events refused, by error code.",
		}, []string{"code"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "throughline_connections", Help: "Open WebSocket connections, by endpoint.",
		}, []string{"endpoint"}),
		slowClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "throughline_connections_slow_closed_total", Help: "Connections closed because they did not read fast enough.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "throughline_rate_limited_total", Help: "Requests refused and WebSocket readers paused over their token's rate.",
		}),
		overloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "throughline_requests_overloaded_total", Help: "HTTP requests refused (503) at the limit of requests in flight.",
		}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "throughline_connections_revoked_total", Help: "WebSockets closed because their token was revoked.",
		}),
		idleClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "throughline_connections_idle_closed_total", Help: "WebSockets closed because nothing, not even a pong, came within node.ws_idle_timeout, by endpoint.",
		}, []string{"endpoint"}),
	}
	reg.MustRegister(m.acks, m.rejected, m.connections, m.slowClosed, m.rateLimited, m.overloaded, m.revoked, m.idleClosed)
	return m
}

// ackStats are the counts of events acknowledged (stored, or duplicates)
// and the histogram of every answer's latency, rejections' too: one
// collector, so that a WebSocket's writer adds what a batch of frames
// answered at once (ackTally) under one lock. Prometheus' own counter and
// histogram took atomic adds on lines shared by both cores for every ack,
// from whichever core answered it (~1.5% of the server's CPU in bench
// ingest).
type ackStats struct {
	ingested, duplicates, latency *prometheus.Desc

	mu sync.Mutex
	t  ackTally
}

// ackBounds are the latency histogram's bucket bounds (seconds): 50 µs
// doubling to ~6.5 s.
var ackBounds = prometheus.ExponentialBuckets(50e-6, 2, ackBuckets)

const ackBuckets = 18

func newAckStats() *ackStats {
	return &ackStats{
		ingested:   prometheus.NewDesc("throughline_events_ingested_total", "Inbound events stored and acknowledged.", nil, nil),
		duplicates: prometheus.NewDesc("throughline_events_duplicate_total", "Inbound events answered as duplicates.", nil, nil),
		latency: prometheus.NewDesc("throughline_ack_latency_seconds",
			"From an inbound event's arrival to its answer being handed to the client's connection (written to a WebSocket, or returned to the HTTP handler).", nil, nil),
	}
}

// ackTally is a count of answers not yet added to ackStats.
type ackTally struct {
	ingested, duplicates uint64
	buckets              [ackBuckets + 1]uint64 // per bucket, not cumulative; the last is +Inf
	n                    uint64
	sum                  float64
}

// ack counts an ack (dup: a duplicate's) answered after d.
func (t *ackTally) ack(dup bool, d time.Duration) {
	if dup {
		t.duplicates++
	} else {
		t.ingested++
	}
	t.latency(d)
}

// latency counts an answer's latency.
func (t *ackTally) latency(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < ackBuckets && s > ackBounds[i] {
		i++
	}
	t.buckets[i]++
	t.n++
	t.sum += s
}

// add adds t and clears it.
func (a *ackStats) add(t *ackTally) {
	a.mu.Lock()
	a.t.ingested += t.ingested
	a.t.duplicates += t.duplicates
	for i, n := range t.buckets {
		a.t.buckets[i] += n
	}
	a.t.n += t.n
	a.t.sum += t.sum
	a.mu.Unlock()
	*t = ackTally{}
}

func (a *ackStats) Describe(ch chan<- *prometheus.Desc) {
	ch <- a.ingested
	ch <- a.duplicates
	ch <- a.latency
}

func (a *ackStats) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	t := a.t
	a.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(a.ingested, prometheus.CounterValue, float64(t.ingested))
	ch <- prometheus.MustNewConstMetric(a.duplicates, prometheus.CounterValue, float64(t.duplicates))
	cum, buckets := uint64(0), make(map[float64]uint64, ackBuckets)
	for i, b := range ackBounds {
		cum += t.buckets[i]
		buckets[b] = cum
	}
	ch <- prometheus.MustNewConstHistogram(a.latency, t.n, t.sum, buckets)
}
