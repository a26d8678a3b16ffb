package cluster

// Placement: which nodes replicate each partition and which of them should
// lead it, and the pure decision of how that changes as members come and
// go (DESIGN "Placement"). The meta group's leader runs Plan on its table
// and the live membership, applies the changes it can (raft membership
// changes, leadership transfers) and stores the next table; Plan is
// called again until it returns nothing.
//
// Rules, in the order Plan applies them (at most PlacementConfig.MovesMax
// changes per call, so a join or a death never floods the cluster):
//  1. bootstrap: with no placement yet and at least BootstrapExpect alive
//     members, replicas are spread round robin and the first replica leads;
//  2. a partition with fewer than Replicas replicas on usable nodes gets one
//     on the least loaded alive node (add first);
//  3. then a replica on a node that left, or that is dead past DeadGrace,
//     is removed, but only once the partition has Replicas others (never
//     below its count of live replicas); a merely suspect node keeps its
//     replicas (no churn while a node flaps);
//  4. a node holding fewer replicas than its share gets one (a join), and
//     the extra replica is then removed from the most loaded node;
//  5. a partition whose desired leader is not alive or not a replica gets
//     the alive replica with the fewest leaderships; then leaderships are
//     evened out to within one over alive nodes.

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// MemberState is what membership says of a node.
type MemberState int

// Member states.
const (
	Alive MemberState = iota
	Suspect
	Dead
	Left
)

func (s MemberState) String() string {
	return [...]string{"alive", "suspect", "dead", "left"}[s]
}

// Member is one node as membership sees it, and since when.
type Member struct {
	Name  string
	State MemberState
	Since time.Time
}

// PlacementConfig is how placement decides.
type PlacementConfig struct {
	Replicas        int           // copies of each partition, 1..5
	BootstrapExpect int           // alive members before the first placement
	DeadGrace       time.Duration // a dead node's replicas are replaced after this
	MovesMax        int           // changes per Plan call; default 16
	// Unsettled, when set, names the partitions whose raft group does not
	// have the table's replicas yet (a change still being carried out):
	// their replicas are left alone this round, so a partition is never
	// more than one change away from its group (leaders may still move).
	Unsettled func(p int) bool
}

// settled: a partition whose replicas may change this round.
func (pr *planner) settled(p int) bool { return pr.cfg.Unsettled == nil || !pr.cfg.Unsettled(p) }

// Assignment is one partition's replicas and desired leader.
type Assignment struct {
	Replicas []string `json:"replicas"`
	Leader   string   `json:"leader"`
}

// Placement is the partition table: an assignment per partition, with a
// version. It is immutable; Apply returns the next one.
type Placement struct {
	Version    uint64       `json:"version"`
	Partitions []Assignment `json:"partitions"`
}

// NewPlacement is the empty placement of n partitions.
func NewPlacement(n int) *Placement {
	return &Placement{Partitions: make([]Assignment, n)}
}

// ChangeKind is what a Change does.
type ChangeKind int

// Change kinds.
const (
	AddReplica ChangeKind = iota
	RemoveReplica
	SetLeader
)

// Change is one step of placement on one partition.
type Change struct {
	Kind      ChangeKind
	Partition int
	Node      string
}

func (c Change) String() string {
	return fmt.Sprintf("%s(%d, %s)", [...]string{"add", "remove", "lead"}[c.Kind], c.Partition, c.Node)
}

// Apply returns the placement after the changes, version+1.
func (pl *Placement) Apply(changes []Change) (*Placement, error) {
	next := &Placement{Version: pl.Version + 1, Partitions: make([]Assignment, len(pl.Partitions))}
	for p, a := range pl.Partitions {
		next.Partitions[p] = Assignment{Replicas: slices.Clone(a.Replicas), Leader: a.Leader}
	}
	for _, c := range changes {
		if c.Partition < 0 || c.Partition >= len(next.Partitions) {
			return nil, fmt.Errorf("cluster: change %v: no such partition", c)
		}
		a := &next.Partitions[c.Partition]
		has := slices.Contains(a.Replicas, c.Node)
		switch c.Kind {
		case AddReplica:
			if has {
				return nil, fmt.Errorf("cluster: change %v: already a replica", c)
			}
			a.Replicas = append(a.Replicas, c.Node)
		case RemoveReplica:
			if !has {
				return nil, fmt.Errorf("cluster: change %v: not a replica", c)
			}
			a.Replicas = slices.DeleteFunc(a.Replicas, func(n string) bool { return n == c.Node })
			if a.Leader == c.Node {
				a.Leader = ""
			}
		case SetLeader:
			if !has {
				return nil, fmt.Errorf("cluster: change %v: a leader must be a replica", c)
			}
			a.Leader = c.Node
		default:
			return nil, errors.New("cluster: unknown change")
		}
	}
	return next, nil
}

