package actors

// Partitions come and go on a node: in a cluster a partition's host and
// customers run only on its raft leader (DESIGN "One writer per
// customer"). HostPartition starts a partition's host and identity actors;
// UnhostPartition stops them: new messages for the partition are refused
// with unavailable at once, and its customers passivate (their pending
// appends complete or fail, as the store decides), so a partition is never
// hosted twice on a node and its customers' next messages go where it is
// hosted next.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Errors of hosting.
var (
	ErrHosted    = errors.New("partition already hosted here")
	ErrNotHosted = errors.New("partition not hosted here")
)

// partitionActors are the actors of one hosted partition.
type partitionActors struct {
	host, ident *actor.PID
	// hostMailbox is the host's: Runtime.ingest posts to it directly.
	hostMailbox *customerMailbox
}

// hostOf is the host of partition p, nil when p is not hosted here.
func (r *Runtime) hostOf(p int) *actor.PID {
	if pa := r.parts[p].Load(); pa != nil {
		return pa.host
	}
	return nil
}

// identOf is the identity actor of partition p, nil when not hosted.
func (r *Runtime) identOf(p int) *actor.PID {
	if pa := r.parts[p].Load(); pa != nil {
		return pa.ident
	}
	return nil
}

// Hosted lists the partitions hosted here now, in order.
func (r *Runtime) Hosted() []int {
	var out []int
	for p := range r.parts {
		if r.parts[p].Load() != nil {
			out = append(out, p)
		}
	}
	return out
}

// HostPartition starts hosting partition p here: its host (which wakes the
// customers with routed conversations and delivers due work) and its
// identity actor, over the engine's store of p.
func (r *Runtime) HostPartition(p int) error {
	if err := r.hostPartition(p); err != nil {
		return err
	}
	if p == broadcastsPartition {
		// The broadcasts' coordinator loads its records; not under hostMu
		// (a slow store read would hold up other partitions' hosting).
		r.bcast.lead()
	}
	return nil
}

func (r *Runtime) hostPartition(p int) error {
	if p < 0 || p >= len(r.parts) {
		return fmt.Errorf("actors: partition %d of %d", p, len(r.parts))
	}
	if r.stopping.Load() {
		return unavailable("shutting down")
	}
	r.hostMu.Lock()
	defer r.hostMu.Unlock()
	if r.parts[p].Load() != nil {
		return fmt.Errorf("%w: %d", ErrHosted, p)
	}
	// The host's mailbox is the runtime's own (customerMailbox), always on
	// the pool: a broadcast's message to it is live work for the host.
	var mailbox *customerMailbox
	props := actor.PropsFromProducer(func() actor.Actor { return newHost(r, p) },
		actor.WithSupervisor(actor.NewOneForOneStrategy(restartsMax, time.Second, restartCustomer)),
		actor.WithDispatcher(r.dispatch), actor.WithMailbox(r.dispatch.customerMailboxes(func(m *customerMailbox) {
			m.live, mailbox = true, m
		})))
	// The analytics runner loads the partition's projection before any
	// event of its customers reaches its queue.
	r.analytics.enqueue(func() { r.analytics.host(p) })
	store := r.engine.Store(p)
	pa := &partitionActors{
		host: r.system.Root.Spawn(props), // makes its mailbox
		ident: r.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &identityActor{store: store}
		}, actor.WithDispatcher(r.dispatch))),
	}
	pa.hostMailbox = mailbox
	r.parts[p].Store(pa)
	r.hostedN.Add(1)
	if p == auditPartition && r.audit != nil {
		r.audit.forget()
	}
	return nil
}

// UnhostPartition stops hosting partition p: messages for it are refused
// from now on, its customers passivate, then its actors stop. ctx bounds
// the wait for the customers.
func (r *Runtime) UnhostPartition(ctx context.Context, p int) error {
	if p < 0 || p >= len(r.parts) {
		return fmt.Errorf("actors: partition %d of %d", p, len(r.parts))
	}
	r.hostMu.Lock()
	pa := r.parts[p].Swap(nil)
	r.hostMu.Unlock()
	if pa == nil {
		return fmt.Errorf("%w: %d", ErrNotHosted, p)
	}
	r.hostedN.Add(-1)
	if p == broadcastsPartition {
		r.bcast.unlead()
	}
	if err := r.stopPartition(ctx, pa); err != nil {
		return err
	}
	r.analytics.do(ctx, func() { r.analytics.unhost(p) })
	return nil
}

// stopPartition passivates a partition's customers and stops its actors.
func (r *Runtime) stopPartition(ctx context.Context, pa *partitionActors) error {
	done := make(chan struct{})
	r.system.Root.Send(pa.host, &passivateAll{done: done})
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("actors: unhost: %w", ctx.Err())
	}
	_ = r.system.Root.StopFuture(pa.host).Wait()
	_ = r.system.Root.StopFuture(pa.ident).Wait()
	return nil
}
