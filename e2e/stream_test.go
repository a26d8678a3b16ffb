package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// unit is what one frame carries: one event (batchID empty: an event frame)
// or a batch frame.
type unit struct {
	batchID string
	events  []event
}

// workload is a fixed set of events spread over connections: each
// connection has its own customers, and sends its events in order, mixing
// event frames and batch frames.
type workload struct {
	name  string
	plans [][]unit // per connection, in send order
	order map[string][]string
	ids   []string
}

// newWorkload makes conns connections of perConn events each, over
// customersPerConn customers per connection (customer ids, no identities):
// each cycle is five event frames then one batch frame of 15 events.
func newWorkload(name string, conns, perConn, customersPerConn int) *workload {
	w := &workload{name: name, plans: make([][]unit, conns), order: map[string][]string{}}
	for k := 0; k < conns; k++ {
		var plan []unit
		var batch []event
		for i := 0; i < perConn; i++ {
			e := event{
				ID:       fmt.Sprintf("%s-%d-%03d", name, k, i),
				Customer: fmt.Sprintf("%s-c%d-%02d", name, k, i%customersPerConn),
				Type:     "page.viewed",
				Channel:  "web",
				Data:     map[string]any{"conn": k, "n": i},
			}
			if i%2 == 0 {
				e.Type, e.Text = "", fmt.Sprintf("message %d from connection %d", i, k)
			}
			w.ids = append(w.ids, e.ID)
			w.order[e.Customer] = append(w.order[e.Customer], e.ID)
			switch {
			case i%20 < 5:
				plan = append(plan, unit{events: []event{e}})
			default:
				batch = append(batch, e)
				if i%20 == 19 || i == perConn-1 {
					plan = append(plan, unit{batchID: fmt.Sprintf("%s-b%d-%d", name, k, i), events: batch})
					batch = nil
				}
			}
		}
		w.plans[k] = plan
	}
	return w
}

// answer is what the server said about one event: an ack, or an error
// (ack.Error set).
type answer = ack

// stream sends a workload over fresh connections, keeping at most window
// events unanswered per connection, and records every answer. It does not
// wait for the server: the caller may kill or stop it at any point.
type stream struct {
	t      *testing.T
	w      *workload
	window int

	answered atomic.Int64 // events answered (ack or error)
	acked    atomic.Int64 // events acknowledged
	sent     atomic.Int64 // events written to a connection

	mu      sync.Mutex
	answers map[string]answer
	extra   []string // frames nobody expected (errors without an event, ...)

	threshold int64
	reached   chan struct{} // closed once acked reaches threshold
	once      sync.Once
	stop      chan struct{} // closed to stop the senders
	stopOnce  sync.Once
	wg        sync.WaitGroup
}

// startStream dials one connection per plan of w and starts sending. reached
// closes once threshold events are acknowledged.
func startStream(t *testing.T, s *server, w *workload, window int, threshold int64) *stream {
	t.Helper()
	st := &stream{
		t: t, w: w, window: window, answers: map[string]answer{},
		threshold: threshold, reached: make(chan struct{}), stop: make(chan struct{}),
	}
	clients := make([]*wsClient, len(w.plans))
	for k := range w.plans {
		clients[k] = dialWS(t, s, tokChannel)
	}
	for k, plan := range w.plans {
		credit := make(chan struct{}, window)
		st.wg.Add(2)
		go st.send(clients[k], plan, credit)
		go st.receive(clients[k], credit)
	}
	return st
}

func (st *stream) send(c *wsClient, plan []unit, credit chan struct{}) {
	defer st.wg.Done()
	for _, u := range plan {
		for range u.events {
			select {
			case credit <- struct{}{}:
			case <-st.stop:
				return
			case <-c.closed:
				return
			}
		}
		var err error
		if u.batchID == "" {
			err = c.send(eventFrame(u.events[0]))
		} else {
			err = c.send(batchFrame(u.batchID, u.events))
		}
		if err != nil {
			return
		}
		st.sent.Add(int64(len(u.events)))
	}
}

