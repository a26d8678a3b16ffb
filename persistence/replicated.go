package persistence

// The replicated engine: one hashicorp/raft group per partition this node
// replicates, over the node's Pebble engine (its DB and its group-commit
// writer, shared with every group). See DESIGN "Cluster".
//
// Writes of a partition (appends, claims, erasures, snapshots, records) are
// raft proposals made on the partition's leader: its proposer goroutine
// takes what is queued (like the group commit) and proposes it as one entry;
// a completer goroutine waits for the entries in order and reports each
// op's outcome from the leader's state machine (raft_fsm.go), so a store's
// done callbacks keep the order of its Append calls. On a node that does not
// lead the partition, a write fails with ErrUnavailable wrapping a
// *NotLeaderError. A write that fails with ErrUnavailable after it was
// proposed (leadership lost, raft shut down) has an unknown outcome: it may
// still commit; the seq check makes a retry safe.
//
// Reads go to the local Pebble. The caller reads a partition where IsLeader
// says so: a node reports leadership only once a barrier has applied every
// entry of earlier terms, so its state holds everything acknowledged.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// DefaultProposalOpsMax caps the ops of one proposal.
	DefaultProposalOpsMax = 1024
	// DefaultProposalBytesMax caps the approximate bytes of one proposal; a
	// larger single op is still proposed, alone.
	DefaultProposalBytesMax = 4 << 20
	// defaultProposalsInFlight bounds the proposals a group has made and not
	// yet reported, per partition.
	defaultProposalsInFlight = 256
	// defaultReplicatedQueueLength bounds the ops waiting for a group's
	// proposer; a full queue blocks the caller like the writer's.
	defaultReplicatedQueueLength = 4096
)

// NotLeaderError says this node does not lead the partition's raft group,
// with the leader when known. Writes wrap it in ErrUnavailable.
type NotLeaderError struct {
	Partition  int
	LeaderID   raft.ServerID      // "" when unknown
	LeaderAddr raft.ServerAddress // "" when unknown
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAddr == "" {
		return fmt.Sprintf("persistence: not the leader of partition %d (leader unknown)", e.Partition)
	}
	return fmt.Sprintf("persistence: not the leader of partition %d (leader %s at %s)", e.Partition, e.LeaderID, e.LeaderAddr)
}

// DefaultRaftConfig is raft's defaults with the timings of a loopback or LAN
// cluster whose failover must take well under 3 s: a follower that hears
// nothing for 500 ms stands for election (randomized between 500 ms and
// 1 s), and a leader that cannot reach a quorum for 500 ms steps down (shorter
// leases made leaders on a busy 2-core machine step down under load: each
// step-down is a moment of unavailable answers; a stale leader cannot
// commit either way).
func DefaultRaftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 500 * time.Millisecond
	c.CommitTimeout = 20 * time.Millisecond
	c.BatchApplyCh = true
	c.NoSnapshotRestoreOnStart = true
	return c
}

