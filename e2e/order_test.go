package e2e

import (
	"fmt"
	"testing"
)

// TestOrderOnOneConnection: events of one customer sent on one connection
// get seqs in the order sent, whether they name the customer by id or by an
// identity the runtime must resolve, in event or batch frames, sent without
// waiting; acks frames come in the order of the batch frames; a repeated id
// still in flight is answered as a duplicate of the first.
func TestOrderOnOneConnection(t *testing.T) {
	s := startServer(t, serverOptions{})
	c := dialWS(t, s, tokChannel)
	phone := "+1 555 246 8000"
	first := c.sendEvent(event{ID: "ord-000", Identity: map[string]string{"phone": phone}, Channel: "sms", Text: "first"})
	customer := first.Customer

	// The frames, sent back to back.
	var sendOrder []string // ids in send order, repeats included
	var batches []string
	mk := func(i int) event {
		id := fmt.Sprintf("ord-%03d", i)
		e := event{ID: id, Type: "page.viewed", Data: map[string]any{"i": i}}
		if i%3 == 0 {
			e.Identity = map[string]string{"phone": phone}
		} else {
			e.Customer = customer
		}
		return e
	}
	i := 1
	for round := 0; round < 30; round++ {
		for k := 0; k < 3; k++ {
			e := mk(i)
			c.mustSend(eventFrame(e))
			sendOrder = append(sendOrder, e.ID)
			i++
		}
		// The previous event again, probably still in flight.
		c.mustSend(eventFrame(mk(i - 1)))
		sendOrder = append(sendOrder, mk(i-1).ID)
		var es []event
		for k := 0; k < 5; k++ {
			es = append(es, mk(i))
			sendOrder = append(sendOrder, mk(i).ID)
			i++
		}
		id := fmt.Sprintf("ord-batch-%02d", round)
		c.mustSend(batchFrame(id, es))
		batches = append(batches, id)
	}

	seqOf := map[string]uint64{}
	var answered []ack // in the order answers arrive, repeats included
	var batchOrder []string
	for len(answered) < len(sendOrder) {
		f, ok := c.next()
		if !ok {
			t.Fatalf("connection closed after %d answers", len(answered))
		}
		switch f.Type {
		case "ack":
			answered = append(answered, ack{ID: f.ID, Customer: f.Customer, Seq: f.Seq, Duplicate: f.Duplicate})
		case "acks":
			batchOrder = append(batchOrder, f.ID)
			answered = append(answered, f.Acks...)
		default:
			t.Fatalf("unexpected frame %s", f.raw)
		}
	}
	for k, id := range batches {
		if k >= len(batchOrder) || batchOrder[k] != id {
			t.Fatalf("acks frames came in the order %q, want %q", batchOrder, batches)
		}
	}
	for _, a := range answered {
		if a.Error != nil || a.Customer != customer {
			t.Fatalf("answer %+v: want an ack for customer %s", a, customer)
		}
		if prev, seen := seqOf[a.ID]; seen {
			if !a.Duplicate || a.Seq != prev {
				t.Errorf("repeat of %s: %+v, want duplicate of seq %d", a.ID, a, prev)
			}
			continue
		}
		if a.Duplicate {
			t.Errorf("first answer for %s is a duplicate: %+v", a.ID, a)
		}
		seqOf[a.ID] = a.Seq
	}
	// Seqs follow the send order.
	var last uint64
	for _, id := range sendOrder {
		seq, ok := seqOf[id]
		if !ok {
			t.Fatalf("event %s not acknowledged", id)
		}
		if seq < last {
			t.Errorf("event %s got seq %d after seq %d: not the order sent", id, seq, last)
		}
		last = seq
	}
	events := s.timeline(customer, 1000)
	checkGapless(t, customer, events)
	ids := clientIDs(events)
	if len(ids) != i {
		t.Fatalf("%d client events stored, want %d", len(ids), i)
	}
	for k, id := range ids {
		if id != fmt.Sprintf("ord-%03d", k) {
			t.Fatalf("stored event %d is %s: not the order sent", k, id)
		}
	}
}
