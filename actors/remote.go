package actors

// Messages between nodes (DESIGN "Messages between nodes"): in a cluster a
// partition's customers live only on its raft leader, and every node
// serves every customer. An input for a partition led elsewhere is
// forwarded over protoactor-go remote to the leader's receiver, which
// hands it to its runtime as if a local client had sent it; the answer
// comes back the same way. One forwarder actor per node sends every
// request and matches the replies: requests leave in the order callers
// made them (a connection's order holds), a request whose answer does not
// come within RequestTimeout, or whose node's endpoint dies, is answered
// unavailable (sending it again with the same id is safe).

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/throughline/throughline/actors/remotepb"
	"github.com/throughline/throughline/journey"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ClusterSource is what the runtime asks of the cluster (node/ builds it
// over membership and the replicated store).
type ClusterSource interface {
	// LeaderOf is the node that leads partition p now and its remote
	// address; ok is false while no leader is known.
	LeaderOf(p int) (node, remote string, ok bool)
	// View is the cluster as this node sees it (GET /v1/cluster).
	View() ClusterView
	// Peers are the remote addresses of the other live nodes.
	Peers() []string
	// Placement receives a partition table another node sent (TellPeers
	// with kind "placement").
	Placement(table []byte)
	// LocalVoters are partition p's voters as this node's replica has
	// them (it leads p when asked).
	LocalVoters(p int) ([]string, error)
}

const (
	// receiverName names every node's receiver of forwarded requests.
	receiverName = "throughline-forward"
	// forwardPendingMax bounds the requests a node has forwarded and not
	// yet had answered; past it a request is answered unavailable at once.
	forwardPendingMax = 1 << 16
	// forwardSweep is how often the forwarder fails overdue requests.
	forwardSweep = 100 * time.Millisecond
)

// Kinds of forwarded requests.
const (
	fwdIngest   = "ingest"
	fwdReceipt  = "receipt"
	fwdProfile  = "profile"
	fwdIdentity = "identity"
	fwdContext  = "context"
	fwdTimeline = "timeline"
	fwdEvents   = "events"
)

// startRemote starts protoactor remote on addr with this node's receiver
// and forwarder. protoactor's Start panics when it cannot listen: that is
// returned as an error. tlsCfg, when set, is mutual TLS on the gRPC server
// and on every dial (protoactor passes grpc server and dial options
// through).
func (r *Runtime) startRemote(addr string, tlsCfg *tls.Config) (err error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("actors: remote address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("actors: remote address %q: %w", addr, err)
	}
	var opts []remote.ConfigOption
	if tlsCfg != nil {
		creds := credentials.NewTLS(tlsCfg)
		opts = append(opts, remote.WithServerOptions(grpc.Creds(creds)), remote.WithDialOptions(grpc.WithTransportCredentials(creds)))
	}
	cfg := remote.Configure(host, port, opts...)
	// One connection attempt, then the endpoint is declared terminated
	// (its pending requests fail at once); the next request dials again.
	cfg.MaxRetryCount = 1
	rem := remote.NewRemote(r.system, cfg)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("actors: remote on %s: %v", addr, p)
		}
	}()
	rem.Start()
	r.remote = rem
	if _, err := r.system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &receiver{rt: r} }), receiverName); err != nil {
		return fmt.Errorf("actors: remote receiver: %w", err)
	}
	r.forwarder = r.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &forwarder{rt: r, pending: map[uint64]*pendingFwd{}}
	}))
	r.system.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*remote.EndpointTerminatedEvent); ok {
			r.system.Root.Send(r.forwarder, &endpointDown{addr: t.Address})
		}
	})
	return nil
}

// forward sends a request for partition p to its leader; false when no
// other node is known to lead p (the caller answers unavailable). done is
// called once, from the forwarder, and must not block.
func (r *Runtime) forward(p int, kind string, body any, done func(*remotepb.Reply)) bool {
	if r.forwarder == nil || r.cfg.Cluster == nil || r.stopping.Load() {
		return false
	}
	node, addr, ok := r.cfg.Cluster.LeaderOf(p)
	if !ok || node == r.cfg.Node {
		return false
	}
	return r.request(addr, kind, body, done)
}

// request sends a request to the node at addr; false when this node has
// no remote. done is called once: from the forwarder, or at once with an
// internal error when body does not encode.
func (r *Runtime) request(addr, kind string, body any, done func(*remotepb.Reply)) bool {
	if r.forwarder == nil {
		return false
	}
	b, err := json.Marshal(body)
	if err != nil {
		done(&remotepb.Reply{Code: string(journey.CodeInternal), Message: err.Error()})
		return true
	}
	r.system.Root.Send(r.forwarder, &forwardReq{addr: addr, kind: kind, body: b, done: done})
	return true
}

