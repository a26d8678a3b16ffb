package persistence

// The segment index: one key per (event type, hour, customer), written by the
// writer the first time it sees the triple (pebble_writer.go). Its value is the
// recorded_at of the event that wrote it.
//
// ScanSegment answers [from, to) exactly: a customer found in an hour bucket
// that lies wholly inside the window matches; in a bucket cut by an edge of
// the window, it matches if the bucket's recorded_at is inside, and otherwise
// only if its events show one of the type inside the window.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// ScanSegment keeps the customers it has reported (or ruled out) in memory,
// to report each once: its memory grows with the segment's size.
func (s *pebbleStore) ScanSegment(ctx context.Context, eventType string, from, to time.Time, fn func(string) bool) error {
	if err := s.e.begin(ctx); err != nil {
		return err
	}
	defer s.e.end()
	if err := checkParts(eventType); err != nil {
		return err
	}
	if !from.Before(to) {
		return nil
	}
	it, err := s.e.db.NewIter(&pebble.IterOptions{
		LowerBound: segmentBound(s.p, eventType, hourOf(from)),
		UpperBound: segmentBound(s.p, eventType, hourOf(to.Add(-time.Nanosecond))+1),
	})
	if err != nil {
		return fmt.Errorf("persistence: scan segment: %w", err)
	}
	seen := make(map[string]struct{})
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%ctxCheckEvery == 0 && ctx.Err() != nil {
			return errors.Join(ctx.Err(), it.Close())
		}
		match, customer, err := s.segmentMatch(ctx, it, eventType, from, to, seen)
		if err != nil {
			return errors.Join(err, it.Close())
		}
		if match && !fn(customer) {
			break
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("persistence: scan segment: %w", err)
	}
	return nil
}

// segmentMatch decides the segment key under it, once per customer.
func (s *pebbleStore) segmentMatch(ctx context.Context, it *pebble.Iterator, eventType string, from, to time.Time, seen map[string]struct{}) (bool, string, error) {
	_, _, hour, customer, err := decodeSegmentKey(it.Key())
	if err != nil {
		return false, "", err
	}
	if _, ok := seen[customer]; ok {
		return false, customer, nil
	}
	// Bucket 0 also holds times before 1970 (hourOf): never wholly inside.
	if hour > 0 && !hourStart(hour).Before(from) && !hourStart(hour+1).After(to) {
		seen[customer] = struct{}{}
		return true, customer, nil
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return false, "", err
	}
	at, err := decodeTime(v)
	if err != nil {
		return false, "", err
	}
	if !at.Before(from) && at.Before(to) {
		seen[customer] = struct{}{}
		return true, customer, nil
	}
	match, err := s.hasEvent(ctx, customer, eventType, from, to)
	if err != nil {
		return false, "", err
	}
	// Ruled out or matched, the answer holds for the whole window: the
	// customer's other buckets need no look.
	seen[customer] = struct{}{}
	return match, customer, nil
}

// hasEvent reads the customer's events for one of eventType recorded in
// [from, to): the exact answer for a bucket cut by the window's edge.
func (s *pebbleStore) hasEvent(ctx context.Context, customer, eventType string, from, to time.Time) (bool, error) {
	prefix := eventPrefix(s.p, customer)
	it, err := s.e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return false, err
	}
	match, n := false, 0
	for ok := it.First(); ok && !match; ok = it.Next() {
		if n++; n%ctxCheckEvery == 0 && ctx.Err() != nil {
			return false, errors.Join(ctx.Err(), it.Close())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			break
		}
		h, err := decodeEventHead(v)
		if err != nil {
			return false, errors.Join(err, it.Close())
		}
		match = h.Type == eventType && !h.RecordedAt.Before(from) && h.RecordedAt.Before(to)
	}
	return match, errors.Join(it.Error(), it.Close())
}
