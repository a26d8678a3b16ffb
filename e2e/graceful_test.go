package e2e

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestGracefulStopMidStream: SIGTERM while events are in flight. Each event
// is acknowledged, refused with unavailable, or left unanswered; the process
// exits 0; after a restart everything acknowledged is stored with its seq,
// nothing refused is, and each customer's events are a gapless prefix of
// what was sent, in order.
func TestGracefulStopMidStream(t *testing.T) {
	// Enough events that the stream is still sending when SIGTERM lands
	// (1,200 were sent whole in the ~60 ms the HTTP posters took to get
	// their first ack, on a fast day), 15 a customer, within one
	// timeline read.
	w := newWorkload("term", 4, 6000, 400)
	total := len(w.ids)
	s := startServer(t, serverOptions{})
	st := startStream(t, s, w, 64, int64(total/3))
	posters := make([]*httpPoster, 2)
	for k := range posters {
		posters[k] = startHTTPPoster(s, fmt.Sprintf("term-http-%d", k))
	}
	st.waitReached(60 * time.Second)
	eventually(t, 20*time.Second, "every HTTP poster acknowledged", func() bool {
		for _, p := range posters {
			if p.count.Load() == 0 {
				return false
			}
		}
		return true
	})
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sentAtTerm := st.sent.Load()
	if code := s.waitExit(stopTimeout); code != 0 {
		t.Fatalf("after SIGTERM mid-stream the server exited with code %d, want 0", code)
	}
	for _, p := range posters {
		p.wait(t)
	}
	before := st.finish(10 * time.Second)
	if extra := st.unexpectedFrames(); len(extra) > 0 {
		t.Fatalf("unexpected frames: %q", extra)
	}
	if sentAtTerm >= int64(total) {
		t.Fatalf("all events were sent before SIGTERM: not mid-stream")
	}
	acked, refused := 0, 0
	for id, a := range before {
		if a.Error != nil {
			if a.Error.Code != "unavailable" {
				t.Errorf("event %s refused at the stop with %+v, want unavailable", id, *a.Error)
			}
			refused++
		} else {
			acked++
		}
	}
	t.Logf("SIGTERM after %d events sent; in the end %d sent: %d acknowledged, %d refused, %d unanswered",
		sentAtTerm, st.sent.Load(), acked, refused, int(st.sent.Load())-acked-refused)

	s2 := startServer(t, serverOptions{dataDir: s.dataDir})
	storedUnacked := 0
	for customer, sentOrder := range w.order {
		events := s2.timelineOrEmpty(customer, 100)
		checkGapless(t, customer, events)
		for i, e := range events {
			if _, ok := before[e.ID]; !ok {
				storedUnacked++
			}
			if i >= len(sentOrder) || e.ID != sentOrder[i] {
				t.Fatalf("customer %s: seq %d is %q; stored events must be the first ones sent, in order %q", customer, e.Seq, e.ID, sentOrder)
			}
			if a, ok := before[e.ID]; ok && a.Error != nil {
				t.Errorf("event %s was refused (%s: %s) but is stored at seq %d", e.ID, a.Error.Code, a.Error.Message, e.Seq)
			}
		}
		for _, id := range sentOrder {
			a, ok := before[id]
			if !ok || a.Error != nil {
				continue
			}
			if a.Seq > uint64(len(events)) || events[a.Seq-1].ID != id {
				t.Errorf("event %s acknowledged at seq %d is not stored there after the restart", id, a.Seq)
			}
		}
	}
	t.Logf("after the restart: %d events stored that were not answered before the stop", storedUnacked)
	for _, p := range posters {
		p.check(t, s2)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Everything sent again: acknowledged ids are duplicates, and in the
	// end every event is stored once, in the order sent.
	st2 := startStream(t, s2, w, 64, int64(total))
	after := st2.waitAll(60 * time.Second)
	for id, b := range before {
		a := after[id]
		if a.Error != nil {
			t.Fatalf("event %s refused after the restart: %+v", id, *a.Error)
		}
		if b.Error == nil && (!a.Duplicate || a.Seq != b.Seq) {
			t.Errorf("event %s acknowledged at seq %d before the stop; resent: %+v", id, b.Seq, a)
		}
	}
	checkStored(t, s2, w, func(string) bool { return true })
	s2.stop()
	st2.finish(10 * time.Second)
}

// httpPoster POSTs events for one customer one after the other until an
// answer is not 200.
type httpPoster struct {
	customer string
	done     chan struct{}
	count    atomic.Int64 // len(acked), read while running
	acked    []ack        // in order
	last     string       // the id of the last event sent, not acknowledged
	lastResp response     // its answer (status 0: no answer)
	lastErr  error
}

func startHTTPPoster(s *server, customer string) *httpPoster {
	p := &httpPoster{customer: customer, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; i < 100000; i++ {
			id := fmt.Sprintf("%s-%05d", customer, i)
			r, err := s.tryCall("POST", "/v1/events", tokChannel, event{ID: id, Customer: customer, Type: "page.viewed"}, nil)
			if err != nil || r.status != 200 {
				p.last, p.lastResp, p.lastErr = id, r, err
				return
			}
			var out struct{ Ack ack }
			if json.Unmarshal(r.body, &out) != nil || out.Ack.ID != id {
				p.last, p.lastResp = id, r
				return
			}
			p.acked = append(p.acked, out.Ack)
			p.count.Add(1)
		}
	}()
	return p
}

func (p *httpPoster) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("HTTP poster %s still running after the server exited", p.customer)
	}
	if p.lastResp.status != 0 {
		if p.lastResp.status != 503 {
			t.Errorf("POST during the stop: %d %s, want 200 or 503 unavailable", p.lastResp.status, p.lastResp.body)
		} else {
			p.lastResp.wantError(t, 503, "unavailable")
		}
	}
	t.Logf("HTTP %s: %d acknowledged, then %d %v", p.customer, len(p.acked), p.lastResp.status, p.lastErr)
	if len(p.acked) == 0 {
		t.Errorf("HTTP poster %s: nothing acknowledged before the stop", p.customer)
	}
}

