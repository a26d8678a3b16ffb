package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	"time"

	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// Result answers an inbound event or a profile patch: an ack once durable,
// or a rejection.
type Result struct {
	Ack    *journey.Ack
	Reject *journey.Rejection
}

// customerMsg is a message for one customer actor, routed by its host.
type customerMsg interface{ customerID() string }

// ingestMsg is one inbound event, validated and resolved to Customer.
type ingestMsg struct {
	customer string
	in       journey.Inbound
	conn     uint64 // the channel connection that carried it; 0: none (HTTP)
	done     func(Result)
	// here: its host routes it on the caller's goroutine (Runtime.ingest),
	// which then runs the customer's ingest too when the customer's
	// mailbox is idle (host.post, which clears it: used once).
	here bool
	// inline: the customer's ingest runs on the caller's goroutine (set
	// by host.post's postOrRun). An ingest that would read the store
	// there goes back to the front of the mailbox instead, for a worker
	// (customer.ingest).
	inline bool
	ack    *journey.Ack // its answer once durable (the customer's outbox)
	// observed are the decision's events, handed to analytics (of
	// partition) with the answer: most ingests store one event, whose seq
	// is the answer's, and a closure of their own was an object an event.
	observed  []journey.Event
	analytics *analyticsRunner
	partition int
	// room holds the decision's event and ack (journey.Inbound.Into): the
	// message lives until it is answered, and an object of their own for
	// most events was one more allocation an event.
	room journey.EventAck
	// appended is the completion of the ingest's append, posted to the
	// customer (commitInto): the message lives until it is answered
	// anyway, and a completion of its own was another object an event.
	appended appendDone
}

// patchMsg merges a profile patch.
type patchMsg struct {
	customer string
	patch    journey.ProfilePatch
	done     func(Result, map[string]any)
}

// contextMsg asks for the journey context as of the durable seq, or for
// the next best action.
type contextMsg struct {
	customer       string
	seqOnly        bool              // only the durable seq is wanted
	nextBestAction bool              // the ranking of the offers is wanted, not the context
	reply          chan contextReply // buffered 1
}

type contextReply struct {
	ctx     journey.Context
	ranking journey.Ranking // when nextBestAction was asked
	exists  bool
	err     error
}

// dueMsg delivers due work to its customer.
type dueMsg struct {
	work persistence.DueWork
}

// resultMsg brings the answer of work done off the customer's goroutine
// (a bot turn, a workflow step) back to its customer: a *journey.BotResult
// or a *journey.WorkflowResult.
type resultMsg struct {
	customer string
	input    journey.Input
}

// receiptMsg is a channel gateway's accepted, delivered or failed for one
// of the customer's outbounds; done (which must not block) is told of a
// refusal, nil otherwise.
type receiptMsg struct {
	customer string
	receipt  journey.Receipt
	done     func(*journey.Rejection)
}

func (m *resultMsg) customerID() string  { return m.customer }
func (m *receiptMsg) customerID() string { return m.customer }
func (m *ingestMsg) customerID() string  { return m.customer }
func (m *patchMsg) customerID() string   { return m.customer }
func (m *contextMsg) customerID() string { return m.customer }
func (m *dueMsg) customerID() string     { return m.work.Customer }

// mailboxMsg is the host telling a customer it activated its mailbox (the
// first message after Started): the customer's store completions post to it
// directly (customerMailbox.post). A customer restarted after a panic is a
// new instance that is not told, and sends through its PID.
type mailboxMsg struct{ mailbox *customerMailbox }

// appendDone completes an append: sent by the store's writer callback.
type appendDone struct {
	incarnation uint64
	lastSeq     uint64
	err         error
	elastic     bool // the append was elastic work's (dispatcher.go)
	// here: run on the store's completion goroutine (postHere), where the
	// customer does nothing that waits for the store.
	here bool
}

// passivateReq is a customer asking its host to stop forwarding to it; pid
// tells a request of a stopped incarnation from the current one.
type passivateReq struct {
	customer string
	pid      *actor.PID
}

// passivateOK is the host's answer: it now buffers the customer's messages.
type passivateOK struct{}

// passivateAll asks a host to passivate every customer (shutdown).
type passivateAll struct{ done chan struct{} }

// dueTick wakes a host to deliver due work.
type dueTick struct{}

// dueAt tells a host a customer has work due at a time.
type dueAt struct{ at time.Time }

// idleCheck is the host's idle check (residency.go): passivate when nothing happened.
type idleCheck struct{}

// broadcastMsg asks a customer for its part of a broadcast (a
// *journey.BroadcastSend or *journey.BroadcastResolve); taken, when not nil,
// is told when the customer takes the message up, and done (neither may
// block) once the outcome is durable, or of a refusal.
type broadcastMsg struct {
	customer string
	input    journey.Input
	taken    func()
	done     func(*journey.Rejection)
}

func (m *broadcastMsg) customerID() string { return m.customer }

// wakeMsg activates a customer (which then announces its routed
// conversation); it carries nothing else.
type wakeMsg struct{ customer string }

func (m *wakeMsg) customerID() string { return m.customer }
