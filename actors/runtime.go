package actors

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/throughline/throughline/actors/remotepb"
	"github.com/throughline/throughline/cluster"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// Config of the actor runtime. The zero value of a field means its default.
type Config struct {
	// IdleTimeout passivates a customer actor that received nothing for this
	// long. Default 2m.
	IdleTimeout time.Duration
	// AdmissionMax is how many HTTP requests may be in flight per partition;
	// past it requests are refused with unavailable. Default 4096.
	AdmissionMax int
	// SnapshotEvery saves a customer's snapshot once this many events were
	// stored since the last one (besides at passivation). Default 1000.
	SnapshotEvery int
	// RequestTimeout bounds a synchronous request to an actor. Default 5s.
	RequestTimeout time.Duration
	// ObserveActivation, when set, is told how long each activation took
	// (loading the snapshot and the events after it). It must not block.
	ObserveActivation func(time.Duration)
	// Node is this node's name in Table. Default "n1".
	Node string
	// Table places partitions on nodes; this node hosts the partitions the
	// table gives it. Default: every partition here (a cluster of one).
	Table *cluster.Table
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger

	// Policy is how customers decide beyond recording (bot, rules,
	// governance); nil: inbound events are only recorded.
	Policy *journey.Policy
	// Bot answers the bot's turns; it is called on the bot pool's
	// goroutines, never a customer's, and must honour ctx. Nil: no bot
	// (Policy.Bot must be nil too).
	Bot BotFunc
	// Workflow runs workflow steps' work (codes, HTTP calls); nil: a
	// WorkflowRunner with an http.Client of its own.
	Workflow *WorkflowRunner
	// TaskWorkers is how many bot turns and workflow steps run at once;
	// default 8.
	TaskWorkers int
	// TaskQueue bounds the work waiting for a worker; past it the work is
	// answered at once as failed (the customer is handed over to a
	// person). Default 1024.
	TaskQueue int
	// BotTimeout bounds one bot turn; default 15s.
	BotTimeout time.Duration
	// Desk hands a frame to an agent's desk (offer, assigned, revoked, or a
	// new event of a customer assigned to it). It must not block. Nil:
	// desks get nothing.
	Desk func(agent string, m journey.DeskMessage)
	// DeskGrace is how long an agent whose desks all disconnected keeps its
	// presence and assignments; default 30s.
	DeskGrace time.Duration
	// Queues and Agents configure routing (PROTOCOL 6).
	Queues []journey.QueuePolicy
	Agents []journey.AgentConfig
	// BroadcastRate is how many customers broadcasts ask per second on this
	// node (broadcasts.rate); default BroadcastRateDefault.
	BroadcastRate int
	// AuditRetention is how long audit entries are kept (audit.retention);
	// default AuditRetentionDefault.
	AuditRetention time.Duration
	// AuditMax bounds the audit entries kept, the oldest deleted first
	// (audit.max_entries); default AuditMaxDefault.
	AuditMax int
	// Deliver hands an outbound to the channel gateways once its
	// message.sent is durable; conn is the connection that last carried the
	// customer's inbound on that channel (0: none). It must not block. Nil:
	// outbounds stay pending (their due work sends them again).
	Deliver func(o journey.Outbound, conn uint64)
	// DeliverHere, in a cluster, delivers an outbound when this node's
	// gateways serve its channel (false: they do not). An outbound whose
	// customer's node has no gateway for its channel goes to a node that
	// has, else waits where Deliver keeps it. It must not block.
	DeliverHere func(o journey.Outbound) bool
	// OfferResponded is told of each customer's offer.accepted or
	// offer.declined once durable: the offer's label (a configured offer id,
	// else journey.OfferLabelOther) and the response (accepted, declined).
	// It must not block. Nil: not counted.
	OfferResponded func(offer, response string)
	// Remote is the address protoactor remote listens on for the requests
	// other nodes forward here (cluster.remote); "" : none.
	Remote string
	// ResidentMax bounds the customers in memory on this node; past it the
	// least recently active passivate (residency.go). Each hosted
	// partition holds its share. Default ResidentMaxDefault.
	ResidentMax int
	// Memory is the node's memory budget (memory.go); the zero value: none.
	Memory MemoryConfig
	// RemoteTLS, when set, is mutual TLS on the remote's gRPC server and
	// on its dials to other nodes (cluster.tls); nil: plaintext.
	RemoteTLS *tls.Config
	// Cluster, when set, says where partitions are led: the runtime then
	// hosts no partition at start (node/ hosts each when this node becomes
	// its raft leader) and forwards inputs for partitions led elsewhere.
	Cluster ClusterSource
}

