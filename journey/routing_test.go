package journey_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// router is journey.NewRouter that must succeed.
func router(t testing.TB, queues []journey.QueuePolicy, agents []journey.AgentConfig) *journey.Router {
	t.Helper()
	r, err := journey.NewRouter(queues, agents)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// agent is an agent with a total capacity.
func agent(id string, capacity int, skills ...string) journey.AgentConfig {
	return journey.AgentConfig{ID: id, Skills: skills, Capacity: journey.Capacity{Total: capacity}}
}

// presence sets an agent's status and expects no error; it answers the
// offers made.
func presence(t testing.TB, r *journey.Router, id, status string, now time.Time) []journey.Offer {
	t.Helper()
	offers, err := r.Presence(id, status, "", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	return offers
}

// enqueue enqueues a conversation of customer "c-"+conversation and expects
// no error; it answers the offers made.
func enqueue(t testing.TB, r *journey.Router, w journey.Waiting, now time.Time) []journey.Offer {
	t.Helper()
	if w.Customer == "" {
		w.Customer = "c-" + w.Conversation
	}
	offers, err := r.Enqueue(w, now)
	if err != nil {
		t.Fatal(err)
	}
	return offers
}

// pairs shows offers as "conversation>agent".
func pairs(offers []journey.Offer) string {
	var s []string
	for _, o := range offers {
		s = append(s, o.Waiting.Conversation+">"+o.Agent)
	}
	return strings.Join(s, " ")
}

func wantPairs(t testing.TB, what string, offers []journey.Offer, want string) {
	t.Helper()
	if got := pairs(offers); got != want {
		t.Fatalf("%s: offers %q, want %q", what, got, want)
	}
}

// view is r.Agent(id) that must exist.
func view(t testing.TB, r *journey.Router, id string) journey.AgentView {
	t.Helper()
	v, ok := r.Agent(id)
	if !ok {
		t.Fatalf("no agent %s", id)
	}
	return v
}

func TestRouterMatchesEverySkill(t *testing.T) {
	for _, tc := range []struct {
		name   string
		skills []string
		want   string
		why    map[string]string // candidate -> why
	}{
		{"both skills", []string{"billing", "vip"}, "cv1>bob", map[string]string{"bob": "chosen: longest idle", "ana": "missing skill vip", "cy": "missing skill billing"}},
		{"one skill", []string{"billing"}, "cv1>ana", map[string]string{"ana": "chosen: longest idle", "bob": "longer idle agent chosen", "cy": "missing skill billing"}},
		{"no skill", nil, "cv1>ana", map[string]string{"ana": "chosen: longest idle", "bob": "longer idle agent chosen", "cy": "longer idle agent chosen"}},
		{"nobody", []string{"legal"}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := router(t, []journey.QueuePolicy{{Name: "q", Skills: tc.skills}},
				[]journey.AgentConfig{agent("ana", 1, "billing"), agent("bob", 1, "billing", "vip"), agent("cy", 1)})
			for i, id := range []string{"ana", "bob", "cy"} { // ana idle the longest
				presence(t, r, id, journey.AgentAvailable, t0.Add(time.Duration(i)*time.Second))
			}
			offers := enqueue(t, r, journey.Waiting{Conversation: "cv1", Queue: "q"}, t0.Add(time.Minute))
			wantPairs(t, "enqueue", offers, tc.want)
			if len(offers) == 0 {
				return
			}
			o := offers[0]
			if o.Reason != journey.OfferLongestIdle || !o.Expires.Equal(t0.Add(time.Minute+journey.DefaultOfferTimeout)) {
				t.Fatalf("offer reason %s expires %v", o.Reason, o.Expires)
			}
			if o.Candidates[0].Agent != o.Agent || !o.Candidates[0].Eligible {
				t.Fatalf("chosen agent not first: %+v", o.Candidates)
			}
			got := map[string]string{}
			for _, c := range o.Candidates {
				got[c.Agent] = c.Why
				if c.Eligible != (c.Why == "longer idle agent chosen" || strings.HasPrefix(c.Why, "chosen")) {
					t.Fatalf("candidate %+v: eligible does not match why", c)
				}
			}
			if !reflect.DeepEqual(got, tc.why) {
				t.Fatalf("candidates %v, want %v", got, tc.why)
			}
		})
	}
}

func TestRouterAgingOvertakes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		aging int
		old   time.Duration // how long the low priority one has waited
		want  string
	}{
		{"aged past", 1, 11 * time.Minute, "low>ana"},         // 0+11 > 10
		{"equal: older wins", 1, 10 * time.Minute, "low>ana"}, // 0+10 == 10: older Since
		{"not yet", 1, 9*time.Minute + 59*time.Second, "high>ana"},
		{"faster aging", 5, 3 * time.Minute, "low>ana"}, // 15 > 10
		{"no aging", -1, time.Hour, "high>ana"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := router(t, []journey.QueuePolicy{{Name: "q", AgingPerMinute: tc.aging}}, []journey.AgentConfig{agent("ana", 1)})
			now := t0.Add(time.Hour)
			enqueue(t, r, journey.Waiting{Conversation: "low", Queue: "q", Priority: 0, Since: now.Add(-tc.old)}, now)
			enqueue(t, r, journey.Waiting{Conversation: "high", Queue: "q", Priority: 10, Since: now}, now)
			offers := presence(t, r, "ana", journey.AgentAvailable, now)
			wantPairs(t, "available", offers, tc.want)
			if tc.want == "low>ana" && tc.aging > 0 {
				if want := int(tc.old/time.Minute) * tc.aging; offers[0].Priority != want {
					t.Fatalf("effective priority %d, want %d", offers[0].Priority, want)
				}
			}
		})
	}
}