// ReplicatedConfig configures OpenReplicated.
type ReplicatedConfig struct {
	// Engine is the node's Pebble engine (Open). The groups share its DB and
	// its writer; the replicated engine does not close it. Its partitions
	// that are replicated must not be written through Engine.Store.
	Engine Engine

	// LocalID is this node's raft server id, the same in every group.
	LocalID raft.ServerID

	// Partitions are the partitions this node replicates.
	Partitions []int

	// Raft is the raft configuration every group starts from; LocalID,
	// Logger and NotifyCh are set per group, and NoSnapshotRestoreOnStart is
	// forced (the state is in Pebble already).
	//
	// The default value is DefaultRaftConfig().
	Raft *raft.Config

	// Transport makes partition p's raft transport (a NetworkTransport over
	// RaftMux.StreamLayer(p), or an InmemTransport in tests). A transport
	// that is an io.Closer is closed with its group.
	Transport func(p int) (raft.Transport, error)

	// Snapshots makes partition p's raft snapshot store. Required: a
	// restarted node restores nothing from it (the state is in Pebble), but
	// raft compacts its log behind the snapshots and sends them to replicas
	// that are too far behind. raft.NewFileSnapshotStoreWithLogger under the
	// node's data directory, or raft.NewInmemSnapshotStore in tests.
	Snapshots func(p int) (raft.SnapshotStore, error)

	// Bootstrap, when set, gives the servers of partition p's group at its
	// first start (nil: this node joins when a leader adds it). A group with
	// existing state ignores it.
	Bootstrap func(p int) []raft.Server

	// ReleaseElsewhere, when set, releases a customer's identities of a
	// partition this node does not lead, through the node that does (an
	// erasure's identities live in their own partitions). Nil: such an
	// erasure fails with ErrUnavailable.
	ReleaseElsewhere func(ctx context.Context, p int, customer string, ids []IdentityKey) error

	// OnLeadership, when set, is called when this node starts leading
	// partition p (after the barrier: its state holds everything
	// acknowledged) and when it stops. Calls of one partition are in order,
	// on a goroutine of the group; it must not block.
	OnLeadership func(p int, leader bool)

	// Logger receives the groups' and raft's logs (group "raft").
	//
	// The default value is slog.Default().
	Logger *slog.Logger

	// ProposalOpsMax and ProposalBytesMax cap one proposal.
	//
	// The default values are DefaultProposalOpsMax and DefaultProposalBytesMax.
	ProposalOpsMax   int
	ProposalBytesMax int
}

func (c *ReplicatedConfig) ensureDefaults() {
	if c.Raft == nil {
		c.Raft = DefaultRaftConfig()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ProposalOpsMax <= 0 {
		c.ProposalOpsMax = DefaultProposalOpsMax
	}
	if c.ProposalBytesMax <= 0 {
		c.ProposalBytesMax = DefaultProposalBytesMax
	}
}

func (c *ReplicatedConfig) validate() error {
	var errs []error
	pe, ok := c.Engine.(*pebbleEngine)
	if !ok {
		errs = append(errs, errors.New("persistence: replicated: Engine must be a Pebble engine (Open)"))
	}
	if c.LocalID == "" {
		errs = append(errs, errors.New("persistence: replicated: LocalID is empty"))
	}
	if c.Transport == nil || c.Snapshots == nil {
		errs = append(errs, errors.New("persistence: replicated: Transport and Snapshots are required"))
	}
	seen := make(map[int]bool)
	for _, p := range c.Partitions {
		if ok && (p < 0 || p >= pe.partitions) || seen[p] {
			errs = append(errs, fmt.Errorf("persistence: replicated: partition %d out of range or repeated", p))
		}
		seen[p] = true
	}
	return errors.Join(errs...)
}

// ReplicatedEngine is an Engine whose partitions are raft groups, plus what
// the node's placement driver asks of them. Methods of a partition this node
// does not replicate panic.
type ReplicatedEngine interface {
	Engine
	// Replicates reports whether this node has a replica of partition p.
	Replicates(p int) bool
	// IsLeader reports whether this node leads p and has applied every
	// entry of earlier terms.
	IsLeader(p int) bool
	// Leader is p's leader as this replica knows it ("" when unknown).
	Leader(p int) (raft.ServerID, raft.ServerAddress)
	// AddVoter adds (or updates) a voter of p's group; only on its leader.
	AddVoter(ctx context.Context, p int, id raft.ServerID, addr raft.ServerAddress) error
	// RemoveServer removes a server from p's group; only on its leader.
	RemoveServer(ctx context.Context, p int, id raft.ServerID) error
	// TransferLeadership hands p's leadership to id (id "": to the most
	// up-to-date voter); only on its leader.
	TransferLeadership(ctx context.Context, p int, id raft.ServerID, addr raft.ServerAddress) error
	// ReplicaStats is this replica's view of p's group.
	ReplicaStats(p int) ReplicaStats
	// Voters are p's voters as this replica's latest configuration has
	// them.
	Voters(p int) ([]raft.Server, error)
	// ReleaseIdentities erases a customer's identities of partition p,
	// which this node must lead (an erasure run by another partition's
	// leader).
	ReleaseIdentities(ctx context.Context, p int, customer string, ids []IdentityKey) error
	// AddGroup starts a replica of p here that joins when p's leader adds
	// it; RemoveGroup stops this node's replica of p.
	AddGroup(p int) error
	RemoveGroup(p int) error
}

// ReplicaStats are one replica's figures of a partition's group.
type ReplicaStats struct {
	State        string // Leader, Follower, Candidate, Shutdown
	Ready        bool   // IsLeader
	Term         uint64
	LastIndex    uint64    // last raft log index stored here
	CommitIndex  uint64    // highest index known committed
	AppliedIndex uint64    // highest index handed to the state machine
	StoredIndex  uint64    // highest index whose effects are in Pebble
	LastContact  time.Time // last contact with the leader (zero on the leader)
	LeaderID     raft.ServerID
	Proposals    uint64 // entries this replica proposed as leader, since start
	Elections    uint64 // times this replica became leader, since start
}

type replicatedEngine struct {
	pebble *pebbleEngine
	cfg    ReplicatedConfig
	log    *slog.Logger
	mu     sync.RWMutex // guards groups: AddGroup and RemoveGroup change it
	groups map[int]*replicaGroup
	gate   gate

	closeOnce sync.Once
	closeErr  error
}

// OpenReplicated starts a raft group for each of cfg.Partitions over the
// node's Pebble engine. Every group's state machine resumes from what Pebble
// holds; a group without raft state is bootstrapped with cfg.Bootstrap.
func OpenReplicated(cfg ReplicatedConfig) (ReplicatedEngine, error) {
	cfg.ensureDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &replicatedEngine{
		pebble: cfg.Engine.(*pebbleEngine),
		cfg:    cfg,
		log:    cfg.Logger.WithGroup("raft"),
		groups: make(map[int]*replicaGroup, len(cfg.Partitions)),
	}
	for _, p := range slices.Sorted(slices.Values(cfg.Partitions)) {
		g, err := startGroup(e, p, true)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("persistence: start partition %d: %w", p, err), e.Close())
		}
		e.groups[p] = g
	}
	return e, nil
}