// check: after the restart every acknowledged event is stored at its seq,
// and nothing after them unless it was the last, unanswered one.
func (p *httpPoster) check(t *testing.T, s *server) {
	t.Helper()
	events := s.timelineOrEmpty(p.customer, 1000)
	checkGapless(t, p.customer, events)
	if len(events) < len(p.acked) {
		t.Fatalf("HTTP customer %s: %d events stored, %d acknowledged", p.customer, len(events), len(p.acked))
	}
	for i, a := range p.acked {
		if events[i].ID != a.ID || events[i].Seq != a.Seq {
			t.Errorf("HTTP customer %s: seq %d is %q, acknowledged %q", p.customer, a.Seq, events[i].ID, a.ID)
		}
	}
	extra := events[len(p.acked):]
	switch {
	case len(extra) == 0:
	case len(extra) == 1 && extra[0].ID == p.last && p.lastResp.status == 0:
		// Sent, stored, the answer lost with the connection.
	default:
		t.Errorf("HTTP customer %s: stored beyond the acknowledged: %d events, the first %q (last sent %q answered %d)",
			p.customer, len(extra), extra[0].ID, p.last, p.lastResp.status)
	}
}

// timelineOrEmpty is timeline, but an unknown customer (nothing stored) has
// an empty one.
func (s *server) timelineOrEmpty(customer string, limit int) []storedEvent {
	s.t.Helper()
	r := s.call("GET", customerPath(customer)+"/timeline?limit=1", tokSupervisor, nil, nil)
	if r.status == 404 {
		return nil
	}
	return s.timeline(customer, limit)
}

// TestPassivationAcrossRestarts: with idle_timeout 1s customers leave memory
// between bursts; nothing is lost, duplicates are still recognized, and
// profile and identities come back, across passivation and across a restart.
func TestPassivationAcrossRestarts(t *testing.T) {
	const customers, perBurst = 8, 4
	s := startServer(t, serverOptions{idleTimeout: "1s"})
	c := dialWS(t, s, tokChannel)
	acks := map[string]frame{}
	burst := func(c *wsClient, b int) {
		t.Helper()
		for k := 0; k < customers; k++ {
			for i := 0; i < perBurst; i++ {
				id := fmt.Sprintf("idle-%d-%d-%d", k, b, i)
				f := c.sendEvent(event{ID: id, Customer: fmt.Sprintf("idle-%d", k), Channel: "chat", Text: id})
				if want := uint64(b*perBurst + i + 1); f.Seq != want || f.Duplicate {
					t.Fatalf("event %s: %s, want seq %d new", id, f.raw, want)
				}
				acks[id] = f
			}
		}
	}
	resendAll := func(c *wsClient) {
		t.Helper()
		for id, a := range acks {
			f := c.sendEvent(event{ID: id, Customer: a.Customer, Channel: "chat", Text: "again"})
			if !f.Duplicate || f.Seq != a.Seq {
				t.Errorf("event %s resent: %s, want duplicate:true seq %d", id, f.raw, a.Seq)
			}
		}
	}
	waitPassivated := func(s *server) {
		t.Helper()
		eventually(t, 20*time.Second, "throughline_active_customers 0", func() bool {
			v, err := s.metric("throughline_active_customers")
			return err == nil && v == 0
		})
	}

	burst(c, 0)
	tel := c.sendEvent(event{ID: "idle-tel-1", Identity: map[string]string{"phone": "+49 30 1234567"}, Channel: "sms", Text: "hi"})
	prof := c.sendEvent(event{ID: "idle-prof-1", Customer: "idle-prof", Type: "page.viewed"})
	s.call("PATCH", "/v1/customers/idle-prof/profile", tokChannel, `{"tier":"vip","consent":{"sms":true}}`, nil).wantStatus(t, 200)
	acks[prof.ID] = prof
	if v, err := s.metric("throughline_active_customers"); err != nil || v < customers {
		t.Fatalf("throughline_active_customers %v (%v) after the first burst, want at least %d", v, err, customers)
	}
	waitPassivated(s)

	burst(c, 1)
	resendAll(c)
	if again := c.sendEvent(event{ID: "idle-tel-2", Identity: map[string]string{"phone": "+49301234567"}, Channel: "sms", Text: "back"}); again.Customer != tel.Customer {
		t.Errorf("after passivation the phone reached %s, want %s", again.Customer, tel.Customer)
	}
	checkPassivated := func(s *server) {
		t.Helper()
		for k := 0; k < customers; k++ {
			id := fmt.Sprintf("idle-%d", k)
			ctx := s.context(id)
			events := s.timeline(id, 3)
			checkGapless(t, id, events)
			if ctx.Seq != 2*perBurst || len(events) != 2*perBurst || len(ctx.Timeline) != 2*perBurst {
				t.Errorf("customer %s: context seq %d with %d events, timeline %d events; want %d", id, ctx.Seq, len(ctx.Timeline), len(events), 2*perBurst)
			}
		}
		if ctx := s.context("idle-prof"); ctx.Profile["tier"] != "vip" || ctx.Seq != 2 {
			t.Errorf("customer idle-prof: profile %v seq %d, want tier vip and seq 2 (its event and profile.updated)", ctx.Profile, ctx.Seq)
		}
		wantIdentities(t, s.context(tel.Customer), map[string][]string{"phone": {"+49301234567"}})
	}
	checkPassivated(s)
	waitPassivated(s)
	resendAll(c)
	s.stop()

	s2 := startServer(t, serverOptions{dataDir: s.dataDir, idleTimeout: "1s"})
	c2 := dialWS(t, s2, tokChannel)
	resendAll(c2)
	checkPassivated(s2)
	if f := c2.sendEvent(event{ID: "idle-after", Customer: "idle-0", Channel: "chat", Text: "after the restart"}); f.Seq != 2*perBurst+1 || f.Duplicate {
		t.Errorf("new event after the restart: %s, want seq %d", f.raw, 2*perBurst+1)
	}
	s2.stop()
}

