package actors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// Ids that left a customer's memory are in the store's dedup blocks, not
// in keys of their own: after a restart on the same store every retry is
// answered with its first seq, pipelined or not, and a new id is stored.
func TestRetriesAcrossARestartFindTheDedupBlocks(t *testing.T) {
	dir := t.TempDir()
	const n = journey.RecentIDsMax + 6*journey.DedupBlockIDs + 17
	start := func() (*Runtime, persistence.Engine) {
		engine, err := persistence.Open(dir, persistence.Options{Partitions: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		rt, err := Start(Config{}, engine)
		if err != nil {
			t.Fatal(err)
		}
		return rt, engine
	}
	stop := func(rt *Runtime, engine persistence.Engine) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := engine.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	send := func(rt *Runtime, ids []string) []Result {
		out := make([]Result, len(ids))
		done := make(chan struct{}, len(ids))
		for i, id := range ids {
			e := journey.Event{ID: id, Customer: "c-1", Text: "hi"}
			if rej := journey.ValidateInbound(&e); rej != nil {
				t.Fatal(rej)
			}
			rt.Ingest("c-1", journey.Inbound{Event: e}, func(r Result) { out[i] = r; done <- struct{}{} })
		}
		for range ids {
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("no answer")
			}
		}
		return out
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("e-%d", i)
	}
	rt, engine := start()
	for i, r := range send(rt, ids) {
		if r.Reject != nil || r.Ack.Duplicate || r.Ack.Seq != uint64(i+1) {
			t.Fatalf("%s: %+v %v", ids[i], r.Ack, r.Reject)
		}
	}
	// Retries while the customer is live: the oldest are in blocks only.
	for i, r := range send(rt, ids[:journey.DedupBlockIDs+1]) {
		if r.Reject != nil || !r.Ack.Duplicate || r.Ack.Seq != uint64(i+1) {
			t.Fatalf("live retry of %s: %+v %v", ids[i], r.Ack, r.Reject)
		}
	}
	stop(rt, engine)
	rt, engine = start()
	defer stop(rt, engine)
	for i, r := range send(rt, ids) {
		if r.Reject != nil || !r.Ack.Duplicate || r.Ack.Seq != uint64(i+1) {
			t.Fatalf("retry of %s after a restart: %+v %v", ids[i], r.Ack, r.Reject)
		}
	}
	if r := send(rt, []string{"e-new"})[0]; r.Reject != nil || r.Ack.Duplicate || r.Ack.Seq != n+1 {
		t.Fatalf("a new id after the retries: %+v %v", r.Ack, r.Reject)
	}
}
