package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// identityActor owns the identities indexed in one partition: it alone
// reads and writes them, one request at a time, so two connections sending
// the same new phone at once make one customer (DESIGN "Identity"). It is
// apart from the partition host because a claim waits for a synced write,
// and customers' messages must not wait behind it.
type identityActor struct {
	store persistence.Store
}

// identityReq looks an identity up, or claims it for customer when customer
// is set and the identity belongs to no one.
type identityReq struct {
	key      persistence.IdentityKey
	customer string
	deadline time.Time          // past it the caller has gone: skip the work
	reply    chan identityReply // buffered 1
}

type identityReply struct {
	owner string
	err   error
}

func (a *identityActor) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*identityReq)
	if !ok {
		return
	}
	var rep identityReply
	switch {
	case time.Now().After(m.deadline):
		rep.err = context.DeadlineExceeded
	case m.customer == "":
		rep.owner, rep.err = a.store.LookupIdentity(context.Background(), m.key.Kind, m.key.Value)
	default:
		rep.owner, rep.err = a.store.ClaimIdentity(context.Background(), m.key.Kind, m.key.Value, m.customer)
	}
	m.reply <- rep
}

// Resolve finds the customer of a validated event (PROTOCOL section 1):
//   - with a customer id, the event's identities are linked to it, except
//     one that already belongs to another customer;
//   - otherwise the event goes to the customer of the first identity, in
//     journey.OrderIdentities order, that belongs to one; when none does, the
//     first identity is claimed for a new customer; the others are then
//     claimed for that customer where they belong to no one.
//
// linked lists the event's identities that belong to the customer.
func (r *Runtime) Resolve(ctx context.Context, e *journey.Event) (customer string, linked []journey.IdentityRef, err error) {
	ids := journey.OrderIdentities(e.Identity)
	owners := make([]string, len(ids))
	customer = e.Customer
	if customer == "" {
		for i, id := range ids {
			if owners[i], err = r.identity(ctx, id, ""); err != nil {
				return "", nil, err
			}
			if owners[i] != "" {
				customer = owners[i]
				break
			}
		}
		if customer == "" {
			// Another connection may claim the same identity first: the
			// claim answers with whoever owns it then.
			if customer, err = r.identity(ctx, ids[0], newCustomerID()); err != nil {
				return "", nil, err
			}
			owners[0] = customer
		}
	}
	for i, id := range ids {
		if owners[i] == "" {
			if owners[i], err = r.identity(ctx, id, customer); err != nil {
				return "", nil, err
			}
		}
		if owners[i] == customer {
			linked = append(linked, id)
		}
	}
	return customer, linked, nil
}

func (r *Runtime) identity(ctx context.Context, id journey.IdentityRef, claimFor string) (string, error) {
	key := persistence.IdentityKey{Kind: journey.IndexKind(id.Kind), Value: id.Value}
	if p := r.identityPartition(key); r.identOf(p) == nil && r.cfg.Cluster != nil && !r.stopping.Load() {
		var owner string
		err := r.forwardRead(p, fwdIdentity, fwdIdentityBody{Kind: id.Kind, Value: id.Value, ClaimFor: claimFor}, &owner)
		return owner, err
	}
	return r.identityLocal(ctx, id, claimFor)
}

// identityLocal asks this node's identity actor of the identity's
// partition.
func (r *Runtime) identityLocal(ctx context.Context, id journey.IdentityRef, claimFor string) (string, error) {
	if r.stopping.Load() {
		return "", unavailable("shutting down")
	}
	key := persistence.IdentityKey{Kind: journey.IndexKind(id.Kind), Value: id.Value}
	p := r.identityPartition(key)
	ident := r.identOf(p)
	if ident == nil {
		return "", notHosted(p)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	m := &identityReq{key: key, customer: claimFor, deadline: deadline, reply: make(chan identityReply, 1)}
	r.system.Root.Send(ident, m)
	select {
	case rep := <-m.reply:
		if rep.err != nil {
			return "", fmt.Errorf("identity %s: %w", key.Kind, rep.err)
		}
		return rep.owner, nil
	case <-ctx.Done():
		return "", fmt.Errorf("identity %s: %w", key.Kind, ctx.Err())
	}
}

func (r *Runtime) identityPartition(key persistence.IdentityKey) int {
	return persistence.PartitionOf(key.Kind+"\x00"+key.Value, len(r.parts))
}

// IdentityPartition is the partition that owns an event's first identity in
// resolution order: where HTTP admission is taken while it resolves.
func (r *Runtime) IdentityPartition(e *journey.Event) int {
	first := journey.OrderIdentities(e.Identity)[0]
	return r.identityPartition(persistence.IdentityKey{Kind: journey.IndexKind(first.Kind), Value: first.Value})
}

// LookupIdentity answers the customer an identity belongs to ("" when none)
// without claiming it: how a supervisor finds a journey by phone or email.
// The value is normalized as an event's identity is.
func (r *Runtime) LookupIdentity(ctx context.Context, kind, value string) (string, error) {
	v, rej := journey.NormalizeIdentity(kind, value)
	if rej != nil {
		return "", rej
	}
	return r.identity(ctx, journey.IdentityRef{Kind: kind, Value: v}, "")
}
