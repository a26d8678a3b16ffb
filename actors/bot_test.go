package actors

import (
	"context"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// outboundSink collects delivered outbounds.
type outboundSink struct {
	ch chan journey.Outbound
}

func newSink() *outboundSink { return &outboundSink{ch: make(chan journey.Outbound, 1024)} }

func (s *outboundSink) deliver(o journey.Outbound, _ uint64) { s.ch <- o }

func (s *outboundSink) next(t *testing.T) journey.Outbound {
	t.Helper()
	select {
	case o := <-s.ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no outbound")
		return journey.Outbound{}
	}
}

func botPolicy() *journey.Policy {
	return &journey.Policy{Bot: &journey.BotPolicy{EscalateBelow: 0.5, DefaultQueue: "general"}}
}

// A slow brain never blocks its customer: events keep being acknowledged
// while the bot thinks, and its answer arrives afterwards as an outbound.
func TestSlowBotDoesNotBlockTheCustomer(t *testing.T) {
	release := make(chan struct{})
	sink := newSink()
	rt, _ := startTest(t, Config{
		Policy: botPolicy(), Deliver: sink.deliver,
		Bot: func(ctx context.Context, req journey.BotRequest) journey.BotResult {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return journey.BotResult{Text: "answer to " + req.Text, Confidence: 0.9}
		},
	})
	if r := ingest(t, rt, "slow-1", "m-1"); r.Ack == nil {
		t.Fatalf("first message: %+v", r)
	}
	for _, id := range []string{"m-2", "m-3"} {
		if r := ingest(t, rt, "slow-1", id); r.Ack == nil {
			t.Fatalf("%s while the bot thinks: %+v", id, r)
		}
	}
	close(release)
	// The answers race; one to a message older than one already answered
	// is stale and dropped, so at least one and at most three go out.
	o := sink.next(t)
	if o.Customer != "slow-1" || o.Actor != journey.ActorAI || o.Text != "answer to hello" {
		t.Fatalf("outbound %+v", o)
	}
}

// Work past the task queue is answered at once as failed: the customer is
// handed over rather than left waiting.
func TestBotOverloadHandsOver(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	sink := newSink()
	rt, _ := startTest(t, Config{
		Policy: botPolicy(), Deliver: sink.deliver, TaskWorkers: 1, TaskQueue: 1,
		Bot: func(ctx context.Context, req journey.BotRequest) journey.BotResult {
			select {
			case <-block:
			case <-ctx.Done():
			}
			return journey.BotResult{Err: "stopped"}
		},
	})
	// One turn runs, one waits, the third overflows.
	for _, c := range []string{"o-1", "o-2", "o-3"} {
		if r := ingest(t, rt, c, c+"-m"); r.Ack == nil {
			t.Fatalf("%s: %+v", c, r)
		}
	}
	o := sink.next(t)
	if o.Text != journey.HandoverTextDefault {
		t.Fatalf("overflowed turn: outbound %+v", o)
	}
	ctx, err := contextOf(rt, o.Customer)
	if err != nil || ctx.Conversation == nil || ctx.Conversation.State != journey.StateQueued {
		t.Fatalf("overflowed customer's conversation: %+v (%v)", ctx.Conversation, err)
	}
}

func contextOf(rt *Runtime, customer string) (journey.Context, error) {
	c, _, err := rt.Context(context.Background(), customer)
	return c, err
}