func TestRouterOrdersTiesBySinceThenID(t *testing.T) {
	r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 3)})
	enqueue(t, r, journey.Waiting{Conversation: "b", Queue: "q", Since: t0}, t0)
	enqueue(t, r, journey.Waiting{Conversation: "a", Queue: "q", Since: t0}, t0)
	enqueue(t, r, journey.Waiting{Conversation: "c", Queue: "q", Since: t0.Add(-time.Second)}, t0)
	wantPairs(t, "one pass", presence(t, r, "ana", journey.AgentAvailable, t0), "c>ana a>ana b>ana")
}

func TestRouterSticky(t *testing.T) {
	queues := func(wait time.Duration) []journey.QueuePolicy {
		return []journey.QueuePolicy{{Name: "q", Skills: []string{"billing"}, StickyWait: wait}}
	}
	agents := []journey.AgentConfig{agent("ana", 1, "billing"), agent("bob", 1, "billing"), agent("cy", 1)}
	t.Run("last agent first though less idle", func(t *testing.T) {
		r := router(t, queues(0), agents)
		presence(t, r, "ana", journey.AgentAvailable, t0)
		presence(t, r, "bob", journey.AgentAvailable, t0.Add(time.Second))
		offers := enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q", LastAgent: "bob"}, t0.Add(time.Minute))
		wantPairs(t, "enqueue", offers, "cv>bob")
		if o := offers[0]; o.Reason != journey.OfferSticky || o.Candidates[0].Why != "chosen: last agent (sticky)" || o.Candidates[1].Why != "last agent chosen (sticky)" {
			t.Fatalf("offer %+v", o)
		}
	})
	t.Run("no wait: someone else at once", func(t *testing.T) {
		r := router(t, queues(0), agents)
		presence(t, r, "ana", journey.AgentAvailable, t0)
		presence(t, r, "bob", journey.AgentNotReady, t0)
		wantPairs(t, "enqueue", enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q", LastAgent: "bob"}, t0), "cv>ana")
	})
	t.Run("waits, then someone else", func(t *testing.T) {
		r := router(t, queues(time.Minute), agents)
		presence(t, r, "ana", journey.AgentAvailable, t0)
		presence(t, r, "bob", journey.AgentNotReady, t0)
		wantPairs(t, "enqueue", enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q", LastAgent: "bob"}, t0), "")
		if next, ok := r.NextTick(); !ok || !next.Equal(t0.Add(time.Minute)) {
			t.Fatalf("NextTick %v %v, want the sticky wait's end", next, ok)
		}
		wantPairs(t, "tick before the end", r.Tick(t0.Add(59*time.Second)), "")
		wantPairs(t, "tick at the end", r.Tick(t0.Add(time.Minute)), "cv>ana")
		if next, ok := r.NextTick(); ok {
			t.Fatalf("NextTick %v after the wait ended", next)
		}
	})
	t.Run("waits, last agent comes back", func(t *testing.T) {
		r := router(t, queues(time.Minute), agents)
		presence(t, r, "ana", journey.AgentAvailable, t0)
		presence(t, r, "bob", journey.AgentNotReady, t0)
		enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q", LastAgent: "bob"}, t0)
		wantPairs(t, "bob available", presence(t, r, "bob", journey.AgentAvailable, t0.Add(30*time.Second)), "cv>bob")
		if next, ok := r.NextTick(); ok {
			t.Fatalf("NextTick %v after the sticky offer", next)
		}
	})
	t.Run("no wait for an offline last agent", func(t *testing.T) {
		r := router(t, queues(time.Hour), agents)
		presence(t, r, "ana", journey.AgentAvailable, t0)
		wantPairs(t, "enqueue", enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q", LastAgent: "bob"}, t0), "cv>ana")
	})
	t.Run("no wait for a last agent without the skills", func(t *testing.T) {
		r := router(t, queues(time.Hour), agents)
		presence(t, r, "ana", journey.AgentAvailable, t0)
		presence(t, r, "cy", journey.AgentAvailable, t0)
		wantPairs(t, "enqueue", enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q", LastAgent: "cy"}, t0), "cv>ana")
	})
	t.Run("no wait for a last agent who declined", func(t *testing.T) {
		r := router(t, queues(time.Hour), agents)
		presence(t, r, "ana", journey.AgentAvailable, t0)
		presence(t, r, "bob", journey.AgentAvailable, t0.Add(time.Second))
		wantPairs(t, "enqueue", enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q", LastAgent: "bob"}, t0), "cv>bob")
		wantPairs(t, "declined", r.Revoked("cv", "bob", true, t0.Add(time.Second)), "cv>ana")
	})
}

func TestRouterCapacity(t *testing.T) {
	t.Run("total, offers reserve", func(t *testing.T) {
		r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 2)})
		presence(t, r, "ana", journey.AgentAvailable, t0)
		for i := range 3 {
			enqueue(t, r, journey.Waiting{Conversation: fmt.Sprint("cv", i), Queue: "q", Since: t0.Add(time.Duration(i) * time.Second)}, t0)
		}
		v := view(t, r, "ana")
		if v.Status != journey.AgentAvailable || v.Offers != 2 || v.Load != 0 {
			t.Fatalf("agent %+v, want available with 2 offers", v)
		}
		wantPairs(t, "accepted keeps the room taken", r.Accepted("cv0", "ana", t0), "")
		if v := view(t, r, "ana"); v.Offers != 1 || v.Load != 1 || v.Status != journey.AgentAvailable {
			t.Fatalf("agent %+v after accept", v)
		}
		wantPairs(t, "released frees it", r.Released("cv0", "ana", false, t0), "cv2>ana")
	})
	t.Run("full agent skipped", func(t *testing.T) {
		r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 1), agent("bob", 1)})
		presence(t, r, "ana", journey.AgentAvailable, t0)
		enqueue(t, r, journey.Waiting{Conversation: "cv1", Queue: "q"}, t0)
		r.Accepted("cv1", "ana", t0)
		offers := presence(t, r, "bob", journey.AgentAvailable, t0.Add(time.Second))
		wantPairs(t, "bob", offers, "")
		offers = enqueue(t, r, journey.Waiting{Conversation: "cv2", Queue: "q"}, t0.Add(time.Second))
		wantPairs(t, "cv2", offers, "cv2>bob")
		if c := offers[0].Candidates; len(c) != 2 || c[1].Agent != "ana" || c[1].Why != "full (1/1)" || c[1].Eligible {
			t.Fatalf("candidates %+v", c)
		}
	})
	for _, tc := range []struct {
		name     string
		capacity journey.Capacity
		channels []string // conversations, one per channel, in order
		want     string
	}{
		{"per channel", journey.Capacity{PerChannel: map[string]int{"voice": 1, "chat": 2}}, []string{"voice", "voice", "chat", "chat", "chat"}, "cv0>ana cv2>ana cv3>ana"},
		{"unlisted channel without total", journey.Capacity{PerChannel: map[string]int{"voice": 1}}, []string{"email", "voice"}, "cv1>ana"},
		{"unlisted channel counts against total", journey.Capacity{Total: 2, PerChannel: map[string]int{"voice": 1}}, []string{"email", "email", "email", "voice"}, "cv0>ana cv1>ana"},
		{"total caps listed channels", journey.Capacity{Total: 2, PerChannel: map[string]int{"chat": 3}}, []string{"chat", "chat", "chat"}, "cv0>ana cv1>ana"},
		{"zero", journey.Capacity{}, []string{"chat"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{{ID: "ana", Capacity: tc.capacity}})
			for i, ch := range tc.channels {
				enqueue(t, r, journey.Waiting{Conversation: fmt.Sprint("cv", i), Queue: "q", Channel: ch, Since: t0.Add(time.Duration(i) * time.Second)}, t0)
			}
			wantPairs(t, "available", presence(t, r, "ana", journey.AgentAvailable, t0.Add(time.Minute)), tc.want)
		})
	}
	t.Run("presence changes capacity", func(t *testing.T) {
		r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 1)})
		enqueue(t, r, journey.Waiting{Conversation: "cv1", Queue: "q"}, t0)
		enqueue(t, r, journey.Waiting{Conversation: "cv2", Queue: "q"}, t0)
		offers, err := r.Presence("ana", journey.AgentAvailable, "", &journey.Capacity{Total: 2}, t0)
		if err != nil {
			t.Fatal(err)
		}
		wantPairs(t, "capacity 2", offers, "cv1>ana cv2>ana")
	})
}

