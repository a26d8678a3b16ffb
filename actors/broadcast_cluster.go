package actors

// Broadcasts across nodes: the API calls go to the coordinator (the node
// hosting broadcastsPartition), the coordinator tells every node the
// active broadcasts, the workers report the partitions done, and the
// coordinator asks every node for the counts of the partitions it hosts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/throughline/throughline/actors/remotepb"
	"github.com/throughline/throughline/journey"
)

// Kinds of the broadcasts' node-to-node messages.
const (
	fwdBcastStart    = "bcast_start"    // request, to the coordinator: a new broadcast
	fwdBcastStatus   = "bcast_status"   // request, to the coordinator
	fwdBcastList     = "bcast_list"     // request, to the coordinator
	fwdBcastCancel   = "bcast_cancel"   // request, to the coordinator
	fwdBcastResolve  = "bcast_resolve"  // request, to the coordinator
	fwdBcastActive   = "bcast_active"   // tell, from the coordinator: the active broadcasts
	fwdBcastDone     = "bcast_done"     // tell, to the coordinator: partitions done in a phase
	fwdBcastProgress = "bcast_progress" // request, from the coordinator: counts of the partitions hosted
)

type bcastActiveBody struct {
	From   string            `json:"from"` // the coordinator's node name
	Active []activeBroadcast `json:"active"`
}

type bcastDoneBody struct {
	ID         string `json:"id"`
	Phase      string `json:"phase"`
	Partitions []int  `json:"partitions"`
}

type bcastProgressBody struct {
	ID      string `json:"id"`
	Running bool   `json:"running"`
}

type bcastResolveBody struct {
	ID      string                 `json:"id"`
	Request journey.ResolveRequest `json:"request"`
}

// coordinatorElsewhere reports whether the broadcasts' coordinator is
// another node (this one does not host broadcastsPartition).
func (r *Runtime) coordinatorElsewhere() bool {
	return r.cd != nil && r.hostOf(broadcastsPartition) == nil
}

// broadcastRejection is how the coordinator answers a forwarded call's
// error: the runtime's errors as the PROTOCOL codes the gateway gives them.
func broadcastRejection(id string, err error) *journey.Rejection {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBroadcastNotFound):
		return journey.Rejectf(journey.CodeNotFound, "broadcast %s is unknown", id)
	case errors.Is(err, ErrBroadcastResolved):
		return journey.Rejectf(journey.CodeConflict, "broadcast %s is already resolved", id)
	case errors.Is(err, ErrBroadcastsBusy):
		return journey.Rejectf(journey.CodeUnavailable, "%v; retry when one is done", err)
	}
	return rejectionOf(err)
}

// StartBroadcast validates and records a broadcast (durable when it
// returns) and starts working through its targets; it returns the id.
func (r *Runtime) StartBroadcast(ctx context.Context, req *journey.BroadcastRequest) (string, error) {
	if r.stopping.Load() {
		return "", unavailable("shutting down")
	}
	if r.coordinatorElsewhere() {
		var id string
		err := r.forwardRead(broadcastsPartition, fwdBcastStart, req, &id)
		return id, err
	}
	return r.bcast.Start(ctx, req)
}

// BroadcastStatus is a broadcast's state and progress
// (ErrBroadcastNotFound for an unknown id).
func (r *Runtime) BroadcastStatus(ctx context.Context, id string) (BroadcastStatus, error) {
	if r.coordinatorElsewhere() {
		var st BroadcastStatus
		err := r.forwardRead(broadcastsPartition, fwdBcastStatus, id, &st)
		return st, err
	}
	return r.bcast.Status(ctx, id)
}

// CancelBroadcast stops a running broadcast (ErrBroadcastNotFound).
func (r *Runtime) CancelBroadcast(ctx context.Context, id string) error {
	if r.coordinatorElsewhere() {
		var ok bool
		return r.forwardRead(broadcastsPartition, fwdBcastCancel, id, &ok)
	}
	return r.bcast.Cancel(ctx, id)
}

// ResolveBroadcast records and sends a broadcast's resolve
// (ErrBroadcastNotFound, ErrBroadcastResolved).
func (r *Runtime) ResolveBroadcast(ctx context.Context, id string, req *journey.ResolveRequest) error {
	if r.stopping.Load() {
		return unavailable("shutting down")
	}
	if r.coordinatorElsewhere() {
		var ok bool
		return r.forwardRead(broadcastsPartition, fwdBcastResolve, bcastResolveBody{ID: id, Request: *req}, &ok)
	}
	return r.bcast.Resolve(ctx, id, req)
}

