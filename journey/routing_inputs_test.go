package journey_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

func TestRouterAssignedIsIdempotent(t *testing.T) {
	r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 2)})
	for range 3 {
		r.Assigned("cv1", "ana", "q", "chat", t0)
	}
	r.Assigned("cv2", "ana", "gone", "voice", t0) // a queue no longer configured
	r.Assigned("cv3", "zed", "q", "chat", t0)     // an agent no longer configured
	want := journey.AgentView{ID: "ana", Status: journey.AgentOffline, Capacity: journey.Capacity{Total: 2}, Load: 2,
		LoadByChannel: map[string]int{"chat": 1, "voice": 1}, Skills: []string{}}
	if v := view(t, r, "ana"); !reflect.DeepEqual(v, want) {
		t.Fatalf("ana %+v, want %+v", v, want)
	}
	r.Released("cv2", "ana", true, t0)
	r.Released("cv2", "ana", true, t0) // twice: once only
	if v := view(t, r, "ana"); v.Load != 1 {
		t.Fatalf("ana %+v", v)
	}
	r.Assigned("cv1", "bob", "q", "chat", t0) // unknown agent: nothing moves
	if v := view(t, r, "ana"); v.Load != 1 {
		t.Fatalf("ana %+v", v)
	}
}

func TestRouterAssignedMovesAConversation(t *testing.T) {
	r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 1), agent("bob", 1)})
	presence(t, r, "ana", journey.AgentAvailable, t0)
	wantPairs(t, "enqueue", enqueue(t, r, journey.Waiting{Conversation: "cv1", Queue: "q"}, t0), "cv1>ana")
	r.Assigned("cv1", "bob", "q", "", t0) // the customer says bob has it
	if a, b := view(t, r, "ana"), view(t, r, "bob"); a.Offers != 0 || b.Load != 1 {
		t.Fatalf("ana %+v bob %+v", a, b)
	}
}

// An offer outstanding at a restart, re-announced, holds its agent's room
// and counts as waiting until its lease is revoked, which requeues it
// without that agent.
func TestRouterOfferedHoldsRoomUntilRevoked(t *testing.T) {
	r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 1), agent("bob", 1)})
	w := journey.Waiting{Conversation: "cv1", Customer: "c1", Queue: "q", Since: t0}
	for range 2 {
		wantPairs(t, "offered", r.Offered(w, "bob", t0), "")
	}
	r.Offered(journey.Waiting{Conversation: "cv2", Customer: "c2", Queue: "q"}, "zed", t0) // an agent no longer configured
	if b := view(t, r, "bob"); b.Offers != 1 || b.Load != 0 {
		t.Fatalf("bob %+v", b)
	}
	if q := r.Queues(t0.Add(time.Second)); q[0].Waiting != 1 || q[0].LongestWaitMS != 1000 {
		t.Fatalf("queues %+v", q)
	}
	r.Assigned("cv0", "ana", "q", "", t0)
	presence(t, r, "ana", journey.AgentAvailable, t0)
	enqueue(t, r, journey.Waiting{Conversation: "cv3", Queue: "q", Since: t0.Add(time.Second)}, t0)
	wantPairs(t, "bob is full with the offer", presence(t, r, "bob", journey.AgentAvailable, t0), "")
	wantPairs(t, "the lease lapses: cv3 to bob, cv1 waits for ana", r.Revoked("cv1", "bob", true, t0), "cv3>bob")
	wantPairs(t, "ana is free", r.Released("cv0", "ana", false, t0), "cv1>ana")
	wantPairs(t, "offered to ana already: left as it is", r.Offered(w, "bob", t0), "")
	if b := view(t, r, "bob"); b.Offers != 1 {
		t.Fatalf("bob %+v", b)
	}
}

