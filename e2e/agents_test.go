package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// desk is an agent's (or a supervisor's) desk WebSocket.
type desk struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan map[string]any
	refs   int
}

func dialDesk(t *testing.T, s *server, token string) *desk {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/v1/agents/ws", h)
	if err != nil {
		t.Fatalf("dial desk: %v", err)
	}
	d := &desk{t: t, conn: c, frames: make(chan map[string]any, 10000)}
	go func() {
		defer close(d.frames)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			var f map[string]any
			if json.Unmarshal(data, &f) == nil {
				d.frames <- f
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return d
}

// do sends a frame with its ref, or a fresh one, and returns the frames
// until its ok (failing on an error for it).
func (d *desk) do(f map[string]any) []map[string]any {
	d.t.Helper()
	ref, _ := f["ref"].(string)
	if ref == "" {
		d.refs++
		ref = fmt.Sprintf("r%d", d.refs)
		f["ref"] = ref
	}
	if err := d.conn.WriteJSON(f); err != nil {
		d.t.Fatalf("desk write: %v", err)
	}
	var before []map[string]any
	for {
		g := d.next()
		if g["ref"] == ref {
			if g["type"] != "ok" {
				d.t.Fatalf("%v answered %v", f, g)
			}
			return before
		}
		before = append(before, g)
	}
}

// doErr sends a frame and returns the error answering it.
func (d *desk) doErr(f map[string]any) map[string]any {
	d.t.Helper()
	d.refs++
	ref := fmt.Sprintf("r%d", d.refs)
	f["ref"] = ref
	if err := d.conn.WriteJSON(f); err != nil {
		d.t.Fatalf("desk write: %v", err)
	}
	for {
		g := d.next()
		if g["ref"] == ref {
			if g["type"] != "error" {
				d.t.Fatalf("%v answered %v, want an error", f, g)
			}
			return g
		}
	}
}

func (d *desk) next() map[string]any {
	d.t.Helper()
	select {
	case f, ok := <-d.frames:
		if !ok {
			d.t.Fatal("desk closed")
		}
		return f
	case <-time.After(frameTimeout):
		d.t.Fatal("no desk frame")
		return nil
	}
}

// expect skips frames until one of the type.
func (d *desk) expect(typ string) map[string]any {
	d.t.Helper()
	for {
		if f := d.next(); f["type"] == typ {
			return f
		}
	}
}

const routingSections = `agents:
  - {id: alice, skills: [billing], capacity: 2}
  - {id: bob, skills: [billing], capacity: 1}
`

func agentsSections(t *testing.T) string {
	return journeySections(t, "1h") + routingSections
}

func TestEscalationReachesAnAgentWithTheWholeStory(t *testing.T) {
	s := startServer(t, serverOptions{sections: agentsSections(t)})
	alice := dialDesk(t, s, tokAgent)
	if p := alice.do(map[string]any{"type": "presence", "status": "available"}); len(p) != 1 || p[0]["status"] != "available" {
		t.Fatalf("presence answered %v", p)
	}
	ws := helloWS(t, s, "chat")
	ws.sendEvent(event{ID: "e-1", Customer: "story-1", Channel: "chat", Text: "my card payment failed again"})
	ws.expect("outbound")
	ws.sendEvent(event{ID: "e-2", Customer: "story-1", Channel: "chat", Text: "I want to talk to a person"})
	ws.expect("outbound")
	offer := alice.expect("offer")
	ctx, _ := offer["context"].(map[string]any)
	timeline, _ := ctx["timeline"].([]any)
	var texts []string
	for _, e := range timeline {
		if m := e.(map[string]any); m["type"] == "message.received" {
			texts = append(texts, m["text"].(string))
		}
	}
	if offer["customer"] != "story-1" || offer["queue"] != "general" || offer["kind"] != "conversation" || offer["expires"] == nil || len(texts) != 2 {
		t.Fatalf("offer %v (customer texts %v)", offer, texts)
	}
	if exp, err := time.Parse(time.RFC3339Nano, fmt.Sprint(offer["expires"])); err != nil || !exp.After(time.Now()) {
		t.Fatalf("offer expires %v (%v): not a time ahead", offer["expires"], err)
	}
	offered := eventsOf(s.timeline("story-1", 100), "agent.offered")
	if len(offered) != 1 {
		t.Fatalf("want one agent.offered, got %+v", offered)
	}
	// The audit names who could have had it and why alice did.
	od := dataOf(t, offered[0])
	cands, _ := od["candidates"].([]any)
	if od["agent"] != "alice" || od["reason"] != "longest_idle" || od["kind"] != "conversation" || od["conversation"] != offer["conversation"] || len(cands) != 2 {
		t.Fatalf("agent.offered %v", od)
	}
	first, second := cands[0].(map[string]any), cands[1].(map[string]any)
	if first["agent"] != "alice" || first["eligible"] != true || second["agent"] != "bob" || second["eligible"] != false || second["why"] != "offline" {
		t.Fatalf("agent.offered candidates %v", cands)
	}
	conv := offer["conversation"].(string)
	alice.do(map[string]any{"type": "accept", "conversation": conv})
	s.call("GET", "/v1/customers/story-1", tokAgent, nil, nil).wantStatus(t, 200)
	alice.do(map[string]any{"type": "reply", "customer": "story-1", "conversation": conv, "text": "Hi, I'm Alice. Let me look."})
	out := ws.expect("outbound")
	if out.Actor != "agent:alice" || out.Text != "Hi, I'm Alice. Let me look." {
		t.Fatalf("agent reply outbound %s", out.raw)
	}
	alice.do(map[string]any{"type": "wrapup", "customer": "story-1", "conversation": conv, "disposition": "resolved", "note": "card reissued"})
	s.call("GET", "/v1/customers/story-1", tokAgent, nil, nil).wantError(t, 403, "forbidden")
	wantTypes(t, s, "story-1", map[string]int{"routing.decided": 1, "agent.offered": 1, "agent.assigned": 1, "agent.wrapped_up": 1})
}
