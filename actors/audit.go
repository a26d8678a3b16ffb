package actors

// The audit log (PROTOCOL 3 GET /v1/audit): who exported, erased,
// broadcast, resolved, cancelled, patched a profile as a supervisor, or was
// refused an admin request. Entries are records of partition 0's store
// (node-level documents), keyed by time and a counter so a scan reads them
// oldest first, and bounded twice: by age (AuditRetention) and by count
// (AuditMax), the oldest deleted in the batch that writes a new one.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/throughline/throughline/persistence"
)

// Audit log limits and defaults.
const (
	AuditRetentionDefault = 30 * 24 * time.Hour
	AuditMaxDefault       = 100_000
	AuditMaxLimit         = 10_000_000 // the largest AuditMax a config may set
	// AuditSweepMax bounds the old entries one write deletes; a backlog
	// (after the retention was shortened) goes over the next writes.
	AuditSweepMax = 1000
	// AuditReadMax bounds the entries one read returns.
	AuditReadMax = 1000

	auditPartition  = 0
	auditCollection = "audit"
)

// AuditEntry is one line of the audit log. Token is the token's configured
// name, else its role; never the token itself.
type AuditEntry struct {
	Time   time.Time `json:"time"`
	Token  string    `json:"token"`
	Role   string    `json:"role"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Result string    `json:"result"`
}

// auditLog writes and reads the entries; its methods are safe for
// concurrent use (one mutex: writes are rare and each is one synced batch).
type auditLog struct {
	rt        *Runtime
	retention time.Duration
	max       int

	mu struct {
		sync.Mutex
		count     int    // entries stored; -1 until counted
		last      string // the newest key written
		seq       uint32 // counter of keys within one nanosecond
		sweptTo   string // every key up to it is deleted: scans start after it
		lastSweep time.Time
	}
}

func newAuditLog(rt *Runtime, retention time.Duration, max int) *auditLog {
	a := &auditLog{rt: rt, retention: retention, max: max}
	a.mu.count = -1
	return a
}

// forget drops what the log knows of its store (the count of entries): a
// node that leads the audit partition again recounts, as other nodes may
// have written meanwhile.
func (a *auditLog) forget() {
	a.mu.Lock()
	a.mu.count = -1
	a.mu.Unlock()
}

// auditKey sorts by time, then by counter, in byte order.
func auditKey(t time.Time, seq uint32) string {
	return fmt.Sprintf("%016x%08x", uint64(t.UnixNano()), seq)
}

func (a *auditLog) store() persistence.Store { return a.rt.engine.Store(auditPartition) }

// Audit records an entry durably; an error means it was not stored. Its
// Time is set to now.
//
// In a cluster the log lives in auditPartition's store: a node that does
// not lead that partition forwards the entry (and reads) to the one that
// does.
func (r *Runtime) Audit(ctx context.Context, e AuditEntry) error {
	if r.cd != nil && r.hostOf(auditPartition) == nil {
		var ok bool
		return r.forwardRead(auditPartition, fwdAuditWrite, e, &ok)
	}
	return r.audit.write(ctx, e)
}

// AuditEntries returns the last limit entries recorded at or after since
// (and within the retention), oldest first; limit is capped at
// AuditReadMax.
func (r *Runtime) AuditEntries(ctx context.Context, since time.Time, limit int) ([]AuditEntry, error) {
	if r.cd != nil && r.hostOf(auditPartition) == nil {
		var entries []AuditEntry
		err := r.forwardRead(auditPartition, fwdAuditRead, auditReadBody{Since: since, Limit: limit}, &entries)
		return entries, err
	}
	return r.audit.read(ctx, since, limit)
}

// auditReadBody is a forwarded read of the audit log.
type auditReadBody struct {
	Since time.Time `json:"since"`
	Limit int       `json:"limit"`
}

func (a *auditLog) write(ctx context.Context, e AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.count < 0 {
		if err := a.countLocked(ctx); err != nil {
			return err
		}
	}
	now := a.rt.cfg.Now().UTC()
	e.Time = now
	key := auditKey(now, 0)
	if key <= a.mu.last {
		a.mu.seq++
		key = a.mu.last[:16] + fmt.Sprintf("%08x", a.mu.seq)
	} else {
		a.mu.seq = 0
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	deletes, err := a.oldLocked(ctx, now)
	if err != nil {
		return err
	}
	if err := a.store().WriteRecords(ctx, auditCollection, []persistence.Record{{Key: key, Value: v}}, deletes); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	a.mu.last = key
	a.mu.count += 1 - len(deletes)
	if len(deletes) > 0 {
		a.mu.sweptTo = deletes[len(deletes)-1]
	}
	return nil
}

// countLocked counts the stored entries, once per process.
func (a *auditLog) countLocked(ctx context.Context) error {
	n, last := 0, ""
	err := a.store().ScanRecords(ctx, auditCollection, "", func(k string, _ []byte) bool {
		n++
		last = k
		return true
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	a.mu.count, a.mu.last = n, last
	return nil
}

// auditSweepEvery is how often a write looks for entries past the
// retention; the count bound is kept at every write.
const auditSweepEvery = time.Minute

// oldLocked lists the oldest keys to delete with the next write: as many as
// keep the count within max, and, once a minute, those past the retention,
// at most AuditSweepMax in all.
func (a *auditLog) oldLocked(ctx context.Context, now time.Time) ([]string, error) {
	over := a.mu.count + 1 - a.max
	sweep := now.Sub(a.mu.lastSweep) >= auditSweepEvery
	if over <= 0 && !sweep {
		return nil, nil
	}
	if sweep {
		a.mu.lastSweep = now
	}
	cutoff := auditKey(now.Add(-a.retention), 0)
	var keys []string
	err := a.store().ScanRecords(ctx, auditCollection, a.mu.sweptTo, func(k string, _ []byte) bool {
		if len(keys) >= over && (!sweep || k >= cutoff) {
			return false
		}
		keys = append(keys, k)
		return len(keys) < AuditSweepMax
	})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return keys, nil
}

func (a *auditLog) read(ctx context.Context, since time.Time, limit int) ([]AuditEntry, error) {
	limit = min(max(limit, 1), AuditReadMax)
	if floor := a.rt.cfg.Now().Add(-a.retention); since.Before(floor) {
		since = floor
	}
	from := auditKey(since, 0)
	after := auditKey(since.Add(-time.Nanosecond), math.MaxUint32) // the last key before from
	a.mu.Lock()
	after = max(after, a.mu.sweptTo)
	a.mu.Unlock()
	ring := make([]AuditEntry, 0, limit)
	head := 0 // when full, the oldest entry kept
	var decodeErr error
	err := a.store().ScanRecords(ctx, auditCollection, after, func(k string, v []byte) bool {
		if k < from {
			return true
		}
		var e AuditEntry
		if decodeErr = json.Unmarshal(v, &e); decodeErr != nil {
			return false
		}
		if len(ring) < limit {
			ring = append(ring, e)
		} else {
			ring[head] = e
			head = (head + 1) % limit
		}
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return append(ring[head:], ring[:head]...), nil
}
