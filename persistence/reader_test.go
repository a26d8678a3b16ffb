package persistence

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/throughline/throughline/journey"
)

// A Reader lists every customer once and streams their events; it refuses
// a dir the engine holds and a dir that is no store.
func TestReaderReadsAClosedDataDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e, err := Open(dir, Options{Partitions: 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "b", "c/1"} {
		mustAppend(t, e.Store(PartitionOf(c, 4)), c, 0, 3, t0)
	}
	// d's events are large enough for blob files (options.go), flushed.
	big := events("d", 0, 2, t0)
	for i := range big {
		big[i].Text = strings.Repeat("a long message ", 20)
	}
	if err := appendWait(t, e.Store(PartitionOf("d", 4)), &AppendRequest{Customer: "d", Events: big}); err != nil {
		t.Fatal(err)
	}
	if err := e.(*pebbleEngine).db.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReader(dir, quiet); !errors.Is(err, ErrInUse) {
		t.Fatalf("OpenReader beside the engine: %v, want ErrInUse", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReader(t.TempDir(), quiet); !errors.Is(err, ErrNotDataDir) {
		t.Fatalf("OpenReader of an empty dir: %v, want ErrNotDataDir", err)
	}
	r, err := OpenReader(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Partitions() != 4 {
		t.Fatalf("partitions %d", r.Partitions())
	}
	var customers []string
	if err := r.Customers(ctx, func(c string) bool { customers = append(customers, c); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(customers)
	if !slices.Equal(customers, []string{"a", "b", "c/1", "d"}) {
		t.Fatalf("customers %q", customers)
	}
	var texts []string
	if err := r.Events(ctx, "d", func(e journey.Event) bool { texts = append(texts, e.Text); return true }); err != nil ||
		len(texts) != 2 || texts[0] != big[0].Text || texts[1] != big[1].Text {
		t.Fatalf("d's events from blob files: %q, %v", texts, err)
	}
	var seqs []uint64
	err = r.Events(ctx, "c/1", func(e journey.Event) bool { seqs = append(seqs, e.Seq); return e.Seq < 2 })
	if err != nil || !slices.Equal(seqs, []uint64{1, 2}) {
		t.Fatalf("events %v, %v: want 1, 2 (fn stopped)", seqs, err)
	}
	n := 0
	if err := r.Customers(ctx, func(string) bool { n++; return false }); err != nil || n != 1 {
		t.Fatalf("stopped scan: %d customers, %v", n, err)
	}
	if err := errors.Join(r.Close(), r.Close()); err != nil {
		t.Fatal(err)
	}
}

// A cluster node's data dir (a partition with a raft state) is refused.
func TestReaderRefusesAReplicatedDataDir(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, Options{Partitions: 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.(*pebbleEngine).db.Set(appliedKey(2), make([]byte, 16), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := OpenReader(dir, quiet); !errors.Is(err, ErrReplicated) {
		if r != nil {
			_ = r.Close()
		}
		t.Fatalf("OpenReader: %v, want ErrReplicated", err)
	}
	// The refusal released the lock: the node can open its dir again.
	e, err = Open(dir, Options{Partitions: 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	_ = e.Close()
}
