package actors

// Desks and routing across nodes (PROTOCOL 8: "agent desks connected to any
// node get offers and live events of customers on any node; queues and
// agents form one router for the whole cluster").
//
//   - The router is a cluster singleton on the leader of routerPartition.
//     Every node's runtime sends its routing changes, presence and desk
//     connections there; the router's offers, revocations and releases go
//     to the customers wherever they are led.
//   - A frame for an agent's desk goes to every node: the node holding
//     that agent's desk connection delivers it, the others have none.
//   - A desk subscribed to a customer led elsewhere gets the live events
//     through a proxy subscription on the leader; when that leader is lost
//     the subscription ends (the desk reconnects and resumes from its last
//     seq, PROTOCOL 4).
//   - When the router moves, every node re-announces its routed customers
//     and replays its desks' presence and connections, as a restarted node
//     rebuilds its router.

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/throughline/throughline/actors/remotepb"
	"github.com/throughline/throughline/analytics"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

const (
	// routerPartition's leader runs the cluster's router.
	routerPartition = 0
	// routerWatch is how often a node looks where the router is.
	routerWatch = 250 * time.Millisecond
	// proxySubsMax bounds the subscriptions a node holds for desks whose
	// customers are led elsewhere.
	proxySubsMax = 1 << 14
)

// Kinds of cluster desk and routing messages.
const (
	fwdDesk         = "desk"          // tell: a frame for an agent's desk
	fwdDeskCmd      = "desk_cmd"      // request: an agent's command to a customer
	fwdSubscribe    = "subscribe"     // request: a proxy subscription
	fwdUnsubscribe  = "unsubscribe"   // tell
	fwdSubEvent     = "sub_event"     // tell: a live event of a proxy subscription
	fwdRouteOffer   = "route_offer"   // tell: the router's offer to its customer
	fwdRevoke       = "revoke"        // tell: the router takes back an offer
	fwdRelease      = "release"       // tell: the router releases an agent's conversation
	fwdRoute        = "route"         // tell: a customer's routing change to the router
	fwdOfferRefused = "offer_refused" // tell
	fwdPresence     = "presence"      // request
	fwdDeskConn     = "desk_conn"     // tell
	fwdRouting      = "routing"       // request: the router's view
	fwdOutbound     = "outbound"      // request: deliver if your gateways serve its channel
	fwdPlacement    = "placement"     // tell: a new partition table (node/)
	fwdVoters       = "voters"        // request: a partition's voters, from its leader
	fwdAnalytics    = "analytics"     // request: the analytics part of the partitions a node leads
	fwdAuditWrite   = "audit_write"   // request: an audit entry, to the audit partition's leader
	fwdAuditRead    = "audit_read"    // request: audit entries, from the audit partition's leader
	fwdErase        = "erase"         // request: erase a customer, on its leader
	fwdReleaseIDs   = "release_ids"   // request: release an erased customer's identities of a partition
)

// fwdReleaseBody is a forwarded release of identities.
type fwdReleaseBody struct {
	Partition  int                       `json:"partition"`
	Customer   string                    `json:"customer"`
	Identities []persistence.IdentityKey `json:"identities"`
}

// identityReleaser is a store engine that can release identities of a
// partition it leads (the replicated engine).
type identityReleaser interface {
	ReleaseIdentities(ctx context.Context, p int, customer string, ids []persistence.IdentityKey) error
}

// ReleaseIdentitiesOn releases a customer's identities of partition p
// through its leader (persistence.ReplicatedConfig.ReleaseElsewhere).
func (r *Runtime) ReleaseIdentitiesOn(ctx context.Context, p int, customer string, ids []persistence.IdentityKey) error {
	var ok bool
	return r.forwardRead(p, fwdReleaseIDs, fwdReleaseBody{Partition: p, Customer: customer, Identities: ids}, &ok)
}