// forwardWait is forward for callers that wait for the answer.
func (r *Runtime) forwardWait(p int, kind string, body any) (*remotepb.Reply, bool) {
	ch := make(chan *remotepb.Reply, 1)
	if !r.forward(p, kind, body, func(rep *remotepb.Reply) { ch <- rep }) {
		return nil, false
	}
	// The forwarder answers every request it took by RequestTimeout; one
	// sent as it stopped went nowhere: the wait is bounded regardless.
	t := time.NewTimer(r.cfg.RequestTimeout + time.Second)
	defer t.Stop()
	select {
	case rep := <-ch:
		return rep, true
	case <-t.C:
		return &remotepb.Reply{Code: string(journey.CodeUnavailable), Message: "no answer from the partition's leader; send again"}, true
	}
}

// replyRejection is a reply's refusal, nil on success.
func replyRejection(rep *remotepb.Reply) *journey.Rejection {
	if rep.Code == "" {
		return nil
	}
	return &journey.Rejection{Code: journey.Code(rep.Code), Message: rep.Message}
}

type forwardReq struct {
	addr, kind string
	body       []byte
	done       func(*remotepb.Reply)
}

type endpointDown struct{ addr string }

type forwardTick struct{}

type pendingFwd struct {
	addr     string
	deadline time.Time
	done     func(*remotepb.Reply)
}

// forwarder sends this node's forwarded requests and matches the replies.
type forwarder struct {
	rt      *Runtime
	next    uint64
	pending map[uint64]*pendingFwd
	ticker  *time.Ticker
	stop    chan struct{}
}

func (f *forwarder) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		f.ticker, f.stop = time.NewTicker(forwardSweep), make(chan struct{})
		self, root, t, stop := ctx.Self(), f.rt.system.Root, f.ticker, f.stop
		go func() {
			for {
				select {
				case <-t.C:
					root.Send(self, forwardTick{})
				case <-stop:
					return
				}
			}
		}()
	case *actor.Stopping:
		f.ticker.Stop()
		close(f.stop)
		f.failAll(func(*pendingFwd) bool { return true }, "node stopping")
	case *forwardReq:
		if f.rt.blockedAddr(m.addr) {
			m.done(&remotepb.Reply{Code: string(journey.CodeUnavailable), Message: "the partition's leader is unreachable; send again with the same id"})
			return
		}
		if len(f.pending) >= forwardPendingMax {
			m.done(&remotepb.Reply{Code: string(journey.CodeUnavailable), Message: "too many requests forwarded to other nodes; nothing was stored"})
			return
		}
		f.next++
		f.pending[f.next] = &pendingFwd{addr: m.addr, deadline: time.Now().Add(f.rt.cfg.RequestTimeout), done: m.done}
		ctx.Request(remotePID(m.addr), &remotepb.Request{Id: f.next, Kind: m.kind, Body: m.body})
	case *remotepb.Reply:
		if p, ok := f.pending[m.Id]; ok {
			delete(f.pending, m.Id)
			p.done(m)
		}
	case *endpointDown:
		f.failAll(func(p *pendingFwd) bool { return p.addr == m.addr }, "the partition's leader is unreachable")
		if f.rt.cd != nil {
			go f.rt.endProxies(m.addr)
		}
	case forwardTick:
		now := time.Now()
		f.failAll(func(p *pendingFwd) bool { return now.After(p.deadline) }, "the partition's leader did not answer in time")
	}
}

// failAll answers the matching pending requests unavailable: whether they
// were stored is unknown, and sending them again with the same id is safe.
func (f *forwarder) failAll(match func(*pendingFwd) bool, why string) {
	for id, p := range f.pending {
		if match(p) {
			delete(f.pending, id)
			p.done(&remotepb.Reply{Id: id, Code: string(journey.CodeUnavailable), Message: why + "; send again with the same id"})
		}
	}
}

// receiver serves the requests other nodes forward here.
type receiver struct{ rt *Runtime }

// Bodies of forwarded requests and their answers.
type (
	fwdIngestBody struct {
		Customer string          `json:"customer"`
		In       journey.Inbound `json:"in"`
	}
	fwdReceiptBody struct {
		Receipt journey.Receipt `json:"receipt"`
	}
	fwdProfileBody struct {
		Customer string               `json:"customer"`
		Patch    journey.ProfilePatch `json:"patch"`
	}
	fwdProfileAnswer struct {
		Ack     *journey.Ack   `json:"ack"`
		Profile map[string]any `json:"profile"`
	}
	fwdIdentityBody struct {
		Kind     string `json:"kind"`
		Value    string `json:"value"`
		ClaimFor string `json:"claim_for"`
	}
	fwdCustomerBody struct {
		Customer string `json:"customer"`
		After    uint64 `json:"after"`
		Limit    int    `json:"limit"`
	}
	fwdContextAnswer struct {
		Context journey.Context `json:"context"`
		Exists  bool            `json:"exists"`
	}
	fwdTimelineAnswer struct {
		Events []journey.Event `json:"events"`
		More   bool            `json:"more"`
		Exists bool            `json:"exists"`
	}
)

