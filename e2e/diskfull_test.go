package e2e

// A full disk (PROTOCOL section 7: a failed commit is fatal): nothing is
// acknowledged that was not synced, the node refuses and exits non-zero,
// and after the operator frees space and restarts it, every acknowledged
// event is there.

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// fillDisk posts events (each to one of five customers, text of textBytes)
// until the node refuses one or stops answering; it returns the ids
// acknowledged per customer, in order.
func fillDisk(t *testing.T, s *server, textBytes, max int) map[string][]string {
	t.Helper()
	acked := map[string][]string{}
	text := strings.Repeat("x", textBytes)
	for i := range max {
		customer := fmt.Sprintf("df-%d", i%5)
		e := event{ID: fmt.Sprintf("full-%05d", i), Customer: customer, Channel: "sms", Text: text}
		r, err := s.tryCall("POST", "/v1/events", tokChannel, e, nil)
		if err != nil {
			t.Logf("after %d events the node stopped answering: %v", i, err)
			return acked
		}
		switch r.status {
		case 200:
			acked[customer] = append(acked[customer], e.ID)
		case 503:
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(r.body, &body)
			if body.Error.Code != "unavailable" {
				t.Errorf("refusal %s, want code unavailable", r.body)
			}
			t.Logf("after %d events: %s", i, r.body)
			return acked
		default:
			t.Fatalf("event %d: %d %s", i, r.status, r.body)
		}
	}
	t.Fatalf("%d events acknowledged and the disk never filled", max)
	return nil
}

// checkAcked reads every customer's timeline and finds each acknowledged id
// at its place.
func checkAcked(t *testing.T, s *server, acked map[string][]string) {
	t.Helper()
	n := 0
	for customer, ids := range acked {
		events := s.timeline(customer, 1000)
		checkGapless(t, customer, events)
		if len(events) < len(ids) {
			t.Fatalf("%s: %d events after the restart, %d were acknowledged", customer, len(events), len(ids))
		}
		for i, id := range ids {
			if events[i].ID != id {
				t.Fatalf("%s seq %d is %q, acknowledged %q", customer, i+1, events[i].ID, id)
			}
		}
		n += len(ids)
	}
	if n == 0 {
		t.Fatal("nothing was acknowledged before the disk filled")
	}
	t.Logf("all %d acknowledged events are there after the restart", n)
}

// ENOSPC injected under Pebble with errorfs (the binary's test hook).
func TestDiskFull(t *testing.T) {
	s := startServer(t, serverOptions{env: []string{"THROUGHLINE_TEST_DISK_FULL_AFTER=80"}})
	acked := fillDisk(t, s, 100, 5000)
	if code := s.waitExit(10 * time.Second); code == 0 {
		t.Fatal("after the disk filled the server exited with code 0, want non-zero")
	}
	s2 := startServer(t, serverOptions{dataDir: s.dataDir})
	checkAcked(t, s2, acked)
	s2.stop()
}

// A real small filesystem (a 16 MiB tmpfs) filling up; then it grows, as
// when the operator frees space, and the node restarts on it.
func TestDiskFullOnASmallFilesystem(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("no small tmpfs here (mount needs root: %v %s); TestDiskFull injects ENOSPC instead", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	s := startServer(t, serverOptions{dataDir: dir})
	acked := fillDisk(t, s, 8<<10, 20000)
	if code := s.waitExit(10 * time.Second); code == 0 {
		t.Fatal("after the disk filled the server exited with code 0, want non-zero")
	}
	if out, err := exec.Command("mount", "-o", "remount,size=256m", dir).CombinedOutput(); err != nil {
		t.Fatalf("growing the tmpfs: %v %s", err, out)
	}
	s2 := startServer(t, serverOptions{dataDir: dir})
	checkAcked(t, s2, acked)
	s2.stop()
}
