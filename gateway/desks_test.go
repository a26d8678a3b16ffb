package gateway

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// An event that reaches a desk connection both as an assigned agent's push
// and through the connection's subscription is sent once; the next events
// still go out, whichever way comes first.
func TestDeskEventSentOnce(t *testing.T) {
	a := &agentConn{wsPeer: &wsPeer{send: newQueue[outFrame](100), closed: make(chan struct{}), writing: true}, agent: "alice"}
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

// An assigned customer's event pushed while a subscription to it replays
// waits for the replay: the desk gets the subscribed frame, then every
// event once, in seq order.
func TestDeskPushWaitsForReplay(t *testing.T) {
	a := &agentConn{wsPeer: &wsPeer{send: newQueue[outFrame](100), closed: make(chan struct{}), writing: true}, agent: "alice",
		credit: make(chan struct{}, 1)}
	d := NewDesks()
	d.add(a)
	sub := &subscription{customer: "c-1", replay: true}
	a.mu.subs = map[string]*subscription{"c-1": sub}
	ev := func(seq uint64) journey.Event { return journey.Event{ID: "e", Customer: "c-1", Seq: seq} }
	push := func(seq uint64) {
		e := ev(seq)
		d.Deliver("alice", journey.DeskMessage{Type: "event", Customer: "c-1", Event: &e})
	}
	// The subscription's seq is 10: a live 9 was in it, a push of 10 is
	// the assignment's own; pushes and live events come both ways round.
	a.live(sub, ev(9))
	push(10)
	push(12)
	a.live(sub, ev(11))
	a.live(sub, ev(12))
	push(11)
	push(13)
	if n := a.send.len(); n != 0 {
		t.Fatalf("%d frames sent during the replay", n)
	}
	a.credit <- struct{}{}
	a.replay(agentFrame{Type: "subscribe", Customer: "c-1"}, sub, 10)
	push(14)
	a.live(sub, ev(14))
	var got []string
	for f, ok := a.send.pop(); ok; f, ok = a.send.pop() {
		var m struct {
			Type  string
			Seq   uint64
			Event struct{ Seq uint64 }
		}
		if err := json.Unmarshal(f.b, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(m.Type, m.Seq+m.Event.Seq))
	}
	want := []string{"subscribed10", "event10", "event11", "event12", "event13", "event14"}
	if !slices.Equal(got, want) {
		t.Fatalf("frames %v, want %v", got, want)
	}
}

// An erased customer's id may name a new customer, whose seqs start again:
// the erase's revoked frame makes the desk forget what it sent of it.
func TestDeskForgetsErasedCustomer(t *testing.T) {
	a := &agentConn{wsPeer: &wsPeer{send: newQueue[outFrame](100), closed: make(chan struct{}), writing: true}, agent: "alice"}
	d := NewDesks()
	d.add(a)
	push := func(seq uint64) {
		e := journey.Event{ID: "e", Customer: "c-1", Seq: seq}
		d.Deliver("alice", journey.DeskMessage{Type: "event", Customer: "c-1", Event: &e})
	}
	push(1)
	push(2)
	d.Deliver("alice", journey.DeskMessage{Type: "revoked", Customer: "c-1", Reason: actors.RevokedErased})
	push(1)
	if n := a.send.len(); n != 4 {
		t.Fatalf("%d frames, want 4 (two events, the revoke, the new customer's first event)", n)
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