// Bodies of the cluster desk and routing messages.
type (
	fwdDeskBody struct {
		Agent   string              `json:"agent"`
		Message journey.DeskMessage `json:"message"`
	}
	fwdDeskCmdBody struct {
		Customer string              `json:"customer"`
		Cmd      journey.DeskCommand `json:"cmd"`
	}
	fwdSubscribeBody struct {
		Customer   string `json:"customer"`
		ID         uint64 `json:"id"`
		Agent      string `json:"agent"`
		Supervisor bool   `json:"supervisor"`
		Reply      string `json:"reply"` // the desk's node's remote address
	}
	fwdSubEventBody struct {
		ID    uint64        `json:"id"`
		Event journey.Event `json:"event"`
	}
	fwdRouteOfferBody struct {
		Offer journey.Offer `json:"offer"`
	}
	fwdInputBody struct {
		Customer string                `json:"customer"`
		Revoke   *journey.RevokeOffer  `json:"revoke,omitempty"`
		Release  *journey.ReleaseAgent `json:"release,omitempty"`
	}
	fwdRouteBody struct {
		Effect journey.RouteEffect `json:"effect"`
	}
	fwdOfferRefusedBody struct {
		Conversation string `json:"conversation"`
		Agent        string `json:"agent"`
	}
	fwdPresenceBody struct {
		Agent    string            `json:"agent"`
		Status   string            `json:"status"`
		Reason   string            `json:"reason"`
		Capacity *journey.Capacity `json:"capacity,omitempty"`
	}
	fwdDeskConnBody struct {
		Agent     string `json:"agent"`
		Connected bool   `json:"connected"`
	}
	fwdRoutingAnswer struct {
		Queues []journey.QueueView `json:"queues"`
		Agents []journey.AgentView `json:"agents"`
	}
)

// clusterDesks is a node's share of desks and routing in a cluster.
type clusterDesks struct {
	mu sync.Mutex
	// proxies are this node's desks' subscriptions to customers led
	// elsewhere, by subscription id, with the node they follow.
	proxies map[uint64]proxySub
	// presence is this node's desks' last presence per agent, and conns
	// their open connections: replayed to a router that moved.
	presence map[string]fwdPresenceBody
	conns    map[string]int
	// router is where the router was last seen ("": here).
	router     string
	routerSeen bool
	stop       chan struct{}
}

type proxySub struct {
	sub  Subscriber
	addr string
}

// tell sends a message that needs no answer to the node at addr.
func (r *Runtime) tell(addr, kind string, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		r.cfg.Logger.Error("cluster message not encoded", "kind", kind, "err", err)
		return
	}
	if r.blockedAddr(addr) {
		return
	}
	r.system.Root.Send(remotePID(addr), &remotepb.Request{Kind: kind, Body: b})
}

// TellPeers sends body, as it is, to every other live node's receiver
// (kind "placement": ClusterSource.Placement there).
func (r *Runtime) TellPeers(kind string, body []byte) {
	if r.cd == nil {
		return
	}
	for _, addr := range r.cfg.Cluster.Peers() {
		r.system.Root.Send(remotePID(addr), &remotepb.Request{Kind: kind, Body: body})
	}
}

// LeaderVoters are partition p's voters as its leader (another node) has
// them.
func (r *Runtime) LeaderVoters(p int) ([]string, error) {
	var voters []string
	err := r.forwardRead(p, fwdVoters, p, &voters)
	return voters, err
}

// leaderAddr is the remote address of partition p's leader when it is
// another node, "" when it is this node or unknown (ok false).
func (r *Runtime) leaderAddr(p int) (addr string, ok bool) {
	if r.cfg.Cluster == nil || r.forwarder == nil {
		return "", false
	}
	node, addr, ok := r.cfg.Cluster.LeaderOf(p)
	if !ok || node == r.cfg.Node {
		return "", false
	}
	return addr, true
}

// routerAddr is where the router runs: "" for this node (or a cluster of
// one, or no leader known: the local router holds the changes meanwhile).
func (r *Runtime) routerAddr() string {
	addr, _ := r.leaderAddr(routerPartition)
	return addr
}

