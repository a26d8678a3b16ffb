package persistence

import (
	"context"
	"errors"
	"time"

	"github.com/throughline/throughline/journey"
)

// Errors a Store returns. Callers compare with errors.Is.
var (
	// ErrConflict: an append whose PrevSeq is not the customer's last stored seq.
	ErrConflict = errors.New("persistence: seq conflict")
	// ErrUnavailable: the store has failed (latched) or is closed. Requests
	// refused after the latch stored nothing; the batch whose commit failed
	// may still be in the WAL, which decides at the next open.
	ErrUnavailable = errors.New("persistence: store unavailable")
	// ErrPartitionCount: the data directory was created with another partition count.
	ErrPartitionCount = errors.New("persistence: partition count mismatch")
	// ErrInvalid: a request that breaks the Store's contract (seqs not
	// consecutive, an empty id, a key part over 65535 bytes, an identity asked
	// of a store that is not its partition's); nothing was stored.
	ErrInvalid = errors.New("persistence: invalid request")
)

// Store is the durable state of one partition. Every method may be called from
// any goroutine. Every method that blocks takes a context first.
type Store interface {
	// Partition is the partition this store serves.
	Partition() int

	// Append stores the events of one customer, plus the due-work and segment
	// changes written in the same batch. It never blocks on disk: done is
	// called exactly once, from the store's writer goroutine, when the batch is
	// durable (nil) or has failed. For one Store, done callbacks run in the
	// order of the Append calls. done must not block.
	//
	// req.Events must have consecutive Seq starting at req.PrevSeq+1;
	// an append whose PrevSeq is not the customer's last stored seq fails with
	// ErrConflict (and later appends of that customer are not affected). A
	// request that breaks this contract fails with ErrInvalid, in its turn.
	//
	// The writer's queue is bounded: when it is full, Append blocks until
	// there is room. An append that cannot be queued (the store is closed, or
	// ctx ends while the queue is full) has done called before Append
	// returns, on the caller's goroutine. done must not call back into the
	// store. req may be reused once Append returns.
	Append(ctx context.Context, req *AppendRequest, done func(error))

	// Load returns the customer's latest snapshot (nil if none) and the stored
	// events after the snapshot's seq, in seq order.
	Load(ctx context.Context, customer string) (*Snapshot, []journey.Event, error)

	// Events returns up to limit stored events with seq > after, in seq order
	// (limit <= 0: all of them).
	Events(ctx context.Context, customer string, after uint64, limit int) ([]journey.Event, error)

	// LastSeq returns the customer's last stored seq (0: no events).
	LastSeq(ctx context.Context, customer string) (uint64, error)

	// SaveSnapshot stores the customer's snapshot, replacing an older one.
	SaveSnapshot(ctx context.Context, customer string, snap *Snapshot) error

	// LookupEvent reports the seq an event id was stored under for this
	// customer (found), or that the id belonged to an erased customer of that
	// id (erased).
	// It reads the id's dedup key, then the customer's dedup blocks.
	LookupEvent(ctx context.Context, customer, eventID string) (seq uint64, found, erased bool, err error)

	// LookupEventIn is LookupEvent reading only the dedup blocks that may
	// hold seqs from..to (the journey's filters say which): a busy
	// customer has hundreds.
	LookupEventIn(ctx context.Context, customer, eventID string, from, to uint64) (seq uint64, found, erased bool, err error)

	// LastDedupBlock is the last seq of the customer's last dedup block (0:
	// none; math.MaxUint64 from a store that keeps every id exactly), for
	// journey.RebuildFrom.
	LastDedupBlock(ctx context.Context, customer string) (uint64, error)

	// LookupErasedID reports whether an erased customer, any customer, had
	// an event of this id (an id-only tombstone): a late retry that reaches
	// a new customer by its identity is refused with it. Asked of the store
	// of PartitionOf(eventID, partitions); another store answers
	// ErrInvalid. A replicated engine keeps no id-only tombstones yet.
	LookupErasedID(ctx context.Context, eventID string) (bool, error)

	// LookupIdentity returns the customer an identity (key kind, normalized
	// value) belongs to, or "" when none. An identity is asked of the store of
	// its partition, PartitionOf(kind+"\x00"+value, partitions); another
	// store answers ErrInvalid (so is ClaimIdentity).
	LookupIdentity(ctx context.Context, kind, value string) (string, error)

	// ClaimIdentity claims the identity for customer unless it already
	// belongs to someone, durably, and returns its owner after the call.
	ClaimIdentity(ctx context.Context, kind, value, customer string) (owner string, err error)

	// Customers with at least one event of eventType recorded in [from, to),
	// each reported once, in no particular order; fn returning false stops.
	ScanSegment(ctx context.Context, eventType string, from, to time.Time, fn func(customer string) bool) error

	// ScanDue reports due work from a position until (At < until), in At
	// order; fn returning false stops. The position is from.At (a zero
	// DueWork: the beginning) or, with from.Customer set, just after the
	// work from names. (The host scans from where its last scan ended:
	// the keys before are mostly deleted, and an LSM iterator steps over
	// every deletion not yet compacted.)
	ScanDue(ctx context.Context, from DueWork, until time.Time, fn func(DueWork) bool) error

	// Erase removes every key that names the customer (events, snapshot,
	// dedup keys, segment entries, due work) and those of the given
	// identities that still belong to it (of any partition), and
	// keeps a tombstone of hashed event ids so LookupEvent reports erased.
	//
	// It also removes the customer's broadcast marks, found from the
	// broadcast ids its stored proactive.* and journey.callback_scheduled
	// events name.
	Erase(ctx context.Context, customer string, identities []IdentityKey) error

	// ScanMarks reports every customer of this partition with a mark of the
	// broadcast (AppendRequest.Marks), in customer order, with the mark's
	// value; fn returning false stops. value is valid only during the call.
	ScanMarks(ctx context.Context, broadcast string, fn func(customer string, value []byte) bool) error

	// WriteRecords stores and deletes records of a collection in one synced
	// batch, durable when it returns (deletes first: a key in both is kept).
	// Records are small documents of the node's own (broadcast definitions,
	// audit entries) kept in the partition's key range.
	WriteRecords(ctx context.Context, collection string, puts []Record, deletes []string) error

	// ScanRecords reports the collection's records with keys after after, in
	// key (byte) order; fn returning false stops. value is valid only during
	// the call.
	ScanRecords(ctx context.Context, collection, after string, fn func(key string, value []byte) bool) error
}

