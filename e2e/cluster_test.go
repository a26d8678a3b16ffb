package e2e

import (
	"encoding/json"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"

	"fmt"
	"github.com/throughline/throughline/persistence"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clusterNode is one node of a test cluster: its process and addresses.
type clusterNode struct {
	*server
	name   string
	opts   serverOptions
	killed bool
}

// startCluster starts n nodes of the real binary on loopback, each with
// its own data dir, every partition on three of them, and waits until
// each is ready (a member, every partition led).
func startCluster(t *testing.T, n, partitions int) []*clusterNode {
	t.Helper()
	return startClusterWith(t, n, partitions, "")
}

// startClusterWith is startCluster with more config sections.
func startClusterWith(t *testing.T, n, partitions int, sections string) []*clusterNode {
	t.Helper()
	var nodes []*clusterNode
	var firstGossip string
	for i := range n {
		o, gossip := clusterNodeOptions(t, i+1, partitions, n, firstGossip, sections)
		if i == 0 {
			firstGossip = gossip
		}
		nodes = append(nodes, &clusterNode{server: launch(t, o), name: o.name, opts: o})
	}
	for _, cn := range nodes {
		if err := cn.waitReady(); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// clusterNodeOptions are node i's options (n<i>), joining join when set.
func clusterNodeOptions(t *testing.T, i, partitions, expect int, join, sections string) (serverOptions, string) {
	gossip := freeAddr(t)
	joinLine := ""
	if join != "" {
		joinLine = fmt.Sprintf("  join: [%q]\n", join)
	}
	return serverOptions{
		name:      fmt.Sprintf("n%d", i),
		dataDir:   t.TempDir(),
		nodeExtra: fmt.Sprintf("  partitions: %d\n", partitions),
		sections: sections + fmt.Sprintf("cluster:\n  gossip: %q\n  remote: %q\n  raft: %q\n  replicas: 3\n  bootstrap_expect: %d\n%s",
			gossip, freeAddr(t), freeAddr(t), expect, joinLine),
	}, gossip
}

// clusterView is GET /v1/cluster.
type clusterView struct {
	Node  string `json:"node"`
	Nodes []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"nodes"`
	Partitions []struct {
		ID       int      `json:"id"`
		Leader   string   `json:"leader"`
		Replicas []string `json:"replicas"`
	} `json:"partitions"`
}

func (s *server) cluster() (clusterView, error) {
	var v clusterView
	r, err := s.tryCall("GET", "/v1/cluster", tokSupervisor, nil, nil)
	if err != nil {
		return v, err
	}
	if r.status != 200 {
		return v, fmt.Errorf("GET /v1/cluster: %d %s", r.status, r.body)
	}
	return v, json.Unmarshal(r.body, &v)
}

// mostLeader is the node leading the most partitions.
func mostLeader(v clusterView) (string, int) {
	count := map[string]int{}
	for _, p := range v.Partitions {
		count[p.Leader]++
	}
	best, n := "", -1
	for name, c := range count {
		if c > n || c == n && name < best {
			best, n = name, c
		}
	}
	return best, n
}

// clusterLoad sends events to customers through the given nodes: one
// writer per customer, each event retried with its id until acknowledged
// (a retry is safe: the id is the idempotency key). It records every
// acknowledged id per customer and the unavailable answers seen.
type clusterLoad struct {
	mu          sync.Mutex
	acked       map[string][]string // customer -> acknowledged ids, in order
	unavailable atomic.Int64
	sent        atomic.Int64
	maxGap      atomic.Int64 // the longest a customer waited for an ack, ns
}

func (l *clusterLoad) run(t *testing.T, via []*clusterNode, customers int, stop <-chan struct{}) *sync.WaitGroup {
	l.acked = map[string][]string{}
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for c := range customers {
		customer := fmt.Sprintf("c-%d", c)
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s-e%d", customer, k)
				body := fmt.Sprintf(`{"id":%q,"customer":%q,"type":"message.received","channel":"sms","text":"load %d"}`, id, customer, k)
				start := time.Now()
				for try := 0; ; try++ {
					node := via[(c+try)%len(via)]
					l.sent.Add(1)
					req, _ := http.NewRequest("POST", node.base+"/v1/events", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+tokChannel)
					resp, err := client.Do(req)
					status, msg := 0, ""
					if err == nil {
						status = resp.StatusCode
						if status != 200 {
							b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
							msg = string(b)
						}
						resp.Body.Close()
					}
					if status == 200 {
						break
					}
					if status == 503 || err != nil {
						l.unavailable.Add(1)
					} else {
						t.Errorf("%s through %s: status %d", id, node.name, status)
						return
					}
					if time.Since(start) > 20*time.Second {
						t.Errorf("%s not acknowledged within 20 s (last through %s: status %d %s, %v)", id, node.name, status, msg, err)
						return
					}
					pause(20 * time.Millisecond)
				}
				if d := int64(time.Since(start)); d > l.maxGap.Load() {
					l.maxGap.Store(d)
				}
				l.mu.Lock()
				l.acked[customer] = append(l.acked[customer], id)
				l.mu.Unlock()
			}
		})
	}
	return &wg
}

// checkHistories reads every customer's history through s: every
// acknowledged id stored exactly once, in the order it was acknowledged,
// with seqs 1..n without a gap.
func (l *clusterLoad) checkHistories(t *testing.T, s *server) (events int) {
	t.Helper()
	for customer, ids := range l.acked {
		var stored []storedEvent
		after := uint64(0)
		for {
			var page struct {
				Events    []storedEvent `json:"events"`
				NextAfter *uint64       `json:"next_after"`
			}
			path := fmt.Sprintf("%s/timeline?after=%d&limit=1000", customerPath(customer), after)
			s.readAvailable(path).wantStatus(t, 200).decode(t, &page)
			stored = append(stored, page.Events...)
			if page.NextAfter == nil {
				break
			}
			after = *page.NextAfter
		}
		seen := map[string]int{}
		var order []string
		for i, e := range stored {
			if e.Seq != uint64(i+1) {
				t.Fatalf("%s: event %d has seq %d: a gap or two events at one seq", customer, i+1, e.Seq)
			}
			if seen[e.ID]++; seen[e.ID] > 1 {
				t.Fatalf("%s: id %s stored twice", customer, e.ID)
			}
			if e.Type == "message.received" {
				order = append(order, e.ID)
			}
		}
		for _, id := range ids {
			if seen[id] != 1 {
				t.Fatalf("%s: acknowledged id %s stored %d times", customer, id, seen[id])
			}
		}
		// What was acknowledged is stored in the order it was sent; an
		// id sent but not acknowledged before the end may follow.
		if len(order) < len(ids) || !slices.Equal(order[:len(ids)], ids) {
			t.Fatalf("%s: stored order %v, acknowledged %v", customer, order, ids)
		}
		events += len(stored)
	}
	return events
}

// Three nodes; load through two of them; kill -9 the node leading the most
// partitions mid-run: every acknowledged event is stored exactly once, in
// order, seqs gapless, and every partition is led again within 3 s.
func TestClusterKillLeader(t *testing.T) {
	nodes := startCluster(t, 3, 16)
	v, err := nodes[0].cluster()
	if err != nil {
		t.Fatal(err)
	}
	victimName, leads := mostLeader(v)
	var victim *clusterNode
	var via []*clusterNode
	for _, n := range nodes {
		if n.name == victimName {
			victim = n
		} else {
			via = append(via, n)
		}
	}
	t.Logf("killing %s, which leads %d of 16 partitions", victimName, leads)
	var load clusterLoad
	stop := make(chan struct{})
	wg := load.run(t, via, 24, stop)
	pause(1500 * time.Millisecond)
	killedAt := time.Now()
	victim.kill()
	// Failover: every partition led by a live node, as a survivor sees it.
	var failover time.Duration
	for {
		v, err := via[0].cluster()
		if err == nil {
			ok := true
			for _, p := range v.Partitions {
				if p.Leader == "" || p.Leader == victimName {
					ok = false
				}
			}
			if ok {
				failover = time.Since(killedAt)
				break
			}
		}
		if time.Since(killedAt) > 15*time.Second {
			t.Fatalf("partitions not led again 15 s after the kill: %+v", v.Partitions)
		}
		pause(20 * time.Millisecond)
	}
	pause(2 * time.Second)
	close(stop)
	wg.Wait()
	events := load.checkHistories(t, via[0].server)
	t.Logf("failover %s; %d events stored for 24 customers, %d requests, %d answered unavailable or failed, longest wait for one ack %s",
		failover.Round(time.Millisecond), events, load.sent.Load(), load.unavailable.Load(), time.Duration(load.maxGap.Load()).Round(time.Millisecond))
	// The bar is 3 s (bench cluster measures it, median of runs); a test
	// on a loaded CI machine fails only far past it.
	if failover > 10*time.Second {
		t.Errorf("failover took %s, more than 10 s", failover)
	}
	// The killed node restarts on its data dir, catches up and serves.
	victim.server = launch(t, victim.opts)
	if err := victim.waitReady(); err != nil {
		t.Fatal(err)
	}
	if got := load.checkHistories(t, victim.server); got != events {
		t.Fatalf("through the restarted node %d events, %d through the others", got, events)
	}
}

// An agent desk on one node gets the offer of a customer led by another,
// accepts it there, follows the customer's live events, and after the
// customer's node dies resumes from its last seq on the new leader without
// a gap.
func TestClusterDeskAcrossNodes(t *testing.T) {
	nodes := startClusterWith(t, 3, 16, agentsSections(t))
	v, err := nodes[0].cluster()
	if err != nil {
		t.Fatal(err)
	}
	// The desk on node A; the customer led by another node B, the router
	// (partition 0's leader) wherever it is; events sent through node C.
	deskNode := nodes[0]
	var customer, leaderName string
	for i := 0; customer == ""; i++ {
		c := fmt.Sprintf("remote-%d", i)
		if l := v.Partitions[persistence.PartitionOf(c, 16)].Leader; l != deskNode.name && l != "" {
			customer, leaderName = c, l
		}
	}
	var leader, other *clusterNode
	for _, n := range nodes[1:] {
		if n.name == leaderName {
			leader = n
		} else {
			other = n
		}
	}
	t.Logf("desk on %s, customer %s led by %s, router on %s, events through %s", deskNode.name, customer, leader.name, v.Partitions[0].Leader, other.name)
	alice := dialDesk(t, deskNode.server, tokAgent)
	alice.do(map[string]any{"type": "presence", "status": "available"})
	// Presence reaches the router before the customer asks for a person.
	eventually(t, 10*time.Second, "alice available at the router", func() bool {
		return other.agents()["alice"].Status == "available"
	})
	// The chat gateway is connected to node C only: the customer's node
	// sends the bot's answers there.
	ws := helloWS(t, other.server, "chat")
	other.postEvent(event{ID: "d-1", Customer: customer, Channel: "chat", Text: "my card payment failed again"})
	if out := ws.expect("outbound"); out.Customer != customer || out.Actor != "ai" {
		t.Fatalf("the bot's answer through another node's gateway: %s", out.raw)
	}
	other.postEvent(event{ID: "d-2", Customer: customer, Channel: "chat", Text: "I want to talk to a person"})
	offer := alice.expect("offer")
	if offer["customer"] != customer {
		t.Fatalf("offer %v", offer)
	}
	conv := offer["conversation"].(string)
	alice.do(map[string]any{"type": "accept", "conversation": conv})
	alice.do(map[string]any{"type": "reply", "customer": customer, "conversation": conv, "text": "Hi, I'm Alice."})
	for {
		if out := ws.expect("outbound"); out.Text == "Hi, I'm Alice." {
			break
		}
	}
	before := alice.do(map[string]any{"type": "subscribe", "customer": customer, "after": 0})
	last := uint64(0)
	for _, seq := range deskEvents(t, customer, before) {
		last = seq
	}
	other.postEvent(event{ID: "d-3", Customer: customer, Channel: "chat", Text: "still there?"})
	for !hasEventText(t, alice, customer, "still there?", &last) {
	}
	// The customer's leader dies; the desk's connection ends and the desk
	// resumes from its last seq on the new leader.
	leader.kill()
	other.postEventEventually(t, event{ID: "d-4", Customer: customer, Channel: "chat", Text: "after the failover"})
	alice2 := dialDesk(t, deskNode.server, tokAgent)
	// The assigned customer's events may be pushed to the new connection
	// before its subscribe is read: they count, and the replay does not
	// send them again.
	frames := alice2.do(map[string]any{"type": "presence", "status": "available"})
	frames = append(frames, alice2.do(map[string]any{"type": "subscribe", "customer": customer, "after": last})...)
	seqs := deskEvents(t, customer, frames)
	if len(seqs) == 0 || seqs[0] != last+1 {
		t.Fatalf("resumed after %d with %v", last, seqs)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("a gap: %v", seqs)
		}
	}
	found := false
	for _, f := range frames {
		if e, _ := f["event"].(map[string]any); e != nil && e["text"] == "after the failover" {
			found = true
		}
	}
	if !found {
		// It may come live, after subscribed.
		for !hasEventText(t, alice2, customer, "after the failover", &last) {
		}
	}
}

// hasEventText reads the desk's next frame: true when it is the customer's
// event with that text (its seq in last).
func hasEventText(t *testing.T, d *desk, customer, text string, last *uint64) bool {
	t.Helper()
	f := d.next()
	e, _ := f["event"].(map[string]any)
	if f["type"] != "event" || f["customer"] != customer || e == nil {
		return false
	}
	if seq, ok := e["seq"].(float64); ok {
		*last = uint64(seq)
	}
	return e["text"] == text
}

// postEventEventually posts until acknowledged: during a failover a node
// may answer unavailable, and the same id is safe to send again.
func (s *clusterNode) postEventEventually(t *testing.T, e event) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := s.tryCall("POST", "/v1/events", tokChannel, e, nil)
		if err == nil && r.status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s not acknowledged within 15 s: %v %v", e.ID, r.status, err)
		}
		pause(50 * time.Millisecond)
	}
}

// broadcastEventually posts a broadcast, sending it again while the node
// answers 503 unavailable (PROTOCOL section 8: a request caught in a
// leadership change may, and nothing was started), within 15 s.
func (s *clusterNode) broadcastEventually(t *testing.T, body map[string]any) string {
	t.Helper()
	var out struct{ ID string }
	eventually(t, 15*time.Second, "broadcast accepted", func() bool {
		r, err := s.tryCall("POST", "/v1/broadcasts", tokSupervisor, body, nil)
		if err != nil || r.status == 503 {
			return false
		}
		r.wantStatus(t, 202).decode(t, &out)
		return true
	})
	if out.ID == "" {
		t.Fatal("broadcast answered without an id")
	}
	return out.ID
}

// A fourth node joins under load and receives replicas and leaderships;
// then a node leaves gracefully (POST /v1/cluster/leave): its replicas
// move, it exits 0, no partition is ever without a leader, and nothing
// acknowledged is lost.
func TestClusterJoinAndLeave(t *testing.T) {
	nodes := startCluster(t, 3, 8)
	var load clusterLoad
	stop := make(chan struct{})
	wg := load.run(t, nodes, 12, stop)
	defer func() {
		close(stop)
		wg.Wait()
	}()
	// The fourth node: its gossip joins through node 1's.
	var first string
	if _, err := fmt.Sscanf(nodes[0].opts.sections[strings.Index(nodes[0].opts.sections, "gossip:"):], "gossip: %q", &first); err != nil {
		t.Fatal(err)
	}
	o4, _ := clusterNodeOptions(t, 4, 8, 3, first, "")
	n4 := &clusterNode{server: launch(t, o4), name: "n4", opts: o4}
	if err := n4.waitReady(); err != nil {
		t.Fatal(err)
	}
	nodes = append(nodes, n4)
	eventually(t, 30*time.Second, "n4 receives replicas and leads a partition", func() bool {
		v, err := nodes[1].cluster()
		if err != nil {
			return false
		}
		replicas, leads := 0, 0
		for _, p := range v.Partitions {
			if slices.Contains(p.Replicas, "n4") {
				replicas++
			}
			if p.Leader == "n4" {
				leads++
			}
		}
		return replicas >= 5 && leads >= 1
	})
	// Node 1 leaves; partitions are watched from node 2 meanwhile.
	leaderless := atomic.Int64{}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for !nodes[0].hasExited() {
			if v, err := nodes[1].cluster(); err == nil {
				for _, p := range v.Partitions {
					if p.Leader == "" {
						leaderless.Add(1)
						t.Logf("partition %d without a leader: %+v (members as n2 sees them: %+v)", p.ID, p, v.Nodes)
					}
				}
			}
			pause(20 * time.Millisecond)
		}
	}()
	nodes[0].call("POST", "/v1/cluster/leave", tokAdmin, nil, nil).wantStatus(t, 202)
	if code := nodes[0].waitExit(60 * time.Second); code != 0 {
		t.Fatalf("the leaving node exited with %d", code)
	}
	<-watchDone
	if n := leaderless.Load(); n > 0 {
		t.Errorf("%d samples saw a partition without a leader while n1 left", n)
	}
	v, err := nodes[1].cluster()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v.Partitions {
		if slices.Contains(p.Replicas, "n1") || len(p.Replicas) != 3 || p.Leader == "" || p.Leader == "n1" {
			t.Fatalf("after n1 left, partition %d: %+v", p.ID, p)
		}
	}
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	wg = &sync.WaitGroup{}
	events := load.checkHistories(t, nodes[1].server)
	t.Logf("%d events stored for 12 customers through the join and the leave; %d requests answered unavailable", events, load.unavailable.Load())
}

// 20 rounds of kill -9 of a random node under load, each restarted on its
// data dir (make integ): nothing acknowledged lost, duplicated or
// reordered, seqs gapless.
func TestClusterRandomKills(t *testing.T) {
	if os.Getenv("THROUGHLINE_INTEG") == "" {
		t.Skip("a long run: make integ")
	}
	nodes := startCluster(t, 3, 16)
	var load clusterLoad
	stop := make(chan struct{})
	wg := load.run(t, nodes, 24, stop)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range 20 {
		victim := nodes[rng.IntN(len(nodes))]
		pause(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		victim.kill()
		pause(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		victim.server = launch(t, victim.opts)
		if err := victim.waitReady(); err != nil {
			t.Fatalf("round %d: %s not ready again: %v", round, victim.name, err)
		}
		t.Logf("round %d: killed and restarted %s", round+1, victim.name)
	}
	pause(time.Second)
	close(stop)
	wg.Wait()
	events := load.checkHistories(t, nodes[0].server)
	t.Logf("20 kills: %d events stored for 24 customers, none lost, duplicated or reordered; %d requests answered unavailable", events, load.unavailable.Load())
}

// A network partition injected in the raft and remote transports (the
// test-only faults file): the side with one node stops acknowledging, the
// other two go on; after healing, the cut-off node catches up and every
// replica holds the same log.
func TestClusterNetworkPartition(t *testing.T) {
	dir := t.TempDir()
	faults := func(name string) string { return filepath.Join(dir, "faults-"+name) }
	var nodes []*clusterNode
	var first string
	for i := range 3 {
		o, gossip := clusterNodeOptions(t, i+1, 8, 3, first, "")
		if i == 0 {
			first = gossip
		}
		o.env = []string{"THROUGHLINE_TEST_FAULTS=" + faults(o.name)}
		nodes = append(nodes, &clusterNode{server: launch(t, o), name: o.name, opts: o})
	}
	for _, n := range nodes {
		if err := n.waitReady(); err != nil {
			t.Fatal(err)
		}
	}
	cut := func(name, others string) {
		if err := os.WriteFile(faults(name), []byte(others), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	// Ready means every partition has had a leader; one may still be
	// moving to its preferred node, and an unavailable answer is sent
	// again with the same id (PROTOCOL 8).
	for c := range 8 {
		n2.postEventEventually(t, event{ID: fmt.Sprintf("before-%d", c), Customer: fmt.Sprintf("np-%d", c), Text: "before"})
	}
	cut(n1.name, "n2 n3")
	cut(n2.name, "n1")
	cut(n3.name, "n1")
	pause(1500 * time.Millisecond) // n1's leaders step down on their lease
	// The minority acknowledges nothing.
	for c := range 8 {
		r, err := n1.tryCall("POST", "/v1/events", tokChannel, event{ID: fmt.Sprintf("minority-%d", c), Customer: fmt.Sprintf("np-%d", c), Text: "cut off"}, nil)
		if err == nil && r.status == 200 {
			t.Fatalf("the cut-off node acknowledged np-%d: %s", c, r.body)
		}
	}
	// The majority goes on.
	for c := range 8 {
		n2.postEventEventually(t, event{ID: fmt.Sprintf("majority-%d", c), Customer: fmt.Sprintf("np-%d", c), Text: "during"})
	}
	// Heal; the cut-off node catches up and serves again.
	cut(n1.name, "")
	cut(n2.name, "")
	cut(n3.name, "")
	for c := range 8 {
		n1.postEventEventually(t, event{ID: fmt.Sprintf("after-%d", c), Customer: fmt.Sprintf("np-%d", c), Text: "healed"})
	}
	// Histories agree through every node, and every replica's commit
	// index of each partition is the same.
	for c := range 8 {
		customer := fmt.Sprintf("np-%d", c)
		var want []string
		for i, n := range nodes {
			var got []string
			for _, e := range n.timeline(customer, 100) {
				got = append(got, fmt.Sprintf("%d:%s", e.Seq, e.ID))
			}
			if i == 0 {
				want = got
			} else if !slices.Equal(got, want) {
				t.Fatalf("%s through %s: %v, through n1: %v", customer, n.name, got, want)
			}
			for _, id := range got {
				if strings.Contains(id, "minority") {
					t.Fatalf("%s: an event sent to the cut-off node is stored: %v", customer, got)
				}
			}
		}
	}
	eventually(t, 10*time.Second, "every replica's commit index agrees", func() bool {
		var first map[string]string
		for i, n := range nodes {
			r, err := n.tryCall("GET", "/metrics", "", nil, nil)
			if err != nil {
				return false
			}
			idx := map[string]string{}
			for _, line := range strings.Split(string(r.body), "\n") {
				if strings.HasPrefix(line, "throughline_partition_commit_index{") {
					k, v, _ := strings.Cut(line, " ")
					idx[k] = v
				}
			}
			if i == 0 {
				first = idx
			} else if len(idx) != 8 || !maps.Equal(idx, first) {
				return false
			}
		}
		return true
	})
}

// A node dead past cluster.dead_after has its replicas rebuilt on the
// others: four nodes, one killed for good; every partition gets back to
// three replicas on live nodes, and nothing acknowledged is lost.
func TestClusterReplacesADeadNode(t *testing.T) {
	var nodes []*clusterNode
	var first string
	for i := range 4 {
		o, gossip := clusterNodeOptions(t, i+1, 8, 4, first, "")
		o.sections = strings.Replace(o.sections, "  replicas: 3\n", "  replicas: 3\n  dead_after: 2s\n", 1)
		if i == 0 {
			first = gossip
		}
		nodes = append(nodes, &clusterNode{server: launch(t, o), name: o.name, opts: o})
	}
	for _, n := range nodes {
		if err := n.waitReady(); err != nil {
			t.Fatal(err)
		}
	}
	var load clusterLoad
	stop := make(chan struct{})
	wg := load.run(t, nodes[:3], 12, stop)
	pause(time.Second)
	nodes[3].kill()
	eventually(t, 40*time.Second, "every partition back to three live replicas", func() bool {
		v, err := nodes[0].cluster()
		if err != nil {
			return false
		}
		for _, p := range v.Partitions {
			if len(p.Replicas) != 3 || slices.Contains(p.Replicas, "n4") || p.Leader == "" || p.Leader == "n4" {
				return false
			}
		}
		return true
	})
	pause(time.Second)
	close(stop)
	wg.Wait()
	events := load.checkHistories(t, nodes[0].server)
	t.Logf("%d events stored for 12 customers while n4's replicas were rebuilt", events)
}

// A broadcast started through one node goes on when the coordinator
// (partition 0's leader, which keeps the broadcasts' records) is killed
// -9 midway: a survivor takes over, every customer of the segment across
// the nodes' partitions is decided exactly once, and the counts are exact.
func TestClusterBroadcastSurvivesKill(t *testing.T) {
	nodes := startClusterWith(t, 3, 8, "broadcasts: {rate: 60}\n")
	const n = 150
	customers := make([]string, n)
	for i := range n {
		customers[i] = fmt.Sprintf("bk-%d", i)
		nodes[i%3].postEventEventually(t, event{ID: fmt.Sprintf("pay-%d", i), Customer: customers[i],
			Identity: map[string]string{"phone": fmt.Sprintf("+155503%05d", i)}, Type: "payment.attempted", Channel: "sms"})
	}
	v, err := nodes[0].cluster()
	if err != nil {
		t.Fatal(err)
	}
	var coord *clusterNode
	var survivors []*clusterNode
	for _, cn := range nodes {
		if cn.name == v.Partitions[0].Leader {
			coord = cn
		} else {
			survivors = append(survivors, cn)
		}
	}
	if coord == nil {
		t.Fatalf("partition 0's leader %q is none of the nodes", v.Partitions[0].Leader)
	}
	body := outageBroadcast()
	delete(body, "callback_offer")
	delete(body, "callback_queue")
	id := survivors[0].broadcastEventually(t, body)
	eventually(t, 20*time.Second, "some targets reached", func() bool {
		r, err := survivors[1].tryCall("GET", "/v1/broadcasts/"+id, tokSupervisor, nil, nil)
		var st broadcastStatus
		return err == nil && r.status == 200 && json.Unmarshal(r.body, &st) == nil && st.Targeted >= 20
	})
	coord.kill()
	t.Logf("killed the coordinator %s", coord.name)
	var st broadcastStatus
	eventually(t, 60*time.Second, "the broadcast done on the survivors", func() bool {
		r, err := survivors[1].tryCall("GET", "/v1/broadcasts/"+id, tokSupervisor, nil, nil)
		return err == nil && r.status == 200 && json.Unmarshal(r.body, &st) == nil && st.State == "done"
	})
	if st.Targeted != n || st.Sent != n {
		t.Fatalf("done with %+v, want %d targeted and sent", st, n)
	}
	// The dead coordinator's partitions may still be changing leaders: a
	// read answers 503 meanwhile.
	eventually(t, 20*time.Second, "every customer's timeline readable on the survivors", func() bool {
		for i, c := range customers {
			if r, err := survivors[i%2].tryCall("GET", customerPath(c)+"/timeline?limit=1", tokSupervisor, nil, nil); err != nil || r.status != 200 {
				return false
			}
		}
		return true
	})
	for i, c := range customers {
		got := 0
		for _, e := range survivors[i%2].timeline(c, 100) {
			if strings.HasPrefix(e.Type, "proactive.") && dataOf(t, e)["broadcast"] == id {
				got++
			}
		}
		if got != 1 {
			t.Fatalf("%s has %d proactive events of the broadcast, want 1", c, got)
		}
	}
}