// deskElsewhere sends a desk frame to every other node.
func (r *Runtime) deskElsewhere(agent string, m journey.DeskMessage) {
	for _, addr := range r.cfg.Cluster.Peers() {
		r.tell(addr, fwdDesk, fwdDeskBody{Agent: agent, Message: m})
	}
}

// deliverInCluster delivers an outbound here when this node's gateways
// serve its channel, else asks the other nodes one by one, else keeps it
// waiting here (its due work sends it again).
func (r *Runtime) deliverInCluster(o journey.Outbound, conn uint64) {
	if conn != 0 {
		r.cfg.Deliver(o, conn) // the customer wrote through a connection here
		return
	}
	if r.cfg.DeliverHere(o) {
		return
	}
	r.offerOutbound(o, conn, r.cfg.Cluster.Peers())
}

func (r *Runtime) offerOutbound(o journey.Outbound, conn uint64, peers []string) {
	if len(peers) == 0 {
		r.cfg.Deliver(o, conn)
		return
	}
	if !r.request(peers[0], fwdOutbound, o, func(rep *remotepb.Reply) {
		if rep.Code == "" && string(rep.Body) == "true" {
			return
		}
		r.offerOutbound(o, conn, peers[1:])
	}) {
		r.cfg.Deliver(o, conn)
	}
}

// forwardCustomerMsg forwards a customer message to the customer's leader;
// false when there is none to forward to.
func (r *Runtime) forwardCustomerMsg(m customerMsg) bool {
	p := r.PartitionOf(m.customerID())
	addr, ok := r.leaderAddr(p)
	if !ok {
		return false
	}
	switch m := m.(type) {
	case *deskMsg:
		return r.forward(p, fwdDeskCmd, fwdDeskCmdBody{Customer: m.customer, Cmd: m.cmd}, func(rep *remotepb.Reply) { m.done(replyRejection(rep)) })
	case *subscribeMsg:
		return r.subscribeRemote(p, addr, m)
	case *unsubscribeMsg:
		r.cd.mu.Lock()
		delete(r.cd.proxies, m.id)
		r.cd.mu.Unlock()
		r.tell(addr, fwdUnsubscribe, fwdSubEventBody{ID: m.id, Event: journey.Event{Customer: m.customer}})
		return true
	case *routeOfferMsg:
		r.tell(addr, fwdRouteOffer, fwdRouteOfferBody{Offer: m.offer})
		return true
	case *resultMsg:
		switch in := m.input.(type) {
		case *journey.RevokeOffer:
			r.tell(addr, fwdRevoke, fwdInputBody{Customer: m.customer, Revoke: in})
			return true
		case *journey.ReleaseAgent:
			r.tell(addr, fwdRelease, fwdInputBody{Customer: m.customer, Release: in})
			return true
		}
	}
	return false
}

// subscribeRemote registers a proxy subscription on the customer's leader:
// its live events come back as sub_event tells.
func (r *Runtime) subscribeRemote(p int, addr string, m *subscribeMsg) bool {
	r.cd.mu.Lock()
	if len(r.cd.proxies) >= proxySubsMax {
		r.cd.mu.Unlock()
		m.done(0, unavailable("too many subscriptions to customers on other nodes"))
		return true
	}
	r.cd.proxies[m.sub.ID] = proxySub{sub: m.sub, addr: addr}
	r.cd.mu.Unlock()
	body := fwdSubscribeBody{Customer: m.customer, ID: m.sub.ID, Agent: m.sub.Agent, Supervisor: m.sub.Supervisor, Reply: r.cfg.Remote}
	return r.forward(p, fwdSubscribe, body, func(rep *remotepb.Reply) {
		if rej := replyRejection(rep); rej != nil {
			r.cd.mu.Lock()
			delete(r.cd.proxies, m.sub.ID)
			r.cd.mu.Unlock()
			m.done(0, rej)
			return
		}
		var seq uint64
		if err := json.Unmarshal(rep.Body, &seq); err != nil {
			m.done(0, unavailable("a forwarded answer: "+err.Error()))
			return
		}
		m.done(seq, nil)
	})
}

