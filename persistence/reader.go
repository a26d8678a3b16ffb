package persistence

// A read-only view of a node's data dir, for tools that must not change it
// (throughline replay): it opens Pebble with ReadOnly, which writes no file
// (no WAL, no manifest, no compaction, no flush of a replayed WAL), and
// holds the directory's lock meanwhile, so it cannot run beside the server
// that owns the dir.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/throughline/throughline/journey"
)

// Errors of OpenReader, for errors.Is.
var (
	// ErrInUse: another process (or this one) holds the data dir, in
	// practice a running server.
	ErrInUse = errors.New("persistence: the data dir is in use")
	// ErrNotDataDir: the directory holds no Throughline store.
	ErrNotDataDir = errors.New("persistence: not a data dir")
	// ErrReplicated: the data dir is a cluster node's (raft-replicated
	// partitions), which a Reader does not read: a follower's copy may be
	// behind its leader's.
	ErrReplicated = errors.New("persistence: the data dir holds replicated partitions")
)

// Reader reads the events of a data dir without writing to it. Its methods
// may be called from one goroutine at a time.
type Reader struct {
	db         *pebble.DB
	lock       *pebble.Lock
	partitions int
}

// OpenReader opens dir read-only. It fails with ErrNotDataDir when dir holds
// no store, ErrInUse when the dir is locked (a server runs on it), and
// ErrReplicated when it is a cluster node's.
func OpenReader(dir string, logger *slog.Logger) (*Reader, error) {
	if logger == nil {
		logger = slog.Default()
	}
	// Pebble's lock creates its LOCK file when missing: make sure this is a
	// store before anything can create a file in it.
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err != nil {
		return nil, fmt.Errorf("%w: %s: no LOCK file (%w)", ErrNotDataDir, dir, err)
	}
	if manifests, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*")); len(manifests) == 0 {
		return nil, fmt.Errorf("%w: %s: no MANIFEST file", ErrNotDataDir, dir)
	}
	lock, err := pebble.LockDirectory(dir, vfs.Default)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (%w); stop the server or copy the directory", ErrInUse, dir, err)
	}
	po := &pebble.Options{
		ReadOnly: true,
		Lock:     lock,
		Logger:   pebbleLogger{log: logger.WithGroup("store").WithGroup("pebble")},
	}
	var db *pebble.DB
	err = recoverFatal(func() (err error) {
		db, err = pebble.Open(dir, po)
		return err
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("persistence: open %s read-only: %w", dir, err), lock.Close())
	}
	r := &Reader{db: db, lock: lock}
	if err := r.check(dir); err != nil {
		return nil, errors.Join(err, r.Close())
	}
	return r, nil
}

// check reads the partition count and refuses a replicated store.
func (r *Reader) check(dir string) error {
	err := getValue(r.db, metaKey(), func(v []byte) (err error) {
		r.partitions, err = decodePartitions(v)
		return err
	})
	if err != nil {
		return err
	}
	if r.partitions == 0 {
		return fmt.Errorf("%w: %s has no partition count", ErrNotDataDir, dir)
	}
	for p := range r.partitions {
		found := false
		err := getValue(r.db, appliedKey(p), func([]byte) error { found = true; return nil })
		if err != nil {
			return err
		}
		if found {
			return fmt.Errorf("%w: %s (partition %d has a raft state)", ErrReplicated, dir, p)
		}
	}
	return nil
}

// Partitions is the data dir's partition count.
func (r *Reader) Partitions() int { return r.partitions }

// Customers reports every customer with at least one stored event, once,
// partition by partition in key order; fn returning false stops.
func (r *Reader) Customers(ctx context.Context, fn func(customer string) bool) error {
	for p := range r.partitions {
		lower, upper := appendHead(nil, p, kindEvent), appendHead(nil, p, kindEvent+1)
		it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return fmt.Errorf("persistence: scan customers: %w", err)
		}
		more := true
		for ok := it.First(); ok && more; {
			if err := ctx.Err(); err != nil {
				return errors.Join(err, it.Close())
			}
			_, customer, _, err := decodeEventKey(it.Key())
			if err != nil {
				return errors.Join(err, it.Close())
			}
			more = fn(customer)
			ok = it.SeekGE(prefixEnd(eventPrefix(p, customer)))
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return fmt.Errorf("persistence: scan customers: %w", err)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// Events reports the customer's stored events in seq order, one at a time
// (a long history is never held whole); fn returning false stops. The event
// is fn's to keep.
func (r *Reader) Events(ctx context.Context, customer string, fn func(journey.Event) bool) error {
	if err := checkParts(customer); err != nil {
		return err
	}
	p := PartitionOf(customer, r.partitions)
	prefix := eventPrefix(p, customer)
	return scanDB(ctx, r.db, prefix, prefixEnd(prefix), func(_, v []byte) (bool, error) {
		ev, err := decodeEvent(v)
		if err != nil {
			return false, err
		}
		return fn(ev), nil
	})
}

// Close releases the database and its lock. Safe to call twice.
func (r *Reader) Close() error {
	var errs []error
	if r.db != nil {
		errs = append(errs, r.db.Close())
		r.db = nil
	}
	if r.lock != nil {
		errs = append(errs, r.lock.Close())
		r.lock = nil
	}
	return errors.Join(errs...)
}
