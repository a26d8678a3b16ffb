package actors

import (
	"runtime"
	"sync"

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
// Elastic work (a broadcast's targets, outbound receipts and the
// completions of the appends they made: work nobody waits on) has a queue
// and a few workers of its own (see customerMailbox). The
// Go scheduler has no priorities: with every worker free to take a
// broadcast's mailboxes, a broadcast at its rate kept dozens of them
// runnable, and each hop of a live event (the customer, the commit's
// completion, the ack) waited behind them all. On its own workers it has
// at most elasticWorkers goroutines running or runnable.
type poolDispatcher struct {
	tasks      chan runnable
	elastic    chan runnable
	workers    int
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
	// a broadcast's targets to keep up with its rate while one of them is
	// activated from the store (a read). Four kept up as well, but on two
	// cores they could fill both processors with elastic work (docs/benchmarking.md,
	// stop 30).
	elasticWorkers = 2
)

func newPoolDispatcher(workers, queue, throughput int) *poolDispatcher {
	d := &poolDispatcher{tasks: make(chan runnable, queue), elastic: make(chan runnable, queue), workers: workers, throughput: throughput, stop: make(chan struct{})}
	for range workers {
		go d.work(d.tasks, false)
	}
	for range elasticWorkers {
		go d.work(d.elastic, true)
	}
	return d
}

// work runs what tasks holds. The elastic workers yield the processor
// after each mailbox: the goroutines readied meanwhile on this P (a live
// event's next hop: its customer, its commit's completion, its ack) run
// before the next elastic mailbox, instead of when the worker finds the
// queue empty or is preempted 10 ms in. (The Go scheduler has no
// priorities; this is the nearest it offers.)
//
// A worker waits on its queue alone: a nil runnable ends it (close). A
// select on the queue and the stop channel locked both channels, the stop
// channel shared by every worker: in bench ingest the workers' selects took
// 0.40 s of the server's 16 s, their receives now 0.29 s.
func (d *poolDispatcher) work(tasks chan runnable, yield bool) {
	for r := range tasks { // never closed: schedule may still send
		if r == nil {
			return
		}
		r.run()
		if yield {
			runtime.Gosched()
		}
	}
}

// Schedule implements actor.Dispatcher.
func (d *poolDispatcher) Schedule(fn func()) { d.schedule(d.tasks, runnableFunc(fn)) }

func (d *poolDispatcher) schedule(tasks chan runnable, r runnable) {
	select {
	case <-d.stop:
		go r.run()
		return
	default:
	}
	select {
	case tasks <- r:
	default:
		go r.run()
	}
}

// runnable is what a dispatcher queue holds: a customer's mailbox, or the
// function another actor's mailbox scheduled. (A func value is one pointer:
// as a runnable it is not allocated again.)
type runnable interface{ run() }

type runnableFunc func()

func (f runnableFunc) run() { f() }

// Throughput implements actor.Dispatcher.
func (d *poolDispatcher) Throughput() int { return d.throughput }

// close ends the workers; later work runs on goroutines of its own, and
// work still queued is run that way too.
func (d *poolDispatcher) close() {
	d.stopOnce.Do(func() {
		close(d.stop)
		runQueued(d.tasks)
		runQueued(d.elastic)
		// A nil each ends the workers; from a goroutine of its own, as a
		// schedule that had not seen stop yet may fill a queue again.
		go func() {
			for range d.workers {
				d.tasks <- nil
			}
			for range elasticWorkers {
				d.elastic <- nil
			}
		}()
	})
}

// runQueued runs what tasks holds, each on a goroutine of its own.
func runQueued(tasks chan runnable) {
	for {
		select {
		case r := <-tasks:
			if r != nil {
				go r.run()
			}
		default:
			return
		}
	}
}

// customerMailbox is a customer's mailbox. It does what protoactor's
// default mailbox does (system messages first, suspend and resume, a yield
// every throughput messages, a panic escalated to the supervisor), with a
// mutex and a ring of messages instead of two lock-free queues: one object
// per customer instead of six (two queues, their nodes, the mailbox and a
// wrapper), which every collection's mark walks for every resident
// customer, and no allocation per message (each push of a lock-free queue
// allocated a node, each wake-up a closure).
//
// Like protoactor's, it has no bound of its own: what reaches a customer is
// bounded before it is sent (a connection's credit, a broadcast's targets
// in flight, the task pools), never by a full mailbox (README).
//
// The message that wakes it says where it runs: elastic work on the
// elastic workers, any other on the pool. (A message posted while the
// mailbox is already scheduled waits for that run, on whichever queue it
// is: live and broadcast traffic seldom meet at one customer.)
type customerMailbox struct {
	mu        sync.Mutex
	user      []any // ring of user messages: n from head, oldest first
	head, n   int
	inline    [mailboxInline]any // user's array until more are queued
	system    []any              // system messages (rare), run before user ones
	scheduled bool               // on a queue or running
	suspended bool
	stopped   bool // asked to stop: post refuses (host.route refuses the message)
	live      bool // a host's: runs on the pool whatever woke it
	invoker   actor.MessageInvoker
	d         *poolDispatcher
}

// mailboxInline is how many user messages a mailbox holds without an
// array of its own: a customer seldom has more waiting.
const mailboxInline = 2

// customerMailboxes is the producer of customers' mailboxes; made, when
// set, is told each one it makes (a host keeps its customers' mailboxes).
func (d *poolDispatcher) customerMailboxes(made func(*customerMailbox)) actor.MailboxProducer {
	return func() actor.Mailbox {
		m := &customerMailbox{d: d}
		m.user = m.inline[:]
		if made != nil {
			made(m)
		}
		return m
	}
}

func (m *customerMailbox) PostUserMessage(message any) {
	m.mu.Lock()
	m.push(message)
}

// post is PostUserMessage for the customer's host, which keeps the mailbox
// (and for the runtime, which keeps its hosts': Runtime.ingest), and so
// skips protoactor's PID and process look-ups (cache misses on every
// event once customers outnumber the CPU's caches: bench ingest with
// 100,000 customers). False when the actor was asked to stop (its
// supervisor stops it with a system message only, leaving its process
// registered until it has stopped): the host then refuses the message, as
// the PID's dead letters do once the process is gone.
func (m *customerMailbox) post(message any) bool {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return false
	}
	m.push(message)
	return true
}

