package actors

import (
	"testing"
	"time"
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
		m := d.customerMailboxes()().(*customerMailbox)
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

	// Every elastic worker busy as well: elastic work waits, and live work
	// runs on the pool as soon as a pool worker is free.
	for range elasticWorkers {
		d.schedule(d.elastic, func() { <-block })
	}
	receipt := &receiptMsg{customer: "c-1"}
	bc.PostUserMessage(receipt)
	go d.work(d.tasks) // a pool worker frees up
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
	} {
		if got := isElastic(c.msg); got != c.want {
			t.Errorf("isElastic(%T) = %v, want %v", c.msg, got, c.want)
		}
	}
}