func (rc *receiver) Receive(ctx actor.Context) {
	req, ok := ctx.Message().(*remotepb.Request)
	if !ok {
		return
	}
	sender, root, rt := ctx.Sender(), rc.rt.system.Root, rc.rt
	if sender != nil && rt.blockedAddr(sender.Address) {
		return // a test's network partition: as if never received
	}
	answer := func(body any, rej *journey.Rejection) {
		if sender == nil || req.Id == 0 {
			return // a tell: no answer
		}
		rep := &remotepb.Reply{Id: req.Id}
		if rej != nil {
			rep.Code, rep.Message = string(rej.Code), rej.Message
		} else if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				rep.Code, rep.Message = string(journey.CodeInternal), err.Error()
			}
			rep.Body = b
		}
		root.Send(sender, rep)
	}
	bad := func(err error) {
		answer(nil, journey.Rejectf(journey.CodeBadRequest, "forwarded %s: %v", req.Kind, err))
	}
	switch req.Kind {
	case fwdIngest:
		var b fwdIngestBody
		if err := json.Unmarshal(req.Body, &b); err != nil {
			bad(err)
			return
		}
		rt.ingest(b.Customer, b.In, 0, true, func(res Result) { answer(res.Ack, res.Reject) })
	case fwdReceipt:
		var b fwdReceiptBody
		if err := json.Unmarshal(req.Body, &b); err != nil {
			bad(err)
			return
		}
		rt.receipt(b.Receipt, true, func(rej *journey.Rejection) { answer(nil, rej) })
	case fwdProfile:
		var b fwdProfileBody
		if err := json.Unmarshal(req.Body, &b); err != nil {
			bad(err)
			return
		}
		rt.patchProfile(b.Customer, b.Patch, true, func(res Result, profile map[string]any) {
			answer(fwdProfileAnswer{Ack: res.Ack, Profile: profile}, res.Reject)
		})
	case fwdIdentity, fwdContext, fwdTimeline, fwdEvents:
		// These wait on an actor or the store: off the receiver's goroutine.
		go rc.serveWaiting(req, answer, bad)
	default:
		if !rc.receiveCluster(req.Kind, req.Body, answer, bad) && !rc.receiveBroadcast(req.Kind, req.Body, answer, bad) {
			bad(fmt.Errorf("unknown kind"))
		}
	}
}

// Block is a test-only fault hook: requests to and from the nodes at
// these remote addresses are dropped (nil: heal), as in a network
// partition.
func (r *Runtime) Block(addrs []string) {
	m := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		m[a] = true
	}
	r.blocked.Store(&m)
}

func (r *Runtime) blockedAddr(addr string) bool {
	m := r.blocked.Load()
	return m != nil && (*m)[addr]
}

// remotePID is the receiver of the node at addr.
func remotePID(addr string) *actor.PID { return actor.NewPID(addr, receiverName) }

func (rc *receiver) serveWaiting(req *remotepb.Request, answer func(any, *journey.Rejection), bad func(error)) {
	rt := rc.rt
	ctx, cancel := contextWithTimeout(rt.cfg.RequestTimeout)
	defer cancel()
	if req.Kind == fwdIdentity {
		var b fwdIdentityBody
		if err := json.Unmarshal(req.Body, &b); err != nil {
			bad(err)
			return
		}
		owner, err := rt.identityLocal(ctx, journey.IdentityRef{Kind: b.Kind, Value: b.Value}, b.ClaimFor)
		answer(owner, rejectionOf(err))
		return
	}
	var b fwdCustomerBody
	if err := json.Unmarshal(req.Body, &b); err != nil {
		bad(err)
		return
	}
	if rt.hostOf(rt.PartitionOf(b.Customer)) == nil {
		answer(nil, unavailable("this node no longer leads the customer's partition; send again"))
		return
	}
	switch req.Kind {
	case fwdContext:
		c, exists, err := rt.Context(ctx, b.Customer)
		answer(fwdContextAnswer{Context: c, Exists: exists}, rejectionOf(err))
	case fwdTimeline:
		events, more, exists, err := rt.Timeline(ctx, b.Customer, b.After, b.Limit)
		answer(fwdTimelineAnswer{Events: events, More: more, Exists: exists}, rejectionOf(err))
	case fwdEvents:
		events, err := rt.StoredEvents(ctx, b.Customer, b.After, b.Limit)
		answer(events, rejectionOf(err))
	}
}

// rejectionOf is err as a refusal: a runtime refusal as it is, anything
// else unavailable (the cause is logged by whoever made it).
func rejectionOf(err error) *journey.Rejection {
	if err == nil {
		return nil
	}
	if rej := (*journey.Rejection)(nil); errors.As(err, &rej) {
		return rej
	}
	return unavailable(err.Error())
}
