package journey

import (
	"slices"
	"time"
)

// QueueView is one queue for the supervisor (GET /v1/queues, PROTOCOL
// section 3).
type QueueView struct {
	Name            string `json:"name"`
	Waiting         int    `json:"waiting"`          // conversations waiting for an agent: queued or offered, not yet accepted
	LongestWaitMS   int64  `json:"longest_wait_ms"`  // how long the oldest of them has waited (since its Since)
	AgentsAvailable int    `json:"agents_available"` // available agents with every skill of the queue and room on some channel
}

// AgentView is one agent for the supervisor (GET /v1/agents, PROTOCOL
// section 3) and for its desk.
type AgentView struct {
	ID            string         `json:"id"`
	Status        string         `json:"status"`
	Reason        string         `json:"reason,omitempty"`
	Capacity      Capacity       `json:"capacity"`
	Load          int            `json:"load"`                      // conversations assigned
	LoadByChannel map[string]int `json:"load_by_channel,omitempty"` // the same per channel
	Skills        []string       `json:"skills"`                    // sorted
	Offers        int            `json:"offers"`                    // offers outstanding (reserving room)
}

// Queues describes every queue at now, sorted by name.
func (r *Router) Queues(now time.Time) []QueueView {
	views := make([]QueueView, 0, len(r.queueNames))
	for _, name := range r.queueNames {
		q := r.queues[name]
		v := QueueView{Name: name, Waiting: len(q.waiting) + len(q.offered)}
		var oldest time.Time
		for _, set := range []map[string]*routed{q.waiting, q.offered} {
			for _, c := range set { // a minimum: order does not show
				oldest = earlier(oldest, c.w.Since)
			}
		}
		if !oldest.IsZero() && now.After(oldest) {
			v.LongestWaitMS = now.Sub(oldest).Milliseconds()
		}
		for _, id := range r.agentIDs {
			a := r.agents[id]
			if a.status == AgentAvailable && a.missingSkill(q) == "" && a.roomy() {
				v.AgentsAvailable++
			}
		}
		views = append(views, v)
	}
	return views
}

// Agents describes every agent, sorted by id.
func (r *Router) Agents() []AgentView {
	views := make([]AgentView, 0, len(r.agentIDs))
	for _, id := range r.agentIDs {
		views = append(views, r.agents[id].view())
	}
	return views
}

// Agent describes one agent; false when the config has none by that id.
func (r *Router) Agent(id string) (AgentView, bool) {
	a := r.agents[id]
	if a == nil {
		return AgentView{}, false
	}
	return a.view(), true
}

// QueueOf is the policy of the named queue, with its defaults; false when
// the config has none by that name.
func (r *Router) QueueOf(name string) (QueuePolicy, bool) {
	q := r.queues[name]
	if q == nil {
		return QueuePolicy{}, false
	}
	p := q.policy
	p.Skills = slices.Clone(p.Skills)
	return p, true
}

func (a *agentState) view() AgentView {
	v := AgentView{
		ID:       a.id,
		Status:   a.status,
		Reason:   a.reason,
		Capacity: a.capacity.clone(),
		Load:     len(a.assigned),
		Skills:   slices.Clone(a.skillList),
		Offers:   len(a.offered),
	}
	if v.Skills == nil {
		v.Skills = []string{}
	}
	if v.Load > 0 {
		v.LoadByChannel = a.load()
	}
	return v
}
