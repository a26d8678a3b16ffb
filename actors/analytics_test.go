package actors

import (
	"context"
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
	// Forget everything, as if every event had been dropped.
	rt.analytics.do(context.Background(), func() {
		for _, pp := range rt.analytics.parts {
			pp.proj = analytics.New()
		}
	})
	rt.analytics.mu.Lock()
	for p := range rt.Partitions() {
		rt.analytics.dropped[p] = start
	}
	rt.analytics.mu.Unlock()
	a := waitAnalytics(t, rt, func(a analytics.Journeys) bool { return a.Conversations == 2 })
	if a.Escalations["customer_asked"] != 1 {
		t.Fatalf("after the catch-up: %+v", a)
	}
}
