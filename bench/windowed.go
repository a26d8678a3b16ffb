package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// A windowed load is the closed loop of `bench ingest` against something
// that is not a WebSocket server: the store ceiling (persistence's own
// append path) and the NATS JetStream peer. Each of Connections senders
// keeps up to Window events in flight, sends the same events as the
// WebSocket client (same ids, customers and text), and counts acks exactly
// as the server run does: acks received in the measured period, latency of
// events sent in it.

// Event is one event of a windowed load, as the WebSocket client would
// send it.
type Event struct {
	N        uint64 // the event's number on its connection
	ID       string // <nonce>-<connection>-<n>
	Customer string // c-<i>
	// Turn is the customer's index among its connection's customers
	// (0..customers-1), for a sender that keeps per-customer state.
	Turn int
	// Seq is the event's seq for its customer, from 1, in send order.
	Seq  uint64
	Text string // the event's text
	// JSON is the inbound event object (PROTOCOL section 1); valid until
	// the next event.
	JSON []byte
}

// Sender is one connection of a windowed load.
type Sender interface {
	// Send sends e (valid only during the call: keep a copy of what
	// outlives it) and returns once it is handed over; unless Send
	// returns an error, done is called exactly once, from any goroutine,
	// when e is acknowledged durable (nil) or has failed. done does not
	// block. Send may block for the sink's own back-pressure; an error
	// from Send ends the connection.
	Send(ctx context.Context, e *Event, done func(error)) error
}

// WindowedConfig is one windowed load.
type WindowedConfig struct {
	Connections, Customers, Window, EventBytes int
	Warmup, Duration                           time.Duration
	Nonce                                      string
}

// Windowed returns the windowed load of an ingest Config.
func (c *Config) Windowed(nonce string) WindowedConfig {
	return WindowedConfig{
		Connections: c.Connections, Customers: c.Customers, Window: c.Window, EventBytes: c.EventBytes,
		Warmup: c.Warmup, Duration: c.Duration, Nonce: nonce,
	}
}

// WindowedResult is what a windowed load counted.
type WindowedResult struct {
	Measured
	Sent       int64  `json:"sent"`
	Acked      int64  `json:"acked"`
	Failed     int64  `json:"failed"`
	Lost       int64  `json:"lost"` // sent, not answered in the drain
	FirstError string `json:"first_error,omitempty"`
}

