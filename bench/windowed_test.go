package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// chanSender answers from a goroutine of its own, as a store's writer or a
// NATS client does: every event acked, except that events whose number is
// a multiple of failEvery fail and those of dropEvery are never answered.
type chanSender struct {
	answers              chan func()
	failEvery, dropEvery uint64
	mu                   sync.Mutex
	seqs                 map[string]uint64 // the last seq seen per customer
	outOfOrder           int
	maxInFlight, flight  int
}

func newChanSender(failEvery, dropEvery uint64) *chanSender {
	s := &chanSender{answers: make(chan func(), 1<<16), failEvery: failEvery, dropEvery: dropEvery, seqs: map[string]uint64{}}
	go func() {
		for f := range s.answers {
			f()
		}
	}()
	return s
}

func (s *chanSender) Send(_ context.Context, e *Event, done func(error)) error {
	s.mu.Lock()
	if e.Seq != s.seqs[e.Customer]+1 || !strings.Contains(string(e.JSON), `"id":"`+e.ID+`"`) {
		s.outOfOrder++
	}
	s.seqs[e.Customer] = e.Seq
	s.flight++
	s.maxInFlight = max(s.maxInFlight, s.flight)
	s.mu.Unlock()
	n := e.N
	if s.dropEvery > 0 && n%s.dropEvery == s.dropEvery-1 {
		return nil
	}
	s.answers <- func() {
		s.mu.Lock()
		s.flight--
		s.mu.Unlock()
		if s.failEvery > 0 && n%s.failEvery == s.failEvery-1 {
			done(errors.New("refused"))
			return
		}
		done(nil)
	}
	return nil
}

func TestDriveWindowedCountsLikeTheWebSocketClient(t *testing.T) {
	t.Parallel()
	wc := WindowedConfig{Connections: 3, Customers: 30, Window: 5, EventBytes: 40,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, Nonce: "t"}
	senders := make([]*chanSender, wc.Connections)
	res, err := DriveWindowed(t.Context(), wc, func(i int) (Sender, error) {
		senders[i] = newChanSender(10, 0)
		return senders[i], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Acked+res.Failed != res.Sent || res.Lost != 0 {
		t.Fatalf("sent %d, acked %d, failed %d, lost %d: want every event answered", res.Sent, res.Acked, res.Failed, res.Lost)
	}
	if res.Failed < res.Sent/10-3 || res.Failed > res.Sent/10+3 || res.FirstError != "refused" {
		t.Errorf("failed %d of %d (first error %q): want every tenth", res.Failed, res.Sent, res.FirstError)
	}
	if res.Events <= 0 || res.Events > res.Acked || res.EventsPerSecond <= 0 || res.AckLatency.Count == 0 || res.Minutes != nil {
		t.Errorf("measured %+v: want a rate, latencies and no per-minute rows for a short run", res.Measured)
	}
	for i, s := range senders {
		if s.outOfOrder != 0 || s.maxInFlight > wc.Window {
			t.Errorf("connection %d: %d events out of seq order or not matching their JSON, %d in flight at most (window %d)",
				i, s.outOfOrder, s.maxInFlight, wc.Window)
		}
	}
}

func TestDriveWindowedReportsUnansweredAsLost(t *testing.T) {
	t.Parallel()
	wc := WindowedConfig{Connections: 1, Customers: 1, Window: 4, EventBytes: 10,
		Warmup: 0, Duration: 100 * time.Millisecond, Nonce: "t"}
	start := time.Now()
	res, err := DriveWindowed(t.Context(), wc, func(int) (Sender, error) { return newChanSender(0, 2), nil })
	if err != nil {
		t.Fatal(err)
	}
	// Every second event is never answered: the window fills with them
	// and the load stops sending, then drains for drainTimeout.
	if res.Lost != 4 || res.Acked+res.Lost != res.Sent {
		t.Fatalf("sent %d, acked %d, lost %d: want the 4 unanswered events lost", res.Sent, res.Acked, res.Lost)
	}
	if took := time.Since(start); took > wc.Duration+drainTimeout+2*time.Second {
		t.Errorf("took %v: the drain must end after %v", took, drainTimeout)
	}
}

func TestMinuteRecorderFilesAcksByMinute(t *testing.T) {
	minute := int64(time.Minute)
	warmup := 5 * int64(time.Second)
	r := newMinuteRecorder(warmup, warmup+2*minute+30*int64(time.Second))
	for _, a := range []struct{ at, us int64 }{
		{warmup - 1, 5},             // in the warmup: not counted
		{warmup, 100},               // minute 1
		{warmup + minute - 1, 300},  // minute 1
		{warmup + minute, 2000},     // minute 2
		{warmup + 2*minute + 1, 50}, // minute 3, 30 s long
		{warmup + 3*minute, 50},     // after the end: not counted
	} {
		r.addLocked(a.at, a.us)
	}
	got := r.minutes()
	if len(got) != 3 {
		t.Fatalf("%d minutes, want 3: %+v", len(got), got)
	}
	if got[0].Events != 2 || got[1].Events != 1 || got[2].Events != 1 || got[2].Seconds != 30 || got[2].EventsPerSecond != 1.0/30 {
		t.Errorf("minutes %+v: want 2, 1, 1 acks and a 30 s last minute", got)
	}
	if got[0].P50Us != 100 || got[0].P999Us < 299 || got[1].P99Us < 1999 {
		t.Errorf("minutes %+v: want each minute's own latencies", got)
	}
	if short := newMinuteRecorder(0, minute); short.minutes() != nil {
		t.Errorf("a one-minute period has per-minute rows: %+v", short.minutes())
	}
}
