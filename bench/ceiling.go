package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// CeilingDurationMax bounds the WebSocket echo's run and each deeper
// window's: min(Duration, 20s). The store ceiling and the peer run as
// long as the server did.
const CeilingDurationMax = 20 * time.Second

// storeCeiling is the store's own append path (persistence.Open with the
// server's default options, its group-commit writer, Store.Append) on the
// server's disk, with nothing in front of it: the most the server could do
// with the same events.
type storeCeiling struct {
	*WindowedResult
	stats persistence.Stats
}

// runStoreCeiling opens a fresh engine in a temporary directory under
// cfg.DataDir and drives it as the server run was driven: cfg.Connections
// writers, one per connection, each keeping cfg.Window appends in flight,
// for Warmup+Duration. Each append is one event of one customer, as the
// customer actor appends an event that decides nothing more (the started
// server has no bot), so the store writes the same keys per event as the
// server's store: the event, its segment key, and every
// journey.DedupBlockIDs events past a customer's journey.RecentIDsMax a
// dedup block of as many ids. The directory is removed afterwards.
func runStoreCeiling(ctx context.Context, wc WindowedConfig, dataDir string) (*storeCeiling, error) {
	dir, err := os.MkdirTemp(dataDir, "throughline-bench-store-")
	if err != nil {
		return nil, fmt.Errorf("bench: store ceiling: %w", err)
	}
	defer os.RemoveAll(dir)
	engine, err := persistence.Open(dir, persistence.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, fmt.Errorf("bench: store ceiling: open: %w", err)
	}
	res, err := DriveWindowed(ctx, wc, func(int) (Sender, error) { return &storeSender{engine: engine}, nil })
	stats := engine.Stats()
	if closeErr := engine.Close(); err == nil && closeErr != nil {
		err = fmt.Errorf("bench: store ceiling: close: %w", closeErr)
	}
	if err != nil {
		return nil, err
	}
	return &storeCeiling{WindowedResult: res, stats: stats}, nil
}

// storeSender appends one connection's events, each to its customer's
// partition store, chained on the customer's previous seq as an actor
// chains its pending appends.
type storeSender struct {
	engine persistence.Engine
	req    persistence.AppendRequest
	events [1]journey.Event
	block  [journey.DedupBlockIDs]journey.DedupID
	rng    *rand.PCG // the block's digests, as random as SHA-256's
}

func (s *storeSender) Send(ctx context.Context, e *Event, done func(error)) error {
	p := persistence.PartitionOf(e.Customer, s.engine.Partitions())
	s.events[0] = journey.Event{
		ID: e.ID, Customer: e.Customer, Type: "message.received", Channel: "chat", Text: e.Text,
		Seq: e.Seq, Actor: journey.ActorCustomer, RecordedAt: time.Now().UTC(),
	}
	s.req = persistence.AppendRequest{Customer: e.Customer, PrevSeq: e.Seq - 1, Events: s.events[:], IDsInBlocks: true}
	if left := int64(e.Seq) - journey.RecentIDsMax; left > 0 && left%journey.DedupBlockIDs == 0 {
		if s.rng == nil {
			s.rng = rand.NewPCG(uint64(e.Seq), 1)
		}
		at := time.Now().UnixNano()
		for i := range s.block {
			seq := uint64(left) - journey.DedupBlockIDs + 1 + uint64(i)
			s.block[i] = journey.DedupID{Digest: [2]uint64{s.rng.Uint64(), s.rng.Uint64()}, Seq: seq, RecordedAt: at}
		}
		s.req.DedupBlock = s.block[:]
	}
	s.engine.Store(p).Append(ctx, &s.req, done) // req may be reused once Append returns
	return nil
}
