package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

var incarnations atomic.Uint64

// customer is the virtual actor of one customer: it holds the journey in
// memory and is the only writer of the customer's events.
//
// Its handler decodes, decides (journey.Decide), applies the events at once
// so the next input decides on current state, hands them to the store
// without waiting, and puts the reply in an outbox released in seq order
// when the append behind it is durable.
type customer struct {
	rt          *Runtime
	store       persistence.Store
	id          string
	incarnation uint64

	state      *journey.Customer
	durable    uint64 // last seq known durable
	pending    int    // appends handed to the store, not completed
	snapshotAt uint64 // seq of the last snapshot written
	outbox     outbox
	failed     error // the store failed: refuse everything

	passivating bool      // the host buffers our messages; stop when drained
	erasing     *eraseMsg // erase once drained, then stop (erase.go)

	// subs are the desks subscribed to the customer's live events
	// (PROTOCOL 4 subscribe), at most SubscribersMax; assigned is the agent
	// whose desk gets every new event while the conversation is its.
	subs     map[uint64]Subscriber
	assigned string

	// mailbox is the customer's own (mailboxMsg), nil until the host says.
	mailbox *customerMailbox

	// lastConn is, per channel, the connection that last carried the
	// customer's inbound there (outbounds go back to it); memory only, at
	// most lastConnMax channels.
	lastConn connNotes
}

// broadcastIdleTimeout is how long a customer activated only by broadcasts
// stays idle before its host checks it (at most IdleTimeout; residency.go).
const broadcastIdleTimeout = 3 * time.Second

// newCustomer is a customer of no id yet: it learns it when it starts
// (customerIDOf).
func newCustomer(rt *Runtime, store persistence.Store) *customer {
	return &customer{rt: rt, store: store, incarnation: incarnations.Add(1)}
}

func (c *customer) Receive(ctx actor.Context) {
	defer func() {
		// A broken invariant restarts the actor (restartCustomer); whoever
		// waits on its outbox is answered first, so no caller hangs and no
		// connection loses its credit.
		if r := recover(); r != nil {
			c.outbox.fail(journey.Rejectf(journey.CodeInternal, "internal error"))
			panic(r)
		}
	}()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.id = customerIDOf(ctx)
		c.activate(ctx)
	case *actor.Stopped, *actor.Restarting:
		// Restarting: a panic; protoactor starts a new instance on the same
		// mailbox, which activates from the store.
		c.rt.ActiveCustomers.Add(-1)
		for id, s := range c.subs {
			delete(c.subs, id)
			if s.Ended != nil {
				s.Ended()
			}
		}
	case *ingestMsg:
		c.ingest(ctx, m)
	case *patchMsg:
		c.patch(ctx, m)
	case *contextMsg:
		c.context(m)
	case *dueMsg:
		c.due(ctx, m)
	case *resultMsg:
		c.result(ctx, m)
	case *receiptMsg:
		c.receipt(ctx, m)
	case *routeOfferMsg:
		c.routeOffer(ctx, m)
	case *deskMsg:
		c.desk(ctx, m)
	case *broadcastMsg:
		if m.taken != nil {
			m.taken()
		}
		c.stepAnswered(ctx, m.input, m.done)
	case *subscribeMsg:
		c.subscribe(m)
	case *announceMsg:
		if c.failed == nil {
			for _, e := range journey.Announce(c.state) {
				c.rt.route(e)
			}
		}
	case *unsubscribeMsg:
		delete(c.subs, m.id)
	case *eraseMsg:
		c.erase(ctx, m)
	case *appendDone:
		c.appendDone(ctx, m)
	case *mailboxMsg:
		c.mailbox = m.mailbox
	case *idleCheck:
		c.idleCheck(ctx)
	case *evictReq:
		c.evictReq(ctx)
	case *passivateOK:
		c.passivating = true
		c.maybeStop(ctx)
	}
}

