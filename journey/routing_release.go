package journey

import (
	"maps"
	"slices"
)

// Assignments lists the conversations assigned to an agent, sorted.
func (r *Router) Assignments(agent string) []string {
	a := r.agents[agent]
	if a == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(a.assigned))
}

// ReleaseAgent takes a conversation back from an agent that is gone (its
// desks stayed disconnected past the grace period): it goes back to its
// queue, context intact, recorded as agent.transferred with the reason.
type ReleaseAgent struct {
	Conversation string
	Agent        string
	Reason       string
}

func (*ReleaseAgent) isInput() {}

// releaseAgent re-queues the conversation if it is still the agent's.
func (s *stepper) releaseAgent(r *ReleaseAgent) {
	cv := s.c.Conversation
	if !cv.Open() || cv.ID != r.Conversation || cv.State != StateAgent || cv.Agent != r.Agent {
		return
	}
	s.record(TypeAgentTransferred, ActorSystem, agentTransferred{Conversation: cv.ID, Agent: r.Agent, Queue: cv.Queue, Reason: r.Reason}, "", "")
	s.routeEffect(RouteEffect{Op: RouteReleased, Conversation: cv.ID, Agent: r.Agent})
	s.routeEffect(RouteEffect{Op: RouteEnqueue, Waiting: s.c.waiting()})
}