func (c *Config) ensureDefaults() {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.AdmissionMax <= 0 {
		c.AdmissionMax = 4096
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = 1000
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Node == "" {
		c.Node = "n1"
	}
	if c.TaskWorkers <= 0 {
		c.TaskWorkers = 8
	}
	if c.TaskQueue <= 0 {
		c.TaskQueue = 1024
	}
	if c.Workflow == nil {
		c.Workflow = &WorkflowRunner{}
	}
	if c.BotTimeout <= 0 {
		c.BotTimeout = 15 * time.Second
	}
	if c.AuditRetention <= 0 {
		c.AuditRetention = AuditRetentionDefault
	}
	if c.AuditMax <= 0 {
		c.AuditMax = AuditMaxDefault
	}
	if c.BroadcastRate <= 0 {
		c.BroadcastRate = BroadcastRateDefault
	}
	if c.DeskGrace <= 0 {
		c.DeskGrace = 30 * time.Second
	}
	if c.ResidentMax <= 0 {
		c.ResidentMax = ResidentMaxDefault
	}
	c.Memory.ensureDefaults()
	if c.Policy == nil {
		c.Policy = &journey.Policy{}
	}
	p := c.Policy.WithDefaults()
	c.Policy = &p
}

// Runtime is one node's actors: a partition host per partition.
type Runtime struct {
	cfg      Config
	engine   persistence.Engine
	system   *actor.ActorSystem
	dispatch *poolDispatcher
	parts    []atomic.Pointer[partitionActors] // nil: the partition is not hosted here
	// marksVersion counts, per partition, the durable changes of broadcast
	// marks (appends with marks, erasures): a count of marks cached at one
	// version is still right.
	marksVersion []atomic.Uint64
	// dueArmed is, per partition, when its host's due timer fires (unix
	// nanoseconds), 0 while none is armed or a tick is scanning: a customer
	// whose new due work comes no earlier does not tell the host (host.go).
	dueArmed  []atomic.Int64
	hostMu    sync.Mutex // serializes HostPartition and UnhostPartition
	admission []atomic.Int64
	stopping  atomic.Bool
	stopOnce  sync.Once
	tasks     *taskPool
	routing   *actor.PID
	bcast     *broadcasts
	audit     *auditLog
	remote    *remote.Remote                  // nil: not in a cluster
	forwarder *actor.PID                      // nil: not in a cluster
	cd        *clusterDesks                   // nil: not in a cluster
	blocked   atomic.Pointer[map[string]bool] // remote addresses cut off by a test (Block)
	analytics *analyticsRunner

	// Gauges read by /metrics.
	ActiveCustomers atomic.Int64
	Activations     atomic.Int64
	// Evictions counts customers passivated before their idle timeout, for
	// the resident cap or the memory budget.
	Evictions  atomic.Int64
	hostedN    atomic.Int64 // partitions hosted here
	memory     *memoryGuard
	RuleErrors atomic.Int64 // rule evaluations that failed (counted as not matching)
	// AnalyticsDropped counts durable events the analytics queue had no
	// room for (read back from the store instead).
	AnalyticsDropped atomic.Int64

	ruleLog struct {
		sync.Mutex
		last map[string]time.Time // rule id -> when its failure was last logged
	}
}

// Start spawns a host for every partition the table gives this node; each
// loads its due work.
func Start(cfg Config, engine persistence.Engine) (*Runtime, error) {
	cfg.ensureDefaults()
	if cfg.Table == nil {
		t, err := cluster.Local(cfg.Node, engine.Partitions())
		if err != nil {
			return nil, err
		}
		cfg.Table = t
	}
	if cfg.Table.Partitions() != engine.Partitions() {
		return nil, fmt.Errorf("actors: the partition table has %d partitions, the store %d", cfg.Table.Partitions(), engine.Partitions())
	}
	logger := cfg.Logger.With("subsystem", "actors")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With("lib", "protoactor")
	}))
	system.EventStream.Subscribe(deadLetter)
	n := engine.Partitions()
	r := &Runtime{cfg: cfg, engine: engine, system: system, dispatch: newPoolDispatcher(dispatchWorkers, dispatchQueue, dispatchThroughput), parts: make([]atomic.Pointer[partitionActors], n), marksVersion: make([]atomic.Uint64, n), dueArmed: make([]atomic.Int64, n), admission: make([]atomic.Int64, n)}
	r.cfg.Logger = logger
	if cfg.Policy.Bot != nil && cfg.Bot == nil {
		return nil, fmt.Errorf("actors: a bot policy without a bot")
	}
	r.tasks = newTaskPool(r)
	router, err := journey.NewRouter(cfg.Queues, cfg.Agents)
	if err != nil {
		return nil, err
	}
	r.routing = system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &routingActor{rt: r, router: router, grace: map[string]*time.Timer{}, conns: map[string]int{}}
	}))
	r.analytics = newAnalyticsRunner(r)
	if cfg.Remote != "" {
		if err := r.startRemote(cfg.Remote, cfg.RemoteTLS); err != nil {
			return nil, err
		}
	}
	if cfg.Cluster != nil && r.forwarder != nil {
		r.cd = &clusterDesks{proxies: map[uint64]proxySub{}, presence: map[string]fwdPresenceBody{}, conns: map[string]int{}, stop: make(chan struct{})}
		go r.watchRouter()
	}
	r.audit = newAuditLog(r, cfg.AuditRetention, cfg.AuditMax)
	r.bcast = newBroadcasts(r, cfg.BroadcastRate)
	if cfg.Cluster == nil {
		for _, p := range cfg.Table.Hosted(cfg.Node) {
			if err := r.HostPartition(p); err != nil {
				return nil, err
			}
		}
	}
	if r.cfg.Memory.Limit > 0 {
		r.memory = startMemoryGuard(r, r.cfg.Memory)
	}
	return r, nil
}

