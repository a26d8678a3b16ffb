package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/gateway"
)

// Two nodes run in one process, each with its own data dir and port: a
// test or a bench needs no exec to start a node.
func TestTwoNodesInOneProcess(t *testing.T) {
	var nodes []*Node
	for i := range 2 {
		cfg, err := LoadConfig(writeConfig(t, ""))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Node.DataDir = t.TempDir()
		cfg.Node.HTTP = "127.0.0.1:0"
		cfg.Node.Partitions = 4
		cfg.Auth.Tokens = []gateway.Token{{Token: "gw", Role: gateway.RoleChannel}, {Token: "sup", Role: gateway.RoleSupervisor}}
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		n, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		nodes = append(nodes, n)
	}
	for i, n := range nodes {
		body := fmt.Sprintf(`{"id":"e-1","customer":"c-%d","text":"hello"}`, i)
		req, _ := http.NewRequest("POST", "http://"+n.Addr()+"/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer gw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Ack struct {
				Customer string `json:"customer"`
				Seq      uint64 `json:"seq"`
			} `json:"ack"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 || out.Ack.Customer != fmt.Sprintf("c-%d", i) || out.Ack.Seq != 1 {
			t.Errorf("node %d answered %d %+v", i, resp.StatusCode, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := n.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := n.Stop(ctx); err != nil {
			t.Errorf("a second stop: %v", err)
		}
	}
}

// node.memory_limit reaches the runtime: /metrics shows the budget and
// what it counts.
func TestMemoryLimitReachesTheRuntime(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "node: {memory_limit: 3GiB, max_resident_customers: 5000}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.DataDir, cfg.Node.HTTP, cfg.Node.Partitions = t.TempDir(), "127.0.0.1:0", 4
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := cfg.Validate(); err != nil {
		t.Skip("this machine has under 3 GiB:", err)
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	}()
	resp, err := http.Get("http://" + n.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"throughline_memory_limit_bytes 3.221225472e+09", "throughline_memory_pressure 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
}
