package analytics

import "time"

// Limits of a partition's projection. Each bounds memory; what does not
// fit is counted, never silently lost.
const (
	// Retention is how long a bucket is kept after its hour.
	Retention = 35 * 24 * time.Hour
	// RollupAfter is the age past which hour buckets are merged into day
	// buckets (a window is answered to the hour within it, to the day
	// before).
	RollupAfter = 48 * time.Hour
	// FCRWindow: a resolved conversation is first-contact resolved when its
	// customer opens no other conversation within this time after it ends;
	// repeat contact is measured over the same time.
	FCRWindow = 7 * 24 * time.Hour
	// LinkWithin: a conversation continues the journey of the one it
	// follows (data.previous) when it opens within this time of its end.
	LinkWithin = 24 * time.Hour
	// StuckAfterDefault: a waiting conversation is stuck past its queue's
	// callback_after, or past this when the queue has none.
	StuckAfterDefault = 5 * time.Minute

	// TrackedMax bounds the customers whose latest conversation a partition
	// follows. Past it, ended conversations are dropped first (oldest end
	// first), then open ones (oldest activity first); an open one dropped
	// counts as untracked in its bucket.
	TrackedMax = 20_000
	// SeenMax bounds the customers whose last applied seq is remembered
	// for deduplication (those with events within SeenFor of the newest).
	SeenMax = 50_000
	// SeenFor is how long, in recorded time, a customer's last applied seq
	// is remembered: longer than CatchUpMargin, so a catch-up that rereads
	// from the saved position minus the margin skips what was applied.
	SeenFor = 3 * time.Minute
	// CatchUpMargin is how far before the saved position a catch-up
	// rereads: an event's recorded_at may precede the durability of
	// another customer's event applied before it by at most this.
	CatchUpMargin = time.Minute

	// PathStepsMax bounds the steps of a journey's path; a longer journey
	// keeps its first PathStepsMax-1 steps and "..." for the rest.
	PathStepsMax = 8
	// PathsMax, DropOffsMax, ReasonsMax and OffersMax bound the distinct
	// keys per bucket; more are counted under OtherKey.
	PathsMax    = 64
	DropOffsMax = 64
	ReasonsMax  = 16
	OffersMax   = 64
	// KnownOffersMax bounds the offers seen sent; an offer.accepted counts
	// only for an offer the partition has seen sent.
	KnownOffersMax = 256
	// TopPaths is how many paths an answer lists; TopDropOffs how many
	// drop-off steps; StuckMax how many stuck groups.
	TopPaths    = 20
	TopDropOffs = 20
	StuckMax    = 100

	// OtherKey counts what a bounded map had no room for.
	OtherKey = "other"
)
