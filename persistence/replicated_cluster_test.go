package persistence

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/throughline/throughline/journey"
)

func groupOf(e ReplicatedEngine, p int) *replicaGroup {
	return e.(*replicatedEngine).groups[p]
}

// appendAll appends n single-event appends to each customer through s,
// pipelined, and fails the test on any error.
func appendAll(t *testing.T, s Store, customers []string, from uint64, n int) {
	t.Helper()
	for _, c := range customers {
		for i := range n {
			prev := from + uint64(i)
			if err := appendWait(t, s, &AppendRequest{Customer: c, PrevSeq: prev, Events: events(c, prev, 1, t0)}); err != nil {
				t.Fatalf("append %s after %d: %v", c, prev, err)
			}
		}
	}
}

func wantSeqs(s Store, c string, last uint64) error {
	evs, err := s.Events(context.Background(), c, 0, 0)
	if err != nil {
		return err
	}
	if got := seqsOf(evs); !slices.Equal(got, seqRange(1, last)) {
		return fmt.Errorf("customer %s: seqs %v, want 1..%d", c, got, last)
	}
	return nil
}

// Killing a partition's leader elects another, which holds everything
// acknowledged and takes writes; the old leader's store refuses writes.
func TestReplicatedFailover(t *testing.T) {
	rs := newReplicaSet(t, 1, true)
	ctx := context.Background()
	old := rs.leader(0)
	customers := []string{"f1", "f2", "f3"}
	appendAll(t, rs.engines[old].Store(0), customers, 0, 5)
	owner, err := identityStore(rs.engines[old], "phone", "+1555").ClaimIdentity(ctx, "phone", "+1555", "f1")
	if err != nil || owner != "f1" {
		t.Fatalf("claim: %q %v", owner, err)
	}

	killed := time.Now()
	if err := groupOf(rs.engines[old], 0).raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	next := rs.leader(0, old)
	t.Logf("failover: new leader ready %v after the kill", time.Since(killed).Round(time.Millisecond))
	s := rs.engines[next].Store(0)
	for _, c := range customers {
		if err := wantSeqs(s, c, 5); err != nil {
			t.Errorf("on the new leader: %v", err)
		}
	}
	if owner, _ := s.LookupIdentity(ctx, "phone", "+1555"); owner != "f1" {
		t.Errorf("identity on the new leader: %q", owner)
	}
	appendAll(t, s, customers, 5, 1)
	if rs.gained[old].Load() != 1 || rs.gained[next].Load() != 1 {
		t.Errorf("OnLeadership(leader) calls: old leader %d, new leader %d", rs.gained[old].Load(), rs.gained[next].Load())
	}

	// The old leader's store refuses writes, naming the leader it knew.
	err = appendWait(t, rs.engines[old].Store(0), &AppendRequest{Customer: "f1", PrevSeq: 6, Events: events("f1", 6, 1, t0)})
	var nl *NotLeaderError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &nl) || nl.Partition != 0 {
		t.Errorf("append on the killed leader: %v", err)
	}
	// A follower refuses writes too, naming the leader.
	follower := 3 - old - next
	_, err = rs.engines[follower].Store(0).ClaimIdentity(ctx, "phone", "+1555", "f2")
	if !errors.As(err, &nl) || nl.LeaderID != nodeID(next) || nl.LeaderAddr != inmemAddr(next, 0) {
		t.Errorf("claim on a follower: %v (%+v)", err, nl)
	}
}

// A leader cut off from the others cannot acknowledge a write: its pending
// proposal fails with ErrUnavailable, and after healing every replica holds
// the new leader's history.
func TestReplicatedStaleLeader(t *testing.T) {
	rs := newReplicaSet(t, 1, true)
	old := rs.leader(0)
	appendAll(t, rs.engines[old].Store(0), []string{"s"}, 0, 3)
	for j := range replicas {
		if j != old {
			rs.trans[old][0].Disconnect(inmemAddr(j, 0))
			rs.trans[j][0].Disconnect(inmemAddr(old, 0))
		}
	}
	staleEvent := event("s", "stale", "t", 4, t0)
	stale := appendWait(t, rs.engines[old].Store(0), &AppendRequest{Customer: "s", PrevSeq: 3, Events: []journey.Event{staleEvent}})
	if !errors.Is(stale, ErrUnavailable) {
		t.Fatalf("append on an isolated leader: %v", stale)
	}
	next := rs.leader(0, old)
	appendAll(t, rs.engines[next].Store(0), []string{"s"}, 3, 2)
	rs.connect(0)
	for i := range replicas {
		checkFor(t, 10*time.Second, func() error { return wantSeqs(rs.engines[i].Store(0), "s", 5) })
	}
	evs, _ := rs.engines[old].Store(0).Events(context.Background(), "s", 3, 1)
	if len(evs) != 1 || evs[0].ID != "s-e4" {
		t.Errorf("old leader's event 4: %+v", evs)
	}
}

