package persistence

// One partition's raft group on this node: its raft, its state machine, and
// three goroutines. The proposer takes the ops queued by the partition's
// store and proposes what is waiting as one entry (an erasure alone); the
// completer reports the entries' outcomes in proposal order; the watcher
// follows leadership (raft's NotifyCh) and declares the node ready to lead
// once a barrier has applied every earlier entry.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// raftLogCacheEntries is how many recent log entries a group keeps in
	// memory for replication to followers.
	raftLogCacheEntries = 1024
	// applyEnqueueTimeout bounds how long a proposal waits to enter raft.
	applyEnqueueTimeout = 5 * time.Second
	// barrierTimeout bounds one barrier of a new leader (retried while it
	// still leads).
	barrierTimeout = 5 * time.Second
)

type replicaGroup struct {
	p     int
	e     *replicatedEngine
	raft  *raft.Raft
	fsm   *partitionFSM
	trans raft.Transport

	// queue holds the ops waiting for the proposer, bounded
	// (defaultReplicatedQueueLength): a full queue blocks the caller.
	queue chan op
	// inflight holds the proposals made and not yet reported, bounded
	// (defaultProposalsInFlight): a full one holds the proposer back.
	inflight chan proposal
	done     chan struct{} // closed when the completer has reported everything

	gate      gate          // closed when the group is removed or the engine closes
	proposals atomic.Uint64 // entries proposed here
	elections atomic.Uint64 // times this replica became leader
	leaderNow atomic.Bool   // raft says this node leads
	ready     atomic.Bool   // ... and a barrier of its term has applied
	kick      chan struct{}
	stopWatch chan struct{}
	watchDone chan struct{}
}

// proposal is the ops of one entry, in queue order; future is nil when no
// op was valid enough to propose.
type proposal struct {
	ops    []op
	future raft.ApplyFuture
}

func startGroup(e *replicatedEngine, p int, boot bool) (g *replicaGroup, err error) {
	fsm, err := newPartitionFSM(e.pebble, p)
	if err != nil {
		return nil, err
	}
	store := &raftStore{e: e.pebble, p: p}
	logs, err := raft.NewLogCache(raftLogCacheEntries, store)
	if err != nil {
		return nil, err
	}
	snaps, err := e.cfg.Snapshots(p)
	if err != nil {
		return nil, err
	}
	trans, err := e.cfg.Transport(p)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, closeTransport(trans))
		}
	}()
	notify := make(chan bool, 8)
	conf := *e.cfg.Raft
	conf.LocalID = e.cfg.LocalID
	conf.Logger = newHCLogger(e.log.With("partition", p))
	conf.NotifyCh = notify
	conf.NoSnapshotRestoreOnStart = true
	if boot {
		if err := bootstrap(e, p, &conf, logs, store, snaps, trans); err != nil {
			return nil, err
		}
	}
	r, err := raft.NewRaft(&conf, fsm, logs, store, snaps, trans)
	if err != nil {
		return nil, err
	}
	g = &replicaGroup{
		p: p, e: e, raft: r, fsm: fsm, trans: trans,
		queue:     make(chan op, defaultReplicatedQueueLength),
		inflight:  make(chan proposal, defaultProposalsInFlight),
		done:      make(chan struct{}),
		kick:      make(chan struct{}, 1),
		stopWatch: make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	go g.runProposer()
	go g.runCompleter()
	go g.forwardNotify(notify)
	go g.watchLeadership()
	return g, nil
}

func bootstrap(e *replicatedEngine, p int, conf *raft.Config, logs raft.LogStore, store *raftStore, snaps raft.SnapshotStore, trans raft.Transport) error {
	if e.cfg.Bootstrap == nil {
		return nil
	}
	servers := e.cfg.Bootstrap(p)
	if len(servers) == 0 {
		return nil
	}
	has, err := raft.HasExistingState(logs, store, snaps)
	if err != nil || has {
		return err
	}
	return raft.BootstrapCluster(conf, logs, store, snaps, trans, raft.Configuration{Servers: servers})
}

func (g *replicaGroup) isLeader() bool {
	return g.ready.Load() && g.raft.State() == raft.Leader
}

// submit queues o for the proposer. It fails at once on a node that does not
// lead the partition.
func (g *replicaGroup) submit(ctx context.Context, o op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := g.e.gate.enter(); err != nil {
		return err
	}
	defer g.e.gate.leave()
	if err := g.gate.enter(); err != nil {
		return g.unavailable(raft.ErrRaftShutdown)
	}
	defer g.gate.leave()
	if err := g.e.pebble.latch.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if g.raft.State() != raft.Leader {
		return g.unavailable(raft.ErrNotLeader)
	}
	// A caller without a deadline (a customer's append) still waits a
	// bounded time for room: inside the group's gate, a wait without end
	// would hold RemoveGroup (and a node's leave) with it.
	var timeout <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(submitWaitMax)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case g.queue <- o:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("persistence: not queued: %w", ctx.Err())
	case <-timeout:
		return fmt.Errorf("%w: partition %d: no room in the proposal queue for %s", ErrUnavailable, g.p, submitWaitMax)
	}
}

// submitWaitMax bounds how long an op without a deadline waits for room
// in its group's proposal queue.
const submitWaitMax = 10 * time.Second

// unavailable wraps a raft error: ErrUnavailable, and a *NotLeaderError
// when the cause is leadership (the leader as this replica knows it).
func (g *replicaGroup) unavailable(cause error) error {
	switch {
	case errors.Is(cause, raft.ErrNotLeader), errors.Is(cause, raft.ErrLeadershipLost),
		errors.Is(cause, raft.ErrLeadershipTransferInProgress), errors.Is(cause, raft.ErrRaftShutdown),
		errors.Is(cause, raft.ErrEnqueueTimeout):
		addr, id := g.raft.LeaderWithID()
		nl := &NotLeaderError{Partition: g.p, LeaderID: id, LeaderAddr: addr}
		return fmt.Errorf("%w: %w: %w", ErrUnavailable, nl, cause)
	default:
		return fmt.Errorf("%w: partition %d: %w", ErrUnavailable, g.p, cause)
	}
}