// TestPassivationUnderTraffic: with idle_timeout 1s, customers receive
// bursts about 2 s apart, the moment a customer idle since its last burst is
// passivated, so bursts arrive while customers passivate (the host buffers
// them through the handshake) or just after: every
// event is acknowledged once, seqs stay gapless in the order sent, and ids
// are still recognized after every reactivation.
func TestPassivationUnderTraffic(t *testing.T) {
	const (
		customers = 16
		burst     = 3
		run       = 6500 * time.Millisecond
	)
	s := startServer(t, serverOptions{idleTimeout: "1s"})
	c := dialWS(t, s, tokChannel)
	start := time.Now()
	next := make([]time.Time, customers)
	count := make([]int, customers)
	for k := range next {
		next[k] = start.Add(time.Duration(k) * 7 * time.Millisecond)
	}
	var sent []event
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for now := range tick.C {
		if now.Sub(start) > run {
			break
		}
		for k := 0; k < customers; k++ {
			if now.Before(next[k]) {
				continue
			}
			for b := 0; b < burst; b++ {
				e := event{ID: fmt.Sprintf("pt-%02d-%03d", k, count[k]), Customer: fmt.Sprintf("pt-%02d", k), Type: "page.viewed"}
				if count[k] > 0 && b == 0 {
					// The previous id again, across the idle gap.
					c.mustSend(eventFrame(event{ID: fmt.Sprintf("pt-%02d-%03d", k, count[k]-1), Customer: e.Customer, Type: "page.viewed"}))
				}
				c.mustSend(eventFrame(e))
				sent = append(sent, e)
				count[k]++
			}
			next[k] = now.Add(2*time.Second + time.Duration(k%8)*3*time.Millisecond)
		}
	}
	// Every event answered: once new, and its repeat as a duplicate.
	seqOf := map[string]uint64{}
	answers := len(sent)
	for k := range count {
		answers += count[k]/burst - 1
	}
	for i := 0; i < answers; i++ {
		f := c.expect("ack")
		if prev, ok := seqOf[f.ID]; ok {
			if !f.Duplicate || f.Seq != prev {
				t.Errorf("repeat of %s: %s, want duplicate of seq %d", f.ID, f.raw, prev)
			}
			continue
		}
		if f.Duplicate {
			t.Errorf("first answer for %s is a duplicate: %s", f.ID, f.raw)
		}
		seqOf[f.ID] = f.Seq
	}
	activations, err := s.metric("throughline_customer_activations_total")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events to %d customers, %.0f activations", len(sent), customers, activations)
	if activations <= customers {
		t.Errorf("%.0f activations for %d customers: the customers were not passivated between bursts", activations, customers)
	}
	for k := 0; k < customers; k++ {
		id := fmt.Sprintf("pt-%02d", k)
		events := s.timeline(id, 1000)
		checkGapless(t, id, events)
		if len(events) != count[k] {
			t.Errorf("customer %s: %d events stored, %d sent", id, len(events), count[k])
		}
		for i, e := range events {
			if want := fmt.Sprintf("pt-%02d-%03d", k, i); e.ID != want || seqOf[want] != e.Seq {
				t.Errorf("customer %s: seq %d is %q (acknowledged at %d), want %q", id, e.Seq, e.ID, seqOf[want], want)
			}
		}
	}
	s.stop()
}