func TestRouterEnqueueAgain(t *testing.T) {
	r := router(t, []journey.QueuePolicy{{Name: "a"}, {Name: "b"}}, []journey.AgentConfig{agent("ana", 1)})
	w := journey.Waiting{Conversation: "cv1", Queue: "a", Since: t0}
	enqueue(t, r, w, t0)
	enqueue(t, r, w, t0.Add(time.Second))
	if q := r.Queues(t0); q[0].Waiting != 1 || q[1].Waiting != 0 {
		t.Fatalf("queues %+v", q)
	}
	w.Queue = "b"
	enqueue(t, r, w, t0.Add(time.Second))
	if q := r.Queues(t0); q[0].Waiting != 0 || q[1].Waiting != 1 {
		t.Fatalf("moved: queues %+v", q)
	}
	wantPairs(t, "available", presence(t, r, "ana", journey.AgentAvailable, t0), "cv1>ana")
	wantPairs(t, "offered: left as it is", enqueue(t, r, w, t0), "")
	if q := r.Queues(t0); q[1].Waiting != 1 || view(t, r, "ana").Offers != 1 {
		t.Fatalf("queues %+v", q)
	}
	r.Accepted("cv1", "ana", t0)
	r.Accepted("cv1", "ana", t0)
	wantPairs(t, "assigned: left as it is", enqueue(t, r, w, t0), "")
	if v := view(t, r, "ana"); v.Load != 1 || v.Offers != 0 {
		t.Fatalf("ana %+v", v)
	}
}

func TestRouterEnqueueErrors(t *testing.T) {
	r := router(t, []journey.QueuePolicy{{Name: "q"}}, nil)
	for _, tc := range []struct {
		name string
		w    journey.Waiting
		want journey.Code
	}{
		{"unknown queue", journey.Waiting{Conversation: "cv", Customer: "c", Queue: "nope"}, journey.CodeNotFound},
		{"no conversation", journey.Waiting{Customer: "c", Queue: "q"}, journey.CodeBadRequest},
		{"no customer", journey.Waiting{Conversation: "cv", Queue: "q"}, journey.CodeBadRequest},
		{"bad kind", journey.Waiting{Conversation: "cv", Customer: "c", Queue: "q", Kind: "email"}, journey.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Enqueue(tc.w, t0)
			if rj := (*journey.Rejection)(nil); !errors.As(err, &rj) || rj.Code != tc.want {
				t.Fatalf("error %v, want %s", err, tc.want)
			}
		})
	}
}

func TestRouterOfferTo(t *testing.T) {
	setup := func(t *testing.T) *journey.Router {
		r := router(t, []journey.QueuePolicy{{Name: "q", Skills: []string{"billing"}, OfferTimeout: 10 * time.Second}},
			[]journey.AgentConfig{agent("ana", 1), agent("bob", 1), agent("cy", 1)})
		presence(t, r, "ana", journey.AgentNotReady, t0)
		presence(t, r, "bob", journey.AgentAvailable, t0)
		r.Assigned("busy", "bob", "q", "", t0)
		return r
	}
	w := journey.Waiting{Conversation: "cv", Customer: "c", Queue: "q"}
	t.Run("to a not_ready agent without the skill", func(t *testing.T) {
		r := setup(t)
		enqueue(t, r, w, t0) // waiting: it leaves its queue
		o, err := r.OfferTo(w, "ana", t0)
		if err != nil || o.Reason != journey.OfferDirect || o.Agent != "ana" || !o.Expires.Equal(t0.Add(10*time.Second)) {
			t.Fatalf("offer %+v %v", o, err)
		}
		if q := r.Queues(t0); q[0].Waiting != 1 || view(t, r, "ana").Offers != 1 {
			t.Fatalf("queue %+v", q)
		}
		if _, err := r.OfferTo(w, "ana", t0); err == nil {
			t.Fatal("offered twice")
		}
		wantPairs(t, "declined, requeued", r.Revoked("cv", "ana", true, t0), "")
		if q := r.Queues(t0); q[0].Waiting != 1 || view(t, r, "ana").Offers != 0 {
			t.Fatalf("queue %+v", q)
		}
	})
	for _, tc := range []struct {
		agent string
		want  journey.Code
	}{{"cy", journey.CodeConflict}, {"bob", journey.CodeConflict}, {"zed", journey.CodeNotFound}} {
		t.Run("refused "+tc.agent, func(t *testing.T) {
			_, err := setup(t).OfferTo(w, tc.agent, t0)
			if rj := (*journey.Rejection)(nil); !errors.As(err, &rj) || rj.Code != tc.want {
				t.Fatalf("error %v, want %s", err, tc.want)
			}
		})
	}
}