// restartCustomer: a customer actor that panicked (a broken invariant) is
// restarted on the same mailbox, so no message to it is lost, and loads
// again from the store.
func restartCustomer(any) actor.Directive { return actor.RestartDirective }

// restartsMax bounds a customer's restarts within a second; past it the
// actor stops, and what still reaches its PID is refused (deadLetter).
const restartsMax = 100

// deadLetter answers a customer message that reached a stopped actor (one
// that failed past restartsMax), so its sender is not left waiting.
func deadLetter(evt any) {
	if dl, ok := evt.(*actor.DeadLetterEvent); ok {
		if m, ok := dl.Message.(customerMsg); ok {
			refuse(m, unavailable("customer stopped; retry with the same id"))
		}
	}
}

// Partitions is the partition count.
func (r *Runtime) Partitions() int { return len(r.parts) }

// PartitionOf is the partition of a customer.
func (r *Runtime) PartitionOf(customer string) int {
	return persistence.PartitionOf(customer, len(r.parts))
}

// Ingest hands a validated, resolved inbound event to its customer. done is
// called exactly once, from an actor goroutine, the store's completion
// goroutine (customerMailbox.postHere) or the caller's own before Ingest
// returns (a refusal; or any answer the customer gives at once, a retry's,
// when its host and it run on the caller's goroutine: postOrRun,
// host.post), and must not block. The
// caller has admitted the event (connection credit or Admit).
func (r *Runtime) Ingest(customer string, in journey.Inbound, done func(Result)) {
	r.IngestFrom(customer, in, 0, done)
}

