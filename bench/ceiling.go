package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Ceiling limits.
const (
	// CeilingDurationMax bounds each ceiling's run: min(Duration, 20s).
	CeilingDurationMax = 20 * time.Second
	// ceilingPartitions spreads the ceiling's customers over key prefixes
	// as the store's partitions do.
	ceilingPartitions = 16
)

// pebbleCeiling is the raw synced Pebble batch-write rate on the server's
// disk: the most a store writing the same events could do.
type pebbleCeiling struct {
	events       int64
	elapsed      time.Duration
	stalls       int64
	stallSeconds float64
}

// runPebbleCeiling opens a fresh Pebble database in a temporary directory
// under dataDir and has cfg.Connections writers commit synced batches of
// cfg.batch() events for d, two keys per event (the event under
// partition/customer/seq with a JSON value like a stored event, and its
// dedup key under partition/customer/event id), as the store's hot path
// does. The directory is removed afterwards.
func runPebbleCeiling(ctx context.Context, cfg *Config, nonce string, d time.Duration) (*pebbleCeiling, error) {
	dir, err := os.MkdirTemp(cfg.dataDir(), "throughline-bench-pebble-")
	if err != nil {
		return nil, fmt.Errorf("bench: pebble ceiling: %w", err)
	}
	defer os.RemoveAll(dir)

	var stall stallClock
	opts := &pebble.Options{
		Logger: quietLogger{},
		EventListener: &pebble.EventListener{
			WriteStallBegin: func(pebble.WriteStallBeginInfo) { stall.begin() },
			WriteStallEnd:   stall.end,
		},
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("bench: pebble ceiling: open: %w", err)
	}

	var events atomic.Int64
	errs := make([]error, cfg.Connections)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range cfg.Connections {
		wg.Go(func() {
			errs[w] = pebbleWriter(ctx, db, cfg, nonce, w, deadline, &events)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	closeErr := db.Close()
	for _, err := range append(errs, closeErr, ctx.Err()) {
		if err != nil {
			return nil, fmt.Errorf("bench: pebble ceiling: %w", err)
		}
	}
	count, seconds := stall.totals()
	return &pebbleCeiling{events: events.Load(), elapsed: elapsed, stalls: count, stallSeconds: seconds}, nil
}

// pebbleWriter commits batches for writer w's customers (w, w+Connections,
// ...) in turn until the deadline.
func pebbleWriter(ctx context.Context, db *pebble.DB, cfg *Config, nonce string, w int, deadline time.Time, events *atomic.Int64) error {
	enc := newFrameEncoder(nonce+"p", w, cfg) // its text pool and customer turns
	seqs := make([]uint64, enc.customers)
	batch := db.NewBatch()
	defer batch.Close()
	var key, value []byte
	idPrefix := string(enc.idPrefix)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		batch.Reset()
		for range enc.batch {
			k := enc.nextCustomer
			customer := "c-" + strconv.Itoa(w+k*cfg.Connections)
			n := enc.nextEvent
			seqs[k]++
			id := idPrefix + strconv.FormatUint(n, 10)
			partition := uint32((w + k*cfg.Connections) % ceilingPartitions)

			key = appendKey(key[:0], 'e', partition, customer)
			key = binary.BigEndian.AppendUint64(key, seqs[k])
			value = appendStoredEvent(value[:0], id, customer, seqs[k], enc, n)
			if err := batch.Set(key, value, nil); err != nil {
				return err
			}
			key = appendKey(key[:0], 'd', partition, customer)
			key = appendPart(key, id)
			value = binary.BigEndian.AppendUint64(value[:0], seqs[k])
			if err := batch.Set(key, value, nil); err != nil {
				return err
			}
			enc.advance()
		}
		if err := batch.Commit(pebble.Sync); err != nil {
			return err
		}
		events.Add(int64(enc.batch))
	}
	return nil
}

// appendKey appends a key kind, the partition and the customer, length
// prefixed: ~12 bytes before the seq or the event id, ~30 bytes per key on
// average.
func appendKey(b []byte, kind byte, partition uint32, customer string) []byte {
	b = append(b, kind)
	b = binary.BigEndian.AppendUint32(b, partition)
	return appendPart(b, customer)
}

func appendPart(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendStoredEvent appends a stored event's JSON: the inbound fields plus
// seq, actor and recorded_at.
func appendStoredEvent(b []byte, id, customer string, seq uint64, enc *frameEncoder, n uint64) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","customer":"`...)
	b = append(b, customer...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"actor":"customer","type":"message.received","channel":"chat","text":"`...)
	off := int(n*131) % textPoolSpread
	b = append(b, enc.text[off:off+enc.textBytes]...)
	b = append(b, `","recorded_at":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// stallClock adds up Pebble's write stalls; they are database-wide, so
// begin and end alternate.
type stallClock struct {
	mu      sync.Mutex
	count   int64
	since   time.Time
	stalled time.Duration
}

func (s *stallClock) begin() {
	s.mu.Lock()
	s.count++
	s.since = time.Now()
	s.mu.Unlock()
}

func (s *stallClock) end() {
	s.mu.Lock()
	if !s.since.IsZero() {
		s.stalled += time.Since(s.since)
		s.since = time.Time{}
	}
	s.mu.Unlock()
}

func (s *stallClock) totals() (int64, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stalled := s.stalled
	if !s.since.IsZero() {
		stalled += time.Since(s.since)
	}
	return s.count, stalled.Seconds()
}

// quietLogger drops Pebble's informational logs, which would land on
// stderr in the middle of a report.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble ceiling: "+format, args...))
}
