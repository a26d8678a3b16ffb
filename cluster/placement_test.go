package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var pt0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func alive(names ...string) []Member {
	var out []Member
	for _, n := range names {
		out = append(out, Member{Name: n, State: Alive, Since: pt0})
	}
	return out
}

var pcfg = PlacementConfig{Replicas: 3, BootstrapExpect: 3, DeadGrace: time.Minute, MovesMax: 16}

// converge applies plans until none is left, checking after every step
// that no partition lost a live majority of what it had.
func converge(t *testing.T, pl *Placement, members []Member, now time.Time, cfg PlacementConfig) *Placement {
	t.Helper()
	for range 2000 {
		changes := Plan(pl, members, now, cfg)
		if len(changes) == 0 {
			return pl
		}
		next, err := pl.Apply(changes)
		if err != nil {
			t.Fatalf("apply %v: %v", changes, err)
		}
		for p := range next.Partitions {
			before, after := liveCount(pl.Partitions[p], members), liveCount(next.Partitions[p], members)
			if before > 0 && after < before && after < cfg.Replicas/2+1 {
				t.Fatalf("partition %d went from %d to %d live replicas: %v", p, before, after, changes)
			}
		}
		pl = next
	}
	t.Fatal("placement did not converge")
	return nil
}

func liveCount(a Assignment, members []Member) int {
	n := 0
	for _, r := range a.Replicas {
		for _, m := range members {
			if m.Name == r && (m.State == Alive || m.State == Suspect) {
				n++
			}
		}
	}
	return n
}

// check asserts every partition has want replicas on distinct alive nodes,
// a leader among them, replicas within one of even and leaderships within
// one of even over the alive nodes.
func check(t *testing.T, pl *Placement, members []Member, want int) {
	t.Helper()
	load, leads := map[string]int{}, map[string]int{}
	for p, a := range pl.Partitions {
		if len(a.Replicas) != want || len(slices.Compact(slices.Sorted(slices.Values(a.Replicas)))) != want {
			t.Fatalf("partition %d replicas %v, want %d distinct", p, a.Replicas, want)
		}
		if !slices.Contains(a.Replicas, a.Leader) {
			t.Fatalf("partition %d leader %q not a replica %v", p, a.Leader, a.Replicas)
		}
		for _, r := range a.Replicas {
			load[r]++
		}
		leads[a.Leader]++
	}
	var loads, leadCounts []int
	for _, m := range members {
		if m.State == Alive {
			loads, leadCounts = append(loads, load[m.Name]), append(leadCounts, leads[m.Name])
		} else if load[m.Name] > 0 && m.State != Suspect {
			t.Fatalf("node %s (%v) still holds %d replicas", m.Name, m.State, load[m.Name])
		}
	}
	if slices.Max(loads)-slices.Min(loads) > 1 {
		t.Errorf("replicas per node %v: not within one of even", loads)
	}
	if slices.Max(leadCounts)-slices.Min(leadCounts) > 1 {
		t.Errorf("leaderships per node %v: not within one of even", leadCounts)
	}
}

func TestPlacementBootstrapWaitsForExpectedNodes(t *testing.T) {
	pl := NewPlacement(64)
	if c := Plan(pl, alive("n1", "n2"), pt0, pcfg); len(c) != 0 {
		t.Fatalf("two of three expected nodes placed %v", c)
	}
	members := alive("n1", "n2", "n3")
	pl = converge(t, pl, members, pt0, pcfg)
	check(t, pl, members, 3)
}

func TestPlacementSpreadsForOneToFiveNodes(t *testing.T) {
	for nodes := 1; nodes <= 5; nodes++ {
		for _, replicas := range []int{1, 3} {
			t.Run(fmt.Sprintf("%d nodes, %d replicas", nodes, replicas), func(t *testing.T) {
				var names []string
				for i := range nodes {
					names = append(names, fmt.Sprintf("n%d", i+1))
				}
				cfg := pcfg
				cfg.Replicas, cfg.BootstrapExpect = replicas, 1
				members := alive(names...)
				pl := converge(t, NewPlacement(64), members, pt0, cfg)
				check(t, pl, members, min(replicas, nodes))
			})
		}
	}
}

func TestPlacementJoinReceivesReplicasAndLeaders(t *testing.T) {
	members := alive("n1", "n2", "n3")
	pl := converge(t, NewPlacement(64), members, pt0, pcfg)
	members = append(members, Member{Name: "n4", State: Alive, Since: pt0})
	first := Plan(pl, members, pt0, pcfg)
	if len(first) == 0 || len(first) > pcfg.MovesMax {
		t.Fatalf("a join planned %d changes, want 1..%d", len(first), pcfg.MovesMax)
	}
	pl = converge(t, pl, members, pt0, pcfg)
	check(t, pl, members, 3)
}

func TestPlacementDeathReplacesOnlyAfterTheGrace(t *testing.T) {
	members := alive("n1", "n2", "n3", "n4")
	pl := converge(t, NewPlacement(32), members, pt0, pcfg)
	members[1] = Member{Name: "n2", State: Dead, Since: pt0}
	// Before the grace only leaderships move off the dead node.
	for _, c := range Plan(pl, members, pt0.Add(30*time.Second), pcfg) {
		if c.Kind != SetLeader || c.Node == "n2" {
			t.Fatalf("before the grace: %v", c)
		}
	}
	pl = converge(t, pl, members, pt0.Add(2*time.Minute), pcfg)
	check(t, pl, members, 3)
}

