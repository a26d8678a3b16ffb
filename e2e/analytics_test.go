package e2e

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// journeysAnswer is GET /v1/analytics/journeys (PROTOCOL section 10).
type journeysAnswer struct {
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until"`
	Conversations int       `json:"conversations"`
	Outcomes      struct {
		Contained       int `json:"contained"`
		ResolvedByAgent int `json:"resolved_by_agent"`
		Abandoned       int `json:"abandoned"`
		Open            int `json:"open"`
	} `json:"outcomes"`
	ContainmentRate     float64        `json:"containment_rate"`
	FCRRate             float64        `json:"fcr_rate"`
	RepeatContact7dRate float64        `json:"repeat_contact_7d_rate"`
	Escalations         map[string]int `json:"escalations"`
	TimeToResolutionMs  struct {
		P50 int64 `json:"p50"`
		P90 int64 `json:"p90"`
	} `json:"time_to_resolution_ms"`
	Paths []struct {
		Steps         []string `json:"steps"`
		Conversations int      `json:"conversations"`
		Resolved      int      `json:"resolved"`
	} `json:"paths"`
	DropOffs []struct {
		After         string `json:"after"`
		Conversations int    `json:"conversations"`
	} `json:"drop_offs"`
	Stuck []struct {
		State         string `json:"state"`
		Queue         string `json:"queue"`
		Conversations int    `json:"conversations"`
		LongestMs     int64  `json:"longest_ms"`
	} `json:"stuck"`
}

func (s *server) journeys(since, until time.Time) journeysAnswer {
	s.t.Helper()
	q := url.Values{"since": {since.UTC().Format(time.RFC3339)}, "until": {until.UTC().Format(time.RFC3339)}}
	var a journeysAnswer
	s.call("GET", "/v1/analytics/journeys?"+q.Encode(), tokSupervisor, nil, nil).wantStatus(s.t, 200).decode(s.t, &a)
	return a
}