// idleCheck: the host routed nothing here for the idle timeout
// (residency.go); the customer asks to passivate unless an append is
// pending or desks watch it. (protoactor's own receive timeout is not used:
// its timer goroutine races with the actor; nor a timer per customer: ~150
// bytes of every resident customer.)
func (c *customer) idleCheck(ctx actor.Context) {
	if c.passivating {
		return
	}
	// A customer that could not load goes too, so the next message tries
	// again.
	if c.pending == 0 && len(c.subs) == 0 {
		ctx.Send(ctx.Parent(), &passivateReq{customer: c.id, pid: ctx.Self()})
	}
}

func (c *customer) activate(ctx actor.Context) {
	start := time.Now()
	c.rt.ActiveCustomers.Add(1)
	c.rt.Activations.Add(1)
	if err := c.load(); err != nil {
		// Without its history the customer cannot decide: it refuses until
		// it is passivated and a later message activates it again.
		c.failed = err
		c.rt.cfg.Logger.Error("customer load failed", "partition", c.rt.PartitionOf(c.id), "err", err)
	}
	if c.rt.cfg.ObserveActivation != nil {
		c.rt.cfg.ObserveActivation(time.Since(start))
	}
	if c.failed == nil && c.snapshotDue(c.durable) {
		c.saveSnapshot()
	}
	if c.failed == nil {
		if cv := c.state.Conversation; cv.Open() && cv.State == journey.StateAgent {
			c.assigned = cv.Agent
		}
		// A restarted node rebuilds routing from what customers hold.
		for _, e := range journey.Announce(c.state) {
			c.rt.route(e)
		}
	}
}

// load builds the state from the store: the snapshot and the events after
// it, or every event when the snapshot cannot be used (another format).
func (c *customer) load() (err error) {
	defer func() {
		if err != nil {
			c.state = journey.NewCustomer(c.id) // refusing, but never nil
		}
	}()
	ctx := context.Background()
	snap, events, err := c.store.Load(ctx, c.id)
	if err != nil {
		return fmt.Errorf("load customer: %w", err)
	}
	var data []byte
	snapshotAt := uint64(0)
	if snap != nil {
		data, snapshotAt = snap.Data, snap.Seq
	}
	// The last dedup block, in case the replay seals ids elsewhere than
	// the live customer did (journey.RebuildFrom).
	blocksTo, err := c.store.LastDedupBlock(ctx, c.id)
	if err != nil {
		return fmt.Errorf("load customer: %w", err)
	}
	state, err := journey.RebuildFrom(c.id, data, events, blocksTo)
	if errors.Is(err, journey.ErrGap) {
		if events, err = c.store.Events(ctx, c.id, 0, 0); err != nil {
			return fmt.Errorf("load customer: %w", err)
		}
		snapshotAt = 0 // write one this version can read
		state, err = journey.RebuildFrom(c.id, nil, events, blocksTo)
	}
	if err != nil {
		return fmt.Errorf("load customer: %w", err)
	}
	c.state, c.durable, c.snapshotAt = state, state.Seq, snapshotAt
	return nil
}