// planner is one Plan call's view.
type planner struct {
	pl      *Placement
	cfg     PlacementConfig
	alive   []string // sorted
	present int      // alive and suspect nodes: a suspect keeps its replicas
	state   map[string]Member
	now     time.Time
	load    map[string]int // replicas per alive node
	leads   map[string]int // desired leaderships per alive node
	changes []Change
	touched map[int]bool // partitions changed in this plan: one change each
}

// Plan is the next changes of the placement for the members at now.
func Plan(pl *Placement, members []Member, now time.Time, cfg PlacementConfig) []Change {
	if cfg.MovesMax <= 0 {
		cfg.MovesMax = 16
	}
	pr := &planner{pl: pl, cfg: cfg, state: map[string]Member{}, now: now,
		load: map[string]int{}, leads: map[string]int{}, touched: map[int]bool{}}
	for _, m := range members {
		pr.state[m.Name] = m
		if m.State == Alive {
			pr.alive = append(pr.alive, m.Name)
		}
		// A node dead within its grace period still counts: its replicas
		// stay, and the others are not thinned out to match fewer nodes.
		if m.State == Alive || m.State == Suspect || m.State == Dead && now.Sub(m.Since) < cfg.DeadGrace {
			pr.present++
		}
	}
	slices.Sort(pr.alive)
	if len(pr.alive) == 0 {
		return nil
	}
	for _, a := range pl.Partitions {
		for _, r := range a.Replicas {
			pr.load[r]++
		}
		if a.Leader != "" {
			pr.leads[a.Leader]++
		}
	}
	if pr.empty() {
		return pr.bootstrap()
	}
	pr.replace()
	pr.rebalance()
	pr.lead()
	return pr.changes
}

func (pr *planner) empty() bool {
	for _, a := range pr.pl.Partitions {
		if len(a.Replicas) > 0 {
			return false
		}
	}
	return true
}

func (pr *planner) full() bool { return len(pr.changes) >= pr.cfg.MovesMax }

func (pr *planner) add(c Change) {
	pr.changes = append(pr.changes, c)
	pr.touched[c.Partition] = true
	switch c.Kind {
	case AddReplica:
		pr.load[c.Node]++
	case RemoveReplica:
		pr.load[c.Node]--
	}
}

// bootstrap spreads replicas round robin once enough members are alive.
func (pr *planner) bootstrap() []Change {
	if len(pr.alive) < max(pr.cfg.BootstrapExpect, 1) {
		return nil
	}
	n := min(pr.cfg.Replicas, len(pr.alive))
	var out []Change
	for p := range pr.pl.Partitions {
		for i := range n {
			out = append(out, Change{Kind: AddReplica, Partition: p, Node: pr.alive[(p+i)%len(pr.alive)]})
		}
		out = append(out, Change{Kind: SetLeader, Partition: p, Node: pr.alive[p%len(pr.alive)]})
	}
	return out
}

// gone reports a node whose replicas are to be replaced: it left, or it is
// dead past the grace period (a suspect node keeps them).
func (pr *planner) gone(node string) bool {
	m, ok := pr.state[node]
	if !ok {
		return false // unknown to membership yet: not a reason to move
	}
	return m.State == Left || (m.State == Dead && pr.now.Sub(m.Since) >= pr.cfg.DeadGrace)
}

// usable counts the replicas not on gone nodes.
func (pr *planner) usable(a Assignment) int {
	n := 0
	for _, r := range a.Replicas {
		if !pr.gone(r) {
			n++
		}
	}
	return n
}

