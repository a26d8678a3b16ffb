package journey

// Routing (PROTOCOL section 4) as a pure state machine.
//
// One routing actor per node owns a *Router and feeds it inputs: a
// conversation enters a queue (Enqueue), is transferred to an agent
// (OfferTo), an offer is accepted (Accepted) or taken back (Revoked), an
// assignment ends (Released), an agent's desk reports presence (Presence),
// time passes (Tick). Every input ends with a dispatch, and answers the
// offers to make now. The Router holds no durable state: customers hold the
// truth (their conversation events), and after a restart they announce their
// waiting and assigned conversations again (Enqueue, Assigned), which are
// idempotent.
//
// Dispatch, the heart of it (routing_dispatch.go): the waiting conversations
// of every queue some available agent with room could serve are taken
// highest effective priority first (priority plus AgingPerMinute for every
// whole minute waited), then longest waiting, then by conversation id. Each
// goes to its customer's last agent when that agent is eligible (sticky),
// waits for that agent while the queue's StickyWait runs, or else goes to
// the eligible agent idle the longest. An eligible agent is available, has
// every skill of the queue, has room for the conversation's channel, and was
// not excluded (it declined the conversation or let an offer lapse). An
// offer reserves room until it is accepted, revoked or the conversation is
// removed.
//
// Like the rest of journey the Router is deterministic: no clock, no
// randomness, maps are never iterated where their order could show.
// It is not safe for concurrent use: its actor is its only caller.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Router defaults (QueuePolicy.EnsureDefaults).
const (
	DefaultOfferTimeout   = 20 * time.Second
	DefaultAgingPerMinute = 1
)

// Router limits. Every collection the Router keeps is bounded by one.
const (
	QueuesMax              = 1_000   // queues in the config
	AgentsMax              = 10_000  // agents in the config
	WaitingMax             = 100_000 // conversations waiting or offered in one queue; Enqueue past it is refused
	CandidatesMax          = 16      // candidates explained in one offer
	SkillsMax              = 32      // skills of one queue or agent
	ExcludedMax            = 32      // agents a conversation remembers as excluded, newest kept
	CapacityMax            = 1_000   // an agent's total or per-channel capacity
	CapacityChannelsMax    = 32      // channels listed in one capacity
	AssignedMax            = 1_000   // conversations assigned to one agent (re-announced assignments past it are dropped)
	AgingPerMinuteMax      = 1_000   // priority points per minute waited
	PriorityMax            = 1 << 29 // |priority| of a waiting conversation; larger values are clamped
	agingMinutesMax        = 1 << 20 // minutes of aging counted (~2 years); keeps the effective priority in an int32
	PresenceReasonMaxChars = 128     // the reason of a presence
)

// Agent statuses (PROTOCOL section 4). An agent's desk sets available,
// not_ready and offline; after_work is the Router's own, after a wrap-up.
const (
	AgentOffline   = "offline"
	AgentAvailable = "available"
	AgentNotReady  = "not_ready"
	AgentAfterWork = "after_work"
)

// Kinds of waiting work.
const (
	KindConversation = "conversation"
	KindCallback     = "callback"
)

// Offer reasons.
const (
	OfferSticky      = "sticky"       // the customer's last agent
	OfferLongestIdle = "longest_idle" // the eligible agent idle the longest
	OfferDirect      = "direct"       // a transfer to a named agent
)

// QueuePolicy is one queue of the config (PROTOCOL section 6 `queues:`).
// The zero value of each field means its default (EnsureDefaults).
type QueuePolicy struct {
	Name           string
	Skills         []string      // an agent needs every one
	OfferTimeout   time.Duration // how long an offer is leased; default DefaultOfferTimeout (20s)
	AfterWork      time.Duration // after a wrap-up the agent is after_work this long (default 0: stays available)
	StickyWait     time.Duration // how long a returning customer waits for its last agent (default 0: no wait)
	CallbackAfter  time.Duration // used by the customer, not the Router (0: never)
	AgingPerMinute int           // priority points a waiting conversation gains per whole minute waited; default 1, negative: no aging
}

// EnsureDefaults fills the fields left zero with their defaults.
func (p *QueuePolicy) EnsureDefaults() {
	if p.OfferTimeout == 0 {
		p.OfferTimeout = DefaultOfferTimeout
	}
	if p.AgingPerMinute == 0 {
		p.AgingPerMinute = DefaultAgingPerMinute
	}
}