// postHere is post for an append's completion, on the store's completion
// goroutine: when the mailbox is idle, holds nothing and is not suspended,
// the message runs here and now (appendDone.here), as the mailbox's run
// would, instead of waking a worker for it (a schedule on the pool's queue
// and a worker woken, for most events). Only that message: what is posted
// meanwhile waits, and is scheduled on the pool after it, so the
// completion goroutine runs no ingest (an append from it could wait for
// the store's queue, which waits for completions); and the customer puts
// the completion back in its mailbox, for a worker, when it would wait for
// the store or release more than answers (customer.staysOffCompletions).
func (m *customerMailbox) postHere(message *appendDone) bool {
	return m.postOrRun(message, &message.here)
}

// postOrRun posts message, or, when the mailbox is idle, holds nothing
// and is not suspended, runs it here and now as the mailbox's run would
// (and sets *here, when here is not nil; false when it was posted). Only
// that message runs here: what is posted meanwhile is scheduled on the
// pool after it.
func (m *customerMailbox) postOrRun(message any, here *bool) bool {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return false
	}
	if m.scheduled || m.n > 0 || len(m.system) > 0 || m.suspended {
		if here != nil {
			*here = false
		}
		m.push(message)
		return true
	}
	m.scheduled = true // the mailbox runs, here
	m.mu.Unlock()
	if here != nil {
		*here = true
	}
	m.invoke(message, false)
	m.mu.Lock()
	if len(m.system) == 0 && (m.n == 0 || m.suspended) {
		m.scheduled = false
		m.mu.Unlock()
		return true
	}
	var next any
	if len(m.system) > 0 {
		next = m.system[0]
	} else {
		next = m.user[m.head]
	}
	m.scheduled = false
	m.wake(next)
	return true
}

