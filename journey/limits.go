package journey

import "time"

// Limits of the public contract (PROTOCOL section 1) and of the in-memory
// state. Every collection that can grow has one here.
const (
	IDMaxChars           = 128      // ids: 1 to 128 printable characters
	TypeMaxChars         = 128      // event type names
	ChannelMaxChars      = 32       // channel names
	DataMaxBytes         = 16 << 10 // an event's data object
	EventMaxBytes        = 64 << 10 // a whole inbound event
	IdentitiesPerEvent   = 16       // identity kinds in one event
	IdentityValueMax     = 256      // an identity value, after normalization
	IdentitiesPerKind    = 16       // values of one kind a customer keeps
	IdentityKindsMax     = 32       // identity kinds a customer keeps
	ProfileMaxBytes      = 64 << 10 // a profile, encoded
	TimelineMax          = 50       // stored events kept in memory, newest last (the context shows them)
	RecentIDsMax         = 256      // event ids kept exactly in memory for idempotency; older ones in RecentFilterBytesMax
	RecentFilterBytesMax = 64 << 10 // Bloom filters of the ids that left RecentIDsMax (about 25,000 ids), per customer
	DedupBlockIDs        = 64       // ids that left RecentIDsMax written to the store as one dedup block
	IdempotencyWindow    = 24 * time.Hour
	BatchMaxEvents       = 1000 // events in one batch frame or request
	ContextTimelineSize  = 50   // events in a journey context
)

// Limits of what a client sends the gateway, over HTTP or a WebSocket, beside
// the event limits above. The gateway's own defaults and constants are these
// (gateway.Config, gateway/webchat.go, gateway/channels_http.go); the other
// tables are ai/limits.go (the bot), analytics/limits.go (journey
// analytics), channels/common.go and channels/email.go (provider payloads).
// Every string of an event must be valid UTF-8 (CheckJSONUTF8), nested at
// most JSONDepthMax deep.
const (
	FrameMaxBytesDefault  = 16 << 20 // a WebSocket frame (a batch of BatchMaxEvents events); node.frame_max_bytes
	BodyMaxBytesDefault   = 16 << 20 // an HTTP request body; node.body_max_bytes
	HeaderMaxBytesDefault = 64 << 10 // an HTTP request's headers; node.header_max_bytes
	HelloChannelsMax      = 64       // channels named in one hello frame
	TimelinePageMax       = 1000     // events in one timeline page (?limit=)
	WebhookBodyMaxBytes   = 1 << 20  // a provider's webhook body (PROTOCOL section 9)
	WebchatFrameMaxBytes  = 8 << 10  // a web chat visitor's frame
	WebchatBodyMaxBytes   = 4 << 10  // a web chat visitor's HTTP body
)

// Limits of the offers configuration (offers.go). Every one is checked by
// CompileOffers.
const (
	OffersMax         = 256                 // offers in one configuration
	OfferIDMaxChars   = 64                  // an offer id
	OfferExprMaxChars = RuleExprMaxChars    // a when or score expression
	OfferTextMaxBytes = SendTextMaxBytes    // an offer's text
	OfferChannelsMax  = 16                  // channels of one offer
	OfferPriorityMax  = 1e9                 // |priority|: keeps scores finite and comparable
	OfferCapMaxMax    = 16                  // the largest cap.max
	OfferCapPerMax    = 30 * 24 * time.Hour // the longest cap.per
	// OfferResponseWindowDefault is how long an accepted or declined offer
	// without a cap is not proposed again to that customer.
	OfferResponseWindowDefault = 30 * 24 * time.Hour
)