func (g *replicaGroup) runProposer() {
	defer close(g.inflight)
	var carry *op
	for {
		var o op
		if carry != nil {
			o, carry = *carry, nil
		} else {
			var ok bool
			if o, ok = <-g.queue; !ok {
				return
			}
		}
		batch := []op{o}
		if o.erase == nil {
			batch, carry = g.collect(batch)
		}
		g.inflight <- g.propose(batch)
	}
}

// collect adds what is already queued to batch, up to the proposal's caps;
// an erasure ends it and is carried to the next proposal.
func (g *replicaGroup) collect(batch []op) ([]op, *op) {
	size := opSize(batch[0])
	for len(batch) < g.e.cfg.ProposalOpsMax && size < g.e.cfg.ProposalBytesMax {
		select {
		case o, ok := <-g.queue:
			if !ok {
				return batch, nil
			}
			if o.erase != nil {
				return batch, &o
			}
			batch = append(batch, o)
			size += opSize(o)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

func opSize(o op) int {
	switch {
	case o.append != nil:
		return o.append.size()
	case o.records != nil:
		n := 64
		for _, r := range o.records.puts {
			n += len(r.Key) + len(r.Value)
		}
		return n
	case o.snapshot != nil:
		return 64 + len(o.snapshot.data)
	default:
		return 64
	}
}

func (g *replicaGroup) propose(batch []op) proposal {
	valid := make([]op, 0, len(batch))
	for _, o := range batch {
		if o.append == nil || o.append.err == nil {
			valid = append(valid, o)
		}
	}
	pr := proposal{ops: batch}
	if len(valid) > 0 {
		pr.future = g.raft.Apply(encodeCommand(nil, valid), applyEnqueueTimeout)
		g.proposals.Add(1)
	}
	return pr
}

func (g *replicaGroup) runCompleter() {
	defer close(g.done)
	for pr := range g.inflight {
		g.report(pr)
	}
}

// report completes a proposal's ops in order: an invalid append with its
// validation error, the others with the state machine's outcome.
func (g *replicaGroup) report(pr proposal) {
	var res *applyResult
	var failed error
	if pr.future != nil {
		if err := pr.future.Error(); err != nil {
			failed = g.unavailable(err)
		} else if res, _ = pr.future.Response().(*applyResult); res == nil {
			failed = fmt.Errorf("%w: partition %d: an entry applied without a result", ErrUnavailable, g.p)
		} else if res.err != nil {
			failed = res.err
		}
	}
	j := 0
	for _, o := range pr.ops {
		switch {
		case o.append != nil && o.append.err != nil:
			o.complete("", o.append.err)
			continue
		case failed != nil:
			o.complete("", failed)
		default:
			o.complete(res.owners[j], res.errs[j])
		}
		j++
	}
}

// forwardNotify drains raft's NotifyCh at once (raft blocks on it) and
// kicks the watcher.
func (g *replicaGroup) forwardNotify(notify <-chan bool) {
	for {
		select {
		case leader := <-notify:
			g.leaderNow.Store(leader)
			if leader {
				g.elections.Add(1)
			}
			select {
			case g.kick <- struct{}{}:
			default:
			}
		case <-g.stopWatch:
			return
		}
	}
}

// watchLeadership makes a new leader ready once a barrier has applied every
// entry of earlier terms, and reports leadership changes.
func (g *replicaGroup) watchLeadership() {
	defer close(g.watchDone)
	reported := false
	for {
		select {
		case <-g.kick:
		case <-g.stopWatch:
			return
		}
		if g.leaderNow.Load() && !g.ready.Load() {
			if !g.barrier() {
				continue
			}
			g.ready.Store(true)
		} else if !g.leaderNow.Load() {
			g.ready.Store(false)
		}
		if now := g.ready.Load(); now != reported {
			reported = now
			if g.e.cfg.OnLeadership != nil {
				g.e.cfg.OnLeadership(g.p, now)
			}
		}
	}
}

// barrier retries a raft barrier while this node leads; true once one has
// applied and the node still leads.
func (g *replicaGroup) barrier() bool {
	for g.leaderNow.Load() {
		stopped, err := g.await(g.raft.Barrier(barrierTimeout))
		if stopped {
			return false
		}
		if err == nil {
			return g.leaderNow.Load() && g.raft.State() == raft.Leader
		}
		if errors.Is(err, raft.ErrRaftShutdown) {
			return false
		}
		select {
		case <-g.stopWatch:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

// await waits for f, or for stop (stopped true). A barrier raft accepted
// just before its shutdown may never be answered (make test once hung 10
// minutes in stop, waiting for watchLeadership, which waited for one): its
// waiter is then left behind, one goroutine, at shutdown only.
func (g *replicaGroup) await(f raft.Future) (stopped bool, err error) {
	answered := make(chan error, 1)
	go func() { answered <- f.Error() }()
	select {
	case err = <-answered:
		return false, err
	case <-g.stopWatch:
		return true, nil
	}
}

func (g *replicaGroup) closeQueue() { close(g.queue) }

// stop waits until every queued op is reported, then shuts raft down.
func (g *replicaGroup) stop() error {
	<-g.done
	err := g.raft.Shutdown().Error()
	close(g.stopWatch)
	<-g.watchDone
	return errors.Join(err, closeTransport(g.trans))
}