func TestRouterRevoked(t *testing.T) {
	agents := []journey.AgentConfig{agent("ana", 1), agent("bob", 1), agent("cy", 1)}
	setup := func(t *testing.T) *journey.Router {
		r := router(t, []journey.QueuePolicy{{Name: "q"}}, agents)
		presence(t, r, "ana", journey.AgentAvailable, t0)
		presence(t, r, "bob", journey.AgentAvailable, t0.Add(time.Second))
		wantPairs(t, "enqueue", enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q", Since: t0.Add(-time.Minute)}, t0), "cv>ana")
		return r
	}
	t.Run("requeue: next agent, Since kept, agent excluded", func(t *testing.T) {
		r := setup(t)
		offers := r.Revoked("cv", "ana", true, t0.Add(20*time.Second))
		wantPairs(t, "revoked", offers, "cv>bob")
		w := offers[0].Waiting
		if !w.Since.Equal(t0.Add(-time.Minute)) || !reflect.DeepEqual(w.Excluded, []string{"ana"}) {
			t.Fatalf("requeued %+v", w)
		}
		if c := offers[0].Candidates; c[1].Agent != "ana" || c[1].Why != "declined before" {
			t.Fatalf("candidates %+v", c)
		}
		if v := view(t, r, "ana"); v.Offers != 0 {
			t.Fatalf("ana's reservation kept: %+v", v)
		}
	})
	t.Run("excluded waits for a full agent", func(t *testing.T) {
		r := setup(t)
		enqueue(t, r, journey.Waiting{Conversation: "other", Queue: "q"}, t0) // bob's room
		wantPairs(t, "revoked", r.Revoked("cv", "ana", true, t0), "")
		wantPairs(t, "bob frees", r.Revoked("other", "bob", false, t0), "cv>bob")
	})
	t.Run("no one else: the exclusion yields", func(t *testing.T) {
		r := setup(t)
		wantPairs(t, "ana declines", r.Revoked("cv", "ana", true, t0), "cv>bob")
		offers := r.Revoked("cv", "bob", true, t0)
		wantPairs(t, "bob declines", offers, "cv>ana")
		if why := offers[0].Candidates[0].Why; why != "chosen: longest idle (declined before, no one else)" {
			t.Fatalf("why %q", why)
		}
	})
	t.Run("without requeue: forgotten", func(t *testing.T) {
		r := setup(t)
		wantPairs(t, "revoked", r.Revoked("cv", "ana", false, t0), "")
		if q := r.Queues(t0); q[0].Waiting != 0 {
			t.Fatalf("queue %+v", q[0])
		}
	})
	t.Run("another agent's revoke is ignored", func(t *testing.T) {
		r := setup(t)
		r.Revoked("cv", "bob", true, t0)
		if v := view(t, r, "ana"); v.Offers != 1 {
			t.Fatalf("ana %+v", v)
		}
	})
}

func TestRouterLongestIdle(t *testing.T) {
	r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 2), agent("bob", 2)})
	presence(t, r, "bob", journey.AgentAvailable, t0)
	presence(t, r, "ana", journey.AgentAvailable, t0) // same time: id breaks the tie
	wantPairs(t, "cv1", enqueue(t, r, journey.Waiting{Conversation: "cv1", Queue: "q"}, t0.Add(time.Second)), "cv1>ana")
	wantPairs(t, "cv2: an offer does not make ana busy", enqueue(t, r, journey.Waiting{Conversation: "cv2", Queue: "q"}, t0.Add(2*time.Second)), "cv2>ana")
	r.Accepted("cv1", "ana", t0.Add(3*time.Second)) // ana's load changed: idle since now
	r.Revoked("cv2", "ana", false, t0.Add(3*time.Second))
	wantPairs(t, "cv3", enqueue(t, r, journey.Waiting{Conversation: "cv3", Queue: "q"}, t0.Add(4*time.Second)), "cv3>bob")
	r.Accepted("cv3", "bob", t0.Add(5*time.Second))
	wantPairs(t, "cv4: ana's load changed first", enqueue(t, r, journey.Waiting{Conversation: "cv4", Queue: "q"}, t0.Add(6*time.Second)), "cv4>ana")
	r.Accepted("cv4", "ana", t0.Add(7*time.Second))         // ana full
	r.Released("cv3", "bob", false, t0.Add(8*time.Second))  // bob idle since 8s
	r.Released("cv1", "ana", false, t0.Add(10*time.Second)) // ana idle since 10s, room again
	wantPairs(t, "cv5: bob released first", enqueue(t, r, journey.Waiting{Conversation: "cv5", Queue: "q"}, t0.Add(11*time.Second)), "cv5>bob")
}

