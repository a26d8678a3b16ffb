package actors

import (
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// poolDispatcher runs actor mailboxes on long-lived goroutines.
// protoactor's default dispatcher starts a new goroutine every time a
// mailbox gets work; each starts on a small stack and grows it on the
// first deep call (JSON, Pebble), and the profile under the ingest bench
// showed ~9% of CPU in stack copying. Workers here keep their grown stacks.
//
// Schedule never blocks: when every worker is busy and the queue is full,
// the mailbox runs on a goroutine of its own, as with protoactor's default.
// Actors block only on the store (activation reads, identity claims), never
// on each other, so a busy pool delays work but cannot deadlock it.
//
// Elastic work (a broadcast's targets, outbound receipts: work nobody waits
// on) has a queue and a few workers of its own (see customerMailbox). The
// Go scheduler has no priorities: with every worker free to take a
// broadcast's mailboxes, a broadcast at its rate kept dozens of them
// runnable, and each hop of a live event (the customer, the commit's
// completion, the ack) waited behind them all. On its own workers it has
// at most elasticWorkers goroutines running or runnable.
type poolDispatcher struct {
	tasks      chan func()
	elastic    chan func()
	throughput int
	stop       chan struct{}
	stopOnce   sync.Once
}

// Sizes of the actor worker pool.
const (
	dispatchWorkers    = 64   // long-lived mailbox workers
	dispatchQueue      = 8192 // scheduled mailboxes waiting for a worker (each queue)
	dispatchThroughput = 300  // messages a mailbox handles before yielding (protoactor's default)
	// elasticWorkers run the mailboxes that elastic work woke: enough for
	// a broadcast's targets to keep up with its rate while some of them
	// are activated from the store (a read each).
	elasticWorkers = 4
)

func newPoolDispatcher(workers, queue, throughput int) *poolDispatcher {
	d := &poolDispatcher{tasks: make(chan func(), queue), elastic: make(chan func(), queue), throughput: throughput, stop: make(chan struct{})}
	for range workers {
		go d.work(d.tasks)
	}
	for range elasticWorkers {
		go d.work(d.elastic)
	}
	return d
}

func (d *poolDispatcher) work(tasks chan func()) {
	for {
		select {
		case fn := <-tasks:
			fn()
		case <-d.stop:
			return
		}
	}
}

// Schedule implements actor.Dispatcher.
func (d *poolDispatcher) Schedule(fn func()) { d.schedule(d.tasks, fn) }

func (d *poolDispatcher) schedule(tasks chan func(), fn func()) {
	select {
	case <-d.stop:
		go fn()
		return
	default:
	}
	select {
	case tasks <- fn:
	default:
		go fn()
	}
}

// Throughput implements actor.Dispatcher.
func (d *poolDispatcher) Throughput() int { return d.throughput }

// close ends the workers; later work runs on goroutines of its own, and
// work still queued is run that way too.
func (d *poolDispatcher) close() {
	d.stopOnce.Do(func() {
		close(d.stop)
		runQueued(d.tasks)
		runQueued(d.elastic)
	})
}

// runQueued runs what tasks holds, each on a goroutine of its own.
func runQueued(tasks chan func()) {
	for {
		select {
		case fn := <-tasks:
			go fn()
		default:
			return
		}
	}
}

// customerMailbox is a customer's mailbox: protoactor's lock-free
// unbounded one, which tells its dispatcher what woke it. A mailbox that
// elastic work wakes runs on the elastic workers, any other on the pool.
// (A message posted while the mailbox is already scheduled waits for that
// run, on whichever queue it is: live and broadcast traffic seldom meet
// at one customer.)
type customerMailbox struct {
	actor.Mailbox
	d       *poolDispatcher
	elastic atomic.Bool
}

// customerMailboxes is the producer of customers' mailboxes.
func (d *poolDispatcher) customerMailboxes() actor.MailboxProducer {
	inner := actor.UnboundedLockfree()
	return func() actor.Mailbox { return &customerMailbox{Mailbox: inner(), d: d} }
}

func (m *customerMailbox) PostUserMessage(message any) {
	m.elastic.Store(isElastic(actor.UnwrapEnvelopeMessage(message)))
	m.Mailbox.PostUserMessage(message)
}

// RegisterHandlers makes the mailbox its own dispatcher.
func (m *customerMailbox) RegisterHandlers(invoker actor.MessageInvoker, _ actor.Dispatcher) {
	m.Mailbox.RegisterHandlers(invoker, m)
}

// Schedule implements actor.Dispatcher for the mailbox.
func (m *customerMailbox) Schedule(fn func()) {
	if m.elastic.Load() {
		m.d.schedule(m.d.elastic, fn)
		return
	}
	m.d.schedule(m.d.tasks, fn)
}

// Throughput implements actor.Dispatcher.
func (m *customerMailbox) Throughput() int { return m.d.throughput }

// isElastic is true of the work no one waits on: a broadcast's target (its
// pace is the broadcast's rate) and a gateway's receipt for an outbound.
func isElastic(message any) bool {
	switch message.(type) {
	case *broadcastMsg, *receiptMsg:
		return true
	}
	return false
}
