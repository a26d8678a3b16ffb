package actors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throughline/throughline/cluster"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

func startTest(t *testing.T, cfg Config) (*Runtime, persistence.Engine) {
	t.Helper()
	engine := persistence.NewMemory(8)
	return startTestOn(t, cfg, engine), engine
}

// startTestOn starts a runtime on engine, stopped and closed at the end.
func startTestOn(t *testing.T, cfg Config, engine persistence.Engine) *Runtime {
	t.Helper()
	rt, err := Start(cfg, engine)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		_ = engine.Close()
	})
	return rt
}

// ingest sends one event and waits for its answer.
func ingest(t *testing.T, rt *Runtime, customer, id string) Result {
	t.Helper()
	ch := make(chan Result, 1)
	e := journey.Event{ID: id, Customer: customer, Text: "hello"}
	if rej := journey.ValidateInbound(&e); rej != nil {
		t.Fatal(rej)
	}
	rt.Ingest(customer, journey.Inbound{Event: e}, func(r Result) { ch <- r })
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer for %s", id)
		return Result{}
	}
}

func TestIngestPipelinedAcksInSeqOrder(t *testing.T) {
	rt, engine := startTest(t, Config{})
	const n = 500
	results := make(chan Result, n)
	for i := 0; i < n; i++ {
		e := journey.Event{ID: fmt.Sprintf("e-%d", i), Customer: "c-1", Text: "hi"}
		_ = journey.ValidateInbound(&e)
		rt.Ingest("c-1", journey.Inbound{Event: e}, func(r Result) { results <- r })
	}
	for i := 0; i < n; i++ {
		r := <-results
		if r.Reject != nil {
			t.Fatalf("event %d rejected: %v", i, r.Reject)
		}
		if r.Ack.Seq != uint64(i+1) || r.Ack.ID != fmt.Sprintf("e-%d", i) {
			t.Fatalf("answer %d = %+v, want seq %d for e-%d", i, r.Ack, i+1, i)
		}
	}
	// Every acknowledged event is in the store.
	events, err := engine.Store(rt.PartitionOf("c-1")).Events(context.Background(), "c-1", 0, n+1)
	if err != nil || len(events) != n {
		t.Fatalf("stored %d events (%v), want %d", len(events), err, n)
	}
	// A repeat answers the first seq.
	if r := ingest(t, rt, "c-1", "e-7"); r.Ack == nil || !r.Ack.Duplicate || r.Ack.Seq != 8 {
		t.Fatalf("duplicate answered %+v", r)
	}
}

// A customer that passivates while events keep arriving loses none: every
// event is acknowledged once, with gapless seqs, across many activations.
func TestPassivationHandshakeLosesNothing(t *testing.T) {
	rt, engine := startTest(t, Config{IdleTimeout: 2 * time.Millisecond})
	const n = 300
	for i := 0; i < n; i++ {
		r := ingest(t, rt, "c-p", fmt.Sprintf("p-%d", i))
		if r.Reject != nil || r.Ack.Seq != uint64(i+1) {
			t.Fatalf("event %d: %+v %v", i, r.Ack, r.Reject)
		}
		if i%3 == 0 {
			time.Sleep(3 * time.Millisecond) // let the idle timeout start a handshake
		}
	}
	if a := rt.Activations.Load(); a < 5 {
		t.Fatalf("only %d activations: the handshake was not exercised", a)
	}
	last, err := engine.Store(rt.PartitionOf("c-p")).LastSeq(context.Background(), "c-p")
	if err != nil || last != n {
		t.Fatalf("last seq %d (%v), want %d", last, err, n)
	}
	// Duplicates are still recognized after reactivation from a snapshot.
	if r := ingest(t, rt, "c-p", "p-0"); r.Ack == nil || !r.Ack.Duplicate || r.Ack.Seq != 1 {
		t.Fatalf("duplicate after reactivation answered %+v %v", r.Ack, r.Reject)
	}
}

