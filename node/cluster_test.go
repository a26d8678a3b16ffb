// protoactor-go's remote sets grpc's process-wide logger each time one
// starts (remote.Start calls grpclog.SetLoggerV2), which the race detector
// rightly reports when three nodes share one process while the others'
// grpc runs. A real node has one remote per process; under -race the same
// cluster is tested as three processes (e2e/cluster_test.go).

//go:build !race

package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/gateway"
)

// handedOut are the ports freeAddr gave: the kernel may give a closed
// port again at once.
var handedOut sync.Map

// freeAddr is a loopback address with a port free now, never one it gave
// before in this process.
func freeAddr(t *testing.T) string {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, seen := handedOut.LoadOrStore(addr, true); !seen {
			return addr
		}
	}
}

// clusterConfigs are n nodes' configs on loopback, each joining the first.
func clusterConfigs(t *testing.T, n, partitions int) []Config {
	var cfgs []Config
	var first string
	for i := range n {
		cfg := Config{}
		cfg.Node = NodeConfig{Name: fmt.Sprintf("n%d", i+1), DataDir: t.TempDir(), HTTP: freeAddr(t), Partitions: partitions}
		cfg.Node.ensureDefaults()
		cfg.Cluster = ClusterConfig{Gossip: freeAddr(t), Remote: freeAddr(t), Raft: freeAddr(t), Replicas: 3, BootstrapExpect: n}
		if i == 0 {
			first = cfg.Cluster.Gossip
		} else {
			cfg.Cluster.Join = []string{first}
		}
		cfg.Cluster.ensureDefaults()
		cfg.Auth.Tokens = []gateway.Token{{Token: "gw", Role: gateway.RoleChannel}, {Token: "sup", Role: gateway.RoleSupervisor},
			{Token: "adm", Role: gateway.RoleAdmin, Name: "admin"}}
		level := slog.LevelError + 4
		if os.Getenv("THROUGHLINE_TEST_LOG") != "" {
			level = slog.LevelInfo
		}
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", cfg.Node.Name)
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

// startAll starts the nodes at once: each waits for the others before its
// first placement.
func startAll(t *testing.T, cfgs []Config) []*Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := make([]*Node, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Go(func() { nodes[i], errs[i] = Start(ctx, cfg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i, n := range nodes {
			start := time.Now()
			err := n.Stop(ctx)
			t.Logf("node %d stopped in %s: %v", i+1, time.Since(start), err)
		}
	})
	return nodes
}

func waitReady(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready: %d %s", addr, resp.StatusCode, body)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type ackAnswer struct {
	Ack struct {
		Customer string `json:"customer"`
		Seq      uint64 `json:"seq"`
	} `json:"ack"`
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
}

func postEvent(t *testing.T, addr, body string) (int, ackAnswer) {
	t.Helper()
	// Leaderships move to their desired nodes in the first seconds: a
	// request caught in a move answers 503 and is sent again (PROTOCOL 8).
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out := postEventOnce(t, addr, body)
		if code != 503 || time.Now().After(deadline) {
			return code, out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func postEventOnce(t *testing.T, addr, body string) (int, ackAnswer) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer gw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out ackAnswer
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// Three nodes in one process: every node serves every customer (forwarding
// to the partition's leader), identities resolve across nodes, reads go to
// the leader, and after a node stops the other two go on.
func TestThreeNodeCluster(t *testing.T) {
	cfgs := clusterConfigs(t, 3, 8)
	nodes := startAll(t, cfgs)
	for _, n := range nodes {
		waitReady(t, n.Addr(), 15*time.Second)
	}
	// Every node leads some partitions once leadership is spread, and
	// every node takes events for every customer.
	for c := range 12 {
		for i, n := range nodes {
			code, out := postEvent(t, n.Addr(), fmt.Sprintf(`{"id":"e-%d","customer":"c-%d","type":"message.received","channel":"sms","text":"hi"}`, i, c))
			if code != 200 || out.Ack.Seq != uint64(i+1) {
				t.Fatalf("customer c-%d through node %d: %d %+v", c, i+1, code, out)
			}
		}
	}
	// The same id again through another node is the same event.
	if code, out := postEvent(t, nodes[2].Addr(), `{"id":"e-0","customer":"c-0","type":"message.received","channel":"sms","text":"hi"}`); code != 200 || out.Ack.Seq != 1 {
		t.Fatalf("a duplicate through another node: %d %+v", code, out)
	}
	// An identity claimed through one node resolves to the same customer
	// through the others.
	var owner string
	for i, n := range nodes {
		code, out := postEvent(t, n.Addr(), fmt.Sprintf(`{"id":"p-%d","identity":{"phone":"+15550001"},"type":"message.received","channel":"sms","text":"hi"}`, i))
		if code != 200 {
			t.Fatalf("identity through node %d: %d %+v", i+1, code, out)
		}
		if owner == "" {
			owner = out.Ack.Customer
		} else if out.Ack.Customer != owner {
			t.Fatalf("identity resolved to %s through node %d, to %s before", out.Ack.Customer, i+1, owner)
		}
	}
	// A customer's timeline reads the same through every node.
	for i, n := range nodes {
		req, _ := http.NewRequest("GET", "http://"+n.Addr()+"/v1/customers/c-3/timeline", nil)
		req.Header.Set("Authorization", "Bearer sup")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var tl struct {
			Events []struct {
				Seq uint64 `json:"seq"`
			} `json:"events"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tl)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(tl.Events) != 3 {
			t.Fatalf("timeline through node %d: %d, %d events", i+1, resp.StatusCode, len(tl.Events))
		}
	}
	// GET /v1/cluster names three alive nodes and a leader per partition.
	req, _ := http.NewRequest("GET", "http://"+nodes[1].Addr()+"/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer sup")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var view struct {
		Nodes []struct {
			Name, State string
		} `json:"nodes"`
		Partitions []struct {
			Leader   string   `json:"leader"`
			Replicas []string `json:"replicas"`
		} `json:"partitions"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	if len(view.Nodes) != 3 || len(view.Partitions) != 8 {
		t.Fatalf("cluster view: %+v", view)
	}
	for p, part := range view.Partitions {
		if part.Leader == "" || len(part.Replicas) != 3 {
			t.Fatalf("partition %d: %+v", p, part)
		}
	}

	// /metrics: every partition is led by exactly one node, and every node
	// sees three alive members.
	deadline := time.Now().Add(10 * time.Second)
	for {
		leads, alive := 0, 0
		for _, n := range nodes {
			resp, err := http.Get("http://" + n.Addr() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "throughline_partition_leader{") && strings.HasSuffix(line, " 1") {
					leads++
				}
				if line == `throughline_cluster_members{state="alive"} 3` {
					alive++
				}
			}
		}
		if leads == 8 && alive == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics: %d partitions led (want 8), %d nodes see 3 alive", leads, alive)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Privacy through any node: an export is audited in the audit
	// partition's store, and every node reads the same log.
	for i, n := range nodes {
		req, _ := http.NewRequest("GET", "http://"+n.Addr()+"/v1/customers/c-3/export", nil)
		req.Header.Set("Authorization", "Bearer adm")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("export through node %d: %d", i+1, resp.StatusCode)
		}
	}
	for i, n := range nodes {
		req, _ := http.NewRequest("GET", "http://"+n.Addr()+"/v1/audit", nil)
		req.Header.Set("Authorization", "Bearer adm")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var a struct {
			Entries []struct {
				Action string `json:"action"`
			} `json:"entries"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(a.Entries) != 3 {
			t.Fatalf("audit through node %d: %d, %d entries (want the 3 exports)", i+1, resp.StatusCode, len(a.Entries))
		}
	}
	// Erase through a node that does not lead the customer, whose identity
	// lives in another partition: the identity is released, so the same
	// phone later makes a new customer.
	code, out := postEvent(t, nodes[0].Addr(), `{"id":"er-1","identity":{"phone":"+15550777"},"type":"message.received","channel":"sms","text":"hi"}`)
	if code != 200 {
		t.Fatalf("identity event: %d %+v", code, out)
	}
	erased := out.Ack.Customer
	for i, want := range []int{204, 404, 404} { // erased once; then it is unknown everywhere
		req, _ := http.NewRequest("DELETE", "http://"+nodes[2-i].Addr()+"/v1/customers/"+erased, nil)
		req.Header.Set("Authorization", "Bearer adm")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("erase through node %d: %d, want %d", 3-i, resp.StatusCode, want)
		}
	}
	if code, out := postEvent(t, nodes[1].Addr(), `{"id":"er-2","identity":{"phone":"+15550777"},"type":"message.received","channel":"sms","text":"hi again"}`); code != 200 || out.Ack.Customer == erased {
		t.Fatalf("after the erase the phone resolved to %q (%d), the erased customer was %q", out.Ack.Customer, code, erased)
	}
	// Analytics: each node computes the part of the partitions it leads and
	// the answering node merges all of them.
	// (Leaderships settle first: a partition whose leadership is moving is
	// counted once it is hosted again.)
	for i, n := range nodes {
	again:
		req, _ := http.NewRequest("GET", "http://"+n.Addr()+"/v1/analytics/journeys", nil)
		req.Header.Set("Authorization", "Bearer sup")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var a struct {
			Partitions int `json:"partitions"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if resp.StatusCode == 200 && a.Partitions < 8 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			goto again
		}
		if resp.StatusCode != 200 || a.Partitions != 8 {
			t.Fatalf("analytics through node %d: %d, %d partitions merged (want 8)", i+1, resp.StatusCode, a.Partitions)
		}
	}
	t.Logf("%s: served through every node", time.Now().Format("15:04:05.000"))
	// Node 1 stops; the others elect new leaders and go on.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := nodes[0].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: node 1 stopped", time.Now().Format("15:04:05.000"))
	deadline = time.Now().Add(10 * time.Second)
	for c := range 12 {
		for {
			code, out := postEvent(t, nodes[1].Addr(), fmt.Sprintf(`{"id":"after-%d","customer":"c-%d","type":"message.received","channel":"sms","text":"again"}`, c, c))
			if code == 200 {
				if out.Ack.Seq != 4 {
					t.Fatalf("c-%d after the stop: seq %d, want 4", c, out.Ack.Seq)
				}
				break
			}
			if code != 503 || time.Now().After(deadline) {
				t.Fatalf("c-%d after the stop: %d %+v", c, code, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// supervise sends a supervisor's request through node addr and decodes a
// JSON answer into out (when not nil).
func supervise(t *testing.T, method, addr, path, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	req.Header.Set("Authorization", "Bearer sup")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// A broadcast started through a node that does not coordinate reaches
// every customer of the segment exactly once, across the partitions of
// all nodes, while the coordinator (partition 0's leader) stops midway;
// its progress, list and resolve answer through any node.
func TestClusterBroadcast(t *testing.T) {
	cfgs := clusterConfigs(t, 3, 8)
	for i := range cfgs {
		cfgs[i].Broadcasts.Rate = 100 // 300 targets: about 3 s, so the stop falls midway
	}
	nodes := startAll(t, cfgs)
	for _, n := range nodes {
		waitReady(t, n.Addr(), 15*time.Second)
	}
	const customers = 300
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for c := w; c < customers; c += 6 {
				body := fmt.Sprintf(`{"id":"pay-%d","customer":"b-%d","type":"payment.attempted","identity":{"phone":"+1555200%04d"}}`, c, c, c)
				if code, out := postEvent(t, nodes[c%3].Addr(), body); code != 200 {
					t.Errorf("b-%d: %d %+v", c, code, out)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var view struct {
		Partitions []struct {
			Leader string `json:"leader"`
		} `json:"partitions"`
	}
	if code := supervise(t, "GET", nodes[0].Addr(), "/v1/cluster", "", &view); code != 200 || len(view.Partitions) != 8 {
		t.Fatalf("cluster view: %d %+v", code, view)
	}
	coord := -1
	for i, cfg := range cfgs {
		if cfg.Node.Name == view.Partitions[0].Leader {
			coord = i
		}
	}
	if coord < 0 {
		t.Fatalf("partition 0's leader %q is none of the nodes", view.Partitions[0].Leader)
	}
	via, other := nodes[(coord+1)%3], nodes[(coord+2)%3]
	var started struct {
		ID string `json:"id"`
	}
	bc := `{"segment":{"event":"payment.attempted","within":"1h"},"message":{"text":"We know about the payment problem."}}`
	if code := supervise(t, "POST", via.Addr(), "/v1/broadcasts", bc, &started); code != 202 || started.ID == "" {
		t.Fatalf("broadcast through a node that does not coordinate: %d %+v", code, started)
	}
	var st struct {
		State      string         `json:"state"`
		Targeted   int            `json:"targeted"`
		Sent       int            `json:"sent"`
		Held       int            `json:"held"`
		Suppressed map[string]int `json:"suppressed"`
		Resolved   bool           `json:"resolved"`
	}
	// The rate is the cluster's, shared by the nodes: a second in, most
	// targets are still to go.
	// A 503 ("n of m partitions counted (leaderships moving); send again")
	// is the contract's answer while leaderships settle: asked again.
	time.Sleep(time.Second)
	code := supervise(t, "GET", other.Addr(), "/v1/broadcasts/"+started.ID, "", &st)
	for try := 0; code == http.StatusServiceUnavailable && try < 8; try++ {
		time.Sleep(50 * time.Millisecond)
		code = supervise(t, "GET", other.Addr(), "/v1/broadcasts/"+started.ID, "", &st)
	}
	if code != 200 || st.State != "running" || st.Targeted > customers/2 {
		t.Fatalf("a second in: %d %+v", code, st)
	}
	t.Logf("%d targeted when the coordinator stops", st.Targeted)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := nodes[coord].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("the coordinator (node %d) stopped", coord+1)
	deadline := time.Now().Add(60 * time.Second)
	for {
		code := supervise(t, "GET", other.Addr(), "/v1/broadcasts/"+started.ID, "", &st)
		if code == 200 && st.State == "done" {
			break
		}
		if (code != 200 && code != 503) || time.Now().After(deadline) {
			t.Fatalf("broadcast status: %d %+v", code, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	reached := st.Sent + st.Held
	for _, n := range st.Suppressed {
		reached += n
	}
	if st.Targeted != customers || reached != customers {
		t.Fatalf("done with %+v; want %d targeted, each decided once", st, customers)
	}
	// Every customer has exactly one proactive event of the broadcast.
	for c := range customers {
		var tl struct {
			Events []struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			} `json:"events"`
		}
		if code := supervise(t, "GET", []*Node{via, other}[c%2].Addr(), fmt.Sprintf("/v1/customers/b-%d/timeline", c), "", &tl); code != 200 {
			t.Fatalf("timeline of b-%d: %d", c, code)
		}
		n := 0
		for _, e := range tl.Events {
			if strings.HasPrefix(e.Type, "proactive.") && strings.Contains(string(e.Data), started.ID) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("b-%d has %d proactive events of the broadcast, want 1: %+v", c, n, tl.Events)
		}
	}
	var list struct {
		Broadcasts []struct {
			ID, State string
		} `json:"broadcasts"`
	}
	if code := supervise(t, "GET", via.Addr(), "/v1/broadcasts", "", &list); code != 200 || len(list.Broadcasts) != 1 || list.Broadcasts[0].ID != started.ID {
		t.Fatalf("list: %d %+v", code, list)
	}
	if code := supervise(t, "POST", via.Addr(), "/v1/broadcasts/"+started.ID+"/resolve", `{"message":{"text":"Payments work again."}}`, nil); code != 202 {
		t.Fatalf("resolve: %d", code)
	}
	if code := supervise(t, "POST", other.Addr(), "/v1/broadcasts/"+started.ID+"/resolve", `{"message":{"text":"Again."}}`, nil); code != 409 {
		t.Fatalf("a second resolve: %d, want 409", code)
	}
	if code := supervise(t, "DELETE", other.Addr(), "/v1/broadcasts/bc-none", "", nil); code != 404 {
		t.Fatalf("cancel of an unknown broadcast: %d, want 404", code)
	}
	if code := supervise(t, "GET", other.Addr(), "/v1/broadcasts/"+started.ID, "", &st); code != 200 || !st.Resolved {
		t.Fatalf("after the resolve: %d %+v", code, st)
	}
}
