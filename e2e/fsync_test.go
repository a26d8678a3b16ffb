package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// failSyncAfter lets the open (Pebble's own syncs and the partition-count
// record) and a few dozen event commits through, then fails every WAL sync.
const failSyncAfter = 40

// TestFsyncFailure: when the disk fails to sync, the node stops
// acknowledging (unavailable), reports not ready, exits non-zero, and
// everything it acknowledged before is there after a restart.
//
// Events for one customer are sent over a WebSocket as event frames, up to 8
// unanswered at a time, until the failure: answers come in seq order, so
// once an error arrives no ack may follow it.
func TestFsyncFailure(t *testing.T) {
	s := startServer(t, serverOptions{env: []string{fmt.Sprintf("THROUGHLINE_TEST_FAIL_SYNC_AFTER=%d", failSyncAfter)}})
	c := dialWS(t, s, tokChannel)
	const (
		customer  = "fsync-1"
		window    = 8
		eventsMax = 5000
		afterFail = 30 // events sent after the first error is seen
	)
	credit := make(chan struct{}, window)
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sent <- n }()
		for ; n < eventsMax; n++ {
			select {
			case credit <- struct{}{}:
			case <-stop:
				return
			case <-c.closed:
				return
			}
			e := event{ID: fmt.Sprintf("fsync-%04d", n), Customer: customer, Channel: "sms", Text: fmt.Sprintf("message %d", n)}
			if c.send(eventFrame(e)) != nil {
				return
			}
		}
	}()

	var (
		acked      []frame // in arrival order
		errs       []frame
		readyAfter response
		postAfter  response
		firstErrAt = -1 // number of answers before the first error
		answers    = 0
	)
	deadline := time.After(60 * time.Second)
read:
	for {
		f, ok, late := c.receive(deadline)
		if late {
			t.Fatalf("after 60 s: %d acks, %d errors; the connection is still open", len(acked), len(errs))
		}
		if !ok {
			break read
		}
		release(credit)
		answers++
		switch f.Type {
		case "ack":
			if firstErrAt >= 0 {
				t.Errorf("ack %s arrived after the error %s", f.raw, errs[0].raw)
			}
			if f.Seq != uint64(len(acked)+1) || f.Duplicate || f.Customer != customer {
				t.Errorf("ack %s: want seq %d, not duplicate, customer %s", f.raw, len(acked)+1, customer)
			}
			acked = append(acked, f)
		case "error":
			if f.Code != "unavailable" || f.ID == "" || f.Message == "" {
				t.Errorf("error frame %s: want code unavailable with the event id and a message", f.raw)
			}
			errs = append(errs, f)
			if firstErrAt < 0 {
				firstErrAt = answers - 1
				// Right away, while the node is still up: not ready, and
				// HTTP ingest refused too.
				var err error
				if readyAfter, err = s.tryCall("GET", "/readyz", "", nil, nil); err != nil {
					t.Errorf("GET /readyz right after the failure: %v", err)
				}
				if postAfter, err = s.tryCall("POST", "/v1/events", tokChannel,
					event{ID: "fsync-http", Customer: "fsync-2", Type: "page.viewed"}, nil); err != nil {
					t.Errorf("POST /v1/events right after the failure: %v", err)
				}
			}
			if len(errs) == afterFail {
				close(stop)
			}
		default:
			t.Errorf("unexpected frame %s", f.raw)
		}
	}
	nSent := <-sent
	t.Logf("%d events sent, %d acknowledged, %d refused, then the connection closed", nSent, len(acked), len(errs))
	if len(acked) == 0 {
		t.Fatalf("no event acknowledged before the failure: raise failSyncAfter (%d)", failSyncAfter)
	}
	if len(errs) == 0 {
		t.Fatalf("no error after %d acks: the sync failure did not happen", len(acked))
	}
	for i, e := range errs {
		want := fmt.Sprintf("fsync-%04d", len(acked)+i)
		if e.ID != want {
			t.Errorf("error %d answers %q, want %q (answers in the order sent)", i, e.ID, want)
		}
	}
	if readyAfter.status != 0 {
		var body map[string]string
		readyAfter.wantStatus(t, 503).decode(t, &body)
		if body["status"] != "unavailable" {
			t.Errorf("GET /readyz after the failure: %s, want status unavailable", readyAfter.body)
		}
	}
	if postAfter.status != 0 {
		postAfter.wantError(t, 503, "unavailable")
	}
	if code := s.waitExit(5 * time.Second); code == 0 {
		t.Fatalf("after the store failed the server exited with code 0, want non-zero")
	}
	if t.Failed() {
		t.FailNow()
	}

	// Restart without the fault: every acknowledged event is there.
	s2 := startServer(t, serverOptions{dataDir: s.dataDir})
	events := s2.timeline(customer, 1000)
	checkGapless(t, customer, events)
	if len(events) < len(acked) {
		t.Fatalf("%d events stored after the restart, %d were acknowledged", len(events), len(acked))
	}
	for i, a := range acked {
		if events[i].ID != a.ID || events[i].Seq != a.Seq {
			t.Errorf("seq %d after the restart is %q, acknowledged %q", a.Seq, events[i].ID, a.ID)
		}
	}
	if len(events) > len(acked) {
		// The WAL decides: a refused event whose write reached the file
		// before its sync failed may be there. Sending it again tells.
		ids := make([]string, 0, len(events)-len(acked))
		for _, e := range events[len(acked):] {
			ids = append(ids, e.ID)
		}
		t.Logf("stored after the restart though answered unavailable (\"nothing was stored\"): %q", ids)
	}
	c2 := dialWS(t, s2, tokChannel)
	for _, a := range acked {
		f := c2.sendEvent(event{ID: a.ID, Customer: customer, Channel: "sms", Text: "again"})
		if !f.Duplicate || f.Seq != a.Seq {
			t.Errorf("event %s resent after the restart: %s, want duplicate:true seq %d", a.ID, f.raw, a.Seq)
		}
	}
	// A refused event sent again is stored exactly once: the one the WAL
	// kept answers duplicate with its seq, the others are stored now.
	storedSeq := map[string]uint64{}
	for _, e := range events {
		storedSeq[e.ID] = e.Seq
	}
	next := uint64(len(events))
	for _, e := range errs {
		f := c2.sendEvent(event{ID: e.ID, Customer: customer, Channel: "sms", Text: "again"})
		if seq, ok := storedSeq[e.ID]; ok {
			if !f.Duplicate || f.Seq != seq {
				t.Errorf("refused event %s, stored at seq %d by the WAL, resent: %s, want duplicate:true seq %d", e.ID, seq, f.raw, seq)
			}
			continue
		}
		next++
		if f.Duplicate || f.Seq != next {
			t.Errorf("refused event %s resent: %s, want a new event at seq %d", e.ID, f.raw, next)
		}
	}
	final := s2.timeline(customer, 1000)
	checkGapless(t, customer, final)
	if want := len(acked) + len(errs); len(final) != want {
		t.Errorf("%d events stored in the end, want %d (each acknowledged or refused id once)", len(final), want)
	}
	if ctx := s2.context(customer); ctx.Seq != uint64(len(final)) {
		t.Errorf("context seq %d, want %d", ctx.Seq, len(final))
	}
	s2.stop()
}