func TestContextShowsDurableStateAfterReactivation(t *testing.T) {
	rt, _ := startTest(t, Config{IdleTimeout: 5 * time.Millisecond})
	done := make(chan Result, 1)
	rt.PatchProfile("c-x", journey.ProfilePatch{ID: "p1", Patch: []byte(`{"tier":"vip","consent":{"sms":true}}`)},
		func(r Result, _ map[string]any) { done <- r })
	if r := <-done; r.Reject != nil {
		t.Fatal(r.Reject)
	}
	ingest(t, rt, "c-x", "m-1")
	waitFor(t, func() bool { return rt.ActiveCustomers.Load() == 0 }, "customer passivated")
	c, exists, err := rt.Context(context.Background(), "c-x")
	if err != nil || !exists {
		t.Fatalf("context: %v exists=%v", err, exists)
	}
	if c.Seq != 2 || c.Profile["tier"] != "vip" || len(c.Timeline) != 2 || c.Timeline[1].ID != "m-1" {
		t.Fatalf("context after reactivation = %+v", c)
	}
	if _, exists, _ := rt.Context(context.Background(), "nobody"); exists {
		t.Fatal("an unknown customer exists")
	}
}

func TestResolveStitchesIdentities(t *testing.T) {
	rt, _ := startTest(t, Config{})
	ctx := context.Background()
	resolve := func(ids map[string]string) (string, []journey.IdentityRef) {
		e := journey.Event{ID: "x", Identity: ids, Text: "t"}
		if rej := journey.ValidateInbound(&e); rej != nil {
			t.Fatal(rej)
		}
		c, linked, err := rt.Resolve(ctx, &e)
		if err != nil {
			t.Fatal(err)
		}
		return c, linked
	}
	a, _ := resolve(map[string]string{"email": "Ana@Example.com"})
	b, linked := resolve(map[string]string{"email": "ana@example.com", "phone": "+1 (555) 123-0000"})
	c, _ := resolve(map[string]string{"phone": "+15551230000"})
	d, _ := resolve(map[string]string{"whatsapp": "15551230000"})
	if a != b || b != c || c != d {
		t.Fatalf("one person became %s, %s, %s, %s", a, b, c, d)
	}
	if len(linked) != 2 {
		t.Fatalf("linked %v, want email and phone", linked)
	}
	// With a customer id, an identity of another customer stays where it is.
	e := journey.Event{ID: "y", Customer: "c-other", Identity: map[string]string{"phone": "+15551230000", "web": "cookie-1"}, Text: "t"}
	_ = journey.ValidateInbound(&e)
	owner, linked, err := rt.Resolve(ctx, &e)
	if err != nil || owner != "c-other" || len(linked) != 1 || linked[0].Kind != "web" {
		t.Fatalf("resolve with customer: %s %v %v", owner, linked, err)
	}
}

func TestConcurrentNewIdentityMakesOneCustomer(t *testing.T) {
	rt, _ := startTest(t, Config{})
	var wg sync.WaitGroup
	owners := make([]string, 16)
	for i := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := journey.Event{ID: fmt.Sprintf("n-%d", i), Identity: map[string]string{"phone": "+4915112345678"}, Text: "t"}
			_ = journey.ValidateInbound(&e)
			c, _, err := rt.Resolve(context.Background(), &e)
			if err != nil {
				t.Error(err)
			}
			owners[i] = c
		}()
	}
	wg.Wait()
	for _, o := range owners[1:] {
		if o != owners[0] {
			t.Fatalf("16 connections made several customers: %v", owners)
		}
	}
}

func TestAdmissionIsBounded(t *testing.T) {
	rt, _ := startTest(t, Config{AdmissionMax: 2})
	if !rt.Admit(0) || !rt.Admit(0) {
		t.Fatal("admission refused below its limit")
	}
	if rt.Admit(0) {
		t.Fatal("admission past its limit")
	}
	rt.Release(0)
	if !rt.Admit(0) {
		t.Fatal("a released slot was not reusable")
	}
}

