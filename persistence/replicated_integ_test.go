package persistence

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// tcpCluster is three nodes on loopback TCP with Pebble on disk and
// DefaultRaftConfig timings.
func tcpCluster(t *testing.T, partitions int) []ReplicatedEngine {
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
	all := make([]int, partitions)
	for p := range all {
		all[p] = p
	}
	engines := make([]ReplicatedEngine, replicas)
	for i := range replicas {
		dir := t.TempDir()
		pe := openPebble(t, nil, dir, Options{Partitions: partitions})
		e, err := OpenReplicated(ReplicatedConfig{
			Engine: pe, LocalID: nodeID(i), Partitions: all,
			Transport: func(p int) (raft.Transport, error) { return muxes[i].Transport(p, 2*time.Second) },
			Snapshots: func(p int) (raft.SnapshotStore, error) {
				return raft.NewFileSnapshotStoreWithLogger(fmt.Sprintf("%s/raft/%d", dir, p), 2, newHCLogger(quiet))
			},
			Bootstrap: func(int) []raft.Server {
				var out []raft.Server
				for j, m := range muxes {
					out = append(out, raft.Server{Suffrage: raft.Voter, ID: nodeID(j), Address: raft.ServerAddress(m.Addr().String())})
				}
				return out
			},
			Logger: testLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		engines[i] = e
	}
	return engines
}

func leaderAmong(t *testing.T, engines []ReplicatedEngine, p int, within time.Duration) int {
	found := -1
	checkFor(t, within, func() error {
		for i, e := range engines {
			if e != nil && e.IsLeader(p) {
				found = i
				return nil
			}
		}
		return fmt.Errorf("partition %d: no leader", p)
	})
	return found
}

// Throughput of acknowledged appends on three loopback nodes (disk Pebble,
// default raft timings), customers appending one event at a time each, then
// the failover time when the node leading partition 0 stops its raft.
// THROUGHLINE_INTEG=1 to run.
func TestReplicatedThroughputAndFailover(t *testing.T) {
	if os.Getenv("THROUGHLINE_INTEG") == "" {
		t.Skip("THROUGHLINE_INTEG not set")
	}
	const partitions, customers = 8, 512
	const run = 5 * time.Second
	engines := tcpCluster(t, partitions)
	leaders := make([]int, partitions)
	for p := range partitions {
		leaders[p] = leaderAmong(t, engines, p, 10*time.Second)
	}
	startIndex := make([]uint64, partitions)
	for p := range partitions {
		startIndex[p] = engines[leaders[p]].ReplicaStats(p).CommitIndex
	}
	var acked atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(run)
	for c := range customers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("load-%d", c)
			p := PartitionOf(name, partitions)
			s := engines[leaders[p]].Store(p)
			for prev := uint64(0); time.Now().Before(deadline); prev++ {
				ch := make(chan error, 1)
				s.Append(context.Background(), &AppendRequest{Customer: name, PrevSeq: prev, Events: events(name, prev, 1, t0)}, func(err error) { ch <- err })
				if err := <-ch; err != nil {
					t.Errorf("append: %v", err)
					return
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	var entries uint64
	for p := range partitions {
		entries += engines[leaders[p]].ReplicaStats(p).CommitIndex - startIndex[p]
	}
	n := acked.Load()
	t.Logf("%d partitions, %d customers (one append in flight each): %.0f acked appends/s, %.0f raft entries/s, %.1f appends per entry",
		partitions, customers, float64(n)/run.Seconds(), float64(entries)/run.Seconds(), float64(n)/float64(max(entries, 1)))

	// One kill: a group of three survives the loss of one.
	old := leaderAmong(t, engines, 0, 10*time.Second)
	killed := time.Now()
	if err := groupOf(engines[old], 0).raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	leaderAmong(t, slicesWithout(engines, old), 0, 10*time.Second)
	t.Logf("failover (raft stopped on the leader to a new leader ready): %v", time.Since(killed).Round(time.Millisecond))
}

func slicesWithout(engines []ReplicatedEngine, i int) []ReplicatedEngine {
	out := make([]ReplicatedEngine, len(engines))
	copy(out, engines)
	out[i] = nil
	return out
}
