// Package persistence is Throughline's durable state: a Store per partition,
// grouped in an Engine per node.
//
// # What it owns
//
// The key codec (keys.go: every key begins with its partition, string parts
// are length-prefixed, numbers big-endian) and the value codec (values.go:
// events are JSON of journey.Event); the per-customer event log with gapless
// seqs; snapshots; the dedup index of event ids (a key an id, or blocks of
// the ids that left the journey's memory) and the tombstones of erased
// customers' ids; the identity index; the segment index (event type, hour,
// customer); the due-work index; erasure. Two engines implement it: Pebble
// (Open: one database per node, one group-commit writer) and memory
// (NewMemory: the reference, and the store of actor tests). One conformance
// suite runs against both, and against the third: OpenReplicated, one
// hashicorp/raft group per partition over the node's Pebble (replicated.go:
// proposals, leadership, membership changes; raft_fsm.go: the state machine;
// raft_logstore.go: raft's log and stable stores through the node's writer;
// raft_mux.go: one TCP listener for every group, over yamux). Reader
// (reader.go) opens a single node's data dir read-only, for tools that must
// leave it unchanged (throughline replay): customers and their events,
// streamed; it refuses a dir a server holds and a replicated one.
//
// # Where it sits
//
// It imports only journey (the event type). actors/ use it: each partition
// host owns its Store, each customer actor appends through it and reads its
// history back; bench/ reads Engine.Stats for the ceiling it measures;
// cmd/throughline's replay reads through a Reader.
//
// # Concurrency contract
//
// Every method of Engine and Store may be called from any goroutine. All
// writes (Append, ClaimIdentity, Erase) go through one writer goroutine per
// engine, which takes them from a bounded queue in order (a full queue blocks
// the caller until there is room or its ctx is done). Append never waits for
// the disk: done is called once, from the writer, when the append is durable
// or has failed, and the done callbacks of a store run in the order of its
// Append calls. done must not block nor call back into the store. An append
// that cannot be queued at all (the engine is closed, or ctx ended while the
// queue was full) has done called before Append returns, on the caller's
// goroutine. ClaimIdentity and Erase return once durable. Reads go straight
// to the data and see committed writes.
//
// A failed commit is fatal to the engine: it latches failed (Failed is
// closed, Err is set), and every pending and later request, read or write,
// fails with ErrUnavailable. Nothing is retried: the process must exit, and
// on restart the write-ahead log decides what was stored. Close refuses new
// requests, completes every queued one, flushes and closes; it is safe to
// call twice.
//
// Exactly one writer per customer (its actor) is the caller's guarantee; the
// store checks it with the seq: an append whose PrevSeq is not the customer's
// last stored seq fails with ErrConflict.
package persistence
