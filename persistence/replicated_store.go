package persistence

// A replicated partition's Store: writes are proposals to its raft group
// (replicated_group.go), reads go to the local Pebble (pebble_read.go).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/throughline/throughline/journey"
)

type replicatedStore struct {
	e     *replicatedEngine
	p     int
	g     *replicaGroup // nil: this node has no replica of p
	local *pebbleStore
}

func (s *replicatedStore) Partition() int { return s.p }

// submit queues o on the partition's group, or fails: the partition has no
// replica here, the engine is closed, this node does not lead it.
func (s *replicatedStore) submit(ctx context.Context, o op) error {
	if s.g == nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, &NotLeaderError{Partition: s.p})
	}
	return s.g.submit(ctx, o)
}

// Append is a proposal: done is called by the group's completer once the
// entry is committed and applied on this node (nil or ErrConflict), or
// with ErrUnavailable when this node does not lead the partition or loses
// leadership before the entry is applied (its outcome is then unknown).
func (s *replicatedStore) Append(ctx context.Context, req *AppendRequest, done func(error)) {
	a := prepareAppend(s.p, req, done)
	if err := s.submit(ctx, op{append: a}); err != nil {
		done(err)
	}
}

func (s *replicatedStore) ClaimIdentity(ctx context.Context, kind, value, customer string) (string, error) {
	o, err := newClaimOp(s.p, s.e.Partitions(), kind, value, customer)
	if err != nil {
		return "", err
	}
	if err := s.submit(ctx, op{claim: o}); err != nil {
		return "", err
	}
	return o.wait(ctx)
}

// SaveSnapshot is replicated like every write, and returns once applied.
func (s *replicatedStore) SaveSnapshot(ctx context.Context, customer string, snap *Snapshot) error {
	if err := checkSnapshot(customer, snap); err != nil {
		return err
	}
	o := &snapshotOp{partition: s.p, customer: customer, seq: snap.Seq,
		data: append([]byte(nil), snap.Data...), reply: make(chan error, 1)}
	if err := s.submit(ctx, op{snapshot: o}); err != nil {
		return err
	}
	return waitReply(ctx, o.reply, "snapshot")
}

// Erase erases the customer's keys and its identities of this partition in
// one entry, then releases its identities of other partitions through their
// groups, which this node must lead too (else ErrUnavailable wrapping a
// *NotLeaderError; the erasure is idempotent, retry it whole). Unlike the
// Pebble engine's, it is not one atomic batch across partitions.
func (s *replicatedStore) Erase(ctx context.Context, customer string, identities []IdentityKey) error {
	o, err := newEraseOp(s.p, customer, nil)
	if err != nil {
		return err
	}
	others := make(map[int][]IdentityKey)
	for _, id := range identities {
		if err := checkParts(id.Kind, id.Value); err != nil {
			return err
		}
		q := identityPartition(id.Kind, id.Value, s.e.Partitions())
		if q == s.p {
			o.identities = append(o.identities, id)
		} else {
			others[q] = append(others[q], id)
		}
	}
	if err := s.submit(ctx, op{erase: o}); err != nil {
		return err
	}
	if err := waitReply(ctx, o.reply, "erase"); err != nil {
		return err
	}
	for q, ids := range others {
		err := s.e.ReleaseIdentities(ctx, q, customer, ids)
		var nl *NotLeaderError
		if errors.As(err, &nl) && s.e.cfg.ReleaseElsewhere != nil {
			err = s.e.cfg.ReleaseElsewhere(ctx, q, customer, ids)
		}
		if err != nil {
			return fmt.Errorf("persistence: erase the customer's identities of partition %d: %w", q, err)
		}
	}
	return nil
}

// ReleaseIdentities erases a customer's identities of partition q through
// q's group, which this node must lead.
func (e *replicatedEngine) ReleaseIdentities(ctx context.Context, q int, customer string, ids []IdentityKey) error {
	for _, id := range ids {
		if err := checkParts(id.Kind, id.Value); err != nil {
			return err
		}
	}
	rel := &eraseOp{partition: q, customer: customer, identities: ids, identitiesOnly: true, reply: make(chan error, 1)}
	if err := e.Store(q).(*replicatedStore).submit(ctx, op{erase: rel}); err != nil {
		return err
	}
	return waitReply(ctx, rel.reply, "erase")
}

