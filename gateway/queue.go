package gateway

import "sync"

// queue is a bounded FIFO whose storage grows with what waits and is let go
// when it empties, so an idle connection holds next to nothing. (Channels
// of a connection's limits, preallocated, cost ~400 KB per idle channel
// WebSocket at the defaults: 8,192 frame slots and 1,024 pending events.)
// Its ready channel holds a token while items may wait: a consumer selects
// on it, then pops until pop answers false.
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	head  int // items[head:] wait
	max   int
	ready chan struct{}
	// closed: drained for good (drainClosed); push refuses.
	closed bool
}

// queueKeep is the capacity an emptied queue keeps for its next items;
// a larger array is let go.
const queueKeep = 64

func newQueue[T any](max int) *queue[T] {
	return newQueueOn[T](max, make(chan struct{}, 1))
}

// newQueueOn is a queue whose consumer is woken through ready, a channel
// of one slot it may share with other queues it consumes.
func newQueueOn[T any](max int, ready chan struct{}) *queue[T] {
	return &queue[T]{max: max, ready: ready}
}

// push adds v unless max items wait already, or the queue was closed
// (false).
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	n := len(q.items) - q.head
	if n >= q.max || q.closed {
		q.mu.Unlock()
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) {
		// Slide the waiting items down rather than grow past what waits.
		copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.signal()
	return true
}

// pop takes the oldest item; false when none waits.
func (q *queue[T]) pop() (T, bool) {
	var zero T
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return zero, false
	}
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		if cap(q.items) > queueKeep {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
		q.head = 0
	}
	return v, true
}

// drainClosed closes the queue, so that push refuses from now on, and
// hands each item that waits to fn, oldest first.
func (q *queue[T]) drainClosed(fn func(T)) {
	q.mu.Lock()
	q.closed = true
	items := q.items[q.head:]
	q.items, q.head = nil, 0
	q.mu.Unlock()
	for _, v := range items {
		fn(v)
	}
}

// len is how many items wait.
func (q *queue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// signal wakes the consumer: items may wait.
func (q *queue[T]) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
