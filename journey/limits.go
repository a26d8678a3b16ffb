package journey

import "time"

// Limits of the public contract (PROTOCOL section 1) and of the in-memory
// state. Every collection that can grow has one here.
const (
	IDMaxChars          = 128      // ids: 1 to 128 printable characters
	TypeMaxChars        = 128      // event type names
	ChannelMaxChars     = 32       // channel names
	DataMaxBytes        = 16 << 10 // an event's data object
	EventMaxBytes       = 64 << 10 // a whole inbound event
	IdentitiesPerEvent  = 16       // identity kinds in one event
	IdentityValueMax    = 256      // an identity value, after normalization
	IdentitiesPerKind   = 16       // values of one kind a customer keeps
	IdentityKindsMax    = 32       // identity kinds a customer keeps
	ProfileMaxBytes     = 64 << 10 // a profile, encoded
	TimelineMax         = 50       // stored events kept in memory, newest last (the context shows them)
	RecentIDsMax        = 4096     // event ids kept in memory for idempotency
	IdempotencyWindow   = 24 * time.Hour
	BatchMaxEvents      = 1000 // events in one batch frame or request
	ContextTimelineSize = 50   // events in a journey context
)
