package persistence

// Reads of the Pebble engine go straight to the DB, on the caller's goroutine.
// They see what the writer has committed (and, for a moment, a batch being
// synced: Pebble shows a commit before its WAL sync returns; see DESIGN).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/throughline/throughline/journey"
)

// ctxCheckEvery is how many keys a scan reads between checks of its ctx.
const ctxCheckEvery = 256

func (s *pebbleStore) Load(ctx context.Context, customer string) (*Snapshot, []journey.Event, error) {
	if err := s.e.begin(ctx); err != nil {
		return nil, nil, err
	}
	defer s.e.end()
	if err := checkParts(customer); err != nil {
		return nil, nil, err
	}
	// One point in time for the snapshot and the events after it.
	view := s.e.db.NewSnapshot()
	defer view.Close()
	var snap *Snapshot
	err := getValue(view, snapshotKey(s.p, customer), func(v []byte) (err error) {
		snap, err = decodeSnapshot(v)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	var after uint64
	if snap != nil {
		after = snap.Seq
	}
	events, err := readEvents(ctx, view, s.p, customer, after, 0)
	if err != nil {
		return nil, nil, err
	}
	return snap, events, nil
}

// Events returns up to limit events after seq after; limit <= 0: all.
func (s *pebbleStore) Events(ctx context.Context, customer string, after uint64, limit int) ([]journey.Event, error) {
	if err := s.e.begin(ctx); err != nil {
		return nil, err
	}
	defer s.e.end()
	if err := checkParts(customer); err != nil {
		return nil, err
	}
	return readEvents(ctx, s.e.db, s.p, customer, after, limit)
}

func readEvents(ctx context.Context, r pebble.Reader, p int, customer string, after uint64, limit int) ([]journey.Event, error) {
	if after == math.MaxUint64 {
		return nil, nil
	}
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: eventKey(p, customer, after+1),
		UpperBound: prefixEnd(eventPrefix(p, customer)),
	})
	if err != nil {
		return nil, fmt.Errorf("persistence: read events: %w", err)
	}
	var events []journey.Event
	for ok := it.First(); ok && !limitReached(events, limit); ok = it.Next() {
		if len(events)%ctxCheckEvery == ctxCheckEvery-1 && ctx.Err() != nil {
			return nil, errors.Join(ctx.Err(), it.Close())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			break
		}
		ev, err := decodeEvent(v)
		if err != nil {
			return nil, errors.Join(err, it.Close())
		}
		events = append(events, ev)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("persistence: read events: %w", err)
	}
	return events, nil
}

func (s *pebbleStore) LastSeq(ctx context.Context, customer string) (uint64, error) {
	if err := s.e.begin(ctx); err != nil {
		return 0, err
	}
	defer s.e.end()
	if err := checkParts(customer); err != nil {
		return 0, err
	}
	return readLastSeq(s.e.db, s.p, customer)
}

// readLastSeq is the seq of the customer's last event key (0: none).
func readLastSeq(r pebble.Reader, p int, customer string) (uint64, error) {
	prefix := eventPrefix(p, customer)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("persistence: read last seq: %w", err)
	}
	var seq uint64
	if it.Last() {
		_, _, seq, err = decodeEventKey(it.Key())
	}
	if err := errors.Join(err, it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("persistence: read last seq: %w", err)
	}
	return seq, nil
}

// SaveSnapshot writes without waiting for a sync: a snapshot is derived from
// events that are already durable, and a lost one is rebuilt from them.
func (s *pebbleStore) SaveSnapshot(ctx context.Context, customer string, snap *Snapshot) error {
	if err := s.e.begin(ctx); err != nil {
		return err
	}
	defer s.e.end()
	if err := checkSnapshot(customer, snap); err != nil {
		return err
	}
	err := recoverFatal(func() error {
		return s.e.db.Set(snapshotKey(s.p, customer), encodeSnapshot(snap), pebble.NoSync)
	})
	if err != nil {
		s.e.latch.fail(err)
		return fmt.Errorf("%w: save snapshot: %w", ErrUnavailable, err)
	}
	return nil
}

func (s *pebbleStore) LookupEvent(ctx context.Context, customer, eventID string) (seq uint64, found, erased bool, err error) {
	return s.LookupEventIn(ctx, customer, eventID, 0, math.MaxUint64)
}

func (s *pebbleStore) LookupEventIn(ctx context.Context, customer, eventID string, from, to uint64) (seq uint64, found, erased bool, err error) {
	if err := s.e.begin(ctx); err != nil {
		return 0, false, false, err
	}
	defer s.e.end()
	if err := checkParts(customer, eventID); err != nil {
		return 0, false, false, err
	}
	start := time.Now()
	defer func() { s.e.metrics.idLookupSeconds.Observe(time.Since(start).Seconds()) }()
	err = getValue(s.e.db, dedupKey(s.p, customer, eventID), func(v []byte) (err error) {
		seq, _, err = decodeDedup(v)
		found = err == nil
		return err
	})
	if err != nil || found {
		return seq, found, false, err
	}
	if from <= to {
		seq, found, err = lookupBlocks(ctx, s.e.db, s.p, customer, journey.IDDigest(eventID), from, to)
		if err != nil || found {
			return seq, found, false, err
		}
	}
	err = getValue(s.e.db, tombstoneKey(s.p, customer, hashEventID(eventID)), func([]byte) error {
		erased = true
		return nil
	})
	return 0, false, erased, err
}

