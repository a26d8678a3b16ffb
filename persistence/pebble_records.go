package persistence

// Broadcast marks and records, read straight from Pebble; written through
// the writer (Append's Marks, WriteRecords).

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

func (s *pebbleStore) ScanMarks(ctx context.Context, broadcast string, fn func(customer string, value []byte) bool) error {
	if err := checkParts(broadcast); err != nil {
		return err
	}
	prefix := markPrefix(s.p, broadcast)
	return s.scanRange(ctx, prefix, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		_, _, customer, err := decodeMarkKey(k)
		if err != nil {
			return false, err
		}
		return fn(customer, v), nil
	})
}

func (s *pebbleStore) WriteRecords(ctx context.Context, collection string, puts []Record, deletes []string) error {
	return s.e.writeRecords(ctx, s.p, collection, puts, deletes)
}

func (s *pebbleStore) ScanRecords(ctx context.Context, collection, after string, fn func(key string, value []byte) bool) error {
	if err := checkParts(collection, after); err != nil {
		return err
	}
	prefix := recordPrefix(s.p, collection)
	lower := prefix
	if after != "" {
		// The first key after `after`: after itself plus a zero byte.
		lower = recordKey(s.p, collection, after)
	}
	return s.scanRange(ctx, lower, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		_, _, key, err := decodeRecordKey(k)
		if err != nil {
			return false, err
		}
		if after != "" && key <= after {
			return true, nil
		}
		return fn(key, v), nil
	})
}

// scanRange calls fn with each key and value in [lower, upper) until it
// returns false or an error.
func (s *pebbleStore) scanRange(ctx context.Context, lower, upper []byte, fn func(k, v []byte) (bool, error)) error {
	if err := s.e.begin(ctx); err != nil {
		return err
	}
	defer s.e.end()
	return scanDB(ctx, s.e.db, lower, upper, fn)
}

// scanDB calls fn with every key in [lower, upper) of db and its value,
// in order, until fn returns false or an error; it checks ctx every
// ctxCheckEvery keys.
func scanDB(ctx context.Context, db *pebble.DB, lower, upper []byte, fn func(k, v []byte) (bool, error)) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("persistence: scan: %w", err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%ctxCheckEvery == 0 && ctx.Err() != nil {
			return errors.Join(ctx.Err(), it.Close())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			break
		}
		more, err := fn(it.Key(), v)
		if err != nil {
			return errors.Join(err, it.Close())
		}
		if !more {
			break
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("persistence: scan: %w", err)
	}
	return nil
}
