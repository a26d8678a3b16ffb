package e2e

import (
	"os"
	"testing"
	"time"
)

// TestKillMidStream: an acknowledged event survives kill -9, and resending
// everything after the restart stores every event exactly once.
//
// 2,000 events from 4 WebSocket connections (25 customers each, event and
// batch frames mixed, at most 64 events unanswered per connection) are sent;
// the process is killed with SIGKILL once 1,000 are acknowledged, while the
// rest are in flight or unsent. After a restart on the same data directory
// all 2,000 are sent again with the same ids.
func TestKillMidStream(t *testing.T) {
	const (
		conns     = 4
		perConn   = 500
		customers = 25
		window    = 64
	)
	w := newWorkload("kill", conns, perConn, customers)
	total := len(w.ids)
	s := startServer(t, serverOptions{})

	st := startStream(t, s, w, window, int64(total/2))
	st.waitReached(60 * time.Second)
	s.kill()
	sentAtKill := st.sent.Load()
	before := st.finish(10 * time.Second)
	if extra := st.unexpectedFrames(); len(extra) > 0 {
		t.Fatalf("unexpected frames before the kill: %q", extra)
	}
	ackedBefore := map[string]answer{}
	for id, a := range before {
		if a.Error != nil {
			t.Fatalf("event %s refused before the kill: %+v", id, *a.Error)
		}
		ackedBefore[id] = a
	}
	t.Logf("at the kill: %d events sent, %d acknowledged", sentAtKill, len(ackedBefore))
	if sentAtKill >= int64(total) {
		t.Fatalf("all %d events were sent before the kill: the kill was not mid-stream", total)
	}
	if len(ackedBefore) < total/2 || int64(len(ackedBefore)) >= sentAtKill {
		t.Fatalf("%d acknowledged of %d sent at the kill: want at least %d acknowledged and some in flight",
			len(ackedBefore), sentAtKill, total/2)
	}

	s2 := startServer(t, serverOptions{dataDir: s.dataDir})
	st2 := startStream(t, s2, w, window, int64(total))
	after := st2.waitAll(60 * time.Second)
	if extra := st2.unexpectedFrames(); len(extra) > 0 {
		t.Fatalf("unexpected frames after the restart: %q", extra)
	}
	storedUnacked := 0
	for _, id := range w.ids {
		a, ok := after[id]
		switch {
		case !ok:
			t.Fatalf("event %s not answered after the restart", id)
		case a.Error != nil:
			t.Fatalf("event %s refused after the restart: %+v", id, *a.Error)
		}
		if b, ok := ackedBefore[id]; ok {
			if !a.Duplicate || a.Seq != b.Seq || a.Customer != b.Customer {
				t.Errorf("event %s acknowledged before the kill as %s seq %d; resent after the restart: %+v, want duplicate:true with the same seq",
					id, b.Customer, b.Seq, a)
			}
		} else if a.Duplicate {
			storedUnacked++ // durable, but its ack was lost with the process
		}
	}
	t.Logf("after the restart: %d events acknowledged before the kill, %d stored but not acknowledged, %d stored now",
		len(ackedBefore), storedUnacked, total-len(ackedBefore)-storedUnacked)
	if t.Failed() {
		t.FailNow()
	}

	seqs := checkStored(t, s2, w, func(string) bool { return true })
	if len(seqs) != total {
		t.Fatalf("%d distinct events stored, want %d", len(seqs), total)
	}
	for _, id := range w.ids {
		if seqs[id] != after[id].Seq {
			t.Errorf("event %s stored with seq %d, acknowledged with seq %d", id, seqs[id], after[id].Seq)
		}
	}
	s2.stop()
	st2.finish(10 * time.Second)
}

// TestRepeatedKills: three kill -9s at different points of a resend of the
// same workload, each restart on the same data directory; then one complete
// resend: every event acknowledged in any round keeps its seq, and in the
// end each is stored once, in the order sent.
func TestRepeatedKills(t *testing.T) {
	// Kill after a quarter, a half and three quarters of a resend.
	repeatedKills(t, newWorkload("rk", 3, 400, 10), []float64{0.25, 0.5, 0.75})
}

// TestRepeatedKillsOfBusyCustomers: one customer a connection, 500 events
// each, so that most of their ids leave the ring for dedup blocks before
// the resends that follow each kill ask for them again.
func TestRepeatedKillsOfBusyCustomers(t *testing.T) {
	repeatedKills(t, newWorkload("rkb", 2, 500, 1), []float64{0.4, 0.8})
}

// TestSoakKills is the long version, for `make integ`: 50,000 events over 8
// connections, killed -9 at twenty points of successive resends.
func TestSoakKills(t *testing.T) {
	if os.Getenv("THROUGHLINE_INTEG") == "" {
		t.Skip("a soak run: make integ")
	}
	points := make([]float64, 20)
	for i := range points {
		points[i] = float64(i+1) / 21
	}
	repeatedKills(t, newWorkload("soak", 8, 6250, 40), points)
}

// repeatedKills resends the workload from the start again and again, killing
// the server -9 once the given fraction of it is acknowledged, then sends
// it all: an acknowledged seq never changes and everything is stored once.
func repeatedKills(t *testing.T, w *workload, killAt []float64) {
	total := len(w.ids)
	s := startServer(t, serverOptions{})
	ackedSeq := map[string]answer{}
	for round, frac := range killAt {
		st := startStream(t, s, w, 48, int64(float64(total)*frac))
		st.waitReached(60 * time.Second)
		s.kill()
		answers := st.finish(10 * time.Second)
		newAcks := 0
		for id, a := range answers {
			if a.Error != nil {
				t.Fatalf("round %d: event %s refused: %+v", round, id, *a.Error)
			}
			if b, ok := ackedSeq[id]; ok {
				if !a.Duplicate || a.Seq != b.Seq || a.Customer != b.Customer {
					t.Fatalf("round %d: event %s acknowledged at seq %d earlier, now %+v", round, id, b.Seq, a)
				}
				continue
			}
			ackedSeq[id] = a
			newAcks++
		}
		t.Logf("round %d: %d answers, %d newly acknowledged, %d acknowledged in all", round, len(answers), newAcks, len(ackedSeq))
		s = startServer(t, serverOptions{dataDir: s.dataDir})
	}
	st := startStream(t, s, w, 48, int64(total))
	answers := st.waitAll(60 * time.Second)
	for _, id := range w.ids {
		a := answers[id]
		if a.Error != nil || a.Seq == 0 {
			t.Fatalf("event %s in the last round: %+v", id, a)
		}
		if b, ok := ackedSeq[id]; ok && (!a.Duplicate || a.Seq != b.Seq) {
			t.Errorf("event %s acknowledged at seq %d earlier, now %+v", id, b.Seq, a)
		}
	}
	seqs := checkStored(t, s, w, func(string) bool { return true })
	for _, id := range w.ids {
		if seqs[id] != answers[id].Seq {
			t.Errorf("event %s stored at seq %d, acknowledged at %d", id, seqs[id], answers[id].Seq)
		}
	}
	s.stop()
	st.finish(10 * time.Second)
}
