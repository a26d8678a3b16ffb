package analytics

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/throughline/throughline/journey"
)

// Outcomes of an ended conversation.
const (
	OutcomeContained       = "contained"
	OutcomeResolvedByAgent = "resolved_by_agent"
	OutcomeAbandoned       = "abandoned"
	OutcomeUnresolved      = "unresolved"
)

// Handlers of a path step (channel:handler).
const (
	HandlerBot      = "bot"
	HandlerWorkflow = "workflow"
	HandlerQueue    = "queue"
	HandlerAgent    = "agent"
)

// tracked is the latest conversation of one customer, followed until it
// ends and kept FCRWindow after, for the next one to link to. It names
// the customer only by a hash of its id: the saved state holds no customer
// id.
type tracked struct {
	// Conv is a hash of the conversation id (which names the customer).
	Conv     uint64 `json:"conv"`
	Hour     int64  `json:"hour"` // the hour it opened in (unix hours)
	OpenedMs int64  `json:"opened"`
	State    string `json:"state"`
	Channel  string `json:"channel,omitempty"`
	Queue    string `json:"queue,omitempty"`
	// WaitingMs is when it started waiting for a person (0: not waiting).
	WaitingMs      int64    `json:"waiting,omitempty"`
	Routed         bool     `json:"routed,omitempty"`        // handed over to a person
	WroteAfter     bool     `json:"wrote_after,omitempty"`   // the customer wrote after the hand-over
	LastActivityMs int64    `json:"last_activity,omitempty"` // last message either way
	EndedMs        int64    `json:"ended,omitempty"`         // 0: open
	Resolved       bool     `json:"resolved,omitempty"`      // ended contained or resolved by an agent
	Steps          []string `json:"steps,omitempty"`         // the journey's path so far
}

func (t *tracked) open() bool { return t.EndedMs == 0 }

func (t *tracked) waiting() bool {
	return t.open() && (t.State == journey.StateQueued || t.State == journey.StateOffered || t.State == journey.StateCallback)
}

// handler is the step handler of a conversation state.
func handler(state string) string {
	switch state {
	case journey.StateBot:
		return HandlerBot
	case journey.StateWorkflow:
		return HandlerWorkflow
	case journey.StateAgent:
		return HandlerAgent
	}
	return HandlerQueue
}

// step appends channel:handler of the conversation's current channel and
// state to the path, unless it is the last step already.
func (t *tracked) step() {
	ch := t.Channel
	if ch == "" {
		ch = "unknown"
	}
	s := ch + ":" + handler(t.State)
	if n := len(t.Steps); n > 0 && t.Steps[n-1] == s {
		return
	}
	switch {
	case len(t.Steps) < PathStepsMax-1:
		t.Steps = append(t.Steps, s)
	case len(t.Steps) == PathStepsMax-1:
		t.Steps = append(t.Steps, "...")
	}
}

// lastStep is the path's last real step.
func (t *tracked) lastStep() string {
	for i := len(t.Steps) - 1; i >= 0; i-- {
		if t.Steps[i] != "..." {
			return t.Steps[i]
		}
	}
	return "unknown"
}

// pathKey joins steps; pathSteps splits a key again.
func pathKey(steps []string) string { return strings.Join(steps, " > ") }
func pathSteps(key string) []string { return strings.Split(key, " > ") }

// convHash is a conversation id's hash: the id names its customer, and the
// saved state must not (an erased customer leaves nothing that names it).
func convHash(conversation string) uint64 {
	if conversation == "" {
		return 0
	}
	return customerHash("conversation\x00" + conversation)
}

func customerHash(customer string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(customer))
	return h.Sum64()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// evictTracked makes room in the table: ended conversations go first,
// oldest end first, then open ones, oldest activity first; an open one
// dropped is counted untracked in its bucket. An eighth of the table goes
// at once, so making room costs little per conversation.
func (p *Projection) evictTracked() {
	if len(p.tracked) < TrackedMax {
		return
	}
	type entry struct {
		h    uint64
		open bool
		at   int64
	}
	all := make([]entry, 0, len(p.tracked))
	for h, t := range p.tracked {
		at := t.EndedMs
		if t.open() {
			at = max(t.LastActivityMs, t.OpenedMs)
		}
		all = append(all, entry{h, t.open(), at})
	}
	slices.SortFunc(all, func(a, b entry) int {
		if a.open != b.open {
			if a.open {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.at, b.at)
	})
	for _, e := range all[:len(all)/8+1] {
		t := p.tracked[e.h]
		if t.open() {
			if b := p.bucketAt(t.Hour); b != nil {
				b.Untracked++
			}
		}
		delete(p.tracked, e.h)
	}
}