func (st *stream) receive(c *wsClient, credit chan struct{}) {
	defer st.wg.Done()
	for {
		f, ok, _ := c.receive(nil)
		if !ok {
			return
		}
		switch f.Type {
		case "ack":
			st.record(answer{ID: f.ID, Customer: f.Customer, Seq: f.Seq, Duplicate: f.Duplicate}, string(f.raw))
			release(credit)
		case "acks":
			for _, a := range f.Acks {
				st.record(a, string(f.raw))
				release(credit)
			}
		case "error":
			if f.ID == "" {
				st.unexpected(string(f.raw))
				continue
			}
			st.record(answer{ID: f.ID, Error: &apiError{Code: f.Code, Message: f.Message}}, string(f.raw))
			release(credit)
		default:
			st.unexpected(string(f.raw))
		}
	}
}

// release returns one credit; never blocks on an answer nobody waited for.
func release(credit chan struct{}) {
	select {
	case <-credit:
	default:
	}
}

func (st *stream) unexpected(raw string) {
	st.mu.Lock()
	st.extra = append(st.extra, raw)
	st.mu.Unlock()
}

func (st *stream) record(a answer, raw string) {
	st.mu.Lock()
	if _, dup := st.answers[a.ID]; dup {
		st.extra = append(st.extra, "second answer for "+a.ID+": "+raw)
	}
	st.answers[a.ID] = a
	st.mu.Unlock()
	st.answered.Add(1)
	if a.Error == nil && st.acked.Add(1) >= st.threshold {
		st.once.Do(func() { close(st.reached) })
	}
}

// waitReached waits until threshold events are acknowledged.
func (st *stream) waitReached(within time.Duration) {
	st.t.Helper()
	select {
	case <-st.reached:
	case <-time.After(within):
		st.t.Fatalf("only %d of %d events acknowledged within %s", st.acked.Load(), st.threshold, within)
	}
}

// finish stops the senders, waits for every connection to end (the server
// is gone or closed them) and returns the answers.
func (st *stream) finish(within time.Duration) map[string]answer {
	st.t.Helper()
	st.stopOnce.Do(func() { close(st.stop) })
	done := make(chan struct{})
	go func() { st.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(within):
		st.t.Fatalf("stream: connections still open %s after the end", within)
	}
	return st.snapshot()
}

// waitAll waits until every event of the workload is answered.
func (st *stream) waitAll(within time.Duration) map[string]answer {
	st.t.Helper()
	total := int64(len(st.w.ids))
	eventually(st.t, within, fmt.Sprintf("all %d events answered", total), func() bool {
		return st.answered.Load() >= total
	})
	return st.snapshot()
}

func (st *stream) snapshot() map[string]answer {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[string]answer, len(st.answers))
	for k, v := range st.answers {
		out[k] = v
	}
	return out
}

func (st *stream) unexpectedFrames() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.extra...)
}

// checkStored reads every customer of the workload back over HTTP and
// checks that each event is stored exactly once, with seqs 1..N in the
// order the events were sent, and that the stored ids are exactly the ids
// of the workload that want reports as stored. It returns the stored seq
// of every id.
func checkStored(t *testing.T, s *server, w *workload, stored func(id string) bool) map[string]uint64 {
	t.Helper()
	seqs := map[string]uint64{}
	for customer, sentOrder := range w.order {
		events := s.timeline(customer, 7)
		checkGapless(t, customer, events)
		var want []string
		for _, id := range sentOrder {
			if stored(id) {
				want = append(want, id)
			}
		}
		if len(events) != len(want) {
			t.Errorf("customer %s: %d events stored, want %d", customer, len(events), len(want))
		}
		for i, e := range events {
			if _, twice := seqs[e.ID]; twice {
				t.Errorf("customer %s: event %q stored twice", customer, e.ID)
			}
			seqs[e.ID] = e.Seq
			if i < len(want) && e.ID != want[i] {
				t.Errorf("customer %s: seq %d is %q, want %q (events of one customer on one connection are stored in the order sent)",
					customer, e.Seq, e.ID, want[i])
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	return seqs
}