// replace adds replicas to under-replicated partitions, then removes the
// replicas of gone nodes from partitions that have enough others.
func (pr *planner) replace() {
	want := min(pr.cfg.Replicas, pr.present)
	for p, a := range pr.pl.Partitions {
		if pr.full() {
			return
		}
		if !pr.settled(p) {
			continue
		}
		if pr.usable(a) < want {
			if node := pr.leastLoaded(a.Replicas); node != "" {
				pr.add(Change{Kind: AddReplica, Partition: p, Node: node})
			}
			continue
		}
		for _, r := range a.Replicas {
			if pr.gone(r) {
				pr.add(Change{Kind: RemoveReplica, Partition: p, Node: r})
				break
			}
		}
	}
}

// rebalance gives nodes under their share a replica, and removes the extra
// replica of partitions over their count from the most loaded node.
func (pr *planner) rebalance() {
	want := min(pr.cfg.Replicas, pr.present)
	total := 0
	for _, a := range pr.pl.Partitions {
		total += min(len(a.Replicas), want)
	}
	share := total / pr.present
	for p, a := range pr.pl.Partitions {
		if pr.full() {
			return
		}
		if pr.touched[p] || !pr.settled(p) {
			continue
		}
		if len(a.Replicas) > want && pr.usable(a) > want {
			if r := pr.mostLoaded(a.Replicas, a.Leader); r != "" {
				pr.add(Change{Kind: RemoveReplica, Partition: p, Node: r})
			}
			continue
		}
		if len(a.Replicas) != want {
			continue
		}
		under := pr.leastLoaded(a.Replicas)
		over := pr.mostLoaded(a.Replicas, a.Leader)
		if under != "" && over != "" && pr.load[under] < share && pr.load[over] > share {
			pr.add(Change{Kind: AddReplica, Partition: p, Node: under})
		}
	}
}

// lead gives every partition a desired leader that is alive and a replica,
// then evens leaderships out to within one.
func (pr *planner) lead() {
	for p, a := range pr.pl.Partitions {
		if pr.full() {
			return
		}
		if pr.touched[p] || len(a.Replicas) == 0 {
			continue
		}
		if slices.Contains(a.Replicas, a.Leader) && pr.isAlive(a.Leader) {
			continue
		}
		if a.Leader != "" && slices.Contains(a.Replicas, a.Leader) && pr.state[a.Leader].State == Suspect {
			continue // no churn while it is merely suspect
		}
		if to := pr.fewestLeads(a.Replicas); to != "" {
			pr.setLeader(p, a.Leader, to)
		}
	}
	for p, a := range pr.pl.Partitions {
		if pr.full() {
			return
		}
		if pr.touched[p] || !pr.isAlive(a.Leader) {
			continue
		}
		to := pr.fewestLeads(a.Replicas)
		if to != "" && pr.leads[a.Leader]-pr.leads[to] > 1 {
			pr.setLeader(p, a.Leader, to)
		}
	}
}

func (pr *planner) setLeader(p int, from, to string) {
	pr.add(Change{Kind: SetLeader, Partition: p, Node: to})
	if from != "" {
		pr.leads[from]--
	}
	pr.leads[to]++
}

func (pr *planner) isAlive(node string) bool {
	m, ok := pr.state[node]
	return ok && m.State == Alive
}

// leastLoaded is the alive node, not in except, with the fewest replicas.
func (pr *planner) leastLoaded(except []string) string {
	best := ""
	for _, n := range pr.alive {
		if !slices.Contains(except, n) && (best == "" || pr.load[n] < pr.load[best]) {
			best = n
		}
	}
	return best
}

// mostLoaded is the replica with the most replicas, not the leader: gone
// nodes first.
func (pr *planner) mostLoaded(replicas []string, leader string) string {
	cands := slices.DeleteFunc(slices.Clone(replicas), func(n string) bool { return n == leader })
	slices.SortFunc(cands, func(x, y string) int {
		if gx, gy := pr.gone(x), pr.gone(y); gx != gy {
			if gx {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(pr.load[y], pr.load[x]), cmp.Compare(x, y))
	})
	if len(cands) == 0 {
		return ""
	}
	return cands[0]
}

// fewestLeads is the alive replica with the fewest leaderships.
func (pr *planner) fewestLeads(replicas []string) string {
	best := ""
	for _, n := range replicas {
		if pr.isAlive(n) && (best == "" || pr.leads[n] < pr.leads[best] || (pr.leads[n] == pr.leads[best] && n < best)) {
			best = n
		}
	}
	return best
}