// requeue puts message back at the front of the user messages, from the
// message running now on the caller's goroutine (postOrRun): the mailbox
// is scheduled meanwhile, so postOrRun wakes a worker for it when the
// message returns.
func (m *customerMailbox) requeue(message any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == len(m.user) {
		m.grow()
	}
	m.head = (m.head - 1 + len(m.user)) % len(m.user)
	m.user[m.head] = message
	m.n++
}

// push queues a user message and wakes the mailbox. Called with m.mu held;
// returns with it released.
func (m *customerMailbox) push(message any) {
	if m.n == len(m.user) {
		m.grow()
	}
	m.user[(m.head+m.n)%len(m.user)] = message
	m.n++
	m.wake(message)
}

func (m *customerMailbox) PostSystemMessage(message any) {
	m.mu.Lock()
	if _, ok := message.(*actor.Stop); ok {
		// Whoever stops the actor (its host, ActorProcess.Stop; its
		// supervisor, StopChildren) posts this: post takes nothing more.
		m.stopped = true
	}
	m.system = append(m.system, message)
	m.wake(message)
}

// wake schedules the mailbox unless it is already scheduled, and unlocks
// it. Called with m.mu held.
func (m *customerMailbox) wake(message any) {
	if m.scheduled {
		m.mu.Unlock()
		return
	}
	m.scheduled = true
	m.mu.Unlock()
	if !m.live && isElastic(actor.UnwrapEnvelopeMessage(message)) {
		m.d.schedule(m.d.elastic, m)
		return
	}
	m.d.schedule(m.d.tasks, m)
}

// grow doubles the ring, oldest message first. Called with m.mu held.
func (m *customerMailbox) grow() {
	user := make([]any, 2*len(m.user))
	for i := range m.n {
		user[i] = m.user[(m.head+i)%len(m.user)]
	}
	m.user, m.head = user, 0
}

// next takes the next message to run: a system message, else (unless
// suspended) a user message. When there is none the mailbox is no longer
// scheduled, and a grown ring goes back to the inline array.
func (m *customerMailbox) next() (msg any, system, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.system) > 0 {
		msg = m.system[0]
		m.system[0] = nil
		m.system = m.system[1:]
		if len(m.system) == 0 {
			m.system = nil
		}
		return msg, true, true
	}
	if m.n == 0 || m.suspended {
		m.scheduled = false
		if m.n == 0 && len(m.user) > mailboxInline {
			m.user, m.head = m.inline[:], 0
		}
		return nil, false, false
	}
	msg = m.user[m.head]
	m.user[m.head] = nil
	m.head = (m.head + 1) % len(m.user)
	m.n--
	return msg, false, true
}

// run handles messages until none is left (or the mailbox is suspended),
// yielding the goroutine every throughput messages.
func (m *customerMailbox) run() {
	for i := 1; ; i++ {
		msg, system, ok := m.next()
		if !ok {
			return
		}
		if i%m.d.throughput == 0 {
			runtime.Gosched()
		}
		m.invoke(msg, system)
	}
}

// invoke runs one message; a panic is escalated to the supervisor (which
// suspends the mailbox and restarts or stops the actor) as protoactor's
// mailbox does.
func (m *customerMailbox) invoke(msg any, system bool) {
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	if !system {
		m.invoker.InvokeUserMessage(msg)
		return
	}
	switch msg.(type) {
	case *actor.SuspendMailbox:
		m.mu.Lock()
		m.suspended = true
		m.mu.Unlock()
	case *actor.ResumeMailbox:
		m.mu.Lock()
		m.suspended = false
		m.mu.Unlock()
	default:
		m.invoker.InvokeSystemMessage(msg)
	}
}

func (m *customerMailbox) RegisterHandlers(invoker actor.MessageInvoker, _ actor.Dispatcher) {
	m.invoker = invoker
}

// Start implements actor.Mailbox: no middlewares to start.
func (m *customerMailbox) Start() {}

func (m *customerMailbox) UserMessageCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// isElastic is true of the work no one waits on: a broadcast's target (its
// pace is the broadcast's rate), a gateway's receipt for an outbound, and
// the completion of an append that one of those made (it releases the
// broadcast's outbound).
func isElastic(message any) bool {
	switch m := message.(type) {
	case *broadcastMsg, *receiptMsg:
		return true
	case *appendDone:
		return m.elastic
	}
	return false
}