// Validate reports every problem of the policy in one error.
func (p *QueuePolicy) Validate() error {
	var errs []error
	if r := ValidateID("queue name", p.Name); r != nil {
		errs = append(errs, r)
	}
	errs = append(errs, validateSkills(p.Skills)...)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"offer_timeout", p.OfferTimeout}, {"after_work", p.AfterWork}, {"sticky_wait", p.StickyWait}, {"callback_after", p.CallbackAfter}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	if p.OfferTimeout == 0 {
		errs = append(errs, errors.New("offer_timeout is zero (EnsureDefaults sets 20s)"))
	}
	if p.AgingPerMinute > AgingPerMinuteMax {
		errs = append(errs, fmt.Errorf("aging per minute %d is over %d", p.AgingPerMinute, AgingPerMinuteMax))
	}
	return errors.Join(errs...)
}

// aging is the priority points per minute waited, 0 when aging is off.
func (p *QueuePolicy) aging() int { return max(p.AgingPerMinute, 0) }

// AgentConfig is one agent of the config (`agents:`).
type AgentConfig struct {
	ID       string
	Skills   []string
	Capacity Capacity // until the agent's desk says otherwise (Presence)
}

// Validate reports every problem of the agent in one error.
func (a *AgentConfig) Validate() error {
	var errs []error
	if r := ValidateID("agent id", a.ID); r != nil {
		errs = append(errs, r)
	}
	errs = append(errs, validateSkills(a.Skills)...)
	if err := a.Capacity.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validateSkills(skills []string) []error {
	var errs []error
	if len(skills) > SkillsMax {
		errs = append(errs, fmt.Errorf("%d skills, more than %d", len(skills), SkillsMax))
	}
	for _, s := range skills {
		if r := ValidateID("skill", s); r != nil {
			errs = append(errs, r)
		}
	}
	return errs
}

// Capacity is how many conversations an agent takes at once (PROTOCOL
// section 4: `capacity: 2` or `{"voice":1,"chat":3}`). Waiting
// conversations offered to the agent count against it as well as assigned
// ones.
//
//   - PerChannel empty: Total is the agent's capacity, every channel
//     together (0: the agent takes nothing).
//   - PerChannel set: a channel listed takes at most its number; Total, when
//     above 0, caps all channels together and is the capacity of the
//     channels not listed; when Total is 0 a channel not listed takes
//     nothing.
type Capacity struct {
	Total      int            `json:"total,omitempty"`
	PerChannel map[string]int `json:"per_channel,omitempty"`
}

// Validate reports every problem of the capacity in one error.
func (c Capacity) Validate() error {
	var errs []error
	if c.Total < 0 || c.Total > CapacityMax {
		errs = append(errs, fmt.Errorf("capacity %d is not within 0..%d", c.Total, CapacityMax))
	}
	if len(c.PerChannel) > CapacityChannelsMax {
		errs = append(errs, fmt.Errorf("capacity names %d channels, more than %d", len(c.PerChannel), CapacityChannelsMax))
	}
	for _, ch := range slices.Sorted(maps.Keys(c.PerChannel)) {
		if n := c.PerChannel[ch]; n < 0 || n > CapacityMax {
			errs = append(errs, fmt.Errorf("capacity %d for channel %q is not within 0..%d", n, ch, CapacityMax))
		}
		if ch == "" || len(ch) > ChannelMaxChars {
			errs = append(errs, fmt.Errorf("capacity channel %q is empty or longer than %d", ch, ChannelMaxChars))
		}
	}
	return errors.Join(errs...)
}

func (c Capacity) clone() Capacity {
	c.PerChannel = maps.Clone(c.PerChannel)
	return c
}

// fits reports whether one more conversation on channel fits in c, given
// the conversations already held (assigned and offered) per channel and in
// all.
func (c Capacity) fits(used map[string]int, usedTotal int, channel string) bool {
	if limit, ok := c.PerChannel[channel]; ok {
		return used[channel] < limit && (c.Total == 0 || usedTotal < c.Total)
	}
	return usedTotal < c.Total
}

// full says why one more conversation on channel does not fit.
func (c Capacity) full(used map[string]int, usedTotal int, channel string) string {
	if limit, ok := c.PerChannel[channel]; ok && used[channel] >= limit {
		return fmt.Sprintf("full (%d/%d %s)", used[channel], limit, channel)
	}
	if _, ok := c.PerChannel[channel]; !ok && len(c.PerChannel) > 0 && c.Total == 0 {
		return fmt.Sprintf("no capacity for %s", channel)
	}
	return fmt.Sprintf("full (%d/%d)", usedTotal, c.Total)
}

// roomy reports whether some channel has room: one more conversation fits
// on a channel listed, or, with Total above 0, on one not listed.
func (c Capacity) roomy(used map[string]int, usedTotal int) bool {
	if c.Total > 0 {
		return usedTotal < c.Total
	}
	for ch, limit := range c.PerChannel { // any order: the answer is the same
		if used[ch] < limit {
			return true
		}
	}
	return false
}