func (s *pebbleStore) LookupErasedID(ctx context.Context, eventID string) (erased bool, err error) {
	if err := s.e.begin(ctx); err != nil {
		return false, err
	}
	defer s.e.end()
	if owner := erasedIDPartition(eventID, s.e.partitions); owner != s.p {
		return false, fmt.Errorf("%w: event id of partition %d asked of partition %d", ErrInvalid, owner, s.p)
	}
	err = getValue(s.e.db, erasedIDKey(s.p, hashEventID(eventID)), func([]byte) error {
		erased = true
		return nil
	})
	return erased, err
}

func (s *pebbleStore) LookupIdentity(ctx context.Context, kind, value string) (string, error) {
	if err := checkIdentity(s.p, s.e.partitions, kind, value); err != nil {
		return "", err
	}
	if err := s.e.begin(ctx); err != nil {
		return "", err
	}
	defer s.e.end()
	return readIdentity(s.e.db, identityKey(s.p, kind, value))
}

func readIdentity(r pebble.Reader, k []byte) (owner string, err error) {
	err = getValue(r, k, func(v []byte) error {
		owner = string(v)
		return nil
	})
	return owner, err
}

// getValue calls fn with k's value, if k is stored. The value is valid only
// during fn.
func getValue(r pebble.Reader, k []byte, fn func([]byte) error) error {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("persistence: get: %w", err)
	}
	err = fn(v)
	return errors.Join(err, closer.Close())
}

func (s *pebbleStore) ScanDue(ctx context.Context, from DueWork, until time.Time, fn func(DueWork) bool) error {
	if err := s.e.begin(ctx); err != nil {
		return err
	}
	defer s.e.end()
	it, err := s.e.db.NewIter(&pebble.IterOptions{
		LowerBound: dueStart(s.p, from),
		UpperBound: dueBound(s.p, timeToNanos(until)),
	})
	if err != nil {
		return fmt.Errorf("persistence: scan due: %w", err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%ctxCheckEvery == 0 && ctx.Err() != nil {
			return errors.Join(ctx.Err(), it.Close())
		}
		_, at, customer, kind, ref, err := decodeDueKey(it.Key())
		if err != nil {
			return errors.Join(err, it.Close())
		}
		if !fn(DueWork{At: nanosToTime(at), Customer: customer, Kind: kind, Ref: ref}) {
			break
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("persistence: scan due: %w", err)
	}
	return nil
}

func (s *pebbleStore) LastDedupBlock(ctx context.Context, customer string) (last uint64, err error) {
	if err := s.e.begin(ctx); err != nil {
		return 0, err
	}
	defer s.e.end()
	if err := checkParts(customer); err != nil {
		return 0, err
	}
	prefix := dedupBlockPrefix(s.p, customer)
	it, err := s.e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("persistence: last dedup block: %w", err)
	}
	if it.Last() {
		k, err := decodeKey(it.Key())
		if err != nil {
			return 0, errors.Join(err, it.Close())
		}
		last = k.Seq
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("persistence: last dedup block: %w", err)
	}
	return last, nil
}

// lookupBlocks looks a digest up in the customer's dedup blocks that may
// hold seqs from..to: a block's key is its last seq, then its first and the
// filter of its ids (dedupfilter.go), so only the blocks whose filters may
// hold the digest are read. A block keyed the old way (its last seq alone)
// is read, and its value says its first seq.
func lookupBlocks(ctx context.Context, db *pebble.DB, p int, customer string, digest [2]uint64, from, to uint64) (seq uint64, found bool, err error) {
	prefix := dedupBlockPrefix(p, customer)
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: appendDedupBlockKey(nil, p, customer, from),
		UpperBound: prefixEnd(prefix),
	})
	if err != nil {
		return 0, false, fmt.Errorf("persistence: dedup blocks: %w", err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%ctxCheckEvery == 0 && ctx.Err() != nil {
			err = ctx.Err()
			break
		}
		_, first, filter, filtered, kerr := dedupBlockKeyTail(it.Key()[len(prefix):])
		if err = kerr; err != nil || filtered && first > to {
			break
		}
		if filtered && !dedupFilterMay(filter, digest) {
			continue
		}
		var v []byte
		if v, err = it.ValueAndErr(); err != nil {
			break
		}
		if !filtered {
			if first, err = dedupBlockFirst(v); err != nil || first > to {
				break
			}
		}
		if seq, found, err = findInDedupBlock(v, digest); found || err != nil {
			break
		}
	}
	if err = errors.Join(err, it.Error(), it.Close()); err != nil {
		return 0, false, fmt.Errorf("persistence: dedup blocks: %w", err)
	}
	return seq, found, nil
}
