package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func freeGossip(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func startMember(t *testing.T, name, clusterID string, partitions int) (*Membership, string) {
	t.Helper()
	addr := freeGossip(t)
	m, err := StartMembership(MembershipConfig{
		Meta:   NodeMeta{Name: name, HTTP: "127.0.0.1:1", Raft: "127.0.0.1:2", ClusterID: clusterID, Partitions: partitions},
		Gossip: addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m, addr
}

func waitMembers(t *testing.T, m *Membership, what string, cond func(map[string]MemberInfo) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(m.Members()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, m.Members())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMembershipJoinDeathAndMeta(t *testing.T) {
	a, addrA := startMember(t, "n1", "c1", 8)
	b, _ := startMember(t, "n2", "c1", 8)
	c, _ := startMember(t, "n3", "c1", 8)
	for _, m := range []*Membership{b, c} {
		if err := m.Join([]string{addrA}); err != nil {
			t.Fatal(err)
		}
	}
	waitMembers(t, a, "three alive", func(ms map[string]MemberInfo) bool {
		n := 0
		for _, m := range ms {
			if m.State == Alive {
				n++
			}
		}
		return n == 3
	})
	if info := a.Members()["n2"]; info.Meta.Raft != "127.0.0.1:2" || info.Meta.ClusterID != "c1" || !strings.HasPrefix(info.Incarnation, "n2#") {
		t.Fatalf("n2 as n1 sees it: %+v", info)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(); err != nil {
		t.Errorf("a second shutdown: %v", err)
	}
	waitMembers(t, a, "n3 dead", func(ms map[string]MemberInfo) bool { return ms["n3"].State == Dead })
}

func TestMembershipRefusesAnotherCluster(t *testing.T) {
	_, addrA := startMember(t, "n1", "c1", 8)
	other, _ := startMember(t, "x1", "c2", 8)
	if err := other.Join([]string{addrA}); err == nil {
		t.Error("a node of another cluster joined")
	}
	parts, _ := startMember(t, "n9", "c1", 16)
	if err := parts.Join([]string{addrA}); err == nil {
		t.Error("a node with another partition count joined")
	}
}

func TestNodeMetaFitsMemberlist(t *testing.T) {
	long := strings.Repeat("h", 200)
	if _, err := (NodeMeta{Name: "n1", HTTP: long, Remote: long, Raft: long}).encode(); err == nil {
		t.Error("metadata over 512 bytes was accepted")
	}
	if _, err := (NodeMeta{Name: "n1", HTTP: "127.0.0.1:8081", Remote: "127.0.0.1:8091", Raft: "127.0.0.1:8101", ClusterID: fmt.Sprint(1234567890), Partitions: 64}).encode(); err != nil {
		t.Error(err)
	}
	if got := BaseName(IncarnationName("n1", time.UnixMilli(42))); got != "n1" {
		t.Errorf("base name %q", got)
	}
}