func TestRouterRemove(t *testing.T) {
	r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 1)})
	enqueue(t, r, journey.Waiting{Conversation: "waiting", Queue: "q", Since: t0}, t0)
	r.Remove("waiting", t0)
	if q := r.Queues(t0); q[0].Waiting != 0 {
		t.Fatalf("queue %+v", q)
	}
	presence(t, r, "ana", journey.AgentAvailable, t0)
	enqueue(t, r, journey.Waiting{Conversation: "offered", Queue: "q", Since: t0}, t0)
	enqueue(t, r, journey.Waiting{Conversation: "next", Queue: "q", Since: t0.Add(time.Second)}, t0)
	wantPairs(t, "offered removed", r.Remove("offered", t0), "next>ana")
	r.Accepted("next", "ana", t0)
	enqueue(t, r, journey.Waiting{Conversation: "last", Queue: "q"}, t0)
	wantPairs(t, "assigned removed", r.Remove("next", t0), "last>ana")
	wantPairs(t, "unknown", r.Remove("nope", t0), "")
}

func TestRouterViews(t *testing.T) {
	r := router(t, []journey.QueuePolicy{{Name: "vip", Skills: []string{"vip"}}, {Name: "billing", Skills: []string{"billing"}}, {Name: "empty"}},
		[]journey.AgentConfig{agent("bob", 1, "billing", "vip"), agent("ana", 1, "billing"), agent("cy", 1, "billing")})
	now := t0.Add(time.Hour)
	enqueue(t, r, journey.Waiting{Conversation: "v1", Queue: "vip", Since: now.Add(-90 * time.Second)}, now)
	enqueue(t, r, journey.Waiting{Conversation: "v2", Queue: "vip", Since: now.Add(-30 * time.Second)}, now)
	enqueue(t, r, journey.Waiting{Conversation: "b1", Queue: "billing", Since: now.Add(-1500 * time.Millisecond)}, now)
	presence(t, r, "ana", journey.AgentAvailable, now) // takes b1
	presence(t, r, "cy", journey.AgentAvailable, now)
	want := []journey.QueueView{
		{Name: "billing", Waiting: 1, LongestWaitMS: 2500, AgentsAvailable: 1}, // b1 offered to ana: still waiting; cy has room
		{Name: "empty", Waiting: 0, AgentsAvailable: 1},                        // ana is full
		{Name: "vip", Waiting: 2, LongestWaitMS: 91_000},
	}
	if got := r.Queues(now.Add(time.Second)); !reflect.DeepEqual(got, want) {
		t.Fatalf("queues\n%+v\nwant\n%+v", got, want)
	}
	if got := mustJSON(t, r.Queues(now)[2]); got != `{"name":"vip","waiting":2,"longest_wait_ms":90000,"agents_available":0}` {
		t.Fatalf("json %s", got)
	}
	var ids []string
	for _, v := range r.Agents() {
		ids = append(ids, v.ID+":"+v.Status)
	}
	if got := strings.Join(ids, " "); got != "ana:available bob:offline cy:available" {
		t.Fatalf("agents %s", got)
	}
	if got := mustJSON(t, view(t, r, "ana")); got != `{"id":"ana","status":"available","capacity":1,"load":0,"skills":["billing"],"offers":1}` {
		t.Fatalf("json %s", got)
	}
	if _, ok := r.Agent("zed"); ok {
		t.Fatal("unknown agent")
	}
	if p, ok := r.QueueOf("vip"); !ok || p.OfferTimeout != journey.DefaultOfferTimeout || p.AgingPerMinute != 1 {
		t.Fatalf("policy %+v", p)
	}
}

