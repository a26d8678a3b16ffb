package persistence

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// replicaSet is three nodes in one process, each with its own Pebble and a
// replicated engine over every partition, connected by raft's in-memory
// transport (one per node and partition).
type replicaSet struct {
	t          *testing.T
	partitions int
	fs         []vfs.FS
	pebbles    []Engine
	engines    []ReplicatedEngine
	trans      [][]*raft.InmemTransport // [node][partition]
	snaps      [][]raft.SnapshotStore
	conf       []*raft.Config
	// gained counts, per node, the OnLeadership calls that said leader.
	gained [replicas]atomic.Int32
}

const replicas = 3

func nodeID(i int) raft.ServerID { return raft.ServerID(fmt.Sprintf("n%d", i)) }

func inmemAddr(i, p int) raft.ServerAddress { return raft.ServerAddress(fmt.Sprintf("n%d/p%d", i, p)) }

// testRaftConfig is fast raft for tests. Node 0, with short timeouts, stands
// for election first and leads every group (others wait longer), unless
// even is set: all nodes alike, for failover.
func testRaftConfig(node int, even bool) *raft.Config {
	c := DefaultRaftConfig()
	c.HeartbeatTimeout = 200 * time.Millisecond
	c.ElectionTimeout = 200 * time.Millisecond
	c.LeaderLeaseTimeout = 200 * time.Millisecond
	if node != 0 && !even {
		c.HeartbeatTimeout = 2 * time.Second
		c.ElectionTimeout = 2 * time.Second
	}
	return c
}

func testLogger() *slog.Logger {
	if os.Getenv("THROUGHLINE_RAFT_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return quiet
}

func newReplicaSet(t *testing.T, partitions int, even bool) *replicaSet {
	t.Helper()
	rs := &replicaSet{t: t, partitions: partitions}
	for i := range replicas {
		rs.fs = append(rs.fs, vfs.NewMem())
		rs.conf = append(rs.conf, testRaftConfig(i, even))
		var trans []*raft.InmemTransport
		var snaps []raft.SnapshotStore
		for p := range partitions {
			_, tr := raft.NewInmemTransport(inmemAddr(i, p))
			trans = append(trans, tr)
			snaps = append(snaps, raft.NewInmemSnapshotStore())
		}
		rs.trans = append(rs.trans, trans)
		rs.snaps = append(rs.snaps, snaps)
	}
	for p := range partitions {
		rs.connect(p)
	}
	rs.pebbles = make([]Engine, replicas)
	rs.engines = make([]ReplicatedEngine, replicas)
	for i := range replicas {
		rs.pebbles[i] = openPebble(t, rs.fs[i], "db", Options{Partitions: partitions})
		rs.start(i)
	}
	t.Cleanup(func() {
		for _, e := range rs.engines {
			if e != nil {
				_ = e.Close()
			}
		}
	})
	return rs
}

// connect links every pair of partition p's transports.
func (rs *replicaSet) connect(p int) {
	for i := range replicas {
		for j := range replicas {
			if i != j {
				rs.trans[i][p].Connect(inmemAddr(j, p), rs.trans[j][p])
			}
		}
	}
}

func (rs *replicaSet) servers(p int) []raft.Server {
	var out []raft.Server
	for i := range replicas {
		out = append(out, raft.Server{Suffrage: raft.Voter, ID: nodeID(i), Address: inmemAddr(i, p)})
	}
	return out
}

// start opens node i's replicated engine over its Pebble.
func (rs *replicaSet) start(i int) {
	rs.t.Helper()
	all := make([]int, rs.partitions)
	for p := range all {
		all[p] = p
	}
	e, err := OpenReplicated(ReplicatedConfig{
		Engine:     rs.pebbles[i],
		LocalID:    nodeID(i),
		Partitions: all,
		Raft:       rs.conf[i],
		Transport:  func(p int) (raft.Transport, error) { return rs.trans[i][p], nil },
		Snapshots:  func(p int) (raft.SnapshotStore, error) { return rs.snaps[i][p], nil },
		Bootstrap:  rs.servers,
		Logger:     testLogger(),
		OnLeadership: func(p int, leader bool) {
			if leader {
				rs.gained[i].Add(1)
			}
		},
	})
	if err != nil {
		rs.t.Fatalf("OpenReplicated node %d: %v", i, err)
	}
	rs.engines[i] = e
}

// leader waits until one node leads partition p (and is ready) and returns it.
func (rs *replicaSet) leader(p int, except ...int) int {
	rs.t.Helper()
	found := -1
	checkFor(rs.t, 10*time.Second, func() error {
		for i, e := range rs.engines {
			if e != nil && !contains(except, i) && e.IsLeader(p) {
				found = i
				return nil
			}
		}
		return fmt.Errorf("partition %d has no leader", p)
	})
	return found
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// checkFor polls f until it returns nil or the deadline passes.
func checkFor(t *testing.T, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The conformance suite against node 0 of a fresh 3-replica set, which
// leads every partition.
func TestReplicatedConformance(t *testing.T) {
	runConformance(t, func(t *testing.T, partitions int) Engine {
		rs := newReplicaSet(t, partitions, false)
		for p := range partitions {
			if l := rs.leader(p); l != 0 {
				t.Fatalf("partition %d led by node %d", p, l)
			}
		}
		return rs.engines[0]
	})
}