// Record is one document of a collection (Store.WriteRecords).
type Record struct {
	Key   string
	Value []byte
}

// Mark is a customer's outcome of a broadcast, written with the events that
// decided it and replaced by later ones; Value is the caller's encoding.
type Mark struct {
	Broadcast string
	Value     []byte
}

// AppendRequest is one customer's batch.
type AppendRequest struct {
	Customer string
	PrevSeq  uint64
	Events   []journey.Event
	// DueAdd and DueDelete change the due-work index in the same batch;
	// deletes come first, so a key in both (work rescheduled to the same
	// time) is kept.
	DueAdd    []DueWork
	DueDelete []DueWork
	// Marks set the customer's marks of broadcasts in the same batch.
	Marks []Mark
	// IDsInBlocks: the ids of the customer's own events (actor customer,
	// idempotency keys) get no dedup key each; the journey holds them and
	// hands them back in a DedupBlock, in this append or a later one, once
	// they leave its memory. Without it each such id gets its dedup key.
	IDsInBlocks bool
	// DedupBlock, when not empty, is written as one dedup block: ids of
	// events stored before (seq order, at most DedupBlockMax), looked up
	// by LookupEventIn.
	DedupBlock []journey.DedupID
}

// DedupBlockMax is the most ids a dedup block holds (journey's).
const DedupBlockMax = journey.DedupBlockMax

// Snapshot is a customer's state at Seq, encoded by journey.
type Snapshot struct {
	Seq  uint64
	Data []byte
}

// DueWork is an obligation to act for a customer at a time (DESIGN "Time").
type DueWork struct {
	At       time.Time
	Customer string
	Kind     string
	Ref      string
}

// IdentityKey names an identity in the index: the index kind (see
// journey.IndexKind) and the normalized value.
type IdentityKey struct {
	Kind  string
	Value string
}
