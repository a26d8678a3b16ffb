package gateway

import (
	"testing"

	"github.com/throughline/throughline/journey"
)

// An event that reaches a desk connection both as an assigned agent's push
// and through the connection's subscription is sent once; the next events
// still go out, whichever way comes first.
func TestDeskEventSentOnce(t *testing.T) {
	a := &agentConn{wsPeer: &wsPeer{send: newQueue[[]byte](100), closed: make(chan struct{}), writing: true}, agent: "alice"}
	d := NewDesks()
	d.add(a)
	sub := &subscription{customer: "c-1"}
	ev := func(seq uint64) journey.Event { return journey.Event{ID: "e", Customer: "c-1", Seq: seq} }
	push := func(seq uint64) {
		e := ev(seq)
		d.Deliver("alice", journey.DeskMessage{Type: "event", Customer: "c-1", Event: &e})
	}
	push(5)
	a.live(sub, ev(5))
	a.live(sub, ev(6))
	push(6)
	push(7)
	a.live(sub, ev(7))
	e8 := ev(8)
	a.sendEvent("c-1", &e8) // a replay's
	push(8)
	a.live(sub, ev(5)) // long after: still known
	if n := a.send.len(); n != 4 {
		t.Fatalf("%d frames, want 4 (seqs 5 to 8 once each)", n)
	}
	// Another customer's seqs are its own; other desk frames always go.
	other := journey.Event{ID: "x", Customer: "c-2", Seq: 5}
	d.Deliver("alice", journey.DeskMessage{Type: "event", Customer: "c-2", Event: &other})
	d.Deliver("alice", journey.DeskMessage{Type: "revoked", Customer: "c-1"})
	d.Deliver("alice", journey.DeskMessage{Type: "revoked", Customer: "c-1"})
	if n := a.send.len(); n != 7 {
		t.Fatalf("%d frames, want 7", n)
	}
}

// The memory of what was sent is bounded: past sentCustomersMax customers
// it starts again.
func TestSentEventsBounded(t *testing.T) {
	var s sentEvents
	for i := range sentCustomersMax + 10 {
		s.first(string(rune('a'+i%26))+string(rune(i)), 1)
	}
	if len(s.by) > sentCustomersMax {
		t.Fatalf("%d customers remembered, at most %d", len(s.by), sentCustomersMax)
	}
	if !s.first("z", 3) || s.first("z", 3) || !s.first("z", 3+sentSeqsKept) {
		t.Fatal("a seq once; a seq sentSeqsKept later takes its slot")
	}
}