func TestRouterAfterWork(t *testing.T) {
	setup := func(t *testing.T, afterWork time.Duration) *journey.Router {
		r := router(t, []journey.QueuePolicy{{Name: "q", AfterWork: afterWork}}, []journey.AgentConfig{agent("ana", 1)})
		presence(t, r, "ana", journey.AgentAvailable, t0)
		enqueue(t, r, journey.Waiting{Conversation: "cv1", Queue: "q"}, t0)
		r.Accepted("cv1", "ana", t0)
		enqueue(t, r, journey.Waiting{Conversation: "cv2", Queue: "q"}, t0)
		return r
	}
	t.Run("then available via Tick", func(t *testing.T) {
		r := setup(t, 30*time.Second)
		wantPairs(t, "wrap-up", r.Released("cv1", "ana", true, t0.Add(time.Minute)), "")
		if v := view(t, r, "ana"); v.Status != journey.AgentAfterWork {
			t.Fatalf("ana %+v", v)
		}
		if next, ok := r.NextTick(); !ok || !next.Equal(t0.Add(90*time.Second)) {
			t.Fatalf("NextTick %v %v", next, ok)
		}
		wantPairs(t, "early tick", r.Tick(t0.Add(89*time.Second)), "")
		offers := r.Tick(t0.Add(90 * time.Second))
		wantPairs(t, "tick", offers, "cv2>ana")
		if v := view(t, r, "ana"); v.Status != journey.AgentAvailable || !offers[0].Candidates[0].IdleSince.Equal(t0.Add(90*time.Second)) {
			t.Fatalf("ana %+v, idle since %v", v, offers[0].Candidates[0].IdleSince)
		}
	})
	t.Run("presence overrides", func(t *testing.T) {
		r := setup(t, time.Hour)
		r.Released("cv1", "ana", true, t0.Add(time.Minute))
		wantPairs(t, "available", presence(t, r, "ana", journey.AgentAvailable, t0.Add(2*time.Minute)), "cv2>ana")
		if _, ok := r.NextTick(); ok {
			t.Fatal("after_work still pending")
		}
	})
	t.Run("zero: stays available", func(t *testing.T) {
		r := setup(t, 0)
		wantPairs(t, "wrap-up", r.Released("cv1", "ana", true, t0.Add(time.Minute)), "cv2>ana")
	})
	t.Run("release without wrap-up", func(t *testing.T) {
		r := setup(t, time.Hour)
		wantPairs(t, "transfer", r.Released("cv1", "ana", false, t0.Add(time.Minute)), "cv2>ana")
	})
	t.Run("not_ready stays not_ready", func(t *testing.T) {
		r := setup(t, time.Hour)
		presence(t, r, "ana", journey.AgentNotReady, t0)
		r.Released("cv1", "ana", true, t0.Add(time.Minute))
		if v := view(t, r, "ana"); v.Status != journey.AgentNotReady {
			t.Fatalf("ana %+v", v)
		}
	})
}