func (s *replicatedStore) WriteRecords(ctx context.Context, collection string, puts []Record, deletes []string) error {
	o, err := newRecordsOp(s.p, collection, puts, deletes)
	if err != nil {
		return err
	}
	if err := s.submit(ctx, op{records: o}); err != nil {
		return err
	}
	return waitReply(ctx, o.reply, "records")
}

// read admits a read through the replicated engine's gate (closed: fails).
func (s *replicatedStore) read(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.e.gate.enter()
}

func (s *replicatedStore) Load(ctx context.Context, customer string) (*Snapshot, []journey.Event, error) {
	if err := s.read(ctx); err != nil {
		return nil, nil, err
	}
	defer s.e.gate.leave()
	return s.local.Load(ctx, customer)
}

func (s *replicatedStore) Events(ctx context.Context, customer string, after uint64, limit int) ([]journey.Event, error) {
	if err := s.read(ctx); err != nil {
		return nil, err
	}
	defer s.e.gate.leave()
	return s.local.Events(ctx, customer, after, limit)
}

func (s *replicatedStore) LastSeq(ctx context.Context, customer string) (uint64, error) {
	if err := s.read(ctx); err != nil {
		return 0, err
	}
	defer s.e.gate.leave()
	return s.local.LastSeq(ctx, customer)
}

func (s *replicatedStore) LookupEvent(ctx context.Context, customer, eventID string) (uint64, bool, bool, error) {
	if err := s.read(ctx); err != nil {
		return 0, false, false, err
	}
	defer s.e.gate.leave()
	return s.local.LookupEvent(ctx, customer, eventID)
}

func (s *replicatedStore) LookupEventIn(ctx context.Context, customer, eventID string, from, to uint64) (uint64, bool, bool, error) {
	if err := s.read(ctx); err != nil {
		return 0, false, false, err
	}
	defer s.e.gate.leave()
	return s.local.LookupEventIn(ctx, customer, eventID, from, to)
}

func (s *replicatedStore) LastDedupBlock(ctx context.Context, customer string) (uint64, error) {
	if err := s.read(ctx); err != nil {
		return 0, err
	}
	defer s.e.gate.leave()
	return s.local.LastDedupBlock(ctx, customer)
}

func (s *replicatedStore) LookupErasedID(ctx context.Context, eventID string) (bool, error) {
	if err := s.read(ctx); err != nil {
		return false, err
	}
	defer s.e.gate.leave()
	return s.local.LookupErasedID(ctx, eventID)
}

func (s *replicatedStore) LookupIdentity(ctx context.Context, kind, value string) (string, error) {
	if err := s.read(ctx); err != nil {
		return "", err
	}
	defer s.e.gate.leave()
	return s.local.LookupIdentity(ctx, kind, value)
}

func (s *replicatedStore) ScanSegment(ctx context.Context, eventType string, from, to time.Time, fn func(string) bool) error {
	if err := s.read(ctx); err != nil {
		return err
	}
	defer s.e.gate.leave()
	return s.local.ScanSegment(ctx, eventType, from, to, fn)
}

func (s *replicatedStore) ScanDue(ctx context.Context, from DueWork, until time.Time, fn func(DueWork) bool) error {
	if err := s.read(ctx); err != nil {
		return err
	}
	defer s.e.gate.leave()
	return s.local.ScanDue(ctx, from, until, fn)
}

func (s *replicatedStore) ScanMarks(ctx context.Context, broadcast string, fn func(string, []byte) bool) error {
	if err := s.read(ctx); err != nil {
		return err
	}
	defer s.e.gate.leave()
	return s.local.ScanMarks(ctx, broadcast, fn)
}

func (s *replicatedStore) ScanRecords(ctx context.Context, collection, after string, fn func(string, []byte) bool) error {
	if err := s.read(ctx); err != nil {
		return err
	}
	defer s.e.gate.leave()
	return s.local.ScanRecords(ctx, collection, after, fn)
}