// DriveWindowed runs a windowed load: open is called once per connection,
// then every sender sends for Warmup+Duration, keeping up to Window
// events in flight, and the drive waits up to drainTimeout for the rest.
// It fails when open fails or ctx ends; failed events are counted.
func DriveWindowed(ctx context.Context, wc WindowedConfig, open func(conn int) (Sender, error)) (*WindowedResult, error) {
	if wc.Connections < 1 || wc.Customers < wc.Connections || wc.Window < 1 || wc.Duration <= 0 {
		return nil, fmt.Errorf("bench: windowed load: connections %d, customers %d, window %d, duration %v: out of range",
			wc.Connections, wc.Customers, wc.Window, wc.Duration)
	}
	senders := make([]Sender, wc.Connections)
	for i := range senders {
		s, err := open(i)
		if err != nil {
			return nil, fmt.Errorf("bench: connection %d: %w", i, err)
		}
		senders[i] = s
	}
	clk := &clock{base: time.Now(), warmupEnd: int64(wc.Warmup), sendEnd: int64(wc.Warmup + wc.Duration)}
	rec := &windowedRecorder{clk: clk, hist: newHistogram(), minutes: newMinuteRecorder(clk.warmupEnd, clk.sendEnd)}
	var wg sync.WaitGroup
	conns := make([]*windowedConn, wc.Connections)
	for i, s := range senders {
		conns[i] = newWindowedConn(wc, i, s, rec)
		wg.Go(func() { conns[i].run(ctx) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &WindowedResult{}
	rec.mu.Lock()
	res.Acked, res.Failed, res.Events = rec.acked, rec.failed, rec.measuredAcked
	res.AckLatency = newLatency(rec.hist)
	if rec.firstErr != nil {
		res.FirstError = rec.firstErr.Error()
	}
	rec.mu.Unlock()
	for _, c := range conns {
		res.Sent += c.sent
		if c.err != nil && res.FirstError == "" {
			res.FirstError = c.err.Error()
		}
	}
	res.Lost = res.Sent - res.Acked - res.Failed
	res.Seconds = wc.Duration.Seconds()
	res.EventsPerSecond = float64(res.Events) / res.Seconds
	res.Minutes = rec.minutes.minutes()
	return res, nil
}

// windowedRecorder counts the answers of every connection of a load.
type windowedRecorder struct {
	clk                          *clock
	mu                           sync.Mutex
	acked, failed, measuredAcked int64
	hist                         *hdrhistogram.Histogram
	minutes                      *minuteRecorder
	firstErr                     error
}

// settle counts one answer of an event sent at sentAt.
func (r *windowedRecorder) settle(sentAt int64, err error) {
	now := r.clk.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failed++
		if r.firstErr == nil {
			r.firstErr = err
		}
		return
	}
	r.acked++
	if now >= r.clk.warmupEnd && now < r.clk.sendEnd {
		r.measuredAcked++
	}
	if sentAt >= r.clk.warmupEnd {
		us := (now - sentAt) / int64(time.Microsecond)
		_ = r.hist.RecordValue(min(max(us, 1), latencyMaxMicros)) // in range: cannot fail
		r.minutes.mu.Lock()
		r.minutes.addLocked(now, us)
		r.minutes.mu.Unlock()
	}
}

// windowedConn is one sender's loop and its event source.
type windowedConn struct {
	s     Sender
	rec   *windowedRecorder
	slots chan struct{} // a slot per event in flight
	enc   *frameEncoder
	seqs  []uint64
	event Event
	sent  int64
	err   error
}

func newWindowedConn(wc WindowedConfig, i int, s Sender, rec *windowedRecorder) *windowedConn {
	cfg := Config{Connections: wc.Connections, Customers: wc.Customers, EventBytes: wc.EventBytes}
	enc := newFrameEncoder(wc.Nonce, i, &cfg)
	return &windowedConn{s: s, rec: rec, slots: make(chan struct{}, wc.Window), enc: enc, seqs: make([]uint64, enc.customers)}
}

// run sends until the end of the load, then waits for the answers in
// flight up to drainTimeout.
func (c *windowedConn) run(ctx context.Context) {
	clk := c.rec.clk
	end := time.NewTimer(time.Duration(clk.sendEnd - clk.now()))
	defer end.Stop()
	for ctx.Err() == nil && clk.now() < clk.sendEnd {
		select {
		case c.slots <- struct{}{}:
		case <-end.C: // a full window at the end: nothing more to send
			c.drain(ctx)
			return
		case <-ctx.Done():
			return
		}
		e := c.next()
		sentAt := clk.now()
		var once atomic.Bool
		err := c.s.Send(ctx, e, func(err error) {
			if once.Swap(true) {
				panic("bench: a sender answered an event twice")
			}
			c.rec.settle(sentAt, err)
			<-c.slots
		})
		if err != nil {
			<-c.slots // done will not be called
			c.err = err
			break
		}
		c.sent++
	}
	c.drain(ctx)
}

// drain takes back every slot: each is freed by an answer.
func (c *windowedConn) drain(ctx context.Context) {
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	for range cap(c.slots) {
		select {
		case c.slots <- struct{}{}:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// next makes the connection's next event, as the WebSocket client would
// send it.
func (c *windowedConn) next() *Event {
	e := &c.event
	enc := c.enc
	e.N, e.Turn = enc.nextEvent, enc.nextCustomer
	e.ID = string(enc.idPrefix) + strconv.FormatUint(e.N, 10)
	e.Customer = string(enc.custPrefix) + strconv.Itoa(enc.connection+enc.nextCustomer*enc.connections)
	c.seqs[e.Turn]++
	e.Seq = c.seqs[e.Turn]
	off := int(e.N*131) % textPoolSpread
	e.Text = string(enc.text[off : off+enc.textBytes])
	e.JSON = enc.appendEvent(e.JSON[:0]) // advances the encoder
	return e
}
