package gateway

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/throughline/throughline/journey"
)

// testConn is a channel connection without a socket: frames stay queued
// (writing: no writer is started).
func testConn(id uint64, queue int) *channelConn {
	return &channelConn{id: id, wsPeer: &wsPeer{send: newQueue[outFrame](queue), closed: make(chan struct{}), writing: true}}
}

func ob(customer string, seq uint64, channel string) journey.Outbound {
	return journey.Outbound{ID: journey.OutboundID(customer, seq), Customer: customer, Seq: seq, Channel: channel}
}

func sentIDs(t *testing.T, c *channelConn) []string {
	t.Helper()
	var ids []string
	for {
		f, ok := c.send.pop()
		switch {
		case ok:
			var o struct{ Type, ID string }
			if err := json.Unmarshal(f.b, &o); err != nil || o.Type != "outbound" {
				t.Fatalf("frame %s", f.b)
			}
			ids = append(ids, o.ID)
		default:
			return ids
		}
	}
}

func TestOutboundRouting(t *testing.T) {
	r := NewOutboundRouter()
	a, b := testConn(1, 100), testConn(2, 100)
	r.add(a)
	r.add(b)
	// Nothing serves sms: it waits; the same id again replaces it.
	r.Deliver(ob("c1", 1, "sms"), 0)
	r.Deliver(ob("c1", 1, "sms"), 0)
	r.Deliver(ob("c1", 2, "sms"), 0)
	r.serve(a, []string{"sms"})
	if got := fmt.Sprint(sentIDs(t, a)); got != "[out-1-c1 out-2-c1]" {
		t.Fatalf("after hello: %s", got)
	}
	r.serve(b, []string{"sms"})
	// The session connection is preferred when it serves the channel.
	for range 3 {
		r.Deliver(ob("c2", 1, "sms"), 2)
	}
	if got := len(sentIDs(t, b)); got != 3 {
		t.Fatalf("session connection got %d of 3", got)
	}
	// A connection that closes hands its unconfirmed outbounds on, in seq
	// order per customer; a confirmed one is not sent again.
	r.Deliver(ob("c3", 5, "sms"), 1)
	r.Deliver(ob("c3", 6, "sms"), 1)
	r.Deliver(ob("c3", 7, "sms"), 1)
	a.confirmed(journey.OutboundID("c3", 6))
	sentIDs(t, a)
	r.remove(a)
	got := sentIDs(t, b)
	want := []string{"out-1-c1", "out-2-c1", "out-5-c3", "out-7-c3"} // a's earlier ones were never confirmed either
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after close: %v, want %v", got, want)
	}
}

func TestOutboundWaitingIsBounded(t *testing.T) {
	r := NewOutboundRouter()
	for i := range OutboundWaitingMax + 10 {
		r.Deliver(ob("c", uint64(i+1), "sms"), 0)
	}
	if n := len(r.waiting["sms"].all()); n != OutboundWaitingMax {
		t.Fatalf("%d waiting, want %d", n, OutboundWaitingMax)
	}
	if first := r.waiting["sms"].all()[0].Seq; first != 11 {
		t.Fatalf("oldest waiting is seq %d; the oldest should give way", first)
	}
	// A redelivery of one waiting replaces it in place.
	again := ob("c", 20, "sms")
	again.Text = "again"
	r.Deliver(again, 0)
	if all := r.waiting["sms"].all(); len(all) != OutboundWaitingMax || all[9].Text != "again" || all[9].Seq != 20 {
		t.Fatalf("redelivery: %d waiting, position 9 %+v", len(all), all[9])
	}
	for i := range OutboundWaitingChannelsMax + 5 {
		r.Deliver(ob("c", 1, fmt.Sprintf("ch%d", i)), 0)
	}
	if n := len(r.waiting); n != OutboundWaitingChannelsMax {
		t.Fatalf("%d channels waiting, want %d", n, OutboundWaitingChannelsMax)
	}
}
