package persistence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

func errorfsWrap(fs vfs.FS, inject func(errorfs.Op) error) vfs.FS {
	return errorfs.Wrap(fs, errorfs.InjectorFunc(inject))
}

// syncGate holds the next WAL sync after arm until release.
type syncGate struct {
	armed    atomic.Bool
	blocked  chan struct{}
	released chan struct{}
	once     sync.Once
	skip     atomic.Int32 // WAL syncs let through after arm before the one held
}

func newSyncGate() *syncGate {
	return &syncGate{blocked: make(chan struct{}), released: make(chan struct{})}
}

func (g *syncGate) arm()     { g.armed.Store(true) }
func (g *syncGate) release() { g.once.Do(func() { close(g.released) }) }

func (g *syncGate) inject(op errorfs.Op) error {
	if isWALSync(op) && g.armed.Load() && g.skip.Add(-1) >= 0 {
		return nil
	}
	if isWALSync(op) && g.armed.CompareAndSwap(true, false) {
		close(g.blocked)
		<-g.released
	}
	return nil
}

func (g *syncGate) waitBlocked(t *testing.T) {
	t.Helper()
	select {
	case <-g.blocked:
	case <-time.After(waitMax):
		t.Fatal("no WAL sync reached the gate")
	}
}

func isFailed(e Engine) bool {
	select {
	case <-e.Failed():
		return true
	default:
		return false
	}
}

// closeWithin closes e, failing the test if Close hangs.
func closeWithin(t *testing.T, e Engine) {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitMax):
		t.Fatal("Close hung")
	}
}

// A WAL sync error is fatal: the failing append and every later request fail
// with ErrUnavailable, the engine latches failed, and what was acknowledged
// before is on disk after a crash.
func TestPebbleSyncFailureIsFatal(t *testing.T) {
	mem := vfs.NewCrashableMem()
	var failing atomic.Bool
	fs := errorfsWrap(mem, func(op errorfs.Op) error {
		if failing.Load() && isWALSync(op) {
			return errorfs.ErrInjected
		}
		return nil
	})
	e, err := Open("db", Options{FS: fs, Logger: quiet, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := e.Store(1)
	for a := range 10 {
		mustAppend(t, s, "acked", uint64(2*a), 2, t0)
	}
	ids := identityStore(e, "email", "a@example.com")
	if _, err := ids.ClaimIdentity(ctx, "email", "a@example.com", "acked"); err != nil {
		t.Fatal(err)
	}

	failing.Store(true)
	// The failing append, and appends pipelined behind it.
	results := make(chan error, 5)
	for a := range 5 {
		prev := uint64(20 + a)
		s.Append(ctx, &AppendRequest{Customer: "acked", PrevSeq: prev, Events: events("acked", prev, 1, t0)}, func(err error) { results <- err })
	}
	for range 5 {
		select {
		case err := <-results:
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("append in a failed commit: %v, want ErrUnavailable", err)
			}
		case <-time.After(waitMax):
			t.Fatal("append not completed after the fault")
		}
	}
	if !isFailed(e) || e.Err() == nil {
		t.Fatalf("engine not latched failed: Err %v", e.Err())
	}
	failing.Store(false) // the latch, not the disk, refuses what follows
	if err := appendWait(t, s, &AppendRequest{Customer: "later", Events: events("later", 0, 1, t0)}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("append after the fault: %v", err)
	}
	if _, err := ids.ClaimIdentity(ctx, "email", "b@example.com", "later"); err == nil {
		t.Error("claim after the fault succeeded")
	}
	if _, _, err := s.Load(ctx, "acked"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("read after the fault: %v", err)
	}

	crashed := mem.CrashClone(vfs.CrashCloneCfg{}) // exactly what was synced
	closeWithin(t, e)
	e2 := openPebble(t, crashed, "db", Options{Partitions: 4})
	evs, err := e2.Store(1).Events(ctx, "acked", 0, 0)
	if err != nil || !slices.Equal(seqsOf(evs), seqRange(1, 20)) {
		t.Fatalf("after restart: seqs %v, %v; want the 20 acknowledged", seqsOf(evs), err)
	}
	if owner, _ := identityStore(e2, "email", "a@example.com").LookupIdentity(ctx, "email", "a@example.com"); owner != "acked" {
		t.Errorf("acknowledged claim lost: owner %q", owner)
	}
	mustAppend(t, e2.Store(1), "acked", 20, 1, t0)
}

// Options.FailSyncAfter: the binary's fault hook fails every WAL sync after
// the first n.
func TestPebbleFailSyncAfter(t *testing.T) {
	mem := vfs.NewCrashableMem()
	const n = 6
	e, err := Open("db", Options{FS: mem, Logger: quiet, Partitions: 2, FailSyncAfter: n})
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	for a := range 3 * n {
		err := appendWait(t, e.Store(0), &AppendRequest{Customer: "c", PrevSeq: uint64(a), Events: events("c", uint64(a), 1, t0)})
		if err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("append %d: %v", a, err)
			}
			break
		}
		acked++
	}
	if acked == 0 || acked >= n || !isFailed(e) {
		t.Fatalf("%d appends acknowledged before the hook failed a sync (hook after %d syncs); failed %v", acked, n, isFailed(e))
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	closeWithin(t, e)
	e2 := openPebble(t, crashed, "db", Options{Partitions: 2})
	if last, err := e2.Store(0).LastSeq(context.Background(), "c"); err != nil || last != uint64(acked) {
		t.Errorf("after restart: last seq %d, %v; %d were acknowledged", last, err, acked)
	}
}

