package analytics

import (
	"fmt"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// BenchmarkApply: the runner's cost per event, over journeys of a bot
// turn, a hand-over, an agent and a wrap-up.
func BenchmarkApply(b *testing.B) {
	var events []journey.Event
	for i := range 1000 {
		c := &customer{id: fmt.Sprintf("c-%d", i)}
		at := t0.Add(time.Duration(i) * time.Second)
		events = append(events, c.message(at, "web"), c.open(at, "bot", "web"), c.reply(at), c.message(at, "web"),
			c.route(at, "customer_asked", "", "billing"), c.agent(at, journey.TypeAgentOffered, nil),
			c.agent(at, journey.TypeAgentAssigned, nil), c.message(at, "web"), c.wrapup(at, "resolved"))
	}
	b.ResetTimer()
	for i := 0; i < b.N; {
		p := New()
		for j := range events {
			p.Apply(&events[j])
			i++
		}
	}
}