// proxyEvent hands a live event from another node to its desk.
func (r *Runtime) proxyEvent(id uint64, e journey.Event) {
	r.cd.mu.Lock()
	ps, ok := r.cd.proxies[id]
	r.cd.mu.Unlock()
	if ok && !ps.sub.Send(e) {
		r.Unsubscribe(e.Customer, id)
	}
}

// endProxies ends the subscriptions that followed customers on the node
// at addr, which is unreachable: their desks resubscribe from their last
// seq (on the new leader).
func (r *Runtime) endProxies(addr string) {
	r.cd.mu.Lock()
	var ended []Subscriber
	for id, ps := range r.cd.proxies {
		if ps.addr == addr {
			ended = append(ended, ps.sub)
			delete(r.cd.proxies, id)
		}
	}
	r.cd.mu.Unlock()
	for _, s := range ended {
		if s.Ended != nil {
			s.Ended()
		}
	}
}

// watchRouter follows where the router is; when it moves, this node
// re-announces its routed customers and replays its desks' presence and
// connections to it.
func (r *Runtime) watchRouter() {
	t := time.NewTicker(routerWatch)
	defer t.Stop()
	for {
		select {
		case <-r.cd.stop:
			return
		case <-t.C:
		}
		node, _, ok := r.cfg.Cluster.LeaderOf(routerPartition)
		if !ok {
			continue
		}
		r.cd.mu.Lock()
		moved := !r.cd.routerSeen || r.cd.router != node
		r.cd.router, r.cd.routerSeen = node, true
		presence := make([]fwdPresenceBody, 0, len(r.cd.presence))
		for _, p := range r.cd.presence {
			presence = append(presence, p)
		}
		conns := make(map[string]int, len(r.cd.conns))
		for a, n := range r.cd.conns {
			conns[a] = n
		}
		r.cd.mu.Unlock()
		if !moved {
			continue
		}
		r.cfg.Logger.Info("the router is on a node", "node", node)
		for agent, n := range conns {
			for range n {
				r.toRouterDeskConn(agent, true)
			}
		}
		for _, p := range presence {
			r.toRouterPresence(p, func(journey.AgentView, error) {})
		}
		for _, p := range r.Hosted() {
			if h := r.hostOf(p); h != nil {
				r.system.Root.Send(h, &reannounce{})
			}
		}
	}
}

// reannounce asks a host to have its routed customers announce their
// conversations to the router again.
type reannounce struct{}

// announceMsg asks a customer to announce its routed conversation.
type announceMsg struct{ customer string }

func (m *announceMsg) customerID() string { return m.customer }

// toRouterRoute sends a customer's routing change to the router.
func (r *Runtime) toRouterRoute(e journey.RouteEffect) {
	if addr := r.routerAddr(); addr != "" {
		r.tell(addr, fwdRoute, fwdRouteBody{Effect: e})
		return
	}
	r.system.Root.Send(r.routing, &routeMsg{effect: e})
}

// toRouterRefused tells the router a customer refused its offer.
func (r *Runtime) toRouterRefused(conversation, agent string) {
	if addr := r.routerAddr(); addr != "" {
		r.tell(addr, fwdOfferRefused, fwdOfferRefusedBody{Conversation: conversation, Agent: agent})
		return
	}
	r.system.Root.Send(r.routing, &offerRefused{conversation: conversation, agent: agent})
}