// script feeds a Router a fixed sequence of inputs and records every answer.
func script(t *testing.T, queues []journey.QueuePolicy, agents []journey.AgentConfig) []journey.Offer {
	r := router(t, queues, agents)
	var all []journey.Offer
	add := func(o []journey.Offer) { all = append(all, o...) }
	for i := range 30 {
		now := t0.Add(time.Duration(i) * 7 * time.Second)
		add(enqueue(t, r, journey.Waiting{Conversation: fmt.Sprint("cv", i), Queue: []string{"a", "b", "c"}[i%3], Priority: i % 4,
			Channel: []string{"chat", "voice"}[i%2], LastAgent: fmt.Sprint("ag", i%5), Since: now.Add(-time.Duration(i%6) * time.Minute)}, now))
		if i%4 == 0 {
			add(presence(t, r, fmt.Sprint("ag", i%5), journey.AgentAvailable, now))
		}
		if i%5 == 2 {
			add(r.Revoked(all[len(all)-1].Waiting.Conversation, all[len(all)-1].Agent, true, now))
		}
		if i%3 == 1 && len(all) > 0 {
			o := all[len(all)-1]
			r.Accepted(o.Waiting.Conversation, o.Agent, now)
			add(r.Released(o.Waiting.Conversation, o.Agent, true, now.Add(time.Second)))
		}
		add(r.Tick(now.Add(5 * time.Second)))
	}
	return all
}

func TestRouterIsDeterministic(t *testing.T) {
	var queues []journey.QueuePolicy
	for _, name := range []string{"a", "b", "c"} {
		queues = append(queues, journey.QueuePolicy{Name: name, Skills: []string{name}, AfterWork: 3 * time.Second, StickyWait: 10 * time.Second})
	}
	var agents []journey.AgentConfig
	for i := range 5 {
		agents = append(agents, journey.AgentConfig{ID: fmt.Sprint("ag", i), Skills: []string{"a", "b", "c"}[:1+i%3],
			Capacity: journey.Capacity{Total: 2, PerChannel: map[string]int{"voice": 1}}})
	}
	first := script(t, queues, agents)
	if len(first) < 10 {
		t.Fatalf("only %d offers: the script tests too little", len(first))
	}
	for range 5 {
		// Same config in another order: map order must not show.
		queues[0], queues[2] = queues[2], queues[0]
		agents[1], agents[4] = agents[4], agents[1]
		if again := script(t, queues, agents); !reflect.DeepEqual(first, again) {
			t.Fatalf("different offers:\n%s\n%s", pairs(first), pairs(again))
		}
	}
}