func TestPlacementSuspectAndFlappingCauseNoChurn(t *testing.T) {
	members := alive("n1", "n2", "n3")
	pl := converge(t, NewPlacement(16), members, pt0, pcfg)
	for i := range 10 {
		state := Suspect
		if i%2 == 1 {
			state = Alive
		}
		members[2] = Member{Name: "n3", State: state, Since: pt0.Add(time.Duration(i) * time.Second)}
		if c := Plan(pl, members, pt0.Add(time.Hour), pcfg); len(c) != 0 {
			t.Fatalf("n3 %v: planned %v", state, c)
		}
	}
}

func TestPlacementLeaveMovesEverythingOff(t *testing.T) {
	members := alive("n1", "n2", "n3", "n4")
	pl := converge(t, NewPlacement(32), members, pt0, pcfg)
	members[3] = Member{Name: "n4", State: Left, Since: pt0}
	pl = converge(t, pl, members, pt0, pcfg)
	check(t, pl, members, 3)
}

func TestPlacementComesBackAfterReplacement(t *testing.T) {
	members := alive("n1", "n2", "n3", "n4")
	pl := converge(t, NewPlacement(32), members, pt0, pcfg)
	members[0] = Member{Name: "n1", State: Dead, Since: pt0}
	pl = converge(t, pl, members, pt0.Add(time.Hour), pcfg)
	members[0] = Member{Name: "n1", State: Alive, Since: pt0.Add(2 * time.Hour)}
	pl = converge(t, pl, members, pt0.Add(2*time.Hour), pcfg)
	check(t, pl, members, 3)
}

// Random membership events: once stable, every partition has its replicas
// on distinct alive nodes, spread evenly (converge checks majorities all
// the way).
func TestPlacementRandomMembership(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	names := []string{"n1", "n2", "n3", "n4", "n5"}
	for run := range 20 {
		members := alive(names[:3]...)
		now := pt0
		pl := converge(t, NewPlacement(24), members, now, pcfg)
		for range 6 {
			now = now.Add(10 * time.Minute)
			i := rng.IntN(len(names))
			idx := slices.IndexFunc(members, func(m Member) bool { return m.Name == names[i] })
			state := []MemberState{Alive, Dead, Left}[rng.IntN(3)]
			aliveLeft := 0
			for _, m := range members {
				if m.State == Alive && m.Name != names[i] {
					aliveLeft++
				}
			}
			if state != Alive && aliveLeft < 3 {
				state = Alive // keep enough nodes for 3 replicas
			}
			if idx < 0 {
				members = append(members, Member{Name: names[i], State: state, Since: now})
			} else {
				members[idx] = Member{Name: names[i], State: state, Since: now}
			}
			pl = converge(t, pl, members, now.Add(time.Hour), pcfg)
		}
		t.Run(fmt.Sprint(run), func(t *testing.T) { check(t, pl, members, 3) })
	}
}

func TestPlacementApplyRefusesBadChanges(t *testing.T) {
	pl := NewPlacement(2)
	for _, c := range []Change{{Kind: SetLeader, Partition: 0, Node: "n1"}, {Kind: RemoveReplica, Partition: 0, Node: "n1"}, {Kind: AddReplica, Partition: 5, Node: "n1"}} {
		if _, err := pl.Apply([]Change{c}); err == nil {
			t.Errorf("%v applied", c)
		}
	}
	next, err := pl.Apply([]Change{{Kind: AddReplica, Partition: 0, Node: "n1"}, {Kind: SetLeader, Partition: 0, Node: "n1"}})
	if err != nil || next.Version != 1 || next.Partitions[0].Leader != "n1" || len(pl.Partitions[0].Replicas) != 0 {
		t.Fatalf("apply: %+v %v (the old placement must not change)", next, err)
	}
}

// A partition whose group has not caught up with the table keeps its
// replicas this round; the others move.
func TestPlanLeavesUnsettledPartitionsAlone(t *testing.T) {
	now := time.Now()
	three := []Member{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	cfg := PlacementConfig{Replicas: 3, BootstrapExpect: 3}
	pl, err := NewPlacement(4).Apply(Plan(NewPlacement(4), three, now, cfg))
	if err != nil {
		t.Fatal(err)
	}
	four := append(slices.Clone(three), Member{Name: "d"})
	cfg.Unsettled = func(p int) bool { return p%2 == 0 }
	for _, c := range Plan(pl, four, now, cfg) {
		if c.Kind != SetLeader && c.Partition%2 == 0 {
			t.Fatalf("unsettled partition %d changed: %v", c.Partition, c)
		}
	}
	cfg.Unsettled = nil
	if len(Plan(pl, four, now, cfg)) == 0 {
		t.Fatal("nothing planned for a joined node")
	}
}

// A node dead for less than the grace period keeps its replicas, and the
// live nodes keep theirs: nothing is planned but leaders.
func TestPlanKeepsReplicasWhileANodeIsDeadWithinGrace(t *testing.T) {
	now := time.Now()
	three := []Member{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	cfg := PlacementConfig{Replicas: 3, BootstrapExpect: 3, DeadGrace: 30 * time.Second}
	pl, err := NewPlacement(8).Apply(Plan(NewPlacement(8), three, now, cfg))
	if err != nil {
		t.Fatal(err)
	}
	dead := []Member{{Name: "a", State: Dead, Since: now.Add(-5 * time.Second)}, {Name: "b"}, {Name: "c"}}
	for _, c := range Plan(pl, dead, now, cfg) {
		if c.Kind != SetLeader {
			t.Fatalf("a replica change while a is dead within its grace: %v", c)
		}
	}
}
