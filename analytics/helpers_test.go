package analytics

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// t0 is the hour the tests' journeys start in.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// customer writes one customer's stored events with gapless seqs.
type customer struct {
	id   string
	seq  uint64
	conv string // the latest conversation opened
}

func (c *customer) event(at time.Time, typ, actor, channel string, data any) journey.Event {
	c.seq++
	e := journey.Event{ID: "e" + c.id, Customer: c.id, Type: typ, Actor: actor, Channel: channel, Seq: c.seq, RecordedAt: at}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			panic(err)
		}
		e.Data = b
	}
	return e
}

func (c *customer) message(at time.Time, channel string) journey.Event {
	e := c.event(at, journey.TypeMessageReceived, journey.ActorCustomer, channel, nil)
	e.Text = "hello"
	return e
}

func (c *customer) reply(at time.Time) journey.Event {
	return c.event(at, journey.TypeMessageSent, journey.ActorAI, "", map[string]any{"conversation": c.conv})
}

func (c *customer) open(at time.Time, state, channel string) journey.Event {
	prev := c.conv
	c.conv = journey.ConversationID(c.id, c.seq+1)
	return c.event(at, journey.TypeConversationOpened, journey.ActorSystem, channel,
		map[string]any{"conversation": c.conv, "state": state, "channel": channel, "previous": prev})
}

func (c *customer) close(at time.Time) journey.Event {
	return c.event(at, journey.TypeConversationClosed, journey.ActorSystem, "", map[string]any{"conversation": c.conv, "reason": "inactive"})
}

func (c *customer) route(at time.Time, reason, rule, queue string) journey.Event {
	return c.event(at, journey.TypeRoutingDecided, journey.ActorAI, "",
		map[string]any{"conversation": c.conv, "reason": reason, "rule": rule, "queue": queue})
}

func (c *customer) agent(at time.Time, typ string, data map[string]any) journey.Event {
	if data == nil {
		data = map[string]any{}
	}
	data["conversation"] = c.conv
	data["agent"] = "alice"
	return c.event(at, typ, "agent:alice", "", data)
}

func (c *customer) wrapup(at time.Time, disposition string) journey.Event {
	return c.agent(at, journey.TypeAgentWrappedUp, map[string]any{"disposition": disposition})
}

func feed(t *testing.T, p *Projection, events ...journey.Event) {
	t.Helper()
	for i := range events {
		if !p.Apply(&events[i]) {
			t.Fatalf("event %d (%s seq %d) not applied", i, events[i].Type, events[i].Seq)
		}
	}
}

// answer is the projection's answer for the day of t0, as of now.
func answer(p *Projection, now time.Time) Journeys {
	since, until := t0.Add(-time.Hour), t0.Add(23*time.Hour)
	return Merge(p.Part(since, until, now, nil)).Answer(since, until)
}

func min_(m int) time.Duration { return time.Duration(m) * time.Minute }