func (c *customer) ingest(ctx actor.Context, m *ingestMsg) {
	if c.failed != nil {
		m.done(Result{Reject: unavailable("store unavailable")})
		return
	}
	policy := c.rt.cfg.Policy
	if c.state.Seq == 0 && c.toWorker(m) {
		return // lookupErased reads the store
	}
	if c.state.Seq == 0 {
		// A customer with no events may have been erased: its tombstones
		// answer a late retry of one of its ids with conflict.
		if err := c.lookupErased(m); err != nil {
			m.done(Result{Reject: unavailable("idempotency look-up failed")})
			return
		}
	}
	m.in.Into = &m.room
	d := journey.Step(policy, c.state, &m.in, c.rt.cfg.Now())
	if d.NeedLookup && c.toWorker(m) {
		return // Step changed nothing: a worker steps it again
	}
	if d.NeedLookup {
		seq, found, erased, err := c.store.LookupEventIn(context.Background(), c.id, m.in.Event.ID, d.LookupFrom, d.LookupTo)
		if err != nil {
			m.done(Result{Reject: unavailable("idempotency look-up failed")})
			return
		}
		in := m.in
		in.Stored = &journey.StoredID{Erased: erased}
		if found {
			in.Stored.Seq = seq
		}
		d = journey.Step(policy, c.state, &in, c.rt.cfg.Now())
	}
	if d.Reject != nil {
		m.done(Result{Reject: d.Reject})
		return
	}
	if m.conn != 0 && m.in.Event.Channel != "" {
		c.noteConn(m.in.Event.Channel, m.conn)
	}
	ack := d.Ack
	c.commitInto(ctx, d, &m.appended)
	m.ack = ack
	c.outbox.pushAnswer(ack.Seq, m)
	c.effectsAnswered(d, m)
	c.release()
}

// toWorker puts an ingest running on the caller's goroutine back at the
// front of the customer's mailbox, ahead of what was posted meanwhile: a
// worker runs it once the caller's turn ends. False: it runs on a worker
// already, and goes on. A store read on the caller's goroutine held the
// gateway's connection and the partition's host for its time, and under
// compaction a read can take tens of milliseconds (docs/benchmarking.md,
// stop 46).
func (c *customer) toWorker(m *ingestMsg) bool {
	if !m.inline || c.mailbox == nil {
		return false
	}
	m.inline = false
	c.mailbox.requeue(m)
	return true
}

// lookupErased asks the store whether the event's id belonged to this
// customer, or to any customer, before an erase (a tombstone: a provider's
// late retry reaches a new customer through the erased identity) and tells
// journey so.
func (c *customer) lookupErased(m *ingestMsg) error {
	ctx, id := context.Background(), m.in.Event.ID
	_, _, erased, err := c.store.LookupEvent(ctx, c.id, id)
	if err != nil {
		return err
	}
	if !erased {
		erased, err = c.rt.engine.Store(persistence.PartitionOf(id, c.rt.Partitions())).LookupErasedID(ctx, id)
		if err != nil {
			return err
		}
	}
	if erased {
		m.in.Stored = &journey.StoredID{Erased: true}
	}
	return nil
}

func (c *customer) patch(ctx actor.Context, m *patchMsg) {
	if c.failed != nil {
		m.done(Result{Reject: unavailable("store unavailable")}, nil)
		return
	}
	d := journey.Step(c.rt.cfg.Policy, c.state, &m.patch, c.rt.cfg.Now())
	if d.Reject != nil {
		m.done(Result{Reject: d.Reject}, nil)
		return
	}
	profile := c.state.ProfileCopy()
	c.commit(ctx, d)
	ack := d.Ack
	c.outbox.push(ack.Seq, func(err error) {
		if err != nil {
			m.done(Result{Reject: asRejection(err)}, nil)
			return
		}
		m.done(Result{Ack: ack}, profile)
	})
	c.effects(d)
	c.release()
}

// context answers with the state as of now, once it is durable: when events
// are in flight, the answer waits in the outbox for them.
func (c *customer) context(m *contextMsg) {
	if c.failed != nil {
		m.reply <- contextReply{err: unavailable("store unavailable")}
		return
	}
	seq := c.state.Seq
	view := journey.Context{Seq: seq}
	var ranking journey.Ranking
	switch {
	case m.nextBestAction:
		ranking = c.nextBestAction()
	case !m.seqOnly:
		view = c.state.Context(seq)
	}
	c.outbox.push(seq, func(err error) {
		if err != nil {
			m.reply <- contextReply{err: err}
			return
		}
		m.reply <- contextReply{ctx: view, ranking: ranking, exists: seq > 0}
	})
	c.release()
}

