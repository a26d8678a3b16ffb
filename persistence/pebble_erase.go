package persistence

// Erasing a customer, on the writer's goroutine, after every request queued
// before it has committed: one synced batch deletes every key that names the
// customer and the identities given that still belong to it, and writes a
// tombstone per event id (its SHA-256: no personal data) so LookupEvent
// reports a provider's late retry as erased.

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/throughline/throughline/journey"
)

type segmentBucket struct {
	eventType string
	hour      uint64
}

func (w *writer) erase(o *eraseOp) error {
	b, err := w.eraseBatch(o)
	if err != nil {
		return err
	}
	if err := w.apply(b); err != nil {
		return w.unavailable()
	}
	_ = b.Close()
	return nil
}

// eraseBatch builds the erasure's batch, uncommitted. The writer forgets
// what it knew of the customer (last seq, segment keys) now: a batch that
// is not committed leaves the writer reading the DB again, which is right.
func (w *writer) eraseBatch(o *eraseOp) (*pebble.Batch, error) {
	b := w.db.NewBatch()
	p, customer := o.partition, o.customer
	if o.identitiesOnly {
		if err := w.eraseIdentities(b, customer, o.identities); err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("persistence: release identities: %w", err)
		}
		return b, nil
	}
	buckets, broadcasts, err := w.eraseEvents(b, p, customer, o.idTombstones)
	if err == nil {
		err = w.eraseDue(b, p, customer)
	}
	if err == nil {
		err = w.eraseIdentities(b, customer, o.identities)
	}
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("persistence: erase: %w", err)
	}
	for _, prefix := range [][]byte{dedupPrefix(p, customer), dedupBlockPrefix(p, customer)} {
		must(b.DeleteRange(prefix, prefixEnd(prefix), nil))
	}
	must(b.Delete(snapshotKey(p, customer), nil))
	for bc := range broadcasts {
		must(b.Delete(markKey(p, bc, customer), nil))
	}
	for bucket := range buckets {
		k := segmentKey(p, bucket.eventType, bucket.hour, customer)
		must(b.Delete(k, nil))
		w.forgetSegment(k)
	}
	delete(w.lastSeq, w.seqKey(p, customer))
	return b, nil
}

// eraseEvents deletes the customer's events, leaves a tombstone for each
// of its own (actor customer: their ids are the idempotency keys; a dedup
// block holds only digests), and returns the segment buckets they were
// indexed under and the broadcasts that marked the customer.
func (w *writer) eraseEvents(b *pebble.Batch, p int, customer string, idTombstones bool) (map[segmentBucket]struct{}, map[string]struct{}, error) {
	prefix := eventPrefix(p, customer)
	end := prefixEnd(prefix)
	buckets := make(map[segmentBucket]struct{})
	broadcasts := make(map[string]struct{})
	err := scan(w.db, prefix, end, func(_, v []byte) error {
		h, err := decodeEventHead(v)
		if err != nil {
			return err
		}
		buckets[segmentBucket{h.Type, hourOf(h.RecordedAt)}] = struct{}{}
		if err := w.tombstone(b, p, customer, v, idTombstones); err != nil {
			return err
		}
		return noteBroadcast(broadcasts, h.Type, v)
	})
	if err != nil {
		return nil, nil, err
	}
	must(b.DeleteRange(prefix, end, nil))
	return buckets, broadcasts, nil
}

// tombstone leaves the tombstones of a stored event's id, if the event is
// the customer's own. A tombstone keeps recorded_at, so that tombstones
// older than the idempotency window can be swept.
func (w *writer) tombstone(b *pebble.Batch, p int, customer string, value []byte, idTombstones bool) error {
	ev, err := decodeEvent(value)
	if err != nil || ev.Actor != journey.ActorCustomer {
		return err
	}
	h := hashEventID(ev.ID)
	if idTombstones {
		must(b.Set(erasedIDKey(erasedIDPartition(ev.ID, w.e.partitions), h), encodeTime(ev.RecordedAt), nil))
	}
	return b.Set(tombstoneKey(p, customer, h), encodeTime(ev.RecordedAt), nil)
}

// eraseDue deletes the customer's due work, scanning the partition's.
func (w *writer) eraseDue(b *pebble.Batch, p int, customer string) error {
	prefix := duePrefix(p)
	return scan(w.db, prefix, prefixEnd(prefix), func(k, _ []byte) error {
		_, _, c, _, _, err := decodeDueKey(k)
		if err == nil && c == customer {
			err = b.Delete(k, nil)
		}
		return err
	})
}

// eraseIdentities deletes each identity that belongs to the customer; one
// that belongs to another customer stays.
func (w *writer) eraseIdentities(b *pebble.Batch, customer string, ids []IdentityKey) error {
	for _, id := range ids {
		k := identityKey(identityPartition(id.Kind, id.Value, w.e.partitions), id.Kind, id.Value)
		owner, err := readIdentity(w.db, k)
		if err != nil {
			return err
		}
		if owner == customer {
			must(b.Delete(k, nil))
		}
	}
	return nil
}

// scan calls fn with each key and value in [lower, upper).
func scan(r pebble.Reader, lower, upper []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			break
		}
		if err := fn(it.Key(), v); err != nil {
			return errors.Join(err, it.Close())
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// must panics on a batch error, which Pebble returns only for a closed or
// read-only batch: a broken invariant here.
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("persistence: batch: %v", err))
	}
}
