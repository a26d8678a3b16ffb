package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleEngine is one node's Pebble database: a Store per partition, one
// group-commit writer (pebble_writer.go), reads straight from the DB
// (pebble_read.go).
type pebbleEngine struct {
	core
	db         *pebble.DB
	opts       Options
	log        *slog.Logger
	metrics    *metrics
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error
	// elastic counts the elastic work running (Engine.Elastic): while any
	// does, WAL syncs are further apart (options.go).
	elastic atomic.Int64
}

// Open opens (creating if needed) the Pebble database in dir and starts its
// writer. At the first open of dir it records opts.Partitions; a later open
// with another count fails with ErrPartitionCount.
func Open(dir string, opts Options) (Engine, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger.WithGroup("store")
	e := &pebbleEngine{
		core:       newCore(opts.Partitions, opts.QueueLength),
		opts:       opts,
		log:        log,
		metrics:    newMetrics(),
		writerDone: make(chan struct{}),
	}
	po := opts.pebbleOptions(opts.storeFS(), e.syncInterval, pebbleLogger{log: log.WithGroup("pebble"), onFatal: e.latch.fail},
		eventListener(log, e.metrics, &e.counters, func(err error) {
			e.latch.fail(fmt.Errorf("persistence: the disk failed: %w", err))
		}))
	err := recoverFatal(func() (err error) {
		e.db, err = pebble.Open(dir, po)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persistence: open %s: %w", dir, err)
	}
	if err := e.checkPartitions(dir); err != nil {
		return nil, errors.Join(err, e.closeDB())
	}
	if err := e.metrics.register(opts.Registerer, lsmCollector{read: e.pebbleMetrics}); err != nil {
		return nil, errors.Join(err, e.closeDB())
	}
	w := newWriter(e)
	go w.run()
	return e, nil
}

// checkPartitions records the partition count at the first open and checks
// it at every later one.
func (e *pebbleEngine) checkPartitions(dir string) error {
	v, closer, err := e.db.Get(metaKey())
	if errors.Is(err, pebble.ErrNotFound) {
		err = recoverFatal(func() error {
			return e.db.Set(metaKey(), encodePartitions(e.partitions), pebble.Sync)
		})
		if err != nil {
			return fmt.Errorf("persistence: record partition count: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("persistence: read partition count: %w", err)
	}
	stored, err := decodePartitions(v)
	_ = closer.Close()
	if err != nil {
		return err
	}
	if stored != e.partitions {
		return fmt.Errorf("%w: %s was created with %d partitions, options ask for %d",
			ErrPartitionCount, dir, stored, e.partitions)
	}
	return nil
}

// recoverFatal runs f, turning a pebbleLogger.Fatalf panic into an error.
// Other panics pass through.
func recoverFatal(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fatal, ok := r.(*pebbleFatal)
			if !ok {
				panic(r)
			}
			err = fatal
		}
	}()
	return f()
}

func (e *pebbleEngine) Partitions() int         { return e.partitions }
func (e *pebbleEngine) Failed() <-chan struct{} { return e.latch.failed }
func (e *pebbleEngine) Err() error              { return e.latch.Err() }

func (e *pebbleEngine) Store(p int) Store {
	e.checkPartition(p)
	return &pebbleStore{e: e, p: p}
}

func (e *pebbleEngine) Flushing() bool { return e.counters.flushes.Load() > 0 }

func (e *pebbleEngine) Elastic(delta int) { e.elastic.Add(int64(delta)) }

// syncInterval is the least time between WAL syncs (Pebble's
// WALMinSyncInterval, asked after each sync): longer while elastic work
// runs.
func (e *pebbleEngine) syncInterval() time.Duration {
	if e.elastic.Load() > 0 {
		return walMinSyncIntervalElastic
	}
	return walMinSyncInterval
}

// Stats adds Pebble's L0 shape to the writer's counters while open.
func (e *pebbleEngine) Stats() Stats {
	s := e.counters.stats(len(e.queue))
	if m := e.pebbleMetrics(); m != nil {
		s.L0Sublevels = int(m.Levels[0].Sublevels)
		s.L0Files = m.Levels[0].TablesCount
	}
	return s
}

// pebbleMetrics are Pebble's metrics, or nil once the engine is closing.
func (e *pebbleEngine) pebbleMetrics() *pebble.Metrics {
	if e.gate.enter() != nil {
		return nil
	}
	defer e.gate.leave()
	return e.db.Metrics()
}

// Close stops accepting requests, lets the writer complete every queued one,
// flushes the memtable (unless the engine failed) and closes Pebble. Safe to
// call twice; later calls return the first one's result.
func (e *pebbleEngine) Close() error {
	e.closeOnce.Do(func() {
		e.gate.close()
		close(e.queue)
		<-e.writerDone
		var errs []error
		if e.latch.Err() == nil {
			if err := recoverFatal(e.db.Flush); err != nil {
				errs = append(errs, fmt.Errorf("persistence: flush: %w", err))
			}
		}
		errs = append(errs, e.closeDB())
		e.metrics.unregister()
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

func (e *pebbleEngine) closeDB() error {
	if err := recoverFatal(e.db.Close); err != nil {
		return fmt.Errorf("persistence: close: %w", err)
	}
	return nil
}

// pebbleStore is one partition of a Pebble engine.
type pebbleStore struct {
	e *pebbleEngine
	p int
}

func (s *pebbleStore) Partition() int { return s.p }

func (s *pebbleStore) Append(ctx context.Context, req *AppendRequest, done func(error)) {
	s.e.appendTo(ctx, s.p, req, done)
}

// ClaimIdentity goes through the writer: claims are serialized with every
// other write, batched into its group commits, and durable when answered.
func (s *pebbleStore) ClaimIdentity(ctx context.Context, kind, value, customer string) (string, error) {
	return s.e.claim(ctx, s.p, kind, value, customer)
}

// Erase goes through the writer, after every request queued before it, in a
// synced batch of its own. It deletes an identity only while it belongs to
// the customer. The writer reads the customer's events to find its segment
// keys, so a long history delays the requests queued behind it.
func (s *pebbleStore) Erase(ctx context.Context, customer string, identities []IdentityKey) error {
	return s.e.erase(ctx, s.p, customer, identities)
}