func (e *replicatedEngine) Partitions() int         { return e.pebble.partitions }
func (e *replicatedEngine) Failed() <-chan struct{} { return e.pebble.Failed() }
func (e *replicatedEngine) Err() error              { return e.pebble.Err() }

// Stats are the node's writer counters: its state machines count every
// append they apply, leader or follower.
func (e *replicatedEngine) Stats() Stats   { return e.pebble.Stats() }
func (e *replicatedEngine) Flushing() bool { return e.pebble.Flushing() }

func (e *replicatedEngine) Elastic(delta int) { e.pebble.Elastic(delta) }

func (e *replicatedEngine) Store(p int) Store {
	e.pebble.checkPartition(p)
	e.mu.RLock()
	g := e.groups[p]
	e.mu.RUnlock()
	return &replicatedStore{e: e, p: p, g: g, local: &pebbleStore{e: e.pebble, p: p}}
}

func (e *replicatedEngine) Replicates(p int) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.groups[p] != nil
}

// AddGroup starts a replica of partition p on this node that joins the
// partition's group when its leader adds it as a voter (no bootstrap: the
// group exists elsewhere). A replica already here is kept.
func (e *replicatedEngine) AddGroup(p int) error {
	e.pebble.checkPartition(p)
	if err := e.gate.enter(); err != nil {
		return err
	}
	defer e.gate.leave()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.groups[p] != nil {
		return nil
	}
	g, err := startGroup(e, p, false)
	if err != nil {
		return fmt.Errorf("persistence: start partition %d: %w", p, err)
	}
	e.groups[p] = g
	return nil
}

