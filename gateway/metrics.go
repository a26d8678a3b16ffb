package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the gateway. Labels are bounded: never a customer id.
type metrics struct {
	ingested    prometheus.Counter
	duplicates  prometheus.Counter
	rejected    *prometheus.CounterVec // by code
	ackLatency  prometheus.Histogram
	connections *prometheus.GaugeVec // by endpoint
	slowClosed  prometheus.Counter
	rateLimited prometheus.Counter     // requests and frames over their token's rate
	overloaded  prometheus.Counter     // requests refused at max concurrent requests
	revoked     prometheus.Counter     // connections closed by a token's revocation
	idleClosed  *prometheus.CounterVec // by endpoint
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ingested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "throughline_events_ingested_total", Help: "Inbound events stored and acknowledged.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "throughline_events_duplicate_total", Help: "Inbound events answered as duplicates.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "throughline_events_rejected_total", Help: "Inbound events refused, by error code.",
		}, []string{"code"}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "throughline_ack_latency_seconds",
			Help:    "From an inbound event's arrival to its ack being queued to the client.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18),
		}),
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
	reg.MustRegister(m.ingested, m.duplicates, m.rejected, m.ackLatency, m.connections, m.slowClosed, m.rateLimited, m.overloaded, m.revoked, m.idleClosed)
	return m
}
