package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

var quiet = slog.New(slog.DiscardHandler)

// openPebble opens dir on fs and closes it at the end of the test.
func openPebble(t *testing.T, fs vfs.FS, dir string, opts Options) Engine {
	t.Helper()
	opts.FS, opts.Logger = fs, quiet
	e, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestPebbleMemFSConformance(t *testing.T) {
	runConformance(t, func(t *testing.T, partitions int) Engine {
		return openPebble(t, vfs.NewMem(), "db", Options{Partitions: partitions})
	})
}

func TestPebbleDiskConformance(t *testing.T) {
	runConformance(t, func(t *testing.T, partitions int) Engine {
		return openPebble(t, vfs.Default, t.TempDir(), Options{Partitions: partitions})
	})
}

// Reopening a directory keeps every kind of data, and the writer, starting
// with an empty seq map, still checks seqs against what is stored.
func TestPebbleReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e, err := Open(dir, Options{Partitions: 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p := PartitionOf("c", 4)
	s := e.Store(p)
	req := &AppendRequest{Customer: "c", Events: events("c", 0, 3, t0),
		DueAdd: []DueWork{{At: t0.Add(time.Hour), Customer: "c", Kind: "offer", Ref: "o"}}}
	if err := appendWait(t, s, req); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, "c", &Snapshot{Seq: 2, Data: []byte("s2")}); err != nil {
		t.Fatal(err)
	}
	ids := identityStore(e, "email", "c@example.com")
	if _, err := ids.ClaimIdentity(ctx, "email", "c@example.com", "c"); err != nil {
		t.Fatal(err)
	}
	appendTyped(t, s, "gone", "t", t0)
	if err := s.Erase(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openPebble(t, vfs.Default, dir, Options{Partitions: 4})
	s = e.Store(p)
	snap, evs, err := s.Load(ctx, "c")
	if err != nil || snap == nil || snap.Seq != 2 || string(snap.Data) != "s2" || !slices.Equal(seqsOf(evs), []uint64{3}) {
		t.Fatalf("after reopen: snapshot %+v, seqs %v, %v", snap, seqsOf(evs), err)
	}
	if owner, _ := identityStore(e, "email", "c@example.com").LookupIdentity(ctx, "email", "c@example.com"); owner != "c" {
		t.Errorf("identity after reopen: %q", owner)
	}
	if refs := dueRefs(scanDue(t, s, t0.Add(2*time.Hour))); !slices.Equal(refs, []string{"o"}) {
		t.Errorf("due work after reopen: %v", refs)
	}
	if got := scanSegment(t, s, "message.received", t0, t0.Add(time.Hour)); !slices.Equal(got, []string{"c"}) {
		t.Errorf("segment after reopen: %v", got)
	}
	if _, _, erased, _ := s.LookupEvent(ctx, "gone", "gone-t-1000"); !erased {
		t.Error("tombstone lost on reopen")
	}
	if err := appendWait(t, s, &AppendRequest{Customer: "c", PrevSeq: 0, Events: events("c", 0, 1, t0)}); !errors.Is(err, ErrConflict) {
		t.Errorf("stale append after reopen: %v", err)
	}
	mustAppend(t, s, "c", 3, 1, t0)
}

func TestPebblePartitionCountMismatch(t *testing.T) {
	fs := vfs.NewMem()
	e, err := Open("db", Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if e.Partitions() != DefaultPartitions {
		t.Errorf("default partitions %d", e.Partitions())
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open("db", Options{FS: fs, Logger: quiet, Partitions: 32})
	if !errors.Is(err, ErrPartitionCount) || !strings.Contains(err.Error(), "64") || !strings.Contains(err.Error(), "32") {
		t.Fatalf("reopen with 32 partitions: %v", err)
	}
	// The failed open released the directory: the right count opens it.
	openPebble(t, fs, "db", Options{Partitions: 64})
}

func TestOptionsValidate(t *testing.T) {
	var o Options
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if o.Partitions != 64 || o.QueueLength != 8192 || o.MemTableSize != 64<<20 || o.FS == nil || o.Logger == nil {
		t.Errorf("defaults: %+v", o)
	}
	bad := Options{Partitions: PartitionsMax + 1, QueueLength: -1, BatchAppendsMax: -1, BatchBytesMax: 40 << 20, FailSyncAfter: -1}
	bad.EnsureDefaults()
	err := bad.Validate()
	for _, want := range []string{"partitions", "queue length", "batch appends", "batch bytes", "fail sync"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate does not report %q: %v", want, err)
		}
	}
	if _, err := Open("db", Options{FS: vfs.NewMem(), Partitions: -3}); err == nil {
		t.Error("Open with -3 partitions succeeded")
	}
}

// The sanity run: many customers' appends through the group-commit writer,
// all readable afterwards.
func TestPebbleManyEvents(t *testing.T) {
	e := openPebble(t, vfs.NewMem(), "db", Options{})
	const customers, appends, perAppend = 64, 63, 5 // 20160 events
	var failed atomic.Int32
	var wg sync.WaitGroup
	wg.Add(customers * appends)
	for c := range customers {
		go func() {
			name := fmt.Sprintf("bulk-%d", c)
			s := e.Store(PartitionOf(name, e.Partitions()))
			for a := range appends {
				prev := uint64(a * perAppend)
				evs := events(name, prev, perAppend, t0)
				for i := range evs {
					evs[i].Text = strings.Repeat("x", 200)
				}
				s.Append(context.Background(), &AppendRequest{Customer: name, PrevSeq: prev, Events: evs}, func(err error) {
					if err != nil {
						failed.Add(1)
					}
					wg.Done()
				})
			}
		}()
	}
	waitGroup(t, &wg)
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d appends failed", n)
	}
	for c := range customers {
		name := fmt.Sprintf("bulk-%d", c)
		evs, err := e.Store(PartitionOf(name, e.Partitions())).Events(context.Background(), name, 0, 0)
		if err != nil || !slices.Equal(seqsOf(evs), seqRange(1, appends*perAppend)) {
			t.Fatalf("%s: %d events, %v", name, len(evs), err)
		}
	}
	st := e.Stats()
	if st.Events != customers*appends*perAppend || st.Commits == 0 || st.Commits > st.Appends {
		t.Errorf("Stats %+v", st)
	}
}

// The blob metrics see what blob files hold: two customers' snapshots
// (values over valueSeparationMin) flushed into one blob file, then one of
// them overwritten, leave its first bytes in a live blob file, unreferenced
// once a compaction drops the key that pointed there.
func TestPebbleBlobMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := openPebble(t, vfs.NewMem(), "db", Options{Registerer: reg})
	db := e.(*pebbleEngine).db
	blob := func() (values, referenced float64) {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			switch f.GetName() {
			case "throughline_store_blob_value_bytes":
				values = f.GetMetric()[0].GetGauge().GetValue()
			case "throughline_store_blob_referenced_bytes":
				referenced = f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return values, referenced
	}
	if v, r := blob(); v != 0 || r != 0 {
		t.Fatalf("empty store: blob values %v, referenced %v", v, r)
	}
	const size = 4 * valueSeparationMin
	save := func(customer string, seq uint64) {
		t.Helper()
		data := []byte(strings.Repeat(customer, size))
		if err := e.Store(0).SaveSnapshot(context.Background(), customer, &Snapshot{Seq: seq, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	save("a", 1)
	save("b", 1)
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	save("a", 2)
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if v, r := blob(); v < 3*size || r != v {
		t.Errorf("three snapshots flushed: blob values %v, referenced %v; want both at least %d", v, r, 3*size)
	}
	if err := db.Compact(context.Background(), []byte{0}, []byte{0xff, 0xff, 0xff}, true); err != nil {
		t.Fatal(err)
	}
	if v, r := blob(); r < 2*size || r > v-size {
		t.Errorf("after a compaction: blob values %v, referenced %v; want a's first %d bytes unreferenced", v, r, size)
	}
}

// Metrics are registered under their names and count commits; a closed
// engine's metrics leave the registry.
func TestPebbleMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	fs := vfs.NewMem()
	e := openPebble(t, fs, "db", Options{Registerer: reg})
	mustAppend(t, e.Store(0), "c", 0, 3, t0)
	if err := e.(*pebbleEngine).db.Flush(); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := make(map[string]bool)
	for _, f := range families {
		found[f.GetName()] = true
		switch f.GetName() {
		case "throughline_store_flushed_bytes_total", "throughline_store_wal_bytes_total",
			"throughline_store_read_amplification", "throughline_store_l0_sublevels":
			m := f.GetMetric()[0]
			if v := m.GetGauge().GetValue() + m.GetCounter().GetValue(); v <= 0 { // the flush made one sstable in L0
				t.Errorf("%s = %v after a flush", f.GetName(), v)
			}
		}
		if f.GetName() == "throughline_store_commits_total" && f.GetMetric()[0].GetCounter().GetValue() < 1 {
			t.Error("commits_total did not count the commit")
		}
		if f.GetName() == "throughline_store_batch_events" && f.GetMetric()[0].GetHistogram().GetSampleSum() < 3 {
			t.Error("batch_events did not count the events")
		}
		if f.GetName() == "throughline_store_queue_seconds" && f.GetMetric()[0].GetHistogram().GetSampleCount() != 1 {
			t.Errorf("queue_seconds counted %d appends' waits, want 1", f.GetMetric()[0].GetHistogram().GetSampleCount())
		}
	}
	for _, name := range []string{"throughline_store_batch_events", "throughline_store_sync_seconds", "throughline_store_queue_seconds",
		"throughline_store_commits_total", "throughline_store_write_stalls_total", "throughline_store_write_stall_seconds_total",
		"throughline_store_compaction_debt_bytes", "throughline_store_compactions_running", "throughline_store_compaction_seconds_total",
		"throughline_store_compacted_bytes_total", "throughline_store_flushed_bytes_total", "throughline_store_l0_sublevels",
		"throughline_store_wal_bytes_total", "throughline_store_read_amplification", "throughline_store_blob_rewrites_total",
		"throughline_store_blob_value_bytes", "throughline_store_blob_referenced_bytes"} {
		if !found[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
	if _, err := Open("db2", Options{FS: fs, Logger: quiet, Registerer: reg}); err == nil {
		t.Error("a second engine registered the same metrics")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	openPebble(t, fs, "db2", Options{Registerer: reg})
}

// The writer batches what arrives while a sync is in flight into one commit,
// and appends of one customer in that batch chain.
func TestPebbleGroupCommit(t *testing.T) {
	gate := newSyncGate()
	fs := errorfsWrap(vfs.NewMem(), gate.inject)
	e := openPebble(t, fs, "db", Options{Partitions: 2})
	s := e.Store(0)
	gate.arm()
	first := make(chan error, 1)
	s.Append(context.Background(), &AppendRequest{Customer: "first", Events: events("first", 0, 1, t0)}, func(err error) { first <- err })
	gate.waitBlocked(t)
	defer gate.release()

	// The first commit's sync is held: queue a chain of one customer, a
	// conflicting append and other customers' appends. The writer applies
	// up to syncingMax groups without their syncs; the rest wait queued
	// and then form one group.
	const chain = 50
	var mu sync.Mutex
	var order []int
	errs := make(map[int]error)
	var wg sync.WaitGroup
	queue := func(i int, req *AppendRequest) {
		wg.Add(1)
		s.Append(context.Background(), req, func(err error) {
			mu.Lock()
			order = append(order, i)
			errs[i] = err
			mu.Unlock()
			wg.Done()
		})
	}
	for i := range chain {
		queue(i, &AppendRequest{Customer: "chain", PrevSeq: uint64(2 * i), Events: events("chain", uint64(2*i), 2, t0)})
	}
	queue(chain, &AppendRequest{Customer: "chain", PrevSeq: 7, Events: events("chain", 7, 1, t0)})
	for i := range 20 {
		c := fmt.Sprintf("o-%d", i)
		queue(chain+1+i, &AppendRequest{Customer: c, Events: events(c, 0, 1, t0)})
	}
	commitsBefore := e.Stats().Commits
	gate.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	waitGroup(t, &wg)
	if !slices.Equal(order, seqRange0(chain+21)) {
		t.Errorf("done order %v", order)
	}
	for i, err := range errs {
		if (i == chain) != errors.Is(err, ErrConflict) || (i != chain && err != nil) {
			t.Errorf("append %d: %v", i, err)
		}
	}
	if got := e.Stats().Commits - commitsBefore; got > syncingMax+2 {
		t.Errorf("%d commits for the first append and the %d queued behind it, want at most %d", got, chain+21, syncingMax+2)
	}
	if last, _ := s.LastSeq(context.Background(), "chain"); last != 2*chain {
		t.Errorf("chain's last seq %d, want %d", last, 2*chain)
	}
}

func seqRange0(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestPebbleLoggerFatalfNeverReturns(t *testing.T) {
	var latched error
	l := pebbleLogger{log: quiet, onFatal: func(err error) { latched = err }}
	err := recoverFatal(func() error {
		l.Fatalf("disk on fire: %d", 7)
		t.Error("Fatalf returned")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "disk on fire: 7") || latched == nil {
		t.Errorf("Fatalf: recovered %v, latched %v", err, latched)
	}
	if !panics(func() { _ = recoverFatal(func() error { panic("other") }) }) {
		t.Error("recoverFatal swallowed a panic that is not Fatalf's")
	}
}

// Flushing is true from Pebble's FlushBegin to its FlushEnd, and false
// once a real flush has ended.
func TestFlushingFollowsPebblesFlushes(t *testing.T) {
	e, err := Open("db", Options{FS: vfs.NewMem(), Logger: quiet, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pe := e.(*pebbleEngine)
	l := eventListener(quiet, nil, &pe.counters, func(error) {})
	if e.Flushing() {
		t.Fatal("flushing before any flush")
	}
	l.FlushBegin(pebble.FlushInfo{})
	if !e.Flushing() {
		t.Fatal("not flushing after FlushBegin")
	}
	l.FlushEnd(pebble.FlushInfo{})
	mustAppend(t, e.Store(0), "c", 0, 1, time.Now())
	if err := pe.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if e.Flushing() {
		t.Fatal("still flushing after the flushes ended")
	}
}

// While elastic work runs, the WAL's syncs are walMinSyncIntervalElastic
// apart; once it has all ended, walMinSyncInterval again.
func TestElasticWorkSpacesSyncs(t *testing.T) {
	e, err := Open("db", Options{FS: vfs.NewMem(), Logger: quiet, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	interval := e.(*pebbleEngine).syncInterval // Pebble's WALMinSyncInterval (Open)
	for _, step := range []struct {
		delta int
		want  time.Duration
	}{
		{0, walMinSyncInterval},
		{1, walMinSyncIntervalElastic},
		{1, walMinSyncIntervalElastic}, // two broadcasts
		{-1, walMinSyncIntervalElastic},
		{-1, walMinSyncInterval},
	} {
		e.Elastic(step.delta)
		if got := interval(); got != step.want {
			t.Fatalf("after Elastic(%d): WAL syncs %v apart, want %v", step.delta, got, step.want)
		}
	}
	if walMinSyncIntervalElastic <= walMinSyncInterval {
		t.Fatal("elastic work does not space syncs further")
	}
}

// An event's value of valueSeparationMin bytes or more is flushed to a blob
// file (options.go) and reads back whole from it, after a compaction that
// moves its key and after a reopen.
func TestEventValuesLiveInBlobFiles(t *testing.T) {
	fs := vfs.NewMem()
	e := openPebble(t, fs, "db", Options{})
	s := e.Store(0)
	text := strings.Repeat("the payment failed at checkout; ", 8) // an event of ~300 bytes stored
	evs := events("c", 0, 20, t0)
	for i := range evs {
		evs[i].Text = text
	}
	if err := appendWait(t, s, &AppendRequest{Customer: "c", Events: evs}); err != nil {
		t.Fatal(err)
	}
	db := e.(*pebbleEngine).db
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := db.Metrics().BlobFiles.LiveCount; n == 0 {
		t.Fatal("no blob file after flushing events of ~300 bytes")
	}
	check := func(when string, s Store) {
		t.Helper()
		got, err := s.Events(context.Background(), "c", 0, 0)
		if err != nil || len(got) != len(evs) {
			t.Fatalf("%s: %d events, %v", when, len(got), err)
		}
		for i, ev := range got {
			if ev.Text != text || ev.Seq != evs[i].Seq || ev.ID != evs[i].ID {
				t.Fatalf("%s: event %d read back as %+v", when, i, ev)
			}
		}
	}
	check("flushed", s)
	if err := db.Compact(context.Background(), []byte{0}, []byte{0xff, 0xff}, true); err != nil {
		t.Fatal(err)
	}
	check("compacted", s)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openPebble(t, fs, "db", Options{})
	check("reopened", e.Store(0))
}

// The writer remembers at most LastSeqsMax customers' last seqs. With room
// for every customer it reads each one's last seq from Pebble once; with
// less, again after each time it forgot them, and the seq check stays
// exact: a stale append is still a conflict, and nothing is stored twice.
func TestWriterRemembersAtMostLastSeqsMax(t *testing.T) {
	const customers, rounds = 10, 4
	for _, remembered := range []int{64, 4} {
		e := openPebble(t, vfs.NewMem(), "db", Options{Partitions: 1, LastSeqsMax: remembered})
		s := e.Store(0)
		for r := range rounds {
			for c := range customers {
				mustAppend(t, s, fmt.Sprintf("c%d", c), uint64(r), 1, t0)
			}
		}
		reads := e.Stats().SeqReads
		if remembered >= customers && reads != customers {
			t.Errorf("LastSeqsMax %d: %d seq reads for %d customers, want one each", remembered, reads, customers)
		}
		if remembered < customers && reads <= customers {
			t.Errorf("LastSeqsMax %d: %d seq reads for %d customers, want more than one each", remembered, reads, customers)
		}
		for c := range customers {
			name := fmt.Sprintf("c%d", c)
			err := appendWait(t, s, &AppendRequest{Customer: name, PrevSeq: rounds - 1, Events: events(name, rounds-1, 1, t0)})
			if !errors.Is(err, ErrConflict) {
				t.Errorf("LastSeqsMax %d: stale append of %s: %v, want ErrConflict", remembered, name, err)
			}
			if last, err := s.LastSeq(context.Background(), name); err != nil || last != rounds {
				t.Errorf("LastSeqsMax %d: %s's last seq %d (%v), want %d", remembered, name, last, err, rounds)
			}
		}
	}
	// Chained appends in flight at once (groups of many customers, more
	// than it remembers): each one's PrevSeq is the one before's last seq,
	// which no group may forget before it commits.
	e := openPebble(t, vfs.NewMem(), "db", Options{Partitions: 1, LastSeqsMax: 2})
	s := e.Store(0)
	errs := make(chan error, customers*rounds)
	for r := range rounds {
		for c := range customers {
			name := fmt.Sprintf("q%d", c)
			s.Append(context.Background(), &AppendRequest{Customer: name, PrevSeq: uint64(r), Events: events(name, uint64(r), 1, t0)}, func(err error) { errs <- err })
		}
	}
	for range customers * rounds {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("chained append in flight, LastSeqsMax 2: %v", err)
			}
		case <-time.After(waitMax):
			t.Fatal("append not completed")
		}
	}
	bad := Options{LastSeqsMax: LastSeqsMaxMax + 1}
	bad.EnsureDefaults()
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "last seqs max") {
		t.Errorf("LastSeqsMax past its bound: %v", err)
	}
}

// Each look-up of an event id that reaches the store is timed in
// throughline_store_id_lookup_seconds, found or not; one refused for a
// malformed id (over the key part limit) reads nothing and is not.
func TestIDLookupMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := openPebble(t, vfs.NewMem(), "db", Options{Registerer: reg})
	s := e.Store(0)
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	if err := appendWait(t, s, &AppendRequest{Customer: "c", Events: events("c", 0, 2, t0)}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"c-e1", "never-sent"} {
		if _, _, _, err := s.LookupEvent(ctx, "c", id); err != nil {
			t.Fatalf("look-up of %q: %v", id, err)
		}
	}
	if _, _, _, err := s.LookupEvent(ctx, "c", strings.Repeat("x", keyPartMax+1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a look-up of an id over the key part limit: %v, want ErrInvalid", err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	for _, f := range families {
		if f.GetName() == "throughline_store_id_lookup_seconds" {
			count = f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if count != 2 {
		t.Fatalf("throughline_store_id_lookup_seconds counts %d look-ups, want 2", count)
	}
}
