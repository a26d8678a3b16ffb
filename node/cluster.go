package node

// A node in a cluster (PROTOCOL section 8, DESIGN "Cluster"): membership
// over memberlist, the placement every node agrees on, one raft group per
// partition this node replicates (over one multiplexed raft port), and the
// runtime hosting exactly the partitions this node leads.
//
// Placement in this version: the first placement is computed by every
// node alike once bootstrap_expect members are alive (the same pure
// cluster.Plan over the same sorted names), remembered in the data dir and
// shared through memberlist's push/pull, so a node that joins later learns
// it and serves every customer by forwarding. Leadership follows raft;
// each leader hands a partition to its desired leader from the placement
// once that replica is alive, which spreads leadership evenly.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/cluster"
	"github.com/throughline/throughline/persistence"
)

const (
	// joinRetry is how often a node that has not reached any join address
	// tries again.
	joinRetry = time.Second
	// spreadEvery is how often a leader checks whether a partition it leads
	// should be handed to its desired leader.
	spreadEvery = 2 * time.Second
	// transferBackoff is how long a partition is left alone after a
	// leadership transfer was tried.
	transferBackoff = 10 * time.Second
	// raftDialTimeout bounds a raft connection and its requests.
	raftDialTimeout = 2 * time.Second
)

// clusterNode is the cluster side of a node.
type clusterNode struct {
	cfg     Config
	log     *slog.Logger
	members *cluster.Membership
	mux     *persistence.RaftMux
	repl    persistence.ReplicatedEngine
	dataDir string
	cert    *certHolder // cluster.tls; nil: plain TCP
	tls     *tls.Config // mutual TLS of the raft and remote ports; nil: none

	placement atomic.Pointer[cluster.Placement]
	stateMu   sync.Mutex // serializes saving the data dir's state
	state     *cluster.DataDirState

	rt atomic.Pointer[actors.Runtime]
	// leads is, per partition, whether raft last said this node leads it;
	// hosting is kicked on each change, and the partition's host goroutine
	// brings the runtime to the latest (no change can be lost to a full
	// queue, and a flapping partition is not hosted and unhosted for every
	// flap).
	leads   []atomic.Bool
	changes []atomic.Uint64 // per partition: leadership changes seen
	hosting []chan struct{}
	kick    chan struct{} // a new table arrived: reconcile now
	// lastLeaders are the partitions' leaders as last seen (LeaderOf).
	lastLeaders []atomic.Pointer[lastLeader]
	// dropped are the partitions the table no longer gives this node while
	// it still runs their replica, since when (reconcile's goroutine only:
	// stillCounted).
	dropped map[int]time.Time
	stop    chan struct{}
	wg      sync.WaitGroup

	leaving  atomic.Bool
	left     chan struct{} // closed once a leaving node holds no replica
	leftOnce sync.Once
}

