package actors

import (
	"sync"
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
type poolDispatcher struct {
	tasks      chan func()
	throughput int
	stop       chan struct{}
	stopOnce   sync.Once
}

// Sizes of the actor worker pool.
const (
	dispatchWorkers    = 64   // long-lived mailbox workers
	dispatchQueue      = 8192 // scheduled mailboxes waiting for a worker
	dispatchThroughput = 300  // messages a mailbox handles before yielding (protoactor's default)
)

func newPoolDispatcher(workers, queue, throughput int) *poolDispatcher {
	d := &poolDispatcher{tasks: make(chan func(), queue), throughput: throughput, stop: make(chan struct{})}
	for range workers {
		go d.work()
	}
	return d
}

func (d *poolDispatcher) work() {
	for {
		select {
		case fn := <-d.tasks:
			fn()
		case <-d.stop:
			return
		}
	}
}

// Schedule implements actor.Dispatcher.
func (d *poolDispatcher) Schedule(fn func()) {
	select {
	case <-d.stop:
		go fn()
		return
	default:
	}
	select {
	case d.tasks <- fn:
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
		for {
			select {
			case fn := <-d.tasks:
				go fn()
			default:
				return
			}
		}
	})
}