func (r *Runtime) toRouterPresence(p fwdPresenceBody, reply func(journey.AgentView, error)) {
	if r.routerAddr() != "" && r.forward(routerPartition, fwdPresence, p, func(rep *remotepb.Reply) {
		if rej := replyRejection(rep); rej != nil {
			reply(journey.AgentView{}, rej)
			return
		}
		var v journey.AgentView
		if err := json.Unmarshal(rep.Body, &v); err != nil {
			reply(journey.AgentView{}, unavailable("a forwarded answer: "+err.Error()))
			return
		}
		reply(v, nil)
	}) {
		return
	}
	r.system.Root.Send(r.routing, &presenceMsg{agent: p.Agent, status: p.Status, reason: p.Reason, capacity: p.Capacity, reply: reply})
}

func (r *Runtime) toRouterDeskConn(agent string, connected bool) {
	if addr := r.routerAddr(); addr != "" {
		r.tell(addr, fwdDeskConn, fwdDeskConnBody{Agent: agent, Connected: connected})
		return
	}
	r.system.Root.Send(r.routing, &deskConnMsg{agent: agent, connected: connected})
}

// receiveCluster serves the desk and routing kinds forwarded here; false
// for a kind it does not know.
func (rc *receiver) receiveCluster(kind string, body []byte, answer func(any, *journey.Rejection), bad func(error)) bool {
	rt := rc.rt
	decode := func(v any) bool {
		if err := json.Unmarshal(body, v); err != nil {
			bad(err)
			return false
		}
		return true
	}
	switch kind {
	case fwdDesk:
		var b fwdDeskBody
		if decode(&b) && rt.cfg.Desk != nil {
			b.Message.Agent = b.Agent
			rt.cfg.Desk(b.Agent, b.Message)
		}
	case fwdDeskCmd:
		var b fwdDeskCmdBody
		if decode(&b) {
			rt.localCustomer(&deskMsg{customer: b.Customer, cmd: b.Cmd, done: func(rej *journey.Rejection) { answer(nil, rej) }},
				func() { answer(nil, notHosted(rt.PartitionOf(b.Customer))) })
		}
	case fwdSubscribe:
		var b fwdSubscribeBody
		if !decode(&b) {
			return true
		}
		reply, id := b.Reply, b.ID
		sub := Subscriber{ID: id, Agent: b.Agent, Supervisor: b.Supervisor, Send: func(e journey.Event) bool {
			rt.tell(reply, fwdSubEvent, fwdSubEventBody{ID: id, Event: e})
			return true
		}}
		rt.localCustomer(&subscribeMsg{customer: b.Customer, sub: sub, done: func(seq uint64, rej *journey.Rejection) { answer(seq, rej) }},
			func() { answer(nil, notHosted(rt.PartitionOf(b.Customer))) })
	case fwdUnsubscribe:
		var b fwdSubEventBody
		if decode(&b) {
			rt.localCustomer(&unsubscribeMsg{customer: b.Event.Customer, id: b.ID}, func() {})
		}
	case fwdSubEvent:
		var b fwdSubEventBody
		if decode(&b) {
			rt.proxyEvent(b.ID, b.Event)
		}
	case fwdRouteOffer:
		var b fwdRouteOfferBody
		if decode(&b) {
			o := b.Offer
			rt.localCustomer(&routeOfferMsg{customer: o.Waiting.Customer, offer: o}, func() { rt.toRouterRefused(o.Waiting.Conversation, o.Agent) })
		}
	case fwdRevoke, fwdRelease:
		var b fwdInputBody
		if decode(&b) {
			var in journey.Input = b.Revoke
			if b.Release != nil {
				in = b.Release
			}
			if in != nil {
				rt.localCustomer(&resultMsg{customer: b.Customer, input: in}, func() {})
			}
		}
	case fwdRoute:
		var b fwdRouteBody
		if decode(&b) {
			rt.system.Root.Send(rt.routing, &routeMsg{effect: b.Effect})
		}
	case fwdOfferRefused:
		var b fwdOfferRefusedBody
		if decode(&b) {
			rt.system.Root.Send(rt.routing, &offerRefused{conversation: b.Conversation, agent: b.Agent})
		}
	case fwdPresence:
		var b fwdPresenceBody
		if decode(&b) {
			rt.system.Root.Send(rt.routing, &presenceMsg{agent: b.Agent, status: b.Status, reason: b.Reason, capacity: b.Capacity,
				reply: func(v journey.AgentView, err error) { answer(v, rejectionOf(err)) }})
		}
	case fwdDeskConn:
		var b fwdDeskConnBody
		if decode(&b) {
			rt.system.Root.Send(rt.routing, &deskConnMsg{agent: b.Agent, connected: b.Connected})
		}
	case fwdVoters:
		var p int
		if decode(&p) && rt.cfg.Cluster != nil {
			go func() { // raft answers on its own loop: not on the receiver's
				voters, err := rt.cfg.Cluster.LocalVoters(p)
				answer(voters, rejectionOf(err))
			}()
		}
	case fwdAnalytics:
		var w analyticsWindow
		if decode(&w) {
			go func() {
				ctx, cancel := contextWithTimeout(rt.cfg.RequestTimeout)
				defer cancel()
				parts, err := rt.localAnalytics(ctx, w.Since, w.Until)
				if err != nil {
					answer(nil, rejectionOf(err))
					return
				}
				answer(analytics.Merge(parts...), nil)
			}()
		}
	case fwdErase:
		var customer string
		if decode(&customer) {
			go func() {
				if rt.hostOf(rt.PartitionOf(customer)) == nil {
					answer(nil, notHosted(rt.PartitionOf(customer)))
					return
				}
				err := rt.Erase(context.Background(), customer)
				answer(err == nil, rejectionOf(err))
			}()
		}
	case fwdReleaseIDs:
		var b fwdReleaseBody
		if decode(&b) {
			go func() {
				rel, ok := rt.engine.(identityReleaser)
				if !ok {
					answer(nil, unavailable("this node's store does not release identities"))
					return
				}
				ctx, cancel := contextWithTimeout(rt.cfg.RequestTimeout)
				defer cancel()
				err := rel.ReleaseIdentities(ctx, b.Partition, b.Customer, b.Identities)
				answer(err == nil, rejectionOf(err))
			}()
		}
	case fwdAuditWrite, fwdAuditRead:
		go func() {
			ctx, cancel := contextWithTimeout(rt.cfg.RequestTimeout)
			defer cancel()
			if rt.hostOf(auditPartition) == nil {
				answer(nil, notHosted(auditPartition))
				return
			}
			if kind == fwdAuditWrite {
				var e AuditEntry
				if err := json.Unmarshal(body, &e); err != nil {
					bad(err)
					return
				}
				err := rt.audit.write(ctx, e)
				answer(err == nil, rejectionOf(err))
				return
			}
			var b auditReadBody
			if err := json.Unmarshal(body, &b); err != nil {
				bad(err)
				return
			}
			entries, err := rt.audit.read(ctx, b.Since, b.Limit)
			answer(entries, rejectionOf(err))
		}()
	case fwdPlacement:
		if rt.cfg.Cluster != nil {
			rt.cfg.Cluster.Placement(body)
		}
	case fwdOutbound:
		var o journey.Outbound
		if decode(&o) {
			answer(rt.cfg.DeliverHere != nil && rt.cfg.DeliverHere(o), nil)
		}
	case fwdRouting:
		go func() {
			q, a, err := rt.routingLocal()
			answer(fwdRoutingAnswer{Queues: q, Agents: a}, rejectionOf(err))
		}()
	default:
		return false
	}
	return true
}

// localCustomer hands m to its customer on this node; otherwise (the
// partition moved on) runs refuse.
func (r *Runtime) localCustomer(m customerMsg, refuse func()) {
	if r.stopping.Load() {
		refuse()
		return
	}
	h := r.hostOf(r.PartitionOf(m.customerID()))
	if h == nil {
		refuse()
		return
	}
	r.system.Root.Send(h, m)
}