func (c *customer) due(ctx actor.Context, m *dueMsg) {
	if c.failed != nil {
		return // it stays due: the host delivers it again (dueRescanEvery)
	}
	d := journey.Step(c.rt.cfg.Policy, c.state, &journey.Due{At: m.work.At, Kind: m.work.Kind, Ref: m.work.Ref}, c.rt.cfg.Now())
	c.commit(ctx, d)
	c.effects(d)
	c.release()
}

// result records the bot's turn or a workflow step's work.
func (c *customer) result(ctx actor.Context, m *resultMsg) {
	if c.failed != nil {
		return // the conversation waits for the customer's next message
	}
	d := journey.Step(c.rt.cfg.Policy, c.state, m.input, c.rt.cfg.Now())
	c.commit(ctx, d)
	c.effects(d)
	c.release()
}

// receipt records a gateway's receipt for one of the customer's outbounds.
func (c *customer) receipt(ctx actor.Context, m *receiptMsg) {
	c.stepAnswered(ctx, &m.receipt, m.done)
}

// stepAnswered steps an input whose sender waits for its answer: the
// refusal at once, or nil once the events are durable.
func (c *customer) stepAnswered(ctx actor.Context, in journey.Input, done func(*journey.Rejection)) {
	if c.failed != nil {
		done(unavailable("store unavailable"))
		return
	}
	d := journey.Step(c.rt.cfg.Policy, c.state, in, c.rt.cfg.Now())
	if d.Reject != nil {
		done(d.Reject)
		return
	}
	c.commit(ctx, d)
	c.outbox.push(c.state.Seq, func(err error) {
		if err != nil {
			done(asRejection(err))
			return
		}
		done(nil)
	})
	c.effects(d)
	c.release()
}

func (c *customer) noteConn(channel string, conn uint64) { c.lastConn.note(channel, conn) }

// commit hands a decision's events (Step applied them already), with the
// due work changes, to the store, and asks the bot at once. The caller
// queues its reply, then the outbounds (queueOutbounds): an ack goes out
// before the messages its event caused.
func (c *customer) commit(ctx actor.Context, d journey.Decision) { c.commitInto(ctx, d, nil) }

// commitInto is commit with the append's completion posted in done, when
// given (an ingest's own, ingestMsg.appended), else in a new one.
func (c *customer) commitInto(ctx actor.Context, d journey.Decision, done *appendDone) {
	for _, req := range d.Bot {
		c.rt.tasks.bot(req)
	}
	for _, t := range d.Workflow {
		c.rt.tasks.workflow(t)
	}
	for _, err := range d.RuleErrors {
		c.rt.ruleFailed(err)
	}
	if len(d.Events) == 0 && len(d.DueAdd) == 0 && len(d.DueDone) == 0 && len(d.Marks) == 0 {
		return
	}
	req := appendRequests.Get().(*persistence.AppendRequest)
	defer recycleAppendRequest(req)
	req.Customer, req.PrevSeq, req.Events = c.id, c.state.Seq-uint64(len(d.Events)), d.Events
	req.IDsInBlocks, req.DedupBlock = d.IDsInBlocks, d.DedupBlock
	for _, m := range d.Marks {
		req.Marks = append(req.Marks, persistence.Mark{Broadcast: m.Broadcast, Value: m.Value})
	}
	for _, w := range d.DueAdd {
		req.DueAdd = append(req.DueAdd, persistence.DueWork{At: w.At, Customer: c.id, Kind: w.Kind, Ref: w.Ref})
	}
	for _, w := range d.DueDone {
		req.DueDelete = append(req.DueDelete, persistence.DueWork{At: w.At, Customer: c.id, Kind: w.Kind, Ref: w.Ref})
	}
	c.pending++
	self, root, inc, last := ctx.Self(), c.rt.system.Root, c.incarnation, c.state.Seq
	elastic := isElastic(ctx.Message())
	var marks *atomic.Uint64
	if len(req.Marks) > 0 {
		marks = &c.rt.marksVersion[c.store.Partition()]
	}
	// The host hears of due work once it is durable (tellDue).
	var host *actor.PID
	var earliest time.Time
	if len(d.DueAdd) > 0 {
		host = ctx.Parent()
		earliest = slices.MinFunc(d.DueAdd, func(a, b journey.Due) int { return a.At.Compare(b.At) }).At
	}
	rt, p, mailbox := c.rt, c.store.Partition(), c.mailbox
	c.store.Append(context.Background(), req, func(err error) {
		if marks != nil {
			marks.Add(1) // durable (or failed): counts cached before are stale
		}
		if host != nil && err == nil {
			rt.tellDue(host, p, earliest)
		}
		msg := done
		if msg == nil {
			msg = new(appendDone)
		}
		*msg = appendDone{incarnation: inc, lastSeq: last, err: err, elastic: elastic}
		posted := false
		switch {
		case mailbox == nil:
		case elastic: // on the elastic workers, after live work
			posted = mailbox.post(msg)
		default:
			posted = mailbox.postHere(msg)
		}
		if !posted {
			root.Send(self, msg)
		}
	})
}