// TestFsyncFailureDuringIdentityClaims: the same with every event naming a
// new phone, so the failure may hit an identity claim (a synced write of
// its own) as well as an event: an acknowledged event's identity still
// resolves to its customer after the restart. Events go one at a time;
// each takes two syncs (claim, then event), so the two runs fail one on a
// claim and the other on an event whose identity was just claimed.
func TestFsyncFailureDuringIdentityClaims(t *testing.T) {
	for _, n := range []int{failSyncAfter, failSyncAfter + 1} {
		t.Run(fmt.Sprintf("fail after %d syncs", n), func(t *testing.T) { fsyncFailureClaims(t, n) })
	}
}

func fsyncFailureClaims(t *testing.T, failAfter int) {
	s := startServer(t, serverOptions{env: []string{fmt.Sprintf("THROUGHLINE_TEST_FAIL_SYNC_AFTER=%d", failAfter)}})
	c := dialWS(t, s, tokChannel)
	phone := func(i int) string { return fmt.Sprintf("+1 555 300 %04d", i) }
	var acked []frame
	failedAt := -1
	for i := 0; i < 500; i++ {
		e := event{ID: fmt.Sprintf("claim-%03d", i), Identity: map[string]string{"phone": phone(i)}, Channel: "sms", Text: "hi"}
		if c.send(eventFrame(e)) != nil {
			break
		}
		f, ok := c.next()
		if !ok {
			break
		}
		switch {
		case f.Type == "ack" && failedAt < 0:
			if f.ID != e.ID || f.Duplicate {
				t.Fatalf("ack %s for %s", f.raw, e.ID)
			}
			acked = append(acked, f)
		case f.Type == "ack":
			t.Fatalf("ack %s after the failure at event %d", f.raw, failedAt)
		case f.Type == "error":
			wantErrorFrame(t, "after the sync failure", f, "unavailable")
			if failedAt < 0 {
				failedAt = i
				r, err := s.tryCall("GET", "/readyz", "", nil, nil)
				if err != nil || r.status != 503 {
					t.Errorf("GET /readyz right after the failure: %d %s %v, want 503", r.status, r.body, err)
				}
			}
		default:
			t.Fatalf("unexpected frame %s", f.raw)
		}
		if failedAt >= 0 && i-failedAt >= 5 {
			break
		}
	}
	t.Logf("%d events acknowledged, failure at event %d", len(acked), failedAt)
	if len(acked) == 0 || failedAt < 0 {
		t.Fatalf("%d acknowledged, failure at %d: want some of each", len(acked), failedAt)
	}
	if code := s.waitExit(5 * time.Second); code == 0 {
		t.Fatalf("after the store failed the server exited with code 0, want non-zero")
	}

	s2 := startServer(t, serverOptions{dataDir: s.dataDir})
	c2 := dialWS(t, s2, tokChannel)
	for i, a := range acked {
		again := c2.sendEvent(event{ID: a.ID, Identity: map[string]string{"phone": phone(i)}, Channel: "sms", Text: "hi"})
		if again.Customer != a.Customer || !again.Duplicate || again.Seq != a.Seq {
			t.Errorf("event %s resent after the restart: %s, want a duplicate of %s seq %d", a.ID, again.raw, a.Customer, a.Seq)
		}
		wantIdentities(t, s2.context(a.Customer), map[string][]string{"phone": {strings.NewReplacer(" ", "").Replace(phone(i))}})
	}
	// The refused one, sent again, is stored once.
	e := event{ID: fmt.Sprintf("claim-%03d", failedAt), Identity: map[string]string{"phone": phone(failedAt)}, Channel: "sms", Text: "hi"}
	first := c2.sendEvent(e)
	if second := c2.sendEvent(e); !second.Duplicate || second.Seq != first.Seq || second.Customer != first.Customer {
		t.Errorf("refused event sent twice after the restart: %s then %s", first.raw, second.raw)
	}
	if got := clientIDs(s2.timeline(first.Customer, 100)); len(got) != 1 || got[0] != e.ID {
		t.Errorf("customer of the refused event has %q, want it once", got)
	}
	s2.stop()
}
