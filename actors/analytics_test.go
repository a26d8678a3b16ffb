package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/throughline/throughline/analytics"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

func analyticsConfig() Config {
	return Config{Policy: botPolicy(), Bot: func(ctx context.Context, req journey.BotRequest) journey.BotResult {
		return journey.BotResult{Text: "here is how", Confidence: 0.9}
	}}
}

func say(t *testing.T, rt *Runtime, customer, id, text string) {
	t.Helper()
	ch := make(chan Result, 1)
	e := journey.Event{ID: id, Customer: customer, Text: text, Channel: "sms"}
	if rej := journey.ValidateInbound(&e); rej != nil {
		t.Fatal(rej)
	}
	rt.Ingest(customer, journey.Inbound{Event: e}, func(r Result) { ch <- r })
	if r := <-ch; r.Ack == nil {
		t.Fatalf("%s: %+v", id, r)
	}
}

// waitAnalytics polls the answer until ok says it is the one wanted.
func waitAnalytics(t *testing.T, rt *Runtime, ok func(analytics.Journeys) bool) analytics.Journeys {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, err := rt.JourneyAnalytics(context.Background(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if ok(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("analytics never matched; last %+v", a)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Durable events reach the projection; a restart loads the saved state
// (and rereads what came after it) and counts nothing twice.
func TestAnalyticsFollowDurableEventsAcrossARestart(t *testing.T) {
	engine := persistence.NewMemory(8)
	defer engine.Close()
	rt, err := Start(analyticsConfig(), engine)
	if err != nil {
		t.Fatal(err)
	}
	say(t, rt, "a-1", "m-1", "my card payment failed")
	say(t, rt, "a-2", "m-2", "where is my parcel")
	say(t, rt, "a-3", "m-3", "I want to talk to a person")
	waitAnalytics(t, rt, func(a analytics.Journeys) bool {
		return a.Conversations == 3 && a.Escalations["customer_asked"] == 1 && a.Outcomes.Open == 3 && a.Partitions == 8
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	saved := 0
	for p := range engine.Partitions() {
		_ = engine.Store(p).ScanRecords(ctx, analyticsCollection, "", func(string, []byte) bool { saved++; return true })
	}
	if saved != 8 {
		t.Fatalf("%d partitions saved their projection, want 8", saved)
	}

	rt, err = Start(analyticsConfig(), engine)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(context.Background())
	say(t, rt, "a-4", "m-4", "hello again")
	a := waitAnalytics(t, rt, func(a analytics.Journeys) bool { return a.Conversations >= 4 })
	if a.Conversations != 4 || a.Escalations["customer_asked"] != 1 {
		t.Fatalf("after the restart: %+v", a)
	}
}

// Events the runner had no room for are read back from the store.
func TestAnalyticsCatchUpWhatWasDropped(t *testing.T) {
	rt, _ := startTest(t, analyticsConfig())
	start := time.Now()
	say(t, rt, "d-1", "m-1", "my card payment failed")
	say(t, rt, "d-2", "m-2", "I want to talk to a person")
	waitAnalytics(t, rt, func(a analytics.Journeys) bool { return a.Conversations == 2 })
	// Forget everything, as if every event had been dropped. On the
	// runner's goroutine, as a drop is seen before the events queued after
	// it: a late event (the bot's reply) must find its partition behind.
	rt.analytics.do(context.Background(), func() {
		rt.analytics.mu.Lock()
		defer rt.analytics.mu.Unlock()
		for p, pp := range rt.analytics.parts {
			pp.proj = analytics.New()
			rt.analytics.dropped[p] = start
		}
		rt.analytics.anyDropped.Store(true)
	})
	a := waitAnalytics(t, rt, func(a analytics.Journeys) bool { return a.Conversations == 2 })
	if a.Escalations["customer_asked"] != 1 {
		t.Fatalf("after the catch-up: %+v", a)
	}
}

// storeJourney appends a customer's events straight to the store: a
// message, its conversation, and n-2 messages, a second apart from t.
func storeJourney(t *testing.T, st persistence.Store, customer string, at time.Time, n int) []journey.Event {
	t.Helper()
	var events []journey.Event
	for i := range n {
		e := journey.Event{ID: fmt.Sprintf("%s-%d", customer, i), Customer: customer, Type: journey.TypeMessageReceived, Actor: journey.ActorCustomer,
			Channel: "sms", Text: "hi", Seq: uint64(i + 1), RecordedAt: at.Add(time.Duration(i) * time.Second)}
		if i == 1 {
			e.Type, e.Actor, e.Text = journey.TypeConversationOpened, journey.ActorSystem, ""
			e.Data = []byte(fmt.Sprintf(`{"conversation":%q,"state":"bot","channel":"sms"}`, journey.ConversationID(customer, 2)))
		}
		events = append(events, e)
	}
	done := make(chan error, 1)
	st.Append(context.Background(), &persistence.AppendRequest{Customer: customer, Events: events}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return events
}

// A customer's events the runner missed are read before its next one: a
// gap after its last applied seq, or, while the partition is behind, any
// earlier events of a customer it does not know.
func TestAnalyticsFillGapsFromTheStore(t *testing.T) {
	engine := persistence.NewMemory(1)
	defer engine.Close()
	st := engine.Store(0)
	at := time.Now().Add(-time.Hour).Truncate(time.Hour)
	known := storeJourney(t, st, "known", at, 10)
	unknown := storeJourney(t, st, "unknown", at, 10)
	a := &analyticsRunner{rt: &Runtime{cfg: Config{Logger: slog.Default(), Now: time.Now}}, parts: map[int]*analyticsPart{}}
	pp := &analyticsPart{proj: analytics.New(), store: st}
	a.parts[0] = pp
	a.handle(analyticsMsg{partition: 0, events: known[:1]})
	a.handle(analyticsMsg{partition: 0, events: known[9:]}) // 2 to 9 missed
	if last, _ := pp.proj.LastSeq("known"); last != 10 {
		t.Fatalf("known: last applied seq %d, want 10", last)
	}
	a.handle(analyticsMsg{partition: 0, events: unknown[9:]}) // not behind: nothing read
	pp.behind = at
	a.handle(analyticsMsg{partition: 0, events: unknown[9:]}) // a duplicate now
	p := pp.proj.Part(at, at.Add(time.Hour), time.Now(), nil)
	if p.Figures.Conversations != 1 {
		t.Fatalf("%d conversations, want the known customer's only", p.Figures.Conversations)
	}
	pp.proj = analytics.New()
	a.handle(analyticsMsg{partition: 0, events: unknown[9:]})
	if p := pp.proj.Part(at, at.Add(time.Hour), time.Now(), nil); p.Figures.Conversations != 1 {
		t.Fatalf("behind: the unknown customer's conversation was not read back (%d)", p.Figures.Conversations)
	}
}

// A customer whose first events were dropped and whose next ones reach the
// runner before its tick has the dropped ones read back: the drop is seen
// before the next event.
func TestAnalyticsDropSeenBeforeTheNextEvent(t *testing.T) {
	engine := persistence.NewMemory(1)
	defer engine.Close()
	st := engine.Store(0)
	at := time.Now().Add(-time.Hour).Truncate(time.Hour)
	events := storeJourney(t, st, "late", at, 10)
	// A closed queue: every observe is a drop.
	a := &analyticsRunner{rt: &Runtime{cfg: Config{Logger: slog.Default(), Now: time.Now}}, parts: map[int]*analyticsPart{}, dropped: map[int]time.Time{}, droppedOf: map[string]droppedEvents{}}
	a.queue.close()
	pp := &analyticsPart{proj: analytics.New(), store: st}
	a.parts[0] = pp
	a.observe(0, events[:9])
	if a.rt.AnalyticsDropped.Load() != 9 {
		t.Fatalf("%d dropped, want 9", a.rt.AnalyticsDropped.Load())
	}
	a.handle(analyticsMsg{partition: 0, events: events[9:]})
	if last, _ := pp.proj.LastSeq("late"); last != 10 {
		t.Fatalf("last applied seq %d, want 10", last)
	}
	if p := pp.proj.Part(at, at.Add(time.Hour), time.Now(), nil); p.Figures.Conversations != 1 {
		t.Fatalf("the dropped conversation was not read back (%d)", p.Figures.Conversations)
	}
}

// A customer the runner does not know is read back from the newest event
// to the first recorded since the time asked, page by page.
func TestAnalyticsReadBackSinceATime(t *testing.T) {
	engine := persistence.NewMemory(1)
	defer engine.Close()
	st := engine.Store(0)
	at := time.Now().Add(-time.Hour)
	storeJourney(t, st, "long", at, 3*analyticsPage+10)
	a := &analyticsRunner{rt: &Runtime{cfg: Config{Logger: slog.Default(), Now: time.Now}}}
	from := at.Add(100 * time.Second)
	events, err := a.storedSince(context.Background(), st, "long", 0, 0, from)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3*analyticsPage+10-100 || events[0].Seq != 101 || events[len(events)-1].Seq != 3*analyticsPage+10 {
		t.Fatalf("%d events from seq %d", len(events), events[0].Seq)
	}
	events, err = a.storedSince(context.Background(), st, "long", 10, 20, time.Time{})
	if err != nil || len(events) != 9 || events[0].Seq != 11 {
		t.Fatalf("seqs 11 to 19: %d events (%v)", len(events), err)
	}
}

// Customers whose events were dropped are read back one by one at the
// next tick, without marking the partition behind (no scan of every
// customer since the drop).
func TestAnalyticsDroppedCustomersReadBackAtTheTick(t *testing.T) {
	engine := persistence.NewMemory(1)
	defer engine.Close()
	st := engine.Store(0)
	at := time.Now().Add(-time.Hour).Truncate(time.Hour)
	a := &analyticsRunner{rt: &Runtime{cfg: Config{Logger: slog.Default(), Now: time.Now}}, parts: map[int]*analyticsPart{},
		dropped: map[int]time.Time{}, droppedOf: map[string]droppedEvents{}}
	a.queue.close()
	pp := &analyticsPart{proj: analytics.New(), store: st}
	a.parts[0] = pp
	for i := range 5 {
		events := storeJourney(t, st, fmt.Sprintf("d-%d", i), at, 4)
		a.observe(0, events[:2]) // a closed queue: dropped
		a.observe(0, events[2:])
	}
	a.reconcile()
	if !pp.behind.IsZero() {
		t.Fatalf("the partition was marked behind (%s): a full catch-up", pp.behind)
	}
	for i := range 5 {
		if last, _ := pp.proj.LastSeq(fmt.Sprintf("d-%d", i)); last != 4 {
			t.Fatalf("d-%d: last applied seq %d, want 4", i, last)
		}
	}
	if p := pp.proj.Part(at, at.Add(time.Hour), time.Now(), nil); p.Figures.Conversations != 5 {
		t.Fatalf("%d conversations, want 5", p.Figures.Conversations)
	}
	if a.anyDropped.Load() {
		a.absorbDropped()
	}
	if len(a.droppedOf) != 0 || a.anyDropped.Load() {
		t.Fatalf("still remembered: %v", a.droppedOf)
	}
}

// An ingest's events reach the projection with its answer, not only when a
// later event shows the gap (the runner reads a gap back from the store,
// so the other tests would pass with the observation lost): the customer's
// last event, which nothing follows, is the projection's last seq.
func TestAnalyticsSeeAnIngestWithItsAnswer(t *testing.T) {
	engine := persistence.NewMemory(8)
	defer engine.Close()
	rt, err := Start(Config{}, engine)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(context.Background())
	var last uint64
	for i, text := range []string{"hello", "still there?", "one more thing"} {
		ch := make(chan Result, 1)
		e := journey.Event{ID: fmt.Sprintf("m-%d", i), Customer: "c-1", Text: text, Channel: "sms"}
		if rej := journey.ValidateInbound(&e); rej != nil {
			t.Fatal(rej)
		}
		rt.Ingest("c-1", journey.Inbound{Event: e}, func(r Result) { ch <- r })
		r := <-ch
		if r.Ack == nil {
			t.Fatalf("%s: %+v", e.ID, r)
		}
		last = r.Ack.Seq
	}
	p := rt.PartitionOf("c-1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		var seen uint64
		if !rt.analytics.do(context.Background(), func() {
			if pp := rt.analytics.parts[p]; pp != nil {
				seen, _ = pp.proj.LastSeq("c-1")
			}
		}) {
			t.Fatal("the analytics runner stopped")
		}
		if seen == last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the projection's last seq of c-1 is %d, the last ingest's %d", seen, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gatedStore is a store whose WriteRecords waits for release, then fails
// with fail when set: a slow or failing disk under the periodic save.
type gatedStore struct {
	persistence.Store
	release chan struct{}
	fail    error
}

func (s *gatedStore) WriteRecords(ctx context.Context, collection string, puts []persistence.Record, deletes []string) error {
	<-s.release
	if s.fail != nil {
		return s.fail
	}
	return s.Store.WriteRecords(ctx, collection, puts, deletes)
}

// The periodic save does not hold the runner while it is written
// (saveLater): the runner goes on, takes the outcome once it is written
// (settle), and a failed save leaves the projection to save again; a save
// that waits (a partition leaving) comes after the one in flight.
func TestAnalyticsSaveLaterDoesNotHoldTheRunner(t *testing.T) {
	engine := persistence.NewMemory(1)
	defer engine.Close()
	st := &gatedStore{Store: engine.Store(0), release: make(chan struct{})}
	a := &analyticsRunner{rt: &Runtime{cfg: Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}}, parts: map[int]*analyticsPart{},
		dropped: map[int]time.Time{}, droppedOf: map[string]droppedEvents{}}
	pp := &analyticsPart{proj: analytics.New(), store: st, dirty: true}
	a.parts[0] = pp
	saved := func() bool {
		found := false
		if err := engine.Store(0).ScanRecords(context.Background(), analyticsCollection, "", func(key string, _ []byte) bool {
			found = found || key == analyticsStateKey
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return found
	}

	st.fail = errors.New("disk on fire")
	a.saveLater(pp) // returns while the write waits
	if a.settle(pp, false) {
		t.Fatal("settled while the write waits")
	}
	close(st.release)
	if !a.settle(pp, true) || !pp.dirty || pp.saving != nil {
		t.Fatalf("after a failed save: dirty %v, saving %v", pp.dirty, pp.saving)
	}
	if saved() {
		t.Fatal("a failed save stored the state")
	}

	st.fail = nil
	a.saveLater(pp)
	a.save(pp) // waits for the one in flight, then writes
	if pp.dirty || pp.saving != nil || !saved() {
		t.Fatalf("after the saves: dirty %v, saving %v, stored %v", pp.dirty, pp.saving, saved())
	}
}
