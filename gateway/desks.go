package gateway

import (
	"slices"
	"sync"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// Desks routes the runtime's frames for agents (offers, assignments,
// revocations, assigned customers' events) to their open desk connections.
// It is made before the runtime and given to the server in Config.Desks.
type Desks struct {
	mu    sync.Mutex
	conns map[string][]*agentConn // agent -> its open desks
}

// NewDesks makes an empty router of desk frames.
func NewDesks() *Desks { return &Desks{conns: map[string][]*agentConn{}} }

// Deliver is the runtime's Config.Desk: it never blocks. A frame for an
// agent with no desk open is dropped: offers are leases that lapse, and a
// desk that reconnects subscribes with after.
func (d *Desks) Deliver(agent string, m journey.DeskMessage) {
	frame := mustJSON(m)
	d.mu.Lock()
	conns := slices.Clone(d.conns[agent])
	d.mu.Unlock()
	for _, c := range conns {
		// An event once per connection, in seq order: it may also come
		// through a subscription (pushEvent).
		if m.Type == "event" && m.Event != nil {
			c.pushEvent(m.Customer, m.Event, frame)
			continue
		}
		if m.Type == "revoked" && m.Reason == actors.RevokedErased {
			c.sent.forget(m.Customer)
		}
		c.enqueue(frame)
	}
}

func (d *Desks) add(c *agentConn) {
	d.mu.Lock()
	d.conns[c.agent] = append(d.conns[c.agent], c)
	d.mu.Unlock()
}

func (d *Desks) remove(c *agentConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs := d.conns[c.agent]
	for i, x := range cs {
		if x == c {
			cs = append(cs[:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		delete(d.conns, c.agent)
	} else {
		d.conns[c.agent] = cs
	}
}
