package cluster

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
)

// With a gossip key, members holding the same key join; a node without it,
// or with another, cannot.
func TestMembershipGossipKey(t *testing.T) {
	start := func(name string, key []byte) (*Membership, string) {
		t.Helper()
		addr := freeGossip(t)
		m, err := StartMembership(MembershipConfig{
			Meta:   NodeMeta{Name: name, HTTP: "127.0.0.1:1", Raft: "127.0.0.1:2", ClusterID: "c1", Partitions: 8},
			Gossip: addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SecretKey: key,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })
		return m, addr
	}
	key := bytes.Repeat([]byte{1}, 32)
	a, addrA := start("n1", key)
	b, _ := start("n2", key)
	if err := b.Join([]string{addrA}); err != nil {
		t.Fatalf("a member with the key: %v", err)
	}
	waitMembers(t, a, "n2 alive", func(ms map[string]MemberInfo) bool { return ms["n2"].State == Alive })
	plain, _ := start("n3", nil)
	if err := plain.Join([]string{addrA}); err == nil {
		t.Error("a node without the gossip key joined")
	}
	other, _ := start("n4", bytes.Repeat([]byte{2}, 32))
	if err := other.Join([]string{addrA}); err == nil {
		t.Error("a node with another gossip key joined")
	}
	if _, ok := a.Members()["n3"]; ok {
		t.Error("n1 lists the node without the key")
	}
}