// A full queue blocks Append until there is room; an append whose ctx ends
// first fails at once, before Append returns, and is not stored.
func TestPebbleQueueFull(t *testing.T) {
	gate := newSyncGate()
	// One request per group, so that what the writer holds is counted.
	e := openPebble(t, errorfsWrap(vfs.NewMem(), gate.inject), "db", Options{Partitions: 1, QueueLength: 1, BatchAppendsMax: 1})
	s := e.Store(0)
	ctx := context.Background()
	gate.arm()
	first := make(chan error, 1)
	s.Append(ctx, &AppendRequest{Customer: "c0", Events: events("c0", 0, 1, t0)}, func(err error) { first <- err })
	gate.waitBlocked(t)  // the completer waits for c0's sync
	defer gate.release() // a failure below must not leave the sync held
	// Then syncingMax-1 groups wait for the completer, one waits in the
	// writer's hands, and one in the queue: every Append below returns.
	held := syncingMax + 1
	rest := make(chan error, held)
	for i := range held {
		c := fmt.Sprintf("c%d", i+1)
		s.Append(ctx, &AppendRequest{Customer: c, Events: events(c, 0, 1, t0)}, func(err error) { rest <- err })
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	var refused error
	called := false
	s.Append(short, &AppendRequest{Customer: "late", Events: events("late", 0, 1, t0)}, func(err error) {
		called, refused = true, err
	})
	if !called || !errors.Is(refused, context.DeadlineExceeded) {
		t.Fatalf("append to a full queue: done called %v with %v", called, refused)
	}
	gate.release()
	if err := <-first; err != nil {
		t.Fatalf("the syncing append: %v", err)
	}
	for range held {
		if err := <-rest; err != nil {
			t.Fatalf("queued appends: %v", err)
		}
	}
	if last, _ := s.LastSeq(ctx, "late"); last != 0 {
		t.Error("the refused append was stored")
	}
}

// A request that Pebble commits as a large batch (half the memtable or
// more), which it empties as it applies it, is still acknowledged only
// once its sync is done.
func TestPebbleLargeBatchWaitsForItsSync(t *testing.T) {
	gate := newSyncGate()
	e := openPebble(t, errorfsWrap(vfs.NewMem(), gate.inject), "db", Options{Partitions: 1, MemTableSize: 1 << 20, BatchBytesMax: 256 << 10})
	s := e.Store(0)
	evs := events("big", 0, 1000, t0)
	for i := range evs {
		evs[i].Text = strings.Repeat("x", 700)
	}
	// The first WAL sync is the rotation's Pebble makes room with, inside
	// the apply; the second is the batch's own.
	gate.skip.Store(1)
	gate.arm()
	done := make(chan error, 1)
	s.Append(context.Background(), &AppendRequest{Customer: "big", Events: evs}, func(err error) { done <- err })
	gate.waitBlocked(t)
	defer gate.release()
	select {
	case err := <-done:
		t.Fatalf("the large append was answered (%v) while its sync was held", err)
	case <-time.After(100 * time.Millisecond):
	}
	gate.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastSeq(context.Background(), "big"); last != 1000 {
		t.Errorf("last seq %d, want 1000", last)
	}
}

// enospc is a full disk's error, as the OS gives it.
func enospc(path string) error {
	return &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
}

// A full disk under the WAL is fatal as a failed sync is: the append that
// hits it is refused, the engine latches failed, and every acknowledged
// event is there after a restart.
func TestPebbleDiskFullOnTheWAL(t *testing.T) {
	mem := vfs.NewCrashableMem()
	var full atomic.Bool
	fs := errorfsWrap(mem, func(op errorfs.Op) error {
		if full.Load() && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) && strings.HasSuffix(op.Path, ".log") {
			return enospc(op.Path)
		}
		return nil
	})
	e, err := Open("db", Options{FS: fs, Logger: quiet, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := e.Store(0)
	for a := range 10 {
		mustAppend(t, s, "c", uint64(a), 1, t0)
	}
	full.Store(true)
	if err := appendWait(t, s, &AppendRequest{Customer: "c", PrevSeq: 10, Events: events("c", 10, 1, t0)}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append on a full disk: %v, want ErrUnavailable", err)
	}
	// Pebble makes a failed WAL write fatal (its Fatalf, which the engine
	// latches with the message).
	if !isFailed(e) || !strings.Contains(e.Err().Error(), syscall.ENOSPC.Error()) {
		t.Fatalf("engine not latched failed with ENOSPC: %v", e.Err())
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	closeWithin(t, e)
	e2 := openPebble(t, crashed, "db", Options{Partitions: 2})
	if last, err := e2.Store(0).LastSeq(context.Background(), "c"); err != nil || last < 10 {
		t.Fatalf("after the restart: last seq %d, %v; 10 were acknowledged", last, err)
	}
}

// A full disk under a flush (an sstable that cannot be written) is fatal
// too: Pebble would retry it again and again while the memtables fill; the
// engine latches failed, and the WAL keeps what was acknowledged.
func TestPebbleDiskFullOnAnSSTable(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		t.Run(errno.Error(), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			var full atomic.Bool
			fs := errorfsWrap(mem, func(op errorfs.Op) error {
				if full.Load() && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) && strings.HasSuffix(op.Path, ".sst") {
					return &os.PathError{Op: "write", Path: op.Path, Err: errno}
				}
				return nil
			})
			e, err := Open("db", Options{FS: fs, Logger: quiet, Partitions: 2})
			if err != nil {
				t.Fatal(err)
			}
			s := e.Store(1)
			for a := range 20 {
				mustAppend(t, s, "c", uint64(a), 1, t0)
			}
			full.Store(true)
			// A flush, as a full memtable would start one.
			go func() { _ = e.(*pebbleEngine).db.Flush() }()
			select {
			case <-e.Failed():
			case <-time.After(waitMax):
				t.Fatal("the engine did not latch failed on a flush that cannot write")
			}
			if !errors.Is(e.Err(), errno) {
				t.Fatalf("latched with %v, want %v", e.Err(), errno)
			}
			if err := appendWait(t, s, &AppendRequest{Customer: "c", PrevSeq: 20, Events: events("c", 20, 1, t0)}); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("append after the disk failed: %v, want ErrUnavailable", err)
			}
			crashed := mem.CrashClone(vfs.CrashCloneCfg{})
			closeWithin(t, e)
			e2 := openPebble(t, crashed, "db", Options{Partitions: 2})
			if last, err := e2.Store(1).LastSeq(context.Background(), "c"); err != nil || last != 20 {
				t.Fatalf("after the restart: last seq %d, %v; 20 were acknowledged", last, err)
			}
		})
	}
}

// Options.DiskFullAfter: the binary's hook fills the disk after n WAL
// writes.
func TestPebbleDiskFullAfter(t *testing.T) {
	mem := vfs.NewCrashableMem()
	e, err := Open("db", Options{FS: mem, Logger: quiet, Partitions: 2, DiskFullAfter: 8})
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	for a := range 50 {
		if err := appendWait(t, e.Store(0), &AppendRequest{Customer: "c", PrevSeq: uint64(a), Events: events("c", uint64(a), 1, t0)}); err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("append %d: %v", a, err)
			}
			break
		}
		acked++
	}
	if acked == 0 || acked == 50 || !strings.Contains(e.Err().Error(), syscall.ENOSPC.Error()) {
		t.Fatalf("%d acknowledged, engine error %v; want some, then ENOSPC", acked, e.Err())
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	closeWithin(t, e)
	e2 := openPebble(t, crashed, "db", Options{Partitions: 2})
	if last, err := e2.Store(0).LastSeq(context.Background(), "c"); err != nil || last < uint64(acked) {
		t.Errorf("after the restart: last seq %d, %v; %d were acknowledged", last, err, acked)
	}
}
