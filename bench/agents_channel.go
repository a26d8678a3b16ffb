package bench

import (
	"container/heap"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// agentsText is what customers say once with an agent: JSON safe.
const agentsText = "my card was charged twice, can you check the last payment please"

// dueEvent is an event of an assigned customer waiting for its time.
type dueEvent struct {
	at       int64 // scheduled time (run clock)
	customer string
	j        int // 1..K
}

type dueHeap []dueEvent

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(a, b int) bool { return h[a].at < h[b].at }
func (h dueHeap) Swap(a, b int)      { h[a], h[b] = h[b], h[a] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEvent)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// agentsChannel is one channel connection of an agents run. Its writer
// sends escalations on schedule and the events of its assigned customers
// when due; its reader settles acks and errors. The reader never writes.
type agentsChannel struct {
	run   *agentsRun
	ws    *websocket.Conn
	index int
	buf   []byte // the writer's frame
	wake  chan struct{}
	mu    struct {
		sync.Mutex
		due dueHeap
	}
	closing  atomic.Bool
	writeErr error // writer-owned
	readErr  error // reader-owned
}

// dialAgentsChannels opens the channel connections (they only send: no
// hello, so no outbounds come).
func dialAgentsChannels(ctx context.Context, run *agentsRun, wsURL string) ([]*agentsChannel, error) {
	header := http.Header{}
	if run.cfg.Token != "" {
		header.Set("Authorization", "Bearer "+run.cfg.Token)
	}
	out := make([]*agentsChannel, 0, run.cfg.Connections)
	for i := range run.cfg.Connections {
		ws, err := dialJourneyConn(ctx, wsURL, header)
		if err != nil {
			for _, c := range out {
				c.close()
			}
			return nil, fmt.Errorf("bench: connection %d: %w", i, err)
		}
		out = append(out, &agentsChannel{run: run, ws: ws, index: i, buf: make([]byte, 0, 256), wake: make(chan struct{}, 1)})
	}
	return out, nil
}

// schedule queues a conversation's events, at[j-1] for event j. Called
// under the run's lock: it takes only the connection's.
func (c *agentsChannel) schedule(customer string, at []int64) {
	c.mu.Lock()
	for j, t := range at {
		heap.Push(&c.mu.due, dueEvent{at: t, customer: customer, j: j + 1})
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// nextDue pops an event due by now, or returns the time of the next one
// (0 when none is queued).
func (c *agentsChannel) nextDue(now int64) (e dueEvent, ok bool, next int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.mu.due) == 0 {
		return dueEvent{}, false, 0
	}
	if top := c.mu.due[0]; top.at > now {
		return dueEvent{}, false, top.at
	}
	return heap.Pop(&c.mu.due).(dueEvent), true, 0
}

// write sends escalation k at phase + k*period until the send period ends
// or stop, and each queued event when due, until done or a write fails.
// An escalation or event sent late keeps its scheduled time: its latency
// counts from it.
func (c *agentsChannel) write(stop, done <-chan struct{}, period float64, phase int64) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	escalating := true
	stopped := func() {
		if escalating {
			escalating = false
			c.run.stopEscalating()
		}
	}
	defer stopped()
	var k uint64
	for c.writeErr == nil {
		nextEscalation := phase + int64(float64(k)*period)
		if escalating && (nextEscalation >= c.run.clock.sendEnd || isClosed(stop)) {
			stopped()
		}
		now := c.run.clock.now()
		if e, ok, nextEvent := c.nextDue(now); ok {
			c.sendEvent(e)
			continue
		} else if escalating && nextEscalation <= now {
			c.sendEscalation(k, nextEscalation)
			k++
			continue
		} else {
			wait := time.Hour
			if nextEvent > 0 {
				wait = time.Duration(nextEvent - now)
			}
			if escalating {
				wait = min(wait, time.Duration(nextEscalation-now))
			}
			timer.Reset(wait)
			stopCh := stop
			if !escalating {
				stopCh = nil
			}
			select {
			case <-timer.C:
			case <-c.wake:
			case <-stopCh:
			case <-done:
				return
			}
			timer.Stop()
		}
	}
}

// sendEscalation escalates a new customer: an escalate.requested on chat.
func (c *agentsChannel) sendEscalation(k uint64, scheduled int64) {
	customer := c.run.customerID(c.index, k)
	c.run.escalate(c, customer, k, scheduled)
	b := append(c.buf[:0], `{"type":"event","event":{"id":"`...)
	b = append(b, customer...)
	b = append(b, `-esc","customer":"`...)
	b = append(b, customer...)
	b = append(b, `","type":"`+agentsEscalation+`","channel":"chat"}}`...)
	c.buf = b
	c.writeFrame(b)
}

// sendEvent sends an assigned customer's message.received.
func (c *agentsChannel) sendEvent(e dueEvent) {
	c.run.eventSent(e.customer, e.j)
	b := append(c.buf[:0], `{"type":"event","event":{"id":"`...)
	b = append(b, e.customer...)
	b = append(b, "-m"...)
	b = strconv.AppendInt(b, int64(e.j), 10)
	b = append(b, `","customer":"`...)
	b = append(b, e.customer...)
	b = append(b, `","type":"message.received","channel":"chat","text":"`+agentsText+`"}}`...)
	c.buf = b
	c.writeFrame(b)
}

func (c *agentsChannel) writeFrame(b []byte) {
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil && c.writeErr == nil && !c.closing.Load() {
		c.writeErr = err
	}
}

// read settles acks and errors until the connection closes.
func (c *agentsChannel) read() {
	var f serverFrame
	buf := make([]byte, 0, 4096)
	for {
		var err error
		if buf, err = nextMessage(c.ws, buf); err != nil {
			if !c.closing.Load() {
				c.readErr = err
			}
			return
		}
		if decodeFrame(buf, &f) != nil {
			c.run.mu.Lock()
			c.run.mu.counts.malformed++
			c.run.mu.Unlock()
			continue
		}
		c.run.channelAnswer(&f)
	}
}

// close ends the connection; the reader returns.
func (c *agentsChannel) close() {
	if c.closing.Swap(true) {
		return
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(controlTimeout))
	_ = c.ws.Close()
}