// Broadcasts lists the remembered broadcasts, newest first, at most limit.
func (r *Runtime) Broadcasts(ctx context.Context, limit int) ([]BroadcastSummary, error) {
	if r.coordinatorElsewhere() {
		var list []BroadcastSummary
		err := r.forwardRead(broadcastsPartition, fwdBcastList, limit, &list)
		return list, err
	}
	return r.bcast.List(limit)
}

// peersProgress asks every other node for its counts of a broadcast's
// marks, partition by partition; a node that does not answer in time is
// left out.
func (b *broadcasts) peersProgress(ctx context.Context, id string, running bool) map[int]journey.BroadcastProgress {
	peers := b.rt.cfg.Cluster.Peers()
	answers := make(chan *remotepb.Reply, len(peers))
	for _, addr := range peers {
		if !b.rt.request(addr, fwdBcastProgress, bcastProgressBody{ID: id, Running: running}, func(rep *remotepb.Reply) { answers <- rep }) {
			answers <- &remotepb.Reply{Code: string(journey.CodeUnavailable)}
		}
	}
	out := map[int]journey.BroadcastProgress{}
	for range peers {
		select {
		case rep := <-answers:
			var parts map[int]journey.BroadcastProgress
			if rep.Code == "" && json.Unmarshal(rep.Body, &parts) == nil {
				for p, part := range parts {
					if _, ok := out[p]; !ok {
						out[p] = part
					}
				}
			}
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// receiveBroadcast serves the broadcasts' kinds; false for another kind.
func (rc *receiver) receiveBroadcast(kind string, body []byte, answer func(any, *journey.Rejection), bad func(error)) bool {
	rt := rc.rt
	b := rt.bcast
	// coordinated runs a forwarded API call on the coordinator.
	coordinated := func(id string, call func(ctx context.Context) (any, error)) {
		go func() {
			if rt.hostOf(broadcastsPartition) == nil {
				answer(nil, notHosted(broadcastsPartition))
				return
			}
			ctx, cancel := contextWithTimeout(rt.cfg.RequestTimeout)
			defer cancel()
			v, err := call(ctx)
			answer(v, broadcastRejection(id, err))
		}()
	}
	decode := func(v any) bool {
		if err := json.Unmarshal(body, v); err != nil {
			bad(fmt.Errorf("%s: %w", kind, err))
			return false
		}
		return true
	}
	switch kind {
	case fwdBcastStart:
		var req journey.BroadcastRequest
		if decode(&req) {
			coordinated("", func(ctx context.Context) (any, error) { return b.Start(ctx, &req) })
		}
	case fwdBcastStatus:
		var id string
		if decode(&id) {
			coordinated(id, func(ctx context.Context) (any, error) { return b.Status(ctx, id) })
		}
	case fwdBcastList:
		var limit int
		if decode(&limit) {
			coordinated("", func(context.Context) (any, error) { return b.List(limit) })
		}
	case fwdBcastCancel:
		var id string
		if decode(&id) {
			coordinated(id, func(ctx context.Context) (any, error) { return true, b.Cancel(ctx, id) })
		}
	case fwdBcastResolve:
		var req bcastResolveBody
		if decode(&req) {
			coordinated(req.ID, func(ctx context.Context) (any, error) { return true, b.Resolve(ctx, req.ID, &req.Request) })
		}
	case fwdBcastActive:
		var a bcastActiveBody
		// Only the coordinator's word counts: a node that lost
		// broadcastsPartition a moment ago may still be pushing.
		if decode(&a) && rt.cfg.Cluster != nil {
			if node, _, ok := rt.cfg.Cluster.LeaderOf(broadcastsPartition); ok && node == a.From {
				b.apply(a.Active)
			}
		}
	case fwdBcastDone:
		var d bcastDoneBody
		if decode(&d) {
			go b.partsDone(d.ID, d.Phase, d.Partitions)
		}
	case fwdBcastProgress:
		var q bcastProgressBody
		if decode(&q) {
			go func() {
				ctx, cancel := contextWithTimeout(rt.cfg.RequestTimeout)
				defer cancel()
				parts, err := b.localProgress(ctx, q.ID, q.Running)
				answer(parts, rejectionOf(err))
			}()
		}
	default:
		return false
	}
	return true
}
