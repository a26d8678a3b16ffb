package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// The memory budget at the edge: while the runtime reports memory pressure
// (past node.memory_limit's high-water mark, actors/memory.go) new events,
// on HTTP and WebSocket, and new WebSocket connections are refused with
// unavailable. What was taken before is answered as usual; receipts, reads,
// /healthz, /readyz and /metrics are not refused.

// memoryRefusal is the answer to new work under memory pressure; nil when
// there is none.
func (s *Server) memoryRefusal(what string) *journey.Rejection {
	if !s.rt.MemoryPressure() {
		return nil
	}
	return journey.Rejectf(journey.CodeUnavailable, "the node is past its memory budget; %s, retry later", what)
}

func registerMemoryMetrics(reg prometheus.Registerer, rt *actors.Runtime) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "throughline_memory_used_bytes", Help: "Memory the budget counts: the live heap at the last collection plus goroutine stacks.",
	}, func() float64 { used, _ := rt.MemoryUsed(); return float64(used) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "throughline_memory_limit_bytes", Help: "The node's memory budget (node.memory_limit); 0: none.",
	}, func() float64 { _, limit := rt.MemoryUsed(); return float64(limit) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "throughline_memory_pressure", Help: "1 while past the memory budget's high-water mark (new work refused), until below the low-water mark.",
	}, func() float64 {
		if rt.MemoryPressure() {
			return 1
		}
		return 0
	}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "throughline_customer_evictions_total", Help: "Customers passivated before their idle timeout, for the resident cap or the memory budget.",
	}, func() float64 { return float64(rt.Evictions.Load()) }))
}
