package journey

import (
	"errors"
	"fmt"
	"time"
)

// Policy is how the journey decides beyond recording: the bot, rules,
// governance and time limits. It is built from the config at start and
// immutable after; a nil *Policy records inbound events and nothing more.
type Policy struct {
	// Bot is the bot's hand-over policy; nil: no bot, messages are only
	// recorded.
	Bot *BotPolicy
	// Rules are the compiled journey rules; nil: none.
	Rules *Rules
	// Queues are the routing queues (their callback_after is the
	// customer's to keep).
	Queues []QueuePolicy
	// Workflows are the named workflows rules start.
	Workflows Workflows
	// Governance passes every proactive message; nil: no caps, no quiet
	// hours, unset consent counts.
	Governance *Governance
	// Offers are the next best action's catalog; nil: none.
	Offers *Offers
	// ConversationIdle closes a conversation the bot or a workflow holds
	// after this long without a message; default 30m.
	ConversationIdle time.Duration
	// OutboundRetry is how long an outbound waits for accepted or a receipt
	// before it is sent again (PROTOCOL section 2: 30 s).
	OutboundRetry time.Duration
	// OutboundExpiry is when an outbound never accepted is given up as
	// message.failed expired (PROTOCOL section 2: 24 h).
	OutboundExpiry time.Duration
}

// Defaults of Policy.
const (
	ConversationIdleDefault = 30 * time.Minute
	OutboundRetryDefault    = 30 * time.Second
	OutboundExpiryDefault   = 24 * time.Hour
)

// BotPolicy says when the bot hands over to a human (PROTOCOL section 6,
// `ai:`).
type BotPolicy struct {
	// EscalateBelow: a reply whose confidence is under it is not sent; the
	// conversation is handed over.
	EscalateBelow float64
	// FrustrationBelow: a customer message whose sentiment is under it is
	// handed over; default -0.5.
	FrustrationBelow float64
	// DefaultQueue and DefaultPriority are where the bot hands over when no
	// rule said.
	DefaultQueue    string
	DefaultPriority int
	// BlockedTopics are intents the bot never answers (guardrails): a
	// message classified as one is handed over.
	BlockedTopics []string
	// Handover is the message the customer gets when handed over; empty:
	// HandoverTextDefault.
	Handover string
}

// HandoverTextDefault tells the customer a person takes over.
const HandoverTextDefault = "I'm connecting you with a person who can help. Everything you told me goes with you."

// FrustrationBelowDefault is BotPolicy.FrustrationBelow when unset.
const FrustrationBelowDefault = -0.5

// WithDefaults returns the policy with every unset field at its default.
func (p Policy) WithDefaults() Policy {
	if p.ConversationIdle <= 0 {
		p.ConversationIdle = ConversationIdleDefault
	}
	if p.OutboundRetry <= 0 {
		p.OutboundRetry = OutboundRetryDefault
	}
	if p.OutboundExpiry <= 0 {
		p.OutboundExpiry = OutboundExpiryDefault
	}
	if p.Bot != nil {
		b := *p.Bot
		if b.FrustrationBelow == 0 {
			b.FrustrationBelow = FrustrationBelowDefault
		}
		if b.Handover == "" {
			b.Handover = HandoverTextDefault
		}
		p.Bot = &b
	}
	return p
}

// Validate lists every problem of the bot policy in one error.
func (b *BotPolicy) Validate() error {
	var errs []error
	if b.EscalateBelow < 0 || b.EscalateBelow > 1 {
		errs = append(errs, fmt.Errorf("ai.escalate_below %v: must be in [0, 1]", b.EscalateBelow))
	}
	if b.FrustrationBelow < -1 || b.FrustrationBelow > 1 {
		errs = append(errs, fmt.Errorf("ai.frustration_below %v: must be in [-1, 1]", b.FrustrationBelow))
	}
	if b.DefaultQueue == "" {
		errs = append(errs, errors.New("ai.default_queue: required (where the bot hands over)"))
	}
	return errors.Join(errs...)
}