// IngestFrom is Ingest for an event a channel connection carried: the
// customer's outbounds on that channel go back to that connection while it
// serves the channel (PROTOCOL section 2).
func (r *Runtime) IngestFrom(customer string, in journey.Inbound, conn uint64, done func(Result)) {
	r.ingest(customer, in, conn, false, done)
}

// ingest is IngestFrom; forwarded says another node sent it here, so it is
// not forwarded again.
func (r *Runtime) ingest(customer string, in journey.Inbound, conn uint64, forwarded bool, done func(Result)) {
	if r.stopping.Load() {
		done(Result{Reject: unavailable("shutting down")})
		return
	}
	p := r.PartitionOf(customer)
	pa := r.parts[p].Load()
	if pa == nil {
		if forwarded || !r.forward(p, fwdIngest, fwdIngestBody{Customer: customer, In: in}, func(rep *remotepb.Reply) {
			if rej := replyRejection(rep); rej != nil {
				done(Result{Reject: rej})
				return
			}
			var ack journey.Ack
			if err := json.Unmarshal(rep.Body, &ack); err != nil {
				done(Result{Reject: unavailable("a forwarded answer: " + err.Error())})
				return
			}
			done(Result{Ack: &ack})
		}) {
			done(Result{Reject: notHosted(p)})
		}
		return
	}
	if forwarded && r.MemoryPressure() {
		// The sending node's gateway checked its own budget; this node,
		// the leader, checks its own.
		done(Result{Reject: unavailable("the partition's leader is past its memory budget; nothing was stored, retry later")})
		return
	}
	// Posted to the host's mailbox (bench ingest: RootContext.Send to the
	// host, its middleware, PID and process look-ups and protoactor's
	// queue, took 0.33 s of the server's 16 s; the post takes 0.23 s), or
	// routed here and now when the host is idle (postOrRun): routing an
	// ingest waits for nothing (it may spawn the customer, whose activation
	// runs on its own mailbox), and a host of 64 is idle nearly always, so
	// this spares a worker woken for each event. The customer's ingest runs
	// here too when its mailbox is idle (host.post).
	m := &ingestMsg{customer: customer, in: in, conn: conn, done: done}
	if !pa.hostMailbox.postOrRun(m, &m.here) {
		done(Result{Reject: unavailable("the partition is no longer hosted here; retry")})
	}
}

// Receipt hands a channel gateway's receipt to the outbound's customer.
// done is called once, from an actor goroutine, with nil or a refusal (an
// id that is not an outbound); it must not block.
func (r *Runtime) Receipt(rc journey.Receipt, done func(*journey.Rejection)) {
	r.receipt(rc, false, done)
}

func (r *Runtime) receipt(rc journey.Receipt, forwarded bool, done func(*journey.Rejection)) {
	customer, _, ok := journey.ParseOutboundID(rc.Outbound)
	switch {
	case !ok:
		done(journey.Rejectf(journey.CodeBadRequest, "unknown outbound id %q", rc.Outbound))
		return
	case r.stopping.Load():
		done(unavailable("shutting down"))
		return
	}
	p := r.PartitionOf(customer)
	h := r.hostOf(p)
	if h == nil {
		if forwarded || !r.forward(p, fwdReceipt, fwdReceiptBody{Receipt: rc}, func(rep *remotepb.Reply) { done(replyRejection(rep)) }) {
			done(notHosted(p))
		}
		return
	}
	r.system.Root.Send(h, &receiptMsg{customer: customer, receipt: rc, done: done})
}

// toCustomer sends a message to its customer through the host; false when
// the runtime stops or does not host the customer.
func (r *Runtime) toCustomer(m customerMsg) bool {
	if r.stopping.Load() {
		return false
	}
	h := r.hostOf(r.PartitionOf(m.customerID()))
	if h == nil {
		return r.cd != nil && r.forwardCustomerMsg(m)
	}
	r.system.Root.Send(h, m)
	return true
}

// PatchProfile merges a patch into a customer's profile; done receives the
// profile once the profile.updated event is durable.
func (r *Runtime) PatchProfile(customer string, patch journey.ProfilePatch, done func(Result, map[string]any)) {
	r.patchProfile(customer, patch, false, done)
}