// waitFor polls with a deadline instead of sleeping.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPartitionsOfOtherNodesAreRefused(t *testing.T) {
	engine := persistence.NewMemory(2)
	defer engine.Close()
	if _, err := Start(Config{Table: mustTable(t, 3)}, engine); err == nil {
		t.Fatal("a table of 3 partitions ran over a store of 2")
	}
	rt, err := Start(Config{Node: "elsewhere", Table: mustTable(t, 2)}, engine)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(context.Background())
	if r := ingest(t, rt, "c-1", "e-1"); r.Reject == nil || r.Reject.Code != journey.CodeUnavailable {
		t.Fatalf("an event for a partition hosted elsewhere: %+v", r)
	}
}

func mustTable(t *testing.T, partitions int) *cluster.Table {
	t.Helper()
	tab, err := cluster.Local("n1", partitions)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// A failed append leaves the state ahead of the store: the customer refuses
// what waited, reloads from the store, and goes on from what is stored.
func TestCustomerReloadsAfterAFailedAppend(t *testing.T) {
	rt, engine := startTest(t, Config{})
	if r := ingest(t, rt, "c-r", "e-0"); r.Reject != nil || r.Ack.Seq != 1 {
		t.Fatalf("first event: %+v", r)
	}
	// A second writer (a broken invariant) stores seq 2 behind the actor's back.
	store := engine.Store(rt.PartitionOf("c-r"))
	intruder := journey.Event{ID: "intruder", Customer: "c-r", Type: "page.viewed", Seq: 2, Actor: journey.ActorCustomer, RecordedAt: time.Now()}
	done := make(chan error, 1)
	store.Append(context.Background(), &persistence.AppendRequest{Customer: "c-r", PrevSeq: 1, Events: []journey.Event{intruder}}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := ingest(t, rt, "c-r", "e-1"); r.Reject == nil || r.Reject.Code != journey.CodeUnavailable {
		t.Fatalf("the conflicting event answered %+v", r)
	}
	if r := ingest(t, rt, "c-r", "e-1"); r.Reject != nil || r.Ack.Seq != 3 || r.Ack.Duplicate {
		t.Fatalf("the event sent again after the reload answered %+v %v", r.Ack, r.Reject)
	}
	if r := ingest(t, rt, "c-r", "intruder"); r.Ack == nil || !r.Ack.Duplicate || r.Ack.Seq != 2 {
		t.Fatalf("the stored intruder is not known after the reload: %+v", r)
	}
}

// A snapshot this version cannot read (an older format) is ignored and
// every event is replayed.
func TestActivationReplaysAllEventsPastAnUnreadableSnapshot(t *testing.T) {
	rt, engine := startTest(t, Config{})
	for i := range 5 {
		ingest(t, rt, "c-s", fmt.Sprintf("s-%d", i))
	}
	if err := rt.Stop(context.Background()); err != nil { // passivates everyone
		t.Fatal(err)
	}
	store := engine.Store(rt.PartitionOf("c-s"))
	if err := store.SaveSnapshot(context.Background(), "c-s", &persistence.Snapshot{Seq: 4, Data: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	rt2, err := Start(Config{}, engine)
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Stop(context.Background())
	c, exists, err := rt2.Context(context.Background(), "c-s")
	if err != nil || !exists || c.Seq != 5 || len(c.Timeline) != 5 {
		t.Fatalf("context after an unreadable snapshot: %+v %v %v", c, exists, err)
	}
	if r := ingest(t, rt2, "c-s", "s-0"); r.Ack == nil || !r.Ack.Duplicate || r.Ack.Seq != 1 {
		t.Fatalf("an old id after the replay: %+v", r)
	}
}

// heldEngine is the memory engine with one append held back, as a slow WAL
// sync would: the request is copied (the caller may reuse it once Append
// returns) and stored after delay.
type heldEngine struct {
	persistence.Engine
	held  atomic.Bool
	delay time.Duration
	// scansFailing is how many of the next due scans fail.
	scansFailing atomic.Int32
	scans        atomic.Int32 // due scans asked
	// idleClosesFailing is how many of the next appends that discharge
	// a conversation's idle check fail, as an unavailable store's would.
	idleClosesFailing atomic.Int32
}

func (e *heldEngine) Store(p int) persistence.Store {
	return &heldStore{Store: e.Engine.Store(p), e: e}
}

type heldStore struct {
	persistence.Store
	e *heldEngine
}

func (s *heldStore) Append(ctx context.Context, req *persistence.AppendRequest, done func(error)) {
	closes := slices.ContainsFunc(req.DueDelete, func(w persistence.DueWork) bool { return w.Kind == journey.DueConversationIdle })
	if closes && s.e.idleClosesFailing.Add(-1) >= 0 {
		done(fmt.Errorf("%w: append refused by the test", persistence.ErrUnavailable))
		return
	}
	if !s.e.held.CompareAndSwap(true, false) {
		s.Store.Append(ctx, req, done)
		return
	}
	cp := *req
	cp.Events, cp.DueAdd, cp.DueDelete, cp.Marks = slices.Clone(req.Events), slices.Clone(req.DueAdd), slices.Clone(req.DueDelete), slices.Clone(req.Marks)
	time.AfterFunc(s.e.delay, func() { s.Store.Append(ctx, &cp, done) })
}

func (s *heldStore) ScanDue(ctx context.Context, from persistence.DueWork, until time.Time, fn func(persistence.DueWork) bool) error {
	s.e.scans.Add(1)
	if s.e.scansFailing.Add(-1) >= 0 {
		return fmt.Errorf("%w: scan refused by the test", persistence.ErrUnavailable)
	}
	return s.Store.ScanDue(ctx, from, until, fn)
}

// Due work whose append is slower than its due time still comes: its host
// hears of it once its key is durable. (Told at the commit, the host's tick
// scanned before the key was stored and never came back for it.)
func TestDueWorkComesWhenItsAppendIsSlow(t *testing.T) {
	engine := &heldEngine{Engine: persistence.NewMemory(8), delay: 600 * time.Millisecond}
	rt := startTestOn(t, idleConfig(200*time.Millisecond), engine)
	engine.held.Store(true) // the message's append, which opens the conversation and its idle check
	if r := ingest(t, rt, "idle-1", "m-1"); r.Ack == nil {
		t.Fatalf("ingest: %+v", r)
	}
	waitClosed(t, rt, engine, "idle-1")
}

// A due scan starts where the last one ended; work that becomes durable
// later with an earlier due time (a slow append) moves the start back when
// its customer tells the host, so it still comes, and not a minute later
// at the next scan from the beginning.
func TestDueWorkBehindTheLastScanComes(t *testing.T) {
	engine := &heldEngine{Engine: persistence.NewMemory(8), delay: 700 * time.Millisecond}
	rt := startTestOn(t, idleConfig(200*time.Millisecond), engine)
	slow := "idle-slow"
	var fast string
	for i := 0; fast == ""; i++ {
		if id := fmt.Sprintf("idle-fast%d", i); rt.PartitionOf(id) == rt.PartitionOf(slow) {
			fast = id
		}
	}
	engine.held.Store(true) // the slow customer's append: durable after its due time
	acked := make(chan Result, 1)
	e := journey.Event{ID: "m-1", Customer: slow, Text: "hello"}
	if rej := journey.ValidateInbound(&e); rej != nil {
		t.Fatal(rej)
	}
	rt.Ingest(slow, journey.Inbound{Event: e}, func(r Result) { acked <- r })
	time.Sleep(100 * time.Millisecond)
	if r := ingest(t, rt, fast, "m-2"); r.Ack == nil {
		t.Fatalf("ingest: %+v", r)
	}
	// The fast customer's close is a scan at ~300 ms, past the slow
	// customer's due time (~200 ms), before its key is durable (~700 ms).
	waitClosed(t, rt, engine, fast)
	if r := <-acked; r.Ack == nil {
		t.Fatalf("ingest: %+v", r)
	}
	// Within waitFor's 10 s, not at the next scan from the beginning.
	waitClosed(t, rt, engine, slow)
}

// idleConfig has a bot that never answers, so a customer's message opens a
// conversation that closes after idle (due work).
func idleConfig(idle time.Duration) Config {
	policy := botPolicy()
	policy.ConversationIdle = idle
	return Config{Policy: policy, Bot: func(ctx context.Context, _ journey.BotRequest) journey.BotResult {
		<-ctx.Done()
		return journey.BotResult{}
	}}
}

// waitClosed waits for the customer's conversation.closed in the store.
func waitClosed(t *testing.T, rt *Runtime, engine persistence.Engine, customer string) {
	t.Helper()
	store := engine.Store(rt.PartitionOf(customer))
	waitFor(t, func() bool {
		events, err := store.Events(context.Background(), customer, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(events, func(e journey.Event) bool { return e.Type == journey.TypeConversationClosed })
	}, customer+"'s idle conversation closed")
}

// A customer whose due work comes after the host's armed tick does not
// tell the host; the tick's scan finds the work and arms for it.
func TestDueWorkAfterTheArmedTickComes(t *testing.T) {
	rt, engine := startTest(t, idleConfig(300*time.Millisecond))
	first := "idle-a"
	var later string
	for i := 0; later == ""; i++ {
		if id := fmt.Sprintf("idle-b%d", i); rt.PartitionOf(id) == rt.PartitionOf(first) {
			later = id
		}
	}
	if r := ingest(t, rt, first, "m-1"); r.Ack == nil {
		t.Fatalf("ingest: %+v", r)
	}
	armed := &rt.dueArmed[rt.PartitionOf(first)]
	waitFor(t, func() bool { return armed.Load() != 0 }, "the host armed for the first conversation")
	// The later message's idle check is due after the armed tick: not told.
	if r := ingest(t, rt, later, "m-2"); r.Ack == nil {
		t.Fatalf("ingest: %+v", r)
	}
	waitClosed(t, rt, engine, first)
	waitClosed(t, rt, engine, later)
}

// A scan that stops at dueScanMax items resumes just after the last one:
// every idle conversation of a partition closes within seconds, not at the
// next scan from the beginning (a minute later). Items due at one time
// are covered by the store's conformance test (ScanDue's from).
func TestDueWorkPastTheScanMaxComes(t *testing.T) {
	n := dueScanMax
	t.Cleanup(func() { dueScanMax = n }) // after the runtime's own cleanup has stopped it
	dueScanMax = 3
	rt, engine := startTest(t, idleConfig(300*time.Millisecond))
	p := rt.PartitionOf("idle-0")
	var customers []string
	for i := 0; len(customers) < 11; i++ {
		if id := fmt.Sprintf("idle-%d", i); rt.PartitionOf(id) == p {
			customers = append(customers, id)
		}
	}
	for i, c := range customers {
		if r := ingest(t, rt, c, fmt.Sprintf("m-%d", i)); r.Ack == nil {
			t.Fatalf("ingest: %+v", r)
		}
	}
	for _, c := range customers {
		waitClosed(t, rt, engine, c)
	}
}

// A due scan that fails is tried again a second later from where it
// started: the idle conversation it missed still closes.
func TestDueWorkComesAfterAFailedScan(t *testing.T) {
	engine := &heldEngine{Engine: persistence.NewMemory(8)}
	rt := startTestOn(t, idleConfig(200*time.Millisecond), engine)
	if r := ingest(t, rt, "idle-1", "m-1"); r.Ack == nil {
		t.Fatalf("ingest: %+v", r)
	}
	engine.scansFailing.Store(2)        // the scans at the idle check's due time
	waitClosed(t, rt, engine, "idle-1") // after both failures: a scan did it
}

// Due work delivered and not done (the append of the idle close failed, so
// its key stays) comes again with the next scan from the beginning,
// dueRescanEvery after the last: the scans in between start after it.
func TestDueWorkNotDoneComesWithTheRescan(t *testing.T) {
	every := dueRescanEvery
	t.Cleanup(func() { dueRescanEvery = every }) // after the runtime's own cleanup has stopped it
	dueRescanEvery = 1500 * time.Millisecond
	engine := &heldEngine{Engine: persistence.NewMemory(8)}
	rt := startTestOn(t, idleConfig(200*time.Millisecond), engine)
	engine.idleClosesFailing.Store(1)
	if r := ingest(t, rt, "idle-1", "m-1"); r.Ack == nil {
		t.Fatalf("ingest: %+v", r)
	}
	start := time.Now()
	waitClosed(t, rt, engine, "idle-1")
	took := time.Since(start)
	if got := engine.idleClosesFailing.Load(); got != -1 {
		t.Fatalf("idle closes asked %d times, want 2: one refused, one stored", 1-got)
	}
	if took < time.Second {
		t.Fatalf("closed %v after the ingest: before the rescan could deliver it again", took)
	}
	t.Logf("closed %v after the ingest", took)
}

// Work coming due item after item, a millisecond or less apart, is scanned
// in batches dueTickMin apart, not a scan an item.
func TestDueScansAreSpaced(t *testing.T) {
	engine := &heldEngine{Engine: persistence.NewMemory(1)} // one partition: one host
	rt := startTestOn(t, idleConfig(300*time.Millisecond), engine)
	const customers = 60
	start := time.Now()
	for i := range customers {
		if r := ingest(t, rt, fmt.Sprintf("idle-%d", i), fmt.Sprintf("m-%d", i)); r.Ack == nil {
			t.Fatalf("ingest: %+v", r)
		}
	}
	spread := time.Since(start)
	before := engine.scans.Load()
	for i := range customers {
		waitClosed(t, rt, engine, fmt.Sprintf("idle-%d", i))
	}
	// The idle checks come due over spread; a scan at most every
	// dueTickMin, and a few more (a tick armed before the first is due).
	scans, most := engine.scans.Load()-before, int32(spread/dueTickMin)+4
	t.Logf("%d idle checks due over %v: %d due scans", customers, spread, scans)
	if scans > most {
		t.Errorf("%d due scans for %d items due over %v, want at most %d", scans, customers, spread, most)
	}
}

// A completion the store's completion goroutine runs (postHere) that
// would save a snapshot goes to a worker instead: snapshots are still
// saved every SnapshotEvery events, and the customer answers on. (On
// Pebble, whose writer completes appends on a goroutine of its own.)
func TestSnapshotsAreSavedWhenCompletionsRunHere(t *testing.T) {
	engine, err := persistence.Open(t.TempDir(), persistence.Options{Partitions: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rt := startTestOn(t, Config{SnapshotEvery: 3}, engine)
	for i := range 7 {
		if r := ingest(t, rt, "c-snap", fmt.Sprintf("e-%d", i)); r.Reject != nil || r.Ack.Seq != uint64(i+1) {
			t.Fatalf("event %d: %+v %v", i, r.Ack, r.Reject)
		}
	}
	store := engine.Store(rt.PartitionOf("c-snap"))
	waitFor(t, func() bool {
		snap, _, err := store.Load(context.Background(), "c-snap")
		return err == nil && snap != nil && snap.Seq >= 6
	}, "a snapshot at seq 6")
}

// An ingest whose host and customer are idle runs on the caller's
// goroutine (host.post): a retry of a stored id is answered before Ingest
// returns, by the customer, with nothing to wait for. The host may be busy
// now and then (its idle sweep, a due tick), so one retry of twenty so
// answered is enough; with the customer's ingest on a worker none is.
func TestAnIdleCustomerIngestsOnTheCallersGoroutine(t *testing.T) {
	rt, _ := startTest(t, Config{})
	if r := ingest(t, rt, "c-1", "e-1"); r.Reject != nil {
		t.Fatal(r.Reject)
	}
	e := journey.Event{ID: "e-1", Customer: "c-1", Text: "hello"}
	if rej := journey.ValidateInbound(&e); rej != nil {
		t.Fatal(rej)
	}
	here := 0
	for range 20 {
		var answered atomic.Bool
		ch := make(chan Result, 1)
		rt.Ingest("c-1", journey.Inbound{Event: e}, func(r Result) { answered.Store(true); ch <- r })
		if answered.Load() {
			here++
		}
		if r := <-ch; r.Reject != nil || !r.Ack.Duplicate || r.Ack.Seq != 1 {
			t.Fatalf("retry: %+v %v", r.Ack, r.Reject)
		}
	}
	if here == 0 {
		t.Fatal("no retry was answered on the caller's goroutine")
	}
}

// lookupGate is an engine whose stores' LookupEventIn waits while the gate
// is shut: a slow read of the idempotency blocks.
type lookupGate struct {
	persistence.Engine
	shut    atomic.Bool
	open    chan struct{}
	entered chan struct{}
}

func (g *lookupGate) Store(p int) persistence.Store {
	return &lookupGateStore{Store: g.Engine.Store(p), g: g}
}

type lookupGateStore struct {
	persistence.Store
	g *lookupGate
}

func (s *lookupGateStore) LookupEventIn(ctx context.Context, customer, id string, from, to uint64) (uint64, bool, bool, error) {
	if s.g.shut.Load() {
		s.g.entered <- struct{}{}
		<-s.g.open
	}
	return s.Store.LookupEventIn(ctx, customer, id, from, to)
}

// An ingest that would read the store does not read it on the caller's
// goroutine (customer.toWorker): the gateway's connection and the
// partition's host are not held for the read, which under compaction can
// take tens of milliseconds. A retry of an id that left the ring for the
// filters needs a look-up: with the read gated, Ingest returns, and the
// retry is answered once the read is let go. (Read on the caller's
// goroutine, Ingest waits for the gate.)
func TestAnIngestThatReadsTheStoreLeavesTheCallersGoroutine(t *testing.T) {
	g := &lookupGate{Engine: persistence.NewMemory(8), open: make(chan struct{}), entered: make(chan struct{}, 1)}
	rt := startTestOn(t, Config{}, g)
	for i := range journey.RecentIDsMax + 2*journey.DedupBlockIDs + 1 { // e-0 left the ring, and its dedup block is stored
		if r := ingest(t, rt, "c-1", fmt.Sprintf("e-%d", i)); r.Reject != nil {
			t.Fatal(r.Reject)
		}
	}
	e := journey.Event{ID: "e-0", Customer: "c-1", Text: "hello"}
	if rej := journey.ValidateInbound(&e); rej != nil {
		t.Fatal(rej)
	}
	g.shut.Store(true)
	for try := range 5 {
		ch := make(chan Result, 1)
		returned := make(chan struct{})
		go func() {
			rt.Ingest("c-1", journey.Inbound{Event: e}, func(r Result) { ch <- r })
			close(returned)
		}()
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("try %d: the retry was not looked up", try)
		}
		select {
		case <-returned:
		case <-time.After(2 * time.Second):
			t.Fatalf("try %d: Ingest waited for the store's read", try)
		}
		g.open <- struct{}{}
		if r := <-ch; r.Reject != nil || !r.Ack.Duplicate || r.Ack.Seq != 1 {
			t.Fatalf("try %d: retry answered %+v %v", try, r.Ack, r.Reject)
		}
	}
}