func TestRouterPresenceStopsOffers(t *testing.T) {
	for _, status := range []string{journey.AgentNotReady, journey.AgentOffline} {
		t.Run(status, func(t *testing.T) {
			r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 2)})
			presence(t, r, "ana", journey.AgentAvailable, t0)
			enqueue(t, r, journey.Waiting{Conversation: "cv1", Queue: "q"}, t0)
			offers, err := r.Presence("ana", status, "lunch", nil, t0)
			if err != nil || len(offers) != 0 {
				t.Fatalf("presence: %v %v", offers, err)
			}
			if got := r.Outstanding("ana"); !reflect.DeepEqual(got, []string{"cv1"}) {
				t.Fatalf("outstanding %v", got)
			}
			wantPairs(t, "cv2", enqueue(t, r, journey.Waiting{Conversation: "cv2", Queue: "q"}, t0), "")
			wantPairs(t, "revoked", r.Revoked("cv1", "ana", true, t0), "")
			if v := view(t, r, "ana"); v.Status != status || v.Reason != "lunch" || v.Offers != 0 {
				t.Fatalf("ana %+v", v)
			}
			if q := r.Queues(t0); q[0].Waiting != 2 || q[0].AgentsAvailable != 0 {
				t.Fatalf("queue %+v", q[0])
			}
		})
	}
}

func TestRouterPresenceErrors(t *testing.T) {
	r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 1)})
	for _, tc := range []struct {
		name, agent, status, reason string
		capacity                    *journey.Capacity
		want                        journey.Code
	}{
		{"unknown agent", "zed", journey.AgentAvailable, "", nil, journey.CodeNotFound},
		{"after_work is not the desk's", "ana", journey.AgentAfterWork, "", nil, journey.CodeBadRequest},
		{"long reason", "ana", journey.AgentNotReady, strings.Repeat("x", journey.PresenceReasonMaxChars+1), nil, journey.CodeBadRequest},
		{"negative capacity", "ana", journey.AgentAvailable, "", &journey.Capacity{Total: -1}, journey.CodeBadRequest},
		{"capacity too large", "ana", journey.AgentAvailable, "", &journey.Capacity{PerChannel: map[string]int{"chat": journey.CapacityMax + 1}}, journey.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Presence(tc.agent, tc.status, tc.reason, tc.capacity, t0)
			if rj := (*journey.Rejection)(nil); !errors.As(err, &rj) || rj.Code != tc.want {
				t.Fatalf("error %v, want %s", err, tc.want)
			}
		})
	}
}