// appendRequests are reused: the store copies a request before Append
// returns (persistence.Store), and a fresh one with its marks was a
// twentieth of a broadcast target's bytes.
var appendRequests = sync.Pool{New: func() any { return new(persistence.AppendRequest) }}

// appendRequestKept is the most marks or due work a pooled request keeps
// room for.
const appendRequestKept = 8

func recycleAppendRequest(r *persistence.AppendRequest) {
	*r = persistence.AppendRequest{Marks: emptied(r.Marks), DueAdd: emptied(r.DueAdd), DueDelete: emptied(r.DueDelete)}
	appendRequests.Put(r)
}

// emptied is s cleared and empty, keeping its array for the next request
// unless it holds more than appendRequestKept.
func emptied[T any](s []T) []T {
	clear(s)
	if cap(s) > appendRequestKept {
		return nil
	}
	return s[:0]
}

func (c *customer) appendDone(ctx actor.Context, m *appendDone) {
	if m.incarnation != c.incarnation {
		return
	}
	if m.here && c.staysOffCompletions(m) {
		// On the store's completion goroutine (postHere): a worker takes
		// it, after what was posted meanwhile.
		m.here = false
		c.mailbox.post(m)
		return
	}
	c.pending--
	if m.err != nil {
		c.appendFailed(ctx, m.err)
		return
	}
	c.durable = m.lastSeq
	c.state.Durable(m.lastSeq)
	c.release()
	if c.snapshotDue(c.durable) && c.pending == 0 {
		c.saveSnapshot()
	}
	c.maybeStop(ctx)
}

// staysOffCompletions says whether the completion m is a worker's to
// run, not the store's completion goroutine's: it would wait for the
// store (to reload the customer after a failure, to save a snapshot, to
// stop or erase it: maybeStop), or it releases an effect, not only
// answers (an effect may wait: a web chat visitor's outbound is written
// to its socket at once, up to its write timeout). Answers only queue
// (Runtime.Ingest's done must not block).
func (c *customer) staysOffCompletions(m *appendDone) bool {
	last := c.pending == 1
	return m.err != nil || last && (c.snapshotDue(m.lastSeq) || c.erasing != nil || c.passivating) ||
		!c.outbox.onlyAnswers(m.lastSeq)
}

// snapshotDue says whether a snapshot is due once the events up to seq
// are durable: SnapshotEvery of them since the last one.
func (c *customer) snapshotDue(seq uint64) bool {
	return seq-c.snapshotAt >= uint64(c.rt.cfg.SnapshotEvery)
}

