package main

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/throughline/throughline/bench"
)

// An event sent twice under its id is stored once and acked both times, as
// Throughline stores an event id once: the peer pays for deduplication too.
func TestPublisherDeduplicatesByEventID(t *testing.T) {
	srv, err := startServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stopServer(srv)
	ctx := t.Context()
	if err := createStream(ctx, srv.ClientURL(), time.Minute); err != nil {
		t.Fatal(err)
	}
	p, nc, err := newPublisher(srv.ClientURL(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	e := &bench.Event{ID: "n-0-1", Customer: "c-1", JSON: []byte(`{"id":"n-0-1","customer":"c-1","text":"hi"}`)}
	answers := make(chan error, 3)
	for range 2 {
		if err := p.Send(ctx, e, func(err error) { answers <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case err := <-answers:
			if err != nil {
				t.Fatalf("ack: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no ack within 10 s")
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || info.Config.Duplicates != time.Minute {
		t.Fatalf("stream holds %d messages with duplicate window %v, want 1 and 1m", info.State.Msgs, info.Config.Duplicates)
	}
	if info.Config.Storage != jetstream.FileStorage {
		t.Fatalf("storage %v, want file", info.Config.Storage)
	}
}

// A brief run acks every event it sent and measures a rate.
func TestMeasureAcksEverything(t *testing.T) {
	wc := bench.WindowedConfig{Connections: 2, Customers: 20, Window: 8, EventBytes: 50,
		Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Nonce: "t"}
	res, err := measure(context.Background(), wc, t.TempDir(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Acked != res.Sent || res.Failed != 0 || res.Lost != 0 || res.Events <= 0 || res.AckLatency.Count == 0 {
		t.Fatalf("result %+v: want every sent event acked, and a measured rate", res)
	}
}