// RemoveGroup stops this node's replica of partition p (it was removed
// from the partition's group, or is about to be): appends refused from now
// on, queued ones reported, raft shut down. Its keys stay in Pebble until
// the partition is replicated here again, when raft brings them up to date.
func (e *replicatedEngine) RemoveGroup(p int) error {
	e.mu.Lock()
	g := e.groups[p]
	delete(e.groups, p)
	e.mu.Unlock()
	if g == nil {
		return nil
	}
	g.gate.close()
	g.closeQueue()
	return g.stop()
}

func (e *replicatedEngine) group(p int) *replicaGroup {
	e.mu.RLock()
	g := e.groups[p]
	e.mu.RUnlock()
	if g == nil {
		panic(fmt.Sprintf("persistence: partition %d is not replicated on this node", p))
	}
	return g
}

func (e *replicatedEngine) IsLeader(p int) bool { return e.group(p).isLeader() }

func (e *replicatedEngine) Leader(p int) (raft.ServerID, raft.ServerAddress) {
	addr, id := e.group(p).raft.LeaderWithID()
	return id, addr
}

func (e *replicatedEngine) AddVoter(ctx context.Context, p int, id raft.ServerID, addr raft.ServerAddress) error {
	return waitFuture(ctx, e.group(p).raft.AddVoter(id, addr, 0, 0))
}

func (e *replicatedEngine) RemoveServer(ctx context.Context, p int, id raft.ServerID) error {
	return waitFuture(ctx, e.group(p).raft.RemoveServer(id, 0, 0))
}

func (e *replicatedEngine) TransferLeadership(ctx context.Context, p int, id raft.ServerID, addr raft.ServerAddress) error {
	r := e.group(p).raft
	if id == "" {
		return waitFuture(ctx, r.LeadershipTransfer())
	}
	return waitFuture(ctx, r.LeadershipTransferToServer(id, addr))
}

func (e *replicatedEngine) Voters(p int) ([]raft.Server, error) {
	f := e.group(p).raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

func (e *replicatedEngine) ReplicaStats(p int) ReplicaStats {
	g := e.group(p)
	_, leader := g.raft.LeaderWithID()
	return ReplicaStats{
		State:        g.raft.State().String(),
		Ready:        g.isLeader(),
		Term:         g.raft.CurrentTerm(),
		LastIndex:    g.raft.LastIndex(),
		CommitIndex:  g.raft.CommitIndex(),
		AppliedIndex: g.raft.AppliedIndex(),
		StoredIndex:  g.fsm.applied.Load(),
		LastContact:  g.raft.LastContact(),
		LeaderID:     leader,
		Proposals:    g.proposals.Load(),
		Elections:    g.elections.Load(),
	}
}

// Close refuses new requests, lets every group propose and report what is
// queued, then shuts the groups' raft down and closes their transports. It
// does not close the Pebble engine. Safe to call twice.
func (e *replicatedEngine) Close() error {
	e.closeOnce.Do(func() {
		e.gate.close()
		e.mu.Lock()
		groups := e.groups
		e.groups = map[int]*replicaGroup{}
		e.mu.Unlock()
		for _, g := range groups {
			g.gate.close()
			g.closeQueue()
		}
		var errs []error
		for _, g := range groups {
			errs = append(errs, g.stop())
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// FileSnapshots makes ReplicatedConfig.Snapshots: partition p's raft
// snapshots in dir/p, the two latest kept.
func FileSnapshots(dir string, logger *slog.Logger) func(p int) (raft.SnapshotStore, error) {
	return func(p int) (raft.SnapshotStore, error) {
		return raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, strconv.Itoa(p)), 2, newHCLogger(logger.With("partition", p)))
	}
}

// waitFuture waits for a raft future or ctx.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeTransport closes t if it can be closed.
func closeTransport(t raft.Transport) error {
	if c, ok := t.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
