package actors

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// invoked records the user messages a mailbox ran.
type invoked chan any

func (c invoked) InvokeSystemMessage(any)  {}
func (c invoked) InvokeUserMessage(m any)  { c <- m }
func (c invoked) EscalateFailure(any, any) {}
func (c invoked) next(t *testing.T, want any) {
	t.Helper()
	select {
	case m := <-c:
		if m != want {
			t.Fatalf("ran %v, want %v", m, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%v did not run", want)
	}
}

// TestElasticWorkRunsApart: a mailbox woken by a broadcast's target or a
// receipt runs on the elastic workers, any other on the pool, so neither
// kind waits for the other's workers.
func TestElasticWorkRunsApart(t *testing.T) {
	d := newPoolDispatcher(2, 16, dispatchThroughput)
	defer d.close()
	block := make(chan struct{})
	defer close(block)
	mailbox := func() (*customerMailbox, invoked) {
		m := d.customerMailboxes(nil)().(*customerMailbox)
		ran := make(invoked, 1)
		m.RegisterHandlers(ran, d)
		m.Start()
		return m, ran
	}

	// Every pool worker busy: elastic work still runs.
	for range 2 {
		d.Schedule(func() { <-block })
	}
	bc, ranBC := mailbox()
	target := &broadcastMsg{customer: "c-1"}
	bc.PostUserMessage(target)
	ranBC.next(t, target)
	waitIdle(t, bc) // its worker is free again, and the next message wakes it

	// Every elastic worker busy as well: elastic work waits, and live work
	// runs on the pool as soon as a pool worker is free.
	for range elasticWorkers {
		d.schedule(d.elastic, runnableFunc(func() { <-block }))
	}
	receipt := &receiptMsg{customer: "c-1"}
	bc.PostUserMessage(receipt)
	go d.work(d.tasks, false) // a pool worker frees up
	live, ranLive := mailbox()
	in := &ingestMsg{customer: "c-2"}
	live.PostUserMessage(in)
	ranLive.next(t, in)
	select {
	case m := <-ranBC:
		t.Fatalf("%v ran with every elastic worker busy", m)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestIsElastic(t *testing.T) {
	for _, c := range []struct {
		msg  any
		want bool
	}{
		{&broadcastMsg{}, true},
		{&receiptMsg{}, true},
		{&ingestMsg{}, false},
		{&patchMsg{}, false},
		{&dueMsg{}, false},
		{&appendDone{}, false},
		{&appendDone{elastic: true}, true}, // a broadcast's append completing
	} {
		if got := isElastic(c.msg); got != c.want {
			t.Errorf("isElastic(%T) = %v, want %v", c.msg, got, c.want)
		}
	}
}

// recorder records what a mailbox ran, in order, and fails the user
// message "panic".
type recorder struct {
	ran       chan any
	escalated chan any
}

func (r *recorder) InvokeSystemMessage(m any) { r.ran <- m }
func (r *recorder) InvokeUserMessage(m any) {
	if m == "panic" {
		panic("boom")
	}
	r.ran <- m
}
func (r *recorder) EscalateFailure(reason, m any) { r.escalated <- m }

func (r *recorder) expect(t *testing.T, want ...any) {
	t.Helper()
	for _, w := range want {
		select {
		case m := <-r.ran:
			if m != w {
				t.Fatalf("ran %v, want %v", m, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v did not run", w)
		}
	}
}

// TestCustomerMailbox: messages run in the order posted, through a ring
// that grows past its inline array and goes back to it when empty; system
// messages run first; a suspended mailbox runs only system messages until
// resumed; a panic is escalated and the mailbox goes on.
func TestCustomerMailbox(t *testing.T) {
	d := newPoolDispatcher(1, 16, 3)
	defer d.close()
	m := d.customerMailboxes(nil)().(*customerMailbox)
	r := &recorder{ran: make(chan any, 100), escalated: make(chan any, 1)}
	m.RegisterHandlers(r, d)

	// Hold the only worker so that messages queue up.
	block := make(chan struct{})
	d.Schedule(func() { <-block })
	for i := range 10 {
		m.PostUserMessage(i)
	}
	if got := m.UserMessageCount(); got != 10 {
		t.Fatalf("UserMessageCount = %d, want 10", got)
	}
	sys := &struct{ name string }{"system"}
	m.PostSystemMessage(sys)
	close(block)
	r.expect(t, sys, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	waitIdle(t, m)
	if len(m.user) != mailboxInline {
		t.Fatalf("ring of %d after draining, want the inline %d", len(m.user), mailboxInline)
	}

	m.PostSystemMessage(&actor.SuspendMailbox{})
	m.PostUserMessage("held")
	waitIdle(t, m)
	select {
	case got := <-r.ran:
		t.Fatalf("%v ran while suspended", got)
	default:
	}
	m.PostSystemMessage(&actor.ResumeMailbox{})
	r.expect(t, "held")

	m.PostUserMessage("panic")
	m.PostUserMessage("after")
	select {
	case got := <-r.escalated:
		if got != "panic" {
			t.Fatalf("escalated %v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the panic was not escalated")
	}
	r.expect(t, "after")
}

// TestCustomerMailboxPostUntilStop: the host's direct post (host.route)
// delivers until protoactor asks the actor to stop, and refuses after, so
// the host refuses the message rather than leave it in a mailbox that will
// not run again (a customer its supervisor stopped past restartsMax). The
// producer tells its caller each mailbox it makes.
func TestCustomerMailboxPostUntilStop(t *testing.T) {
	d := newPoolDispatcher(1, 16, 3)
	defer d.close()
	var made []*customerMailbox
	m := d.customerMailboxes(func(m *customerMailbox) { made = append(made, m) })().(*customerMailbox)
	if len(made) != 1 || made[0] != m {
		t.Fatalf("made %v, want the one mailbox", made)
	}
	r := &recorder{ran: make(chan any, 100), escalated: make(chan any, 1)}
	m.RegisterHandlers(r, d)
	if !m.post("before") {
		t.Fatal("post refused before the stop")
	}
	r.expect(t, "before")
	stop := &actor.Stop{}
	m.PostSystemMessage(stop)
	if m.post("after") {
		t.Fatal("post took a message after the stop")
	}
	r.expect(t, stop)
	waitIdle(t, m)
	select {
	case got := <-r.ran:
		t.Fatalf("%v ran after the stop", got)
	default:
	}
}

// waitIdle waits until the mailbox is no longer scheduled.
func waitIdle(t *testing.T, m *customerMailbox) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		idle := !m.scheduled
		m.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the mailbox stayed scheduled")
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkCustomerMailbox(b *testing.B) {
	d := newPoolDispatcher(1, 16, dispatchThroughput)
	defer d.close()
	m := d.customerMailboxes(nil)().(*customerMailbox)
	done := make(chan struct{}, 1)
	m.RegisterHandlers(benchInvoker(done), d)
	msg := &ingestMsg{}
	b.ReportAllocs()
	for b.Loop() {
		m.PostUserMessage(msg)
		<-done
	}
}

type benchInvoker chan struct{}

func (c benchInvoker) InvokeSystemMessage(any)  {}
func (c benchInvoker) InvokeUserMessage(any)    { c <- struct{}{} }
func (c benchInvoker) EscalateFailure(any, any) {}

// hereInvoker records on which goroutine (the caller's or a worker) each
// message ran: a message posted while the first runs must not run on the
// caller's goroutine.
type hereInvoker struct {
	m      *customerMailbox
	caller chan struct{} // closed once postHere returned
	ran    chan string
}

func (h *hereInvoker) InvokeSystemMessage(any) {}
func (h *hereInvoker) InvokeUserMessage(msg any) {
	switch msg := msg.(type) {
	case *appendDone:
		where := "worker"
		if msg.here {
			where = "here"
		}
		if msg.lastSeq == 1 {
			h.m.post("ingest") // arrives while the completion runs here
		}
		h.ran <- where
	case string:
		select {
		case <-h.caller:
			h.ran <- msg
		case <-time.After(5 * time.Second):
			h.ran <- msg + " on the caller's goroutine"
		}
	}
}
func (h *hereInvoker) EscalateFailure(any, any) {}

// TestPostHere: an append's completion runs on the poster's goroutine when
// the mailbox is idle and empty, and what is posted meanwhile goes to a
// worker; a completion that finds the mailbox busy waits its turn there.
func TestPostHere(t *testing.T) {
	d := newPoolDispatcher(1, 16, 3)
	defer d.close()
	m := d.customerMailboxes(nil)().(*customerMailbox)
	h := &hereInvoker{m: m, caller: make(chan struct{}), ran: make(chan string, 10)}
	m.RegisterHandlers(h, d)

	if !m.postHere(&appendDone{lastSeq: 1}) {
		t.Fatal("postHere refused an idle mailbox's message")
	}
	select {
	case got := <-h.ran:
		if got != "here" {
			t.Fatalf("the completion ran on a %s, want here", got)
		}
	default:
		t.Fatal("postHere returned before the completion ran")
	}
	close(h.caller)
	if got := <-h.ran; got != "ingest" {
		t.Fatalf("the message posted meanwhile: %s", got)
	}
	waitIdle(t, m)

	// Busy: the worker is held, the mailbox scheduled behind it.
	block := make(chan struct{})
	d.Schedule(func() { <-block })
	m.post("queued")
	if !m.postHere(&appendDone{lastSeq: 2}) {
		t.Fatal("postHere refused a busy mailbox's message")
	}
	select {
	case got := <-h.ran:
		t.Fatalf("%s ran while the mailbox waited for a worker", got)
	default:
	}
	close(block)
	for _, want := range []string{"queued", "worker"} {
		if got := <-h.ran; got != want {
			t.Fatalf("ran %s, want %s", got, want)
		}
	}
}

// A completion runs on the store's completion goroutine only when what it
// releases is answers: an effect (an outbound's delivery, which may write
// to a web chat visitor's socket) is a worker's.
func TestOutboxOnlyAnswers(t *testing.T) {
	var o outbox
	answered := func(Result) {}
	if !o.onlyAnswers(10) {
		t.Fatal("an empty outbox releases an effect")
	}
	o.pushAnswer(1, &ingestMsg{done: answered})
	o.push(2, func(error) {})
	o.pushAnswer(3, &ingestMsg{done: answered})
	if !o.onlyAnswers(1) {
		t.Fatal("up to seq 1 only an answer is released")
	}
	if o.onlyAnswers(2) || o.onlyAnswers(3) {
		t.Fatal("up to seq 2 an effect is released")
	}
	o.release(2)
	if !o.onlyAnswers(3) {
		t.Fatal("after the effect, up to seq 3 only an answer is released")
	}
}

// flagInvoker records each message with whether it ran while the test's
// goroutine was inside postOrRun (on it, since nothing else runs then).
type flagInvoker struct {
	inCaller *atomic.Bool
	ran      chan string
}

func (f *flagInvoker) InvokeSystemMessage(any) {}
func (f *flagInvoker) InvokeUserMessage(m any) {
	where := "worker"
	if f.inCaller.Load() {
		where = "caller"
	}
	f.ran <- m.(string) + " on the " + where
}
func (f *flagInvoker) EscalateFailure(any, any) {}

// TestPostOrRunKeepsOrder: a message runs on the caller's goroutine only
// when the mailbox is idle and empty; one posted while earlier ones wait
// for a worker waits behind them, so the order of posts is the order of
// runs (a host routes a connection's events in the order read).
func TestPostOrRunKeepsOrder(t *testing.T) {
	d := newPoolDispatcher(1, 16, 3)
	defer d.close()
	m := d.customerMailboxes(nil)().(*customerMailbox)
	var inCaller atomic.Bool
	f := &flagInvoker{inCaller: &inCaller, ran: make(chan string, 10)}
	m.RegisterHandlers(f, d)
	post := func(msg string) {
		inCaller.Store(true)
		defer inCaller.Store(false)
		if !m.postOrRun(msg, nil) {
			t.Fatalf("%s refused", msg)
		}
	}
	post("a")
	if got := <-f.ran; got != "a on the caller" {
		t.Fatalf("ran %q, want a on the caller", got)
	}
	block := make(chan struct{})
	d.Schedule(func() { <-block }) // the only worker is held
	m.post("b")                    // scheduled behind it
	post("c")
	close(block)
	for _, want := range []string{"b on the worker", "c on the worker"} {
		if got := <-f.ran; got != want {
			t.Fatalf("ran %q, want %q", got, want)
		}
	}
	waitIdle(t, m)
	post("d")
	if got := <-f.ran; got != "d on the caller" {
		t.Fatalf("ran %q, want d on the caller", got)
	}
}