func (r *Runtime) patchProfile(customer string, patch journey.ProfilePatch, forwarded bool, done func(Result, map[string]any)) {
	if r.stopping.Load() {
		done(Result{Reject: unavailable("shutting down")}, nil)
		return
	}
	p := r.PartitionOf(customer)
	h := r.hostOf(p)
	if h == nil {
		if forwarded || !r.forward(p, fwdProfile, fwdProfileBody{Customer: customer, Patch: patch}, func(rep *remotepb.Reply) {
			if rej := replyRejection(rep); rej != nil {
				done(Result{Reject: rej}, nil)
				return
			}
			var a fwdProfileAnswer
			if err := json.Unmarshal(rep.Body, &a); err != nil {
				done(Result{Reject: unavailable("a forwarded answer: " + err.Error())}, nil)
				return
			}
			done(Result{Ack: a.Ack}, a.Profile)
		}) {
			done(Result{Reject: notHosted(p)}, nil)
		}
		return
	}
	r.system.Root.Send(h, &patchMsg{customer: customer, patch: patch, done: done})
}

// Context returns a customer's journey context as of its durable seq; exists
// is false for a customer with no stored events.
func (r *Runtime) Context(ctx context.Context, customer string) (journey.Context, bool, error) {
	if p := r.PartitionOf(customer); r.hostOf(p) == nil {
		var a fwdContextAnswer
		if err := r.forwardRead(p, fwdContext, fwdCustomerBody{Customer: customer}, &a); err != nil {
			return journey.Context{}, false, err
		}
		return a.Context, a.Exists, nil
	}
	return r.askContext(ctx, customer, false)
}

// askContext asks a customer for its context; seqOnly skips rendering it
// when only the durable seq is wanted.
func (r *Runtime) askContext(ctx context.Context, customer string, seqOnly bool) (journey.Context, bool, error) {
	rep := r.askCustomer(ctx, &contextMsg{customer: customer, seqOnly: seqOnly, reply: make(chan contextReply, 1)})
	return rep.ctx, rep.exists, rep.err
}

// askCustomer sends m to its customer and waits for the reply, at most
// RequestTimeout.
func (r *Runtime) askCustomer(ctx context.Context, m *contextMsg) contextReply {
	if r.stopping.Load() {
		return contextReply{err: unavailable("shutting down")}
	}
	p := r.PartitionOf(m.customer)
	h := r.hostOf(p)
	if h == nil {
		return contextReply{err: notHosted(p)}
	}
	r.system.Root.Send(h, m)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	select {
	case rep := <-m.reply:
		return rep
	case <-ctx.Done():
		return contextReply{err: fmt.Errorf("customer context: %w", ctx.Err())}
	}
}

// Timeline returns up to limit durable events of a customer after seq
// after, and whether later durable events exist. exists is false for an
// unknown customer.
func (r *Runtime) Timeline(ctx context.Context, customer string, after uint64, limit int) (events []journey.Event, more, exists bool, err error) {
	if p := r.PartitionOf(customer); r.hostOf(p) == nil {
		var a fwdTimelineAnswer
		if err := r.forwardRead(p, fwdTimeline, fwdCustomerBody{Customer: customer, After: after, Limit: limit}, &a); err != nil {
			return nil, false, false, err
		}
		return a.Events, a.More, a.Exists, nil
	}
	c, exists, err := r.askContext(ctx, customer, true)
	if err != nil || !exists {
		return nil, false, exists, err
	}
	durable := c.Seq
	if after >= durable {
		return []journey.Event{}, false, true, nil
	}
	n := min(uint64(limit), durable-after)
	events, err = r.store(customer).Events(ctx, customer, after, int(n))
	if err != nil {
		return nil, false, true, fmt.Errorf("timeline: %w", err)
	}
	more = len(events) > 0 && events[len(events)-1].Seq < durable
	return events, more, true, nil
}

func (r *Runtime) store(customer string) persistence.Store {
	return r.engine.Store(r.PartitionOf(customer))
}