// appendFailed: the state now holds events the store does not. Whoever
// waits is refused; the appends still in flight were chained on the failed
// one and fail too, so their completions are dropped (a new incarnation);
// and the state is loaded again from the store. When the store itself has
// failed (fatal to the node) the load fails and the customer refuses
// everything until the process exits.
func (c *customer) appendFailed(ctx actor.Context, err error) {
	c.outbox.fail(unavailableFrom(err))
	c.rt.cfg.Logger.Warn("append failed: customer reloads", "partition", c.rt.PartitionOf(c.id), "err", err)
	c.incarnation = incarnations.Add(1)
	c.pending = 0
	c.failed = c.load()
	c.maybeStop(ctx)
}

func (c *customer) release() { c.outbox.release(c.durable) }

// effects puts a decision's effects in the outbox, each released once the
// events up to it are durable: outbounds to the gateways, routing changes
// to the routing actor, frames to agents' desks, and the events themselves
// to the desks that follow the customer.
func (c *customer) effects(d journey.Decision) { c.effectsAnswered(d, nil) }

// effectsAnswered is effects for a decision that answers an ingest
// (answered, whose answer is in the outbox): its events go to analytics
// with the answer when they end at the answer's seq.
func (c *customer) effectsAnswered(d journey.Decision, answered *ingestMsg) {
	c.queueOutbounds(d.Outbounds)
	if len(d.Routing) > 0 || len(d.Desk) > 0 {
		routing, desk := d.Routing, d.Desk
		c.outbox.push(c.state.Seq, func(err error) {
			if err != nil {
				return
			}
			for _, e := range routing {
				c.rt.route(e)
			}
			for _, m := range desk {
				c.rt.desk(m.Agent, m)
			}
		})
	}
	c.publish(d.Events)
	c.countOfferResponses(d.Events)
	if n := len(d.Events); n > 0 {
		if m := answered; m != nil && m.ack != nil && m.ack.Seq == d.Events[n-1].Seq {
			m.observed, m.analytics, m.partition = d.Events, c.rt.analytics, c.store.Partition()
			return
		}
		c.observeOnceDurable(d.Events)
	}
}

// observeOnceDurable hands events to analytics once they are durable (a
// function of its own: the closure's variables, declared in effects, were
// on the heap for every decision).
func (c *customer) observeOnceDurable(events []journey.Event) {
	partition := c.store.Partition()
	c.outbox.push(events[len(events)-1].Seq, func(err error) {
		if err == nil {
			c.rt.analytics.observe(partition, events)
		}
	})
}

// queueOutbounds puts outbounds in the outbox: each goes to the gateways
// once the events up to its message.sent are durable.
func (c *customer) queueOutbounds(obs []journey.Outbound) {
	if len(obs) == 0 || c.rt.cfg.Deliver == nil {
		return // before deliver is taken: the closures' variable is on the heap
	}
	deliver := c.rt.cfg.Deliver
	if c.rt.cd != nil && c.rt.cfg.DeliverHere != nil {
		deliver = c.rt.deliverInCluster
	}
	for _, o := range obs {
		conn := c.lastConn.of(o.Channel)
		c.outbox.push(max(o.Seq, c.state.Seq), func(err error) {
			if err == nil {
				deliver(o, conn)
			}
		})
	}
}

// maybeStop ends the passivation handshake, or runs an erase, once every
// append is durable.
func (c *customer) maybeStop(ctx actor.Context) {
	if c.pending > 0 {
		return
	}
	if c.erasing != nil {
		c.eraseNow(ctx)
		return
	}
	if !c.passivating {
		return
	}
	if c.failed == nil && c.state.Seq-c.snapshotAt >= passivationSnapshotMin {
		c.saveSnapshot()
	}
	ctx.Stop(ctx.Self())
}

// passivationSnapshotMin is how many events since the last snapshot make a
// passivating customer write one. Fewer are replayed at the next activation
// about as fast as a snapshot decodes (it carries the latest
// journey.TimelineMax events itself), while encoding one costs a JSON
// encoding of the journey and a write: under a broadcast, most of the
// segment passivates with a handful of new events each, and those snapshots
// were a sixth of the node's CPU.
const passivationSnapshotMin = journey.TimelineMax

