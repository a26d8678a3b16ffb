package journey

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Waiting is a conversation waiting in a queue.
type Waiting struct {
	Conversation string
	Customer     string
	Queue        string
	Priority     int       // clamped to ±PriorityMax
	Since        time.Time // when it started waiting (aging counts from here; kept across re-queues after a revoked offer); zero: now
	Channel      string    // the conversation's channel (capacity per channel)
	LastAgent    string    // the customer's last agent, for sticky routing ("" none)
	Kind         string    // KindConversation or KindCallback; "": KindConversation
	Excluded     []string  // agents it must not be offered to again (declined, timed out); the newest ExcludedMax kept
}

// Candidate is one agent considered for an offer, and why it was or was not
// chosen (explainable routing, PROTOCOL section 1 routing.decided /
// agent.offered).
type Candidate struct {
	Agent     string    `json:"agent"`
	Eligible  bool      `json:"eligible"`
	Why       string    `json:"why"` // "chosen: last agent (sticky)", "chosen: longest idle", "offline", "missing skill vip", "full (2/2 chat)", "declined before", "longer idle agent chosen"...
	IdleSince time.Time `json:"idle_since,omitzero"`
}

// Offer is the Router's decision to offer a conversation to an agent. The
// agent's capacity is reserved until Accepted, Revoked or Remove.
type Offer struct {
	Waiting    Waiting
	Agent      string
	Expires    time.Time   // now + the queue's OfferTimeout
	Reason     string      // OfferSticky, OfferLongestIdle or OfferDirect
	Priority   int         // effective priority (with aging) when chosen
	Candidates []Candidate // at most CandidatesMax, the chosen agent first
}

// Router routes the conversations of one node's queues to its agents; see
// the top of routing.go. Build it with NewRouter.
type Router struct {
	queues     map[string]*queueState
	queueNames []string // sorted
	agents     map[string]*agentState
	agentIDs   []string // sorted
	routed     map[string]*routed
	held       map[string]time.Time // conversations waiting for their last agent: when the sticky wait ends
	scratch    []*agentState        // dispatch's agents, reused (the Router has one owner)
}

type queueState struct {
	policy  QueuePolicy
	waiting map[string]*routed // by conversation
	offered map[string]*routed // by conversation: offers of this queue outstanding
}

// Where a conversation the Router knows stands.
const (
	routedWaiting = iota + 1
	routedOffered
	routedAssigned
)

// routed is a conversation the Router knows: waiting in w.Queue, offered to
// agent, or assigned to agent.
type routed struct {
	state int
	w     Waiting // Queue and Channel hold for every state
	agent string  // offered or assigned to
}

type agentState struct {
	id        string
	skills    map[string]bool
	skillList []string // sorted, unique
	capacity  Capacity
	status    string
	reason    string
	// idleSince: when the agent last became available, its assigned load
	// last changed (accepted, assigned, released) or its after_work ended.
	idleSince      time.Time
	afterWorkUntil time.Time         // while status is after_work
	assigned       map[string]string // conversation -> channel
	offered        map[string]string // conversation -> channel: reservations
	used           map[string]int    // per channel: assigned and offered
	usedTotal      int
}

// NewRouter builds a Router for the config's queues and agents; every agent
// starts offline with its configured capacity. Policies get their defaults
// (EnsureDefaults). It reports every problem in one error: names empty,
// too long or repeated, negative durations or capacities, too many queues,
// agents or skills.
func NewRouter(queues []QueuePolicy, agents []AgentConfig) (*Router, error) {
	r := &Router{
		queues: make(map[string]*queueState, len(queues)),
		agents: make(map[string]*agentState, len(agents)),
		routed: make(map[string]*routed),
		held:   make(map[string]time.Time),
	}
	var errs []error
	if len(queues) > QueuesMax {
		errs = append(errs, fmt.Errorf("%d queues, more than %d", len(queues), QueuesMax))
	}
	if len(agents) > AgentsMax {
		errs = append(errs, fmt.Errorf("%d agents, more than %d", len(agents), AgentsMax))
	}
	for i, p := range queues {
		p.Skills = slices.Clone(p.Skills)
		p.EnsureDefaults()
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("queues[%d] %q: %w", i, p.Name, err))
		}
		if _, dup := r.queues[p.Name]; dup {
			errs = append(errs, fmt.Errorf("queues[%d]: queue %q named twice", i, p.Name))
			continue
		}
		r.queues[p.Name] = &queueState{policy: p, waiting: map[string]*routed{}, offered: map[string]*routed{}}
	}
	for i, a := range agents {
		if err := a.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("agents[%d] %q: %w", i, a.ID, err))
		}
		if _, dup := r.agents[a.ID]; dup {
			errs = append(errs, fmt.Errorf("agents[%d]: agent %q named twice", i, a.ID))
			continue
		}
		r.agents[a.ID] = newAgentState(a)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("routing config: %w", err)
	}
	r.queueNames = slices.Sorted(maps.Keys(r.queues))
	r.agentIDs = slices.Sorted(maps.Keys(r.agents))
	return r, nil
}

func newAgentState(a AgentConfig) *agentState {
	s := &agentState{
		id:       a.ID,
		skills:   make(map[string]bool, len(a.Skills)),
		capacity: a.Capacity.clone(),
		status:   AgentOffline,
		assigned: map[string]string{},
		offered:  map[string]string{},
		used:     map[string]int{},
	}
	for _, sk := range a.Skills {
		s.skills[sk] = true
	}
	s.skillList = slices.Sorted(maps.Keys(s.skills))
	return s
}

// missingSkill is the first skill of the queue (in its order) the agent
// lacks, "" when it has them all.
func (a *agentState) missingSkill(q *queueState) string {
	for _, s := range q.policy.Skills {
		if !a.skills[s] {
			return s
		}
	}
	return ""
}

func (a *agentState) fits(channel string) bool {
	return a.capacity.fits(a.used, a.usedTotal, channel)
}

func (a *agentState) roomy() bool { return a.capacity.roomy(a.used, a.usedTotal) }

func (a *agentState) hold(set map[string]string, conversation, channel string) {
	if _, ok := set[conversation]; ok {
		panic("journey: routing: conversation " + conversation + " held twice by agent " + a.id)
	}
	set[conversation] = channel
	a.used[channel]++
	a.usedTotal++
}

func (a *agentState) drop(set map[string]string, conversation string) {
	channel, ok := set[conversation]
	if !ok {
		panic("journey: routing: conversation " + conversation + " not held by agent " + a.id)
	}
	delete(set, conversation)
	if a.used[channel]--; a.used[channel] == 0 {
		delete(a.used, channel)
	}
	a.usedTotal--
}

// load is the agent's assigned conversations per channel.
func (a *agentState) load() map[string]int {
	load := map[string]int{}
	for _, ch := range a.assigned { // counting: order does not show
		load[ch]++
	}
	return load
}
