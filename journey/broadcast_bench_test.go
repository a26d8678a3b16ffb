package journey_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

func BenchmarkBroadcastProgressCount(b *testing.B) {
	marks := [][]byte{[]byte("sent"), []byte("sent|c"), []byte("suppressed:no_consent"), []byte("held")}
	p := journey.NewBroadcastProgress()
	b.ReportAllocs()
	for i := range b.N {
		if err := p.Count(marks[i%len(marks)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcastSendStep is one broadcast target's step as bench
// broadcast's targets take it: a customer of one event with a phone, sent
// a service message with a callback offer (the customers are made outside
// the timer).
func BenchmarkBroadcastSendStep(b *testing.B) {
	p := journey.Policy{Queues: []journey.QueuePolicy{{Name: "callbacks"}}}.WithDefaults()
	rules, err := journey.CompileRules(nil) // a config without rules compiles to an empty set, as the server's does
	if err != nil {
		b.Fatal(err)
	}
	p.Rules = rules
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	in := &journey.BroadcastSend{Broadcast: "bc-1", Text: "We know about the payment problem.", Expires: at.Add(24 * time.Hour), CallbackOffer: true}
	customers := make([]*journey.Customer, b.N)
	for i := range customers {
		c := journey.NewCustomer(fmt.Sprintf("c-%d", i))
		c.Apply(&journey.Event{ID: "e-1", Customer: c.ID, Type: "payment.attempted", Seq: 1, Actor: journey.ActorCustomer,
			RecordedAt: at, Identity: map[string]string{"phone": fmt.Sprintf("+1555%07d", i)}, Data: json.RawMessage(`{"amount":12}`)})
		c.Apply(&journey.Event{ID: "rt-2", Customer: c.ID, Type: journey.TypeIdentityLinked, Seq: 2, Actor: journey.ActorSystem,
			RecordedAt: at, Data: json.RawMessage(fmt.Sprintf(`{"identities":[{"kind":"phone","value":"+1555%07d"}]}`, i))})
		customers[i] = c
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if d := journey.Step(&p, customers[i], in, at); d.Reject != nil || len(d.Events) == 0 {
			b.Fatalf("step: %+v", d)
		}
	}
}