func (c *customer) saveSnapshot() {
	snap := &persistence.Snapshot{Seq: c.state.Seq, Data: c.state.EncodeSnapshot()}
	if err := c.store.SaveSnapshot(context.Background(), c.id, snap); err != nil {
		c.rt.cfg.Logger.Warn("snapshot failed", "partition", c.rt.PartitionOf(c.id), "err", err)
		return
	}
	c.snapshotAt = snap.Seq
}

// outbox holds replies until the seq behind each is durable; released in
// seq order. It holds at most one entry per admitted message.
type outbox struct {
	items []outboxItem
	head  int
}

// outboxItem is an effect (send), or an ingest's answer (answer, with
// its ack): the answer is an item of its own kind because every event has
// one, and a closure for it was an object on the heap an event.
type outboxItem struct {
	seq    uint64
	send   func(error)
	answer *ingestMsg
}

func (o *outbox) push(seq uint64, send func(error)) {
	o.items = append(o.items, outboxItem{seq: seq, send: send})
}

// pushAnswer queues m's answer: m.ack once seq is durable.
func (o *outbox) pushAnswer(seq uint64, m *ingestMsg) {
	o.items = append(o.items, outboxItem{seq: seq, answer: m})
}

func (it *outboxItem) run(err error) {
	switch {
	case it.send != nil:
		it.send(err)
	case err != nil:
		it.answer.done(Result{Reject: asRejection(err)})
	default:
		m := it.answer
		m.done(Result{Ack: m.ack})
		if m.observed != nil {
			m.analytics.observe(m.partition, m.observed)
		}
	}
}

// onlyAnswers says whether every item release(durable) would run is an
// ingest's answer.
func (o *outbox) onlyAnswers(durable uint64) bool {
	for i := o.head; i < len(o.items) && o.items[i].seq <= durable; i++ {
		if o.items[i].answer == nil {
			return false
		}
	}
	return true
}

func (o *outbox) release(durable uint64) {
	for o.head < len(o.items) && o.items[o.head].seq <= durable {
		it := o.items[o.head]
		o.items[o.head] = outboxItem{}
		o.head++
		it.run(nil)
	}
	if o.head == len(o.items) {
		o.items, o.head = o.emptied(), 0
	}
}

// outboxKeep is the capacity an emptied outbox keeps; a burst's larger
// array is let go rather than kept by a resident customer (~1 KiB each).
// An array of one is let go too: a customer with one append at a time (most
// of them, a broadcast's targets all) would keep an object for the
// collector to scan only to spare a 24-byte allocation.
const outboxKeep = 8

func (o *outbox) emptied() []outboxItem {
	if cap(o.items) > outboxKeep || cap(o.items) <= 1 {
		return nil
	}
	return o.items[:0]
}

func (o *outbox) fail(err error) {
	for o.head < len(o.items) {
		it := o.items[o.head]
		o.items[o.head] = outboxItem{}
		o.head++
		it.run(err)
	}
	o.items, o.head = o.emptied(), 0
}

// asRejection maps an internal error to the client-visible rejection.
func asRejection(err error) *journey.Rejection {
	var r *journey.Rejection
	if errors.As(err, &r) {
		return r
	}
	return unavailableFrom(err)
}

func unavailableFrom(err error) *journey.Rejection {
	if errors.Is(err, persistence.ErrUnavailable) || errors.Is(err, persistence.ErrConflict) {
		// A commit that failed may still be in the WAL, which decides at
		// restart: the outcome is unknown, and a retry with the same id is
		// safe either way.
		return unavailable("store failed: the event may or may not be stored; retry with the same id")
	}
	var r *journey.Rejection
	if errors.As(err, &r) {
		return r
	}
	return journey.Rejectf(journey.CodeInternal, "internal error")
}
