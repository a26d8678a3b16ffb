package e2e

import (
	"testing"
	"time"
)

// An agent whose desk reconnects within the grace period keeps its
// assignment; one that stays away past it goes offline, and its
// conversation goes back to the queue and on to another agent with the
// story intact.
func TestAnAgentGoneBeyondTheGracePeriodGivesItsConversationsBack(t *testing.T) {
	s := startServer(t, serverOptions{
		sections:  deskSections(t, 2, ""),
		tokens:    []string{"{token: bob, role: agent, agent: bob}"},
		nodeExtra: "  desk_grace: 1s\n",
	})
	alice := available(t, s, tokAgent)
	ws := helloWS(t, s, "chat")
	askForAPerson(t, ws, "grace-1", "g-1")
	offer := alice.expectOffer("grace-1")
	alice.do(map[string]any{"type": "accept", "conversation": offer["conversation"]})

	// A reconnect within the grace period keeps the assignment.
	alice.conn.Close()
	alice = dialDesk(t, s, tokAgent)
	pause(1500 * time.Millisecond)
	if c := s.conversation("grace-1"); c["state"] != "agent" || c["agent"] != "alice" {
		t.Fatalf("after a quick reconnect: %v", c)
	}

	// Gone past the grace period: offline, and the conversation goes to bob.
	alice.conn.Close()
	bob := available(t, s, tokBob)
	o := bob.expectOffer("grace-1")
	if o["conversation"] != offer["conversation"] {
		t.Fatalf("bob's offer %v", o)
	}
	var agents struct {
		Agents []struct{ ID, Status string }
	}
	s.call("GET", "/v1/agents", tokSupervisor, nil, nil).wantStatus(t, 200).decode(t, &agents)
	for _, a := range agents.Agents {
		if a.ID == "alice" && a.Status != "offline" {
			t.Fatalf("alice is %s after the grace period", a.Status)
		}
	}
	wantTypes(t, s, "grace-1", map[string]int{"agent.transferred": 1})
}
