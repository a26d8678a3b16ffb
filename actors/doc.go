// Package actors holds Throughline's protoactor-go actors: one partition host
// per partition, which owns the customer actors of its partition and the
// identities indexed there, and one virtual actor per customer. They are thin
// shells: decode, journey.Step (decide, apply, react), hand events to the
// partition's persistence.Store, and release replies and outbounds from an
// outbox in seq order once the events behind them are durable. No business
// rule lives here. Work a customer must not wait for (a bot's brain, a
// workflow's code or HTTP call) runs on a bounded task pool (bot.go,
// workflow.go) and comes back to the customer as an input.
//
// Partitions are hosted and unhosted at run time (partitions.go): in a
// cluster a partition's host runs only where its raft leader is.
// Broadcasts (broadcast.go) are worked through by a runner goroutine per
// broadcast that scans each hosted partition's segment index and asks its
// customers, paced by one node-wide rate limiter; erasure (erase.go) and
// the audit log (audit.go) go through the same hosts and stores. The
// analytics runner (analytics.go) is one goroutine that feeds each hosted
// partition's analytics.Projection the events customers store, once
// durable, through a bounded queue that never holds up a customer (what
// does not fit is read back from the store), and saves the projections.
//
// Concurrency: Runtime's methods are safe for concurrent use. Each actor's
// state is owned by that actor. Replies (Done callbacks) are called from
// actor goroutines and must not block.
//
// Mailboxes are protoactor's unbounded queues, bounded by admission instead
// of by a full mailbox (DESIGN "back-pressure"): every message that reaches
// a customer was admitted by a connection's in-flight credit or a
// partition's admission count, so a mailbox holds at most the sum of those.
// Appends complete through the store's writer; a completion names the actor's
// incarnation and a stale one is dropped.
package actors