// A replica stopped while the others write on catches up when restarted on
// the same Pebble: from the leader's log, or from a snapshot when the
// leader has compacted the log past it. Entries it had applied before the
// stop are not applied twice.
func TestReplicatedRestart(t *testing.T) {
	for _, viaSnapshot := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot=%v", viaSnapshot), func(t *testing.T) {
			rs := newReplicaSet(t, 1, false)
			leader := rs.leader(0)
			c := rs.conf[leader]
			err := groupOf(rs.engines[leader], 0).raft.ReloadConfig(raft.ReloadableConfig{TrailingLogs: 5,
				SnapshotInterval: c.SnapshotInterval, SnapshotThreshold: c.SnapshotThreshold,
				HeartbeatTimeout: c.HeartbeatTimeout, ElectionTimeout: c.ElectionTimeout})
			if err != nil {
				t.Fatal(err)
			}
			const down = 2
			s := rs.engines[leader].Store(0)
			appendAll(t, s, []string{"r1"}, 0, 4)
			checkFor(t, 5*time.Second, func() error { return wantSeqs(rs.engines[down].Store(0), "r1", 4) })
			stoppedAt := groupOf(rs.engines[down], 0).raft.LastIndex()
			if err := rs.engines[down].Close(); err != nil {
				t.Fatal(err)
			}
			rs.engines[down] = nil
			if err := rs.pebbles[down].Close(); err != nil {
				t.Fatal(err)
			}

			appendAll(t, s, []string{"r1"}, 4, 20)
			appendAll(t, s, []string{"r2"}, 0, 20)
			if viaSnapshot {
				g := groupOf(rs.engines[leader], 0)
				if err := g.raft.Snapshot().Error(); err != nil {
					t.Fatal(err)
				}
				first, _ := (&raftStore{e: rs.pebbles[leader].(*pebbleEngine), p: 0}).FirstIndex()
				if first <= stoppedAt+1 {
					t.Fatalf("leader's log starts at %d, the stopped replica at %d: no snapshot needed", first, stoppedAt)
				}
			}

			rs.pebbles[down] = openPebble(t, rs.fs[down], "db", Options{Partitions: 1})
			rs.connect(0)
			rs.start(down)
			r := rs.engines[down].Store(0)
			checkFor(t, 10*time.Second, func() error {
				if err := wantSeqs(r, "r1", 24); err != nil {
					return err
				}
				return wantSeqs(r, "r2", 20)
			})
			if st := rs.pebbles[down].Stats(); st.Conflicts != 0 {
				t.Errorf("restarted replica applied %d entries twice (conflicts)", st.Conflicts)
			}
			lst, rst := rs.engines[leader].ReplicaStats(0), rs.engines[down].ReplicaStats(0)
			if rst.StoredIndex == 0 || rst.State != "Follower" || lst.State != "Leader" {
				t.Errorf("stats: leader %+v, restarted %+v", lst, rst)
			}
			// It takes writes again once it leads.
			if err := rs.engines[leader].TransferLeadership(context.Background(), 0, nodeID(down), inmemAddr(down, 0)); err != nil {
				t.Fatal(err)
			}
			if l := rs.leader(0); l != down {
				t.Fatalf("leader after transfer: node %d", l)
			}
			appendAll(t, r, []string{"r2"}, 20, 1)
		})
	}
}

// Three nodes on loopback TCP, each group's raft over one shared listener
// per node (RaftMux): groups elect, replicate, and survive a leader's stop.
func TestReplicatedOverTCP(t *testing.T) {
	const partitions = 3
	var muxes []*RaftMux
	for range replicas {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		m := NewRaftMux(ln, nil, quiet)
		t.Cleanup(func() { _ = m.Close() })
		muxes = append(muxes, m)
	}
	servers := func(int) []raft.Server {
		var out []raft.Server
		for i, m := range muxes {
			out = append(out, raft.Server{Suffrage: raft.Voter, ID: nodeID(i), Address: raft.ServerAddress(m.Addr().String())})
		}
		return out
	}
	engines := make([]ReplicatedEngine, replicas)
	for i := range replicas {
		pe := openPebble(t, vfs.NewMem(), "db", Options{Partitions: partitions})
		conf := DefaultRaftConfig()
		conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
		e, err := OpenReplicated(ReplicatedConfig{
			Engine: pe, LocalID: nodeID(i), Partitions: []int{0, 1, 2}, Raft: conf,
			Transport: func(p int) (raft.Transport, error) { return muxes[i].Transport(p, 2*time.Second) },
			Snapshots: func(int) (raft.SnapshotStore, error) { return raft.NewInmemSnapshotStore(), nil },
			Bootstrap: servers, Logger: testLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		engines[i] = e
	}
	leaderOf := func(p int, except int) int {
		found := -1
		checkFor(t, 10*time.Second, func() error {
			for i, e := range engines {
				if i != except && e.IsLeader(p) {
					found = i
					return nil
				}
			}
			return fmt.Errorf("partition %d: no leader", p)
		})
		return found
	}
	for p := range partitions {
		l := leaderOf(p, -1)
		c := fmt.Sprintf("tcp-%d", p)
		appendAll(t, engines[l].Store(p), []string{c}, 0, 3)
		for i := range replicas {
			checkFor(t, 5*time.Second, func() error { return wantSeqs(engines[i].Store(p), c, 3) })
		}
	}
	l := leaderOf(0, -1)
	if err := engines[l].Close(); err != nil {
		t.Fatal(err)
	}
	next := leaderOf(0, l)
	appendAll(t, engines[next].Store(0), []string{"tcp-0"}, 3, 1)
}