// The contract of the journey analytics: four journeys (one the bot
// contains, one an agent resolves, one abandoned after the hand-over, one
// waiting past its queue's callback_after) answer the figures PROTOCOL
// section 10 defines, and the same after a kill -9 (rebuilt from the
// stored events) and after a clean restart (from the saved state).
func TestJourneyAnalyticsContract(t *testing.T) {
	sections := journeySections(t, "1h") + routingSections + "conversations: {close_after: 2s}\n"
	sections = strings.Replace(sections, "{name: vip, skills: [vip]}", "{name: vip, skills: [vip], callback_after: 1s}", 1)
	s := startServer(t, serverOptions{sections: sections})
	start := time.Now()
	since, until := start.Add(-time.Minute), start.Add(time.Hour)

	// The window and the role are checked.
	s.call("GET", "/v1/analytics/journeys?since=last-week", tokSupervisor, nil, nil).wantError(t, 400, "bad_request")
	s.call("GET", "/v1/analytics/journeys?since=2026-11-23T00:00:00Z&until=2026-11-22T00:00:00Z", tokSupervisor, nil, nil).wantError(t, 400, "bad_request")
	s.call("GET", "/v1/analytics/journeys", tokAgent, nil, nil).wantError(t, 403, "forbidden")

	alice := dialDesk(t, s, tokAgent)
	alice.do(map[string]any{"type": "presence", "status": "available"})
	ws := helloWS(t, s, "chat")

	// Contained: the bot answers, the conversation closes after 2 s idle.
	ws.sendEvent(event{ID: "an-1", Customer: "an-bot", Channel: "chat", Text: "my card payment failed again"})
	ws.expect("outbound")

	// Resolved by an agent.
	ws.sendEvent(event{ID: "an-2", Customer: "an-agent", Channel: "chat", Text: "I want to talk to a person"})
	ws.expect("outbound") // the bot says a person comes
	conv := alice.expect("offer")["conversation"].(string)
	alice.do(map[string]any{"type": "accept", "conversation": conv})
	ws.sendEvent(event{ID: "an-3", Customer: "an-agent", Channel: "chat", Text: "it is about my invoice"})
	alice.do(map[string]any{"type": "wrapup", "customer": "an-agent", "conversation": conv, "disposition": "resolved"})

	// Abandoned: no customer message after the hand-over.
	ws.sendEvent(event{ID: "an-4", Customer: "an-gone", Channel: "chat", Text: "I want to talk to a person"})
	ws.expect("outbound")
	conv = alice.expect("offer")["conversation"].(string)
	alice.do(map[string]any{"type": "accept", "conversation": conv})
	alice.do(map[string]any{"type": "wrapup", "customer": "an-gone", "conversation": conv, "disposition": "no_answer"})

	// Stuck: a rule routes a VIP to a queue nobody serves.
	s.call("PATCH", "/v1/customers/an-vip/profile", tokChannel, map[string]any{"tier": "vip"}, nil).wantStatus(t, 200)
	ws.sendEvent(event{ID: "an-5", Customer: "an-vip", Channel: "chat", Type: "login.failed"})

	var a journeysAnswer
	eventually(t, 20*time.Second, "the analytics count the four journeys", func() bool {
		a = s.journeys(since, until)
		return a.Outcomes.Contained == 1 && a.Outcomes.ResolvedByAgent == 1 && a.Outcomes.Abandoned == 1 && len(a.Stuck) == 1
	})
	check := func(a journeysAnswer) {
		t.Helper()
		if a.Conversations != 4 || a.Outcomes.Open != 1 || a.ContainmentRate != 0.25 || a.FCRRate != 1 || a.RepeatContact7dRate != 0 {
			t.Fatalf("answer %+v", a)
		}
		if want := map[string]int{"customer_asked": 2, "rule": 1}; !reflect.DeepEqual(a.Escalations, want) {
			t.Fatalf("escalations %v, want %v", a.Escalations, want)
		}
		if a.TimeToResolutionMs.P50 <= 0 || a.TimeToResolutionMs.P90 < a.TimeToResolutionMs.P50 || a.TimeToResolutionMs.P90 > time.Since(start).Milliseconds() {
			t.Fatalf("time to resolution %+v", a.TimeToResolutionMs)
		}
		paths := map[string][2]int{}
		for _, p := range a.Paths {
			paths[strings.Join(p.Steps, " ")] = [2]int{p.Conversations, p.Resolved}
		}
		if want := map[string][2]int{"chat:bot": {1, 1}, "chat:bot chat:queue chat:agent": {2, 1}}; !reflect.DeepEqual(paths, want) {
			t.Fatalf("paths %v, want %v", paths, want)
		}
		if len(a.DropOffs) != 1 || a.DropOffs[0].After != "chat:agent" || a.DropOffs[0].Conversations != 1 {
			t.Fatalf("drop-offs %+v", a.DropOffs)
		}
		if st := a.Stuck[0]; st.Queue != "vip" || st.Conversations != 1 || st.LongestMs < 1000 {
			t.Fatalf("stuck %+v", a.Stuck)
		}
	}
	check(a)
	if other := s.journeys(start.Add(2*time.Hour), start.Add(3*time.Hour)); other.Conversations != 0 {
		t.Fatalf("a later window counts %d conversations", other.Conversations)
	}

	// kill -9: the saved state and the stored events after it give the
	// same figures, nothing counted twice.
	s.kill()
	s = startServer(t, serverOptions{sections: sections, dataDir: s.dataDir})
	eventually(t, 20*time.Second, "the analytics after a restart", func() bool {
		a = s.journeys(since, until)
		return a.Conversations >= 4 && len(a.Stuck) == 1
	})
	check(a)

	// A clean stop saves the projection; the next start loads it and
	// rereads the last minute of events without counting them twice.
	s.stop()
	s = startServer(t, serverOptions{sections: sections, dataDir: s.dataDir})
	check(s.journeys(since, until))
}
