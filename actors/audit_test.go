package actors

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/persistence"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func auditKeys(t *testing.T, engine persistence.Engine) int {
	t.Helper()
	n := 0
	if err := engine.Store(auditPartition).ScanRecords(context.Background(), auditCollection, "", func(string, []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

// Entries read back oldest first, the last limit at or after since; the
// count bound deletes the oldest, and entries past the retention go.
func TestAuditLogIsOrderedAndBounded(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	rt, engine := startTest(t, Config{Now: clock.Now, AuditMax: 5, AuditRetention: time.Hour})
	ctx := context.Background()
	start := clock.Now()
	for i := range 8 {
		if err := rt.Audit(ctx, AuditEntry{Token: "ops", Role: "admin", Action: "export", Target: fmt.Sprintf("c-%d", i), Result: "ok"}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			clock.Add(time.Second) // two entries share a time: the counter orders them
		}
	}
	if n := auditKeys(t, engine); n != 5 {
		t.Fatalf("%d entries stored, want the bound 5", n)
	}
	got, err := rt.AuditEntries(ctx, start, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Target != "c-5" || got[2].Target != "c-7" {
		t.Fatalf("last 3 entries: %+v, want c-5..c-7 oldest first", got)
	}
	got, _ = rt.AuditEntries(ctx, start.Add(3*time.Second), 100)
	if len(got) != 2 || got[0].Target != "c-6" {
		t.Fatalf("entries since +3s: %+v, want c-6, c-7", got)
	}

	clock.Add(2 * time.Hour) // past the retention: unread, and swept by the next write
	if got, _ := rt.AuditEntries(ctx, start, 100); len(got) != 0 {
		t.Fatalf("entries past the retention read back: %+v", got)
	}
	if err := rt.Audit(ctx, AuditEntry{Action: "erase", Target: "c-9", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if n := auditKeys(t, engine); n != 1 {
		t.Fatalf("%d entries stored after the sweep, want 1", n)
	}
}