func TestRouterConfigErrors(t *testing.T) {
	many := make([]journey.QueuePolicy, journey.QueuesMax+1)
	for i := range many {
		many[i].Name = fmt.Sprint("q", i)
	}
	for _, tc := range []struct {
		name   string
		queues []journey.QueuePolicy
		agents []journey.AgentConfig
		want   []string // every problem, in one error
	}{
		{"names", []journey.QueuePolicy{{Name: ""}, {Name: "q"}, {Name: "q"}}, []journey.AgentConfig{{ID: "a"}, {ID: "a"}, {ID: ""}},
			[]string{`queues[0]`, `queue "q" named twice`, `agent "a" named twice`, `agents[2]`}},
		{"values", []journey.QueuePolicy{{Name: "q", OfferTimeout: -time.Second, StickyWait: -1, AgingPerMinute: journey.AgingPerMinuteMax + 1, Skills: []string{""}}},
			[]journey.AgentConfig{{ID: "a", Capacity: journey.Capacity{Total: -1, PerChannel: map[string]int{"chat": -2}}}},
			[]string{"offer_timeout -1s is negative", "sticky_wait", "aging per minute", "skill", "capacity -1", `capacity -2 for channel "chat"`}},
		{"too many queues", many, nil, []string{"1001 queues"}},
		{"too many skills", []journey.QueuePolicy{{Name: "q", Skills: strings.Split(strings.Repeat("s,", journey.SkillsMax+1), ",")[:journey.SkillsMax+1]}}, nil, []string{"33 skills"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := journey.NewRouter(tc.queues, tc.agents)
			if err == nil || r != nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRouterBounds(t *testing.T) {
	t.Run("waiting per queue", func(t *testing.T) {
		r := router(t, []journey.QueuePolicy{{Name: "q"}, {Name: "other"}}, nil)
		for i := range journey.WaitingMax {
			if _, err := r.Enqueue(journey.Waiting{Conversation: fmt.Sprint("cv", i), Customer: "c", Queue: "q"}, t0); err != nil {
				t.Fatal(err)
			}
		}
		_, err := r.Enqueue(journey.Waiting{Conversation: "one-more", Customer: "c", Queue: "q"}, t0)
		if rj := (*journey.Rejection)(nil); !errors.As(err, &rj) || rj.Code != journey.CodeUnavailable {
			t.Fatalf("past WaitingMax: %v", err)
		}
		if _, err := r.Enqueue(journey.Waiting{Conversation: "cv0", Customer: "c", Queue: "q"}, t0); err != nil {
			t.Fatalf("announcing one again: %v", err)
		}
		if _, err := r.Enqueue(journey.Waiting{Conversation: "one-more", Customer: "c", Queue: "other"}, t0); err != nil {
			t.Fatalf("another queue: %v", err)
		}
	})
	t.Run("candidates", func(t *testing.T) {
		var agents []journey.AgentConfig
		for i := range 2 * journey.CandidatesMax {
			agents = append(agents, agent(fmt.Sprintf("ag%02d", i), 1))
		}
		r := router(t, []journey.QueuePolicy{{Name: "q"}}, agents)
		presence(t, r, "ag20", journey.AgentAvailable, t0)
		offers := enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q"}, t0)
		wantPairs(t, "enqueue", offers, "cv>ag20")
		c := offers[0].Candidates
		if len(c) != journey.CandidatesMax || c[0].Agent != "ag20" || c[1].Agent != "ag00" || c[1].Why != journey.AgentOffline {
			t.Fatalf("candidates %+v", c)
		}
	})
	t.Run("excluded", func(t *testing.T) {
		r := router(t, []journey.QueuePolicy{{Name: "q"}}, []journey.AgentConfig{agent("ana", 1)})
		var excluded []string
		for i := range journey.ExcludedMax + 5 {
			excluded = append(excluded, fmt.Sprint("x", i), fmt.Sprint("x", i))
		}
		enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q", Excluded: excluded}, t0)
		offers := presence(t, r, "ana", journey.AgentAvailable, t0)
		if got := offers[0].Waiting.Excluded; len(got) != journey.ExcludedMax || got[0] != "x5" {
			t.Fatalf("excluded %v", got)
		}
	})
	t.Run("priority and aging", func(t *testing.T) {
		r := router(t, []journey.QueuePolicy{{Name: "q", AgingPerMinute: journey.AgingPerMinuteMax}}, []journey.AgentConfig{agent("ana", 1)})
		enqueue(t, r, journey.Waiting{Conversation: "cv", Queue: "q", Priority: math.MaxInt, Since: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)}, t0)
		offers := presence(t, r, "ana", journey.AgentAvailable, t0)
		if p := offers[0].Priority; p <= 0 || p > 1<<31-1 {
			t.Fatalf("effective priority %d", p)
		}
	})
}