// startCluster joins the cluster, waits for a placement and opens this
// node's raft groups over engine. The runtime is attached later (attach):
// leadership gained before that is kept and applied then.
func startCluster(ctx context.Context, cfg Config, logger *slog.Logger, engine persistence.Engine) (cn *clusterNode, err error) {
	cl := cfg.Cluster
	st, err := cluster.OpenDataDir(cfg.Node.DataDir, cluster.DataDirState{Cluster: cl.Name, Partitions: cfg.Node.Partitions, Node: cfg.Node.Name})
	if err != nil {
		return nil, err
	}
	cn = &clusterNode{cfg: cfg, log: logger.With("subsystem", "cluster"), dataDir: cfg.Node.DataDir, state: st,
		stop: make(chan struct{}), kick: make(chan struct{}, 1), left: make(chan struct{}),
		lastLeaders: make([]atomic.Pointer[lastLeader], cfg.Node.Partitions)}
	if st.Placement != nil {
		cn.placement.Store(st.Placement)
	}
	started := cn
	defer func() {
		if err != nil {
			_ = started.close()
		}
	}()
	var gossipKey []byte
	if cl.GossipKeyFile != "" {
		if gossipKey, err = loadGossipKey(cl.GossipKeyFile); err != nil {
			return nil, err
		}
	}
	if cl.TLS != nil {
		if cn.cert, err = newCertHolder("cluster.tls", *cl.TLS); err != nil {
			return nil, err
		}
		ca, err := loadCA("cluster.tls", cl.TLS.CA)
		if err != nil {
			return nil, err
		}
		cn.tls = mutualTLS(cn.cert, ca)
	}
	cn.members, err = cluster.StartMembership(cluster.MembershipConfig{
		SecretKey: gossipKey,
		Meta: cluster.NodeMeta{Name: cfg.Node.Name, HTTP: cfg.Node.HTTP, Remote: cl.Remote, Raft: cl.Raft,
			ClusterID: cl.Name, Partitions: cfg.Node.Partitions, Gossip: cl.Gossip},
		Gossip: cl.Gossip, Logger: logger,
		LocalState: cn.localState, MergeState: cn.mergeState,
	})
	if err != nil {
		return nil, err
	}
	cn.wg.Add(1)
	go cn.joinLoop()
	pl, err := cn.awaitPlacement(ctx)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cl.Raft)
	if err != nil {
		return nil, fmt.Errorf("cluster.raft: %w", err)
	}
	cn.mux = persistence.NewRaftMux(ln, cn.tls, logger)
	var mine []int
	for p, a := range pl.Partitions {
		if slices.Contains(a.Replicas, cfg.Node.Name) {
			mine = append(mine, p)
		}
	}
	cn.leads = make([]atomic.Bool, cfg.Node.Partitions)
	cn.changes = make([]atomic.Uint64, cfg.Node.Partitions)
	cn.hosting = make([]chan struct{}, cfg.Node.Partitions)
	for p := range cn.hosting {
		cn.hosting[p] = make(chan struct{}, 1)
	}
	cn.repl, err = persistence.OpenReplicated(persistence.ReplicatedConfig{
		Engine: engine, LocalID: raft.ServerID(cfg.Node.Name), Partitions: mine,
		Transport: func(p int) (raft.Transport, error) { return cn.mux.Transport(p, raftDialTimeout) },
		Snapshots: persistence.FileSnapshots(filepath.Join(cfg.Node.DataDir, "raft-snapshots"), logger),
		Bootstrap: func(p int) []raft.Server { return cn.servers(pl, p) },
		ReleaseElsewhere: func(ctx context.Context, p int, customer string, ids []persistence.IdentityKey) error {
			rt := cn.rt.Load()
			if rt == nil {
				return errors.New("cluster: not started")
			}
			return rt.ReleaseIdentitiesOn(ctx, p, customer, ids)
		},
		OnLeadership: func(p int, leader bool) {
			cn.leads[p].Store(leader)
			cn.changes[p].Add(1)
			select {
			case cn.hosting[p] <- struct{}{}:
			default: // a kick is pending: it reads the latest
			}
		},
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	cn.log.Info("cluster placement", "version", pl.Version, "replicas_here", len(mine))
	return cn, nil
}

// joinLoop joins the configured addresses and the peers the data dir
// remembers until one answers (a first node has none to join), rejoins when
// this node finds itself alone, and remembers the members' addresses.
func (cn *clusterNode) joinLoop() {
	defer cn.wg.Done()
	joined := false
	t := time.NewTicker(joinRetry)
	defer t.Stop()
	for {
		if addrs := cn.joinAddrs(); len(addrs) > 0 && (!joined || len(cn.aliveNames()) <= 1) {
			if err := cn.members.Join(addrs); err != nil {
				cn.log.Debug("join", "err", err)
			} else {
				joined = true
			}
		}
		cn.rememberPeers()
		select {
		case <-cn.stop:
			return
		case <-t.C:
		}
	}
}

// joinAddrs are the configured join addresses and the remembered peers,
// without this node's own.
func (cn *clusterNode) joinAddrs() []string {
	cn.stateMu.Lock()
	peers := cn.state.Peers
	cn.stateMu.Unlock()
	var out []string
	for _, a := range append(slices.Clone(cn.cfg.Cluster.Join), peers...) {
		if a != cn.cfg.Cluster.Gossip && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// rememberPeers saves the alive members' gossip addresses in the data dir
// when they changed.
func (cn *clusterNode) rememberPeers() {
	var peers []string
	for _, m := range cn.members.Members() {
		if m.State == cluster.Alive && m.Meta.Gossip != "" && m.Meta.Gossip != cn.cfg.Cluster.Gossip && len(peers) < cluster.PeersMax {
			peers = append(peers, m.Meta.Gossip)
		}
	}
	slices.Sort(peers)
	cn.stateMu.Lock()
	defer cn.stateMu.Unlock()
	if len(peers) == 0 || slices.Equal(peers, cn.state.Peers) {
		return
	}
	st := *cn.state
	st.Peers = peers
	if err := cluster.SaveDataDir(cn.dataDir, &st); err != nil {
		cn.log.Warn("remembering the cluster's members", "err", err)
		return
	}
	cn.state = &st
}

// awaitPlacement is the placement this node knew, one a peer shared, or
// the bootstrap placement once bootstrap_expect members are alive.
func (cn *clusterNode) awaitPlacement(ctx context.Context) (*cluster.Placement, error) {
	cl := cn.cfg.Cluster
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	logged := time.Now()
	for {
		if pl := cn.placement.Load(); pl != nil {
			return pl, nil
		}
		if alive := cn.aliveNames(); len(alive) >= cl.BootstrapExpect {
			members := make([]cluster.Member, 0, cl.BootstrapExpect)
			for _, name := range alive[:cl.BootstrapExpect] {
				members = append(members, cluster.Member{Name: name, State: cluster.Alive})
			}
			empty := cluster.NewPlacement(cn.cfg.Node.Partitions)
			pl, err := empty.Apply(cluster.Plan(empty, members, time.Now(), cluster.PlacementConfig{
				Replicas: cl.Replicas, BootstrapExpect: cl.BootstrapExpect, DeadGrace: cl.DeadAfter,
				MovesMax: cn.cfg.Node.Partitions * (cl.Replicas + 1)}))
			if err != nil {
				return nil, err
			}
			if err := cn.adopt(pl); err != nil {
				return nil, err
			}
			return cn.placement.Load(), nil
		}
		if time.Since(logged) > 5*time.Second {
			logged = time.Now()
			cn.log.Info("waiting for members before the first placement", "alive", cn.aliveNames(), "bootstrap_expect", cl.BootstrapExpect)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: waiting for %d members: %w", cl.BootstrapExpect, ctx.Err())
		case <-t.C:
		}
	}
}

// adopt takes a placement newer than the one known and remembers it.
func (cn *clusterNode) adopt(pl *cluster.Placement) error {
	cn.stateMu.Lock()
	defer cn.stateMu.Unlock()
	if cur := cn.placement.Load(); cur != nil && cur.Version >= pl.Version {
		return nil
	}
	if len(pl.Partitions) != cn.cfg.Node.Partitions {
		return fmt.Errorf("cluster: a placement of %d partitions, this node has %d", len(pl.Partitions), cn.cfg.Node.Partitions)
	}
	st := *cn.state
	st.Placement = pl
	if err := cluster.SaveDataDir(cn.dataDir, &st); err != nil {
		return err
	}
	cn.state = &st
	cn.placement.Store(pl)
	return nil
}

// localState is what this node shares in memberlist's push/pull.
func (cn *clusterNode) localState() []byte {
	pl := cn.placement.Load()
	if pl == nil {
		return nil
	}
	b, _ := json.Marshal(pl)
	return b
}

// mergeState takes a peer's placement when it is newer.
func (cn *clusterNode) mergeState(b []byte) {
	var pl cluster.Placement
	if err := json.Unmarshal(b, &pl); err != nil {
		cn.log.Warn("a peer's placement is not readable", "err", err)
		return
	}
	if err := cn.adopt(&pl); err != nil {
		cn.log.Warn("a peer's placement not taken", "err", err)
	}
}

// aliveNames are the alive members' names, sorted.
func (cn *clusterNode) aliveNames() []string {
	var out []string
	for name, m := range cn.members.Members() {
		if m.State == cluster.Alive && m.Meta.ClusterID == cn.cfg.Cluster.Name {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// servers are partition p's raft voters at bootstrap.
func (cn *clusterNode) servers(pl *cluster.Placement, p int) []raft.Server {
	members := cn.members.Members()
	var out []raft.Server
	for _, name := range pl.Partitions[p].Replicas {
		addr := members[name].Meta.Raft
		if addr == "" {
			cn.log.Error("a replica's raft address is unknown at bootstrap", "partition", p, "node", name)
			continue
		}
		out = append(out, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(name), Address: raft.ServerAddress(addr)})
	}
	return out
}

// attach starts hosting the partitions this node leads on rt, and the
// leadership spreader.
func (cn *clusterNode) attach(rt *actors.Runtime) {
	cn.rt.Store(rt)
	for p := range cn.hosting {
		cn.wg.Add(1)
		go cn.host(p)
	}
	cn.wg.Add(2)
	go cn.spread()
	go cn.placementLoop()
	if cn.cfg.FaultsFile != "" {
		cn.wg.Add(1)
		go cn.watchFaults(cn.cfg.FaultsFile)
	}
}

// host applies partition p's leadership changes to the runtime, in order.
func (cn *clusterNode) host(p int) {
	defer cn.wg.Done()
	rt := cn.rt.Load()
	var hostedAt uint64 // the change count the partition was hosted at
	for {
		select {
		case <-cn.stop:
			return
		case <-cn.hosting[p]:
			changes := cn.changes[p].Load()
			leader := cn.leads[p].Load()
			var err error
			if leader && hostedAt != 0 && hostedAt != changes {
				// It lost leadership and won it back meanwhile: another
				// leader may have written, so its customers load again.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if uerr := rt.UnhostPartition(ctx, p); uerr != nil && !errors.Is(uerr, actors.ErrNotHosted) {
					cn.log.Warn("re-hosting a partition", "partition", p, "err", uerr)
				}
				cancel()
			}
			if leader {
				hostedAt = changes
				err = rt.HostPartition(p)
				if errors.Is(err, actors.ErrHosted) {
					err = nil
				}
			} else {
				hostedAt = 0
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err = rt.UnhostPartition(ctx, p)
				cancel()
				if errors.Is(err, actors.ErrNotHosted) {
					err = nil
				}
			}
			if err != nil && !rt.Stopping() {
				cn.log.Error("hosting a partition", "partition", p, "leader", leader, "err", err)
			}
		}
	}
}

// spread hands each partition this node leads to its desired leader when
// that node is alive and a replica, so leadership is spread as the
// placement says.
func (cn *clusterNode) spread() {
	defer cn.wg.Done()
	t := time.NewTicker(spreadEvery)
	defer t.Stop()
	tried := map[int]time.Time{}
	for {
		select {
		case <-cn.stop:
			return
		case <-t.C:
		}
		pl := cn.placement.Load()
		members := cn.members.Members()
		for p, a := range pl.Partitions {
			if !cn.repl.Replicates(p) || !cn.repl.IsLeader(p) || a.Leader == "" || a.Leader == cn.cfg.Node.Name || !slices.Contains(a.Replicas, cn.cfg.Node.Name) {
				continue
			}
			addr, ok := leaderTarget(a.Leader, a, members)
			if !ok || time.Since(tried[p]) < transferBackoff {
				continue
			}
			tried[p] = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), raftDialTimeout)
			err := cn.repl.TransferLeadership(ctx, p, raft.ServerID(a.Leader), addr)
			cancel()
			if err != nil {
				cn.log.Debug("leadership transfer", "partition", p, "to", a.Leader, "err", err)
			}
		}
	}
}

// leaderGrace is how long a replica that lost sight of its partition's
// leader (a leadership transfer, an election) keeps naming the last one:
// requests sent there meanwhile are answered unavailable or forwarded.
const leaderGrace = 2 * time.Second

type lastLeader struct {
	node string
	at   time.Time
}

// LeaderOf is actors.ClusterSource's: the leader raft knows (or knew
// within leaderGrace), else none.
//
// The leader raft knows now is named even when gossip has it dead: raft
// hears from its leader every heartbeat and forgets it within a heartbeat
// timeout, while gossip, with its 200 ms probes, can take a node starved
// of CPU for a moment for dead (CI failed on TestClusterJoinAndLeave with
// a partition led all along reported leaderless for 13 samples). A
// request forwarded to a node that is really gone is answered unavailable
// once its endpoint is down. A leader only remembered must still be alive.
func (cn *clusterNode) LeaderOf(p int) (node, remote string, ok bool) {
	var leader string
	if cn.repl.Replicates(p) {
		id, _ := cn.repl.Leader(p)
		leader = string(id)
		now := time.Now()
		if leader != "" {
			cn.lastLeaders[p].Store(&lastLeader{node: leader, at: now})
			if m, found := cn.members.Members()[leader]; found && m.Meta.Remote != "" {
				return leader, m.Meta.Remote, true
			}
		} else if last := cn.lastLeaders[p].Load(); last != nil && now.Sub(last.at) < leaderGrace {
			leader = last.node
		}
	} else if pl := cn.placement.Load(); pl != nil {
		// Not a replica: the table's desired leader, else the last one
		// named, else the first live replica (a request sent to a replica
		// that does not lead is answered unavailable, safe to send again).
		leader = pl.Partitions[p].Leader
		if leader != "" {
			cn.lastLeaders[p].Store(&lastLeader{node: leader, at: time.Now()})
		} else if last := cn.lastLeaders[p].Load(); last != nil && slices.Contains(pl.Partitions[p].Replicas, last.node) {
			leader = last.node
		} else {
			members := cn.members.Members()
			for _, r := range pl.Partitions[p].Replicas {
				if members[r].State == cluster.Alive {
					leader = r
					break
				}
			}
		}
	}
	if leader == "" {
		return "", "", false
	}
	m, found := cn.members.Members()[leader]
	if !found || m.State == cluster.Dead || m.State == cluster.Left || m.Meta.Remote == "" {
		return "", "", false
	}
	return leader, m.Meta.Remote, true
}

// Peers is actors.ClusterSource's: the other alive members' remote
// addresses.
func (cn *clusterNode) Peers() []string {
	var out []string
	for name, m := range cn.members.Members() {
		if name != cn.cfg.Node.Name && m.State == cluster.Alive && m.Meta.Remote != "" {
			out = append(out, m.Meta.Remote)
		}
	}
	return out
}

// View is actors.ClusterSource's: members and each partition's leader and
// replicas.
func (cn *clusterNode) View() actors.ClusterView {
	v := actors.ClusterView{Node: cn.cfg.Node.Name}
	members := cn.members.Members()
	for _, name := range slices.Sorted(maps.Keys(members)) {
		m := members[name]
		state := m.State.String()
		if m.State == cluster.Left {
			state = "dead"
		}
		v.Nodes = append(v.Nodes, actors.ClusterNode{Name: name, HTTP: m.Meta.HTTP, State: state})
	}
	pl := cn.placement.Load()
	for p := range cn.cfg.Node.Partitions {
		cp := actors.ClusterPartition{ID: p, Replicas: []string{}}
		if pl != nil {
			cp.Replicas = slices.Clone(pl.Partitions[p].Replicas)
		}
		if leader, _, ok := cn.LeaderOf(p); ok {
			cp.Leader = leader
		}
		v.Partitions = append(v.Partitions, cp)
	}
	return v
}

// ready is nil once this node is a member and every partition has a
// leader (PROTOCOL 8 /readyz).
func (cn *clusterNode) ready() error {
	if cn.placement.Load() == nil {
		return errors.New("no placement yet")
	}
	var missing int
	for p := range cn.cfg.Node.Partitions {
		if _, _, ok := cn.LeaderOf(p); !ok {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d partitions without a leader", missing)
	}
	return nil
}

// close stops the loops, the raft groups, the raft port and membership
// (leaving it, so the others do not wait for a death).
func (cn *clusterNode) close() error {
	select {
	case <-cn.stop:
	default:
		close(cn.stop)
	}
	var errs []error
	if cn.repl != nil {
		errs = append(errs, cn.repl.Close())
	}
	if cn.mux != nil {
		errs = append(errs, cn.mux.Close())
	}
	if cn.members != nil {
		errs = append(errs, cn.members.Leave(time.Second), cn.members.Shutdown())
	}
	cn.wg.Wait()
	return errors.Join(errs...)
}
