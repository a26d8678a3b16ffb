// Package analytics is Throughline's journey analytics (PROTOCOL section
// 10): a projection of stored events into live figures, per partition.
//
// # What it owns
//
// Projection (projection.go) consumes one partition's stored events, in
// each customer's seq order, and keeps the figures of the conversations
// that opened in each hour (bucket.go): outcomes, escalations by reason,
// first-contact resolution and repeat contact within 7 days, time to
// resolution (a bounded log histogram, sketch.go), channel:handler paths
// and drop-offs, and proactive offers sent and accepted. It follows each
// customer's latest conversation in a bounded table (tracked.go) so a
// conversation's outcome is known when it ends, and what is waiting now
// (stuck). Part (report.go) is a partition's share of an answer for a
// window; Merge adds the parts of every partition, wherever they are
// computed, and Answer turns the sum into the endpoint's JSON.
//
// # Where it sits
//
// It imports journey (event types and data) and the standard library only.
// It has no goroutines, no clock (now arrives as a value), no I/O: the
// actors' analytics runner feeds it durable events, catches it up from the
// store and saves its State (Encode, Decode) with the position it reached.
//
// # Concurrency contract
//
// A Projection is owned by one goroutine; nothing in it is safe for
// concurrent use. Parts are values: they may be merged anywhere.
//
// # Limits
//
// Everything that grows is bounded (limits.go): hour buckets are rolled up
// into day buckets after RollupAfter and dropped after Retention; each
// bucket keeps at most PathsMax paths, DropOffsMax last steps,
// ReasonsMax escalation reasons and OffersMax offers (the rest is counted
// under "other"); the table of followed customers holds TrackedMax
// entries and the recently seen customers SeenMax (oldest dropped first,
// counted as untracked).
package analytics