// Admit takes one of a partition's admission slots for an HTTP request;
// false means the partition is full (answer unavailable). Release returns it.
func (r *Runtime) Admit(partition int) bool {
	if r.admission[partition].Add(1) > int64(r.cfg.AdmissionMax) {
		r.admission[partition].Add(-1)
		return false
	}
	return true
}

// Release returns an admission slot taken by Admit.
func (r *Runtime) Release(partition int) { r.admission[partition].Add(-1) }

// Stop refuses new work, passivates every customer (draining pending
// appends and writing snapshots) and stops the actor system. The store is
// the caller's to close afterwards.
func (r *Runtime) Stop(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		r.stopping.Store(true)
		if r.memory != nil {
			r.memory.close()
		}
		if r.cd != nil {
			close(r.cd.stop)
		}
		r.bcast.stop() // the targets in flight are answered before customers passivate
		r.hostMu.Lock()
		var hosted []*partitionActors
		for p := range r.parts {
			// Taken out, so an UnhostPartition racing with Stop finds
			// nothing to stop twice.
			if pa := r.parts[p].Swap(nil); pa != nil {
				hosted = append(hosted, pa)
			}
		}
		r.hostMu.Unlock()
		// Every host passivates its customers at once; then they stop.
		errs := make(chan error, len(hosted))
		for _, pa := range hosted {
			go func() { errs <- r.stopPartition(ctx, pa) }()
		}
		for range hosted {
			if e := <-errs; e != nil && err == nil {
				err = fmt.Errorf("actors: stop: %w", e)
			}
		}
		if err != nil {
			return
		}
		r.analytics.close() // after the customers: their last events are in
		_ = r.system.Root.StopFuture(r.routing).Wait()
		if r.remote != nil {
			_ = r.system.Root.StopFuture(r.forwarder).Wait()
			r.remote.Shutdown(false)
		}
		r.tasks.stop()
		r.system.Shutdown()
		r.dispatch.close()
	})
	return err
}

// Stopping reports whether Stop was called.
func (r *Runtime) Stopping() bool { return r.stopping.Load() }

// ruleLogEvery is how often one rule's evaluation failures are logged.
const ruleLogEvery = time.Minute

// ruleFailed counts a rule that failed to evaluate and logs it, at most
// once a minute per rule (rule ids are bounded by the config).
func (r *Runtime) ruleFailed(err *journey.RuleError) {
	r.RuleErrors.Add(1)
	r.ruleLog.Lock()
	defer r.ruleLog.Unlock()
	if r.ruleLog.last == nil {
		r.ruleLog.last = map[string]time.Time{}
	}
	now := time.Now()
	if now.Sub(r.ruleLog.last[err.Rule.ID]) < ruleLogEvery {
		return
	}
	r.ruleLog.last[err.Rule.ID] = now
	r.cfg.Logger.Warn("rule failed to evaluate; it counts as not matching (has() tests for optional keys)", "rule", err.Rule.ID, "err", err.Err)
}

func unavailable(msg string) *journey.Rejection {
	return journey.Rejectf(journey.CodeUnavailable, "%s", msg)
}

// newCustomerID is a random id for a customer first seen by an identity:
// never derived from the identity, so an erased customer cannot come back.
func newCustomerID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("actors: crypto/rand: " + err.Error())
	}
	return "c-" + hex.EncodeToString(b[:])
}

// notHosted is the refusal of an input for a partition this node does not
// lead and cannot forward (no leader known, or it came forwarded).
func notHosted(p int) *journey.Rejection {
	return unavailable(fmt.Sprintf("partition %d has no leader this node can reach now; send again with the same id", p))
}

// forwardRead asks partition p's leader for a read and decodes its answer
// into out; a partition with no reachable leader is unavailable.
func (r *Runtime) forwardRead(p int, kind string, body, out any) error {
	rep, ok := r.forwardWait(p, kind, body)
	if !ok {
		return notHosted(p)
	}
	if rej := replyRejection(rep); rej != nil {
		return rej
	}
	if err := json.Unmarshal(rep.Body, out); err != nil {
		return unavailable("a forwarded answer: " + err.Error())
	}
	return nil
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
