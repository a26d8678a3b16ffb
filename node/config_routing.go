package node

import (
	"fmt"

	"github.com/throughline/throughline/gateway"
	"github.com/throughline/throughline/journey"
)

// routing is the queues and agents of the config, for the router.
func (c *Config) routing() ([]journey.QueuePolicy, []journey.AgentConfig) {
	queues := make([]journey.QueuePolicy, len(c.Queues))
	for i, q := range c.Queues {
		queues[i] = journey.QueuePolicy{
			Name: q.Name, Skills: q.Skills, OfferTimeout: q.OfferTimeout, AfterWork: q.AfterWork,
			StickyWait: q.StickyWait, CallbackAfter: q.CallbackAfter, AgingPerMinute: q.AgingPerMinute,
		}
		queues[i].EnsureDefaults()
	}
	agents := make([]journey.AgentConfig, len(c.Agents))
	for i, a := range c.Agents {
		agents[i] = journey.AgentConfig{ID: a.ID, Skills: a.Skills, Capacity: a.Capacity}
	}
	return queues, agents
}

// validateRouting checks queues and agents as the router would, and that
// every agent token names a configured agent.
func (c *Config) validateRouting() []error {
	queues, agents := c.routing()
	var errs []error
	if _, err := journey.NewRouter(queues, agents); err != nil {
		errs = append(errs, prefixed("queues/agents", err))
	}
	known := map[string]bool{}
	for _, a := range c.Agents {
		known[a.ID] = true
	}
	for i, t := range c.Auth.Tokens {
		if t.Role == gateway.RoleAgent && t.Agent != "" && len(c.Agents) > 0 && !known[t.Agent] {
			errs = append(errs, fmt.Errorf("auth.tokens[%d]: agent %q is not in agents", i, t.Agent))
		}
	}
	return errs
}
