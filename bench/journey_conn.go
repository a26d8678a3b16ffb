package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gorilla/websocket"
)

// journeyTurn is one customer's turn: at most one is in flight.
type journeyTurn struct {
	scheduled  int64  // when it was meant to go, on the run's clock
	event      uint64 // the event's number on its connection
	busy       bool   // sent, not yet settled
	acked      bool
	replied    bool
	failed     bool // answered with an error: no reply comes
	handedOver bool // the reply was the hand-over message: the bot is done with this customer
}

// journeyCounts are one connection's counts, merged at the end.
type journeyCounts struct {
	sent, acked, answered, handedOver, failed int64
	unmatched, malformed                      int64  // answers naming no turn in flight; frames not JSON
	firstUnmatched                            string // what the first unmatched frame was, for the report
	waited                                    int64  // turns that waited for a free customer
	acceptsDropped                            int64  // outbounds not confirmed: the writer was behind
	measuredReplies                           int64  // replies received in the measured period
}

// journeyConn is one channel connection of a journey run. The writer
// goroutine sends the turns on schedule and the accepted frames; the reader
// goroutine settles turns by event id (acks, errors) and by customer
// (outbounds). The reader never writes: it hands outbound ids to the
// writer.
type journeyConn struct {
	ws          *websocket.Conn
	index       int // this connection: customers index + k*connections
	connections int
	clock       *clock
	idPrefix    []byte // "<nonce>-<connection>-": event ids
	custPrefix  []byte // "jc-<nonce>-": customer ids
	handover    []byte // the hand-over text as JSON string contents
	rng         *rand.Rand
	buf         []byte // the writer's frame

	accepts chan string   // outbound ids for the writer to confirm
	freed   chan struct{} // cap 1: a customer became free
	drained chan struct{} // closed once the writer stopped and nothing is in flight
	done    chan struct{} // closed by close
	closing atomic.Bool

	mu struct {
		sync.Mutex
		turns         []journeyTurn  // by slot: customer index / connections
		byEvent       map[uint64]int // slot by event number, for turns in flight
		free          []int          // ring of free slots, oldest first
		freeHead      int
		freeLen       int
		inflight      int
		sending       bool
		drainedClosed bool
		counts        journeyCounts
		errors        map[string]int64
		ack, turn     *hdrhistogram.Histogram // µs, turns scheduled in the measured period
	}

	writeErr error // writer-owned
	readErr  error // reader-owned
}

// dialJourney opens the connections and has each say hello for chat.
func dialJourney(ctx context.Context, cfg *JourneyConfig, wsURL, nonce string, handover []byte) ([]*journeyConn, error) {
	header := http.Header{}
	if cfg.Token != "" {
		header.Set("Authorization", "Bearer "+cfg.Token)
	}
	clk := &clock{}
	conns := make([]*journeyConn, 0, cfg.Connections)
	for i := range cfg.Connections {
		c, err := dialJourneyConn(ctx, wsURL, header)
		if err == nil {
			err = hello(c)
		}
		if err != nil {
			if c != nil {
				_ = c.Close()
			}
			for _, j := range conns {
				j.close()
			}
			return nil, fmt.Errorf("bench: connection %d: %w", i, err)
		}
		conns = append(conns, newJourneyConn(c, i, cfg, clk, nonce, handover))
	}
	return conns, nil
}

func dialJourneyConn(ctx context.Context, wsURL string, header http.Header) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: handshakeTimeout, ReadBufferSize: wsBufferBytes, WriteBufferSize: wsBufferBytes, TLSClientConfig: tlsConfig()}
	ws, resp, err := d.DialContext(ctx, wsURL, header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %s: %w", wsURL, resp.Status, err)
		}
		return nil, fmt.Errorf("dial %s: %w", wsURL, err)
	}
	ws.SetReadLimit(readLimitBytes)
	return ws, nil
}

// hello says hello for the journey's channel and waits for ready.
func hello(ws *websocket.Conn) error {
	deadline := time.Now().Add(handshakeTimeout)
	_ = ws.SetWriteDeadline(deadline)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","channels":["`+journeyChannel+`"]}`)); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	_ = ws.SetReadDeadline(deadline)
	var f serverFrame
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("waiting for ready: %w", err)
		}
		if decodeFrame(msg, &f) == nil && f.kind == kindReady {
			break
		}
		if f.kind == kindError {
			return fmt.Errorf("hello refused: %s", f.code)
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	_ = ws.SetWriteDeadline(time.Time{})
	return nil
}

func newJourneyConn(ws *websocket.Conn, index int, cfg *JourneyConfig, clk *clock, nonce string, handover []byte) *journeyConn {
	slots := cfg.Customers / cfg.Connections
	if index < cfg.Customers%cfg.Connections {
		slots++
	}
	c := &journeyConn{
		ws: ws, index: index, connections: cfg.Connections, clock: clk,
		idPrefix:   []byte(nonce + "-" + strconv.Itoa(index) + "-"),
		custPrefix: []byte("jc-" + nonce + "-"),
		handover:   handover,
		rng:        rand.New(rand.NewPCG(uint64(index), 0x6a6f75726e6579)),
		buf:        make([]byte, 0, 256),
		accepts:    make(chan string, slots+64),
		freed:      make(chan struct{}, 1),
		drained:    make(chan struct{}),
		done:       make(chan struct{}),
	}
	m := &c.mu
	m.turns = make([]journeyTurn, slots)
	m.byEvent = make(map[uint64]int, slots)
	m.free = make([]int, slots)
	for i := range m.free {
		m.free[i] = i
	}
	m.freeLen = slots
	m.sending = true
	m.errors = map[string]int64{}
	m.ack, m.turn = newHistogram(), newHistogram()
	return c
}

// write sends turn k at phase + k*period (ns) until the send period ends or
// stop, then keeps confirming outbounds until nothing is in flight. A turn
// whose connection has no free customer at its time waits for one; its
// latency still counts from its scheduled time.
func (c *journeyConn) write(stop <-chan struct{}, period float64, phase int64) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for k := uint64(0); ; k++ {
		scheduled := phase + int64(float64(k)*period)
		if scheduled >= c.clock.sendEnd || isClosed(stop) {
			break
		}
		if wait := scheduled - c.clock.now(); wait > 0 {
			timer.Reset(time.Duration(wait))
			if !journeyWait(c, timer.C, stop) {
				break
			}
		}
		slot, ok := c.takeFree(stop)
		if !ok || !c.send(k, slot, scheduled) {
			break
		}
	}
	c.stopSending()
	for c.writeErr == nil {
		select {
		case id := <-c.accepts:
			c.sendAccepted(id)
		case <-c.drained:
			return
		case <-c.done:
			return
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// journeyWait waits for ready, confirming outbounds meanwhile; false when stop
// came first or a write failed.
func journeyWait[T any](c *journeyConn, ready <-chan T, stop <-chan struct{}) bool {
	for {
		select {
		case <-ready:
			return true
		case <-stop:
			return false
		case id := <-c.accepts:
			if !c.sendAccepted(id) {
				return false
			}
		}
	}
}

// takeFree takes the connection's free customer that waited longest.
func (c *journeyConn) takeFree(stop <-chan struct{}) (int, bool) {
	waited := false
	for {
		c.mu.Lock()
		if c.mu.freeLen > 0 {
			slot := c.mu.free[c.mu.freeHead]
			c.mu.freeHead = (c.mu.freeHead + 1) % len(c.mu.free)
			c.mu.freeLen--
			if waited {
				c.mu.counts.waited++
			}
			c.mu.Unlock()
			return slot, true
		}
		c.mu.Unlock()
		waited = true
		if !journeyWait(c, c.freed, stop) {
			return 0, false
		}
	}
}

// send records the turn as in flight, then writes its event.
func (c *journeyConn) send(k uint64, slot int, scheduled int64) bool {
	c.mu.Lock()
	c.mu.turns[slot] = journeyTurn{scheduled: scheduled, event: k, busy: true}
	c.mu.byEvent[k] = slot
	c.mu.inflight++
	c.mu.counts.sent++
	c.mu.Unlock()

	b := append(c.buf[:0], `{"type":"event","event":{"id":"`...)
	b = append(b, c.idPrefix...)
	b = strconv.AppendUint(b, k, 10)
	b = append(b, `","customer":"`...)
	b = append(b, c.custPrefix...)
	b = strconv.AppendInt(b, int64(c.index+slot*c.connections), 10)
	b = append(b, `","type":"message.received","channel":"`+journeyChannel+`","text":"`...)
	b = append(b, journeyQuestions[c.rng.IntN(len(journeyQuestions))]...) // JSON-safe: journey_test checks
	b = append(b, `"}}`...)
	c.buf = b
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.setWriteErr(err)
		c.mu.Lock()
		c.mu.turns[slot].failed = true
		c.settleLocked(slot)
		c.mu.counts.sent--
		c.mu.Unlock()
		return false
	}
	return true
}

// sendAccepted confirms an outbound, so the server does not send it again.
func (c *journeyConn) sendAccepted(id string) bool {
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"accepted","id":"`+id+`"}`)); err != nil {
		c.setWriteErr(err)
		return false
	}
	return true
}

func (c *journeyConn) setWriteErr(err error) {
	if c.writeErr == nil && !c.closing.Load() {
		c.writeErr = err
	}
}

// stopSending lets the drain finish once nothing is in flight.
func (c *journeyConn) stopSending() {
	c.mu.Lock()
	c.mu.sending = false
	c.checkDrainedLocked()
	c.mu.Unlock()
}

func (c *journeyConn) checkDrainedLocked() {
	if !c.mu.sending && c.mu.inflight == 0 && !c.mu.drainedClosed {
		c.mu.drainedClosed = true
		close(c.drained)
	}
}

// read settles turns from the server's frames until the connection closes.
func (c *journeyConn) read() {
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
		now := c.clock.now()
		c.mu.Lock()
		if decodeFrame(buf, &f) != nil {
			c.mu.counts.malformed++
		} else {
			c.accountLocked(&f, now)
		}
		c.mu.Unlock()
	}
}

// accountLocked settles what one server frame answers.
func (c *journeyConn) accountLocked(f *serverFrame, now int64) {
	m := &c.mu
	switch f.kind {
	case kindAck:
		slot, ok := c.slotOfEventLocked(f.id)
		if !ok || m.turns[slot].acked {
			m.counts.unmatched++
			c.noteUnmatchedLocked("ack", f.id, ok)
			return
		}
		t := &m.turns[slot]
		t.acked = true
		m.counts.acked++
		c.recordLocked(m.ack, t.scheduled, now)
		c.settleLocked(slot)
	case kindError:
		m.errors[string(f.code)]++
		if slot, ok := c.slotOfEventLocked(f.id); ok {
			m.turns[slot].failed = true
			m.counts.failed++
			c.settleLocked(slot)
		}
	case kindOutbound:
		c.confirmLocked(f.id)
		slot, ok := c.slotOfCustomer(f.customer)
		if !ok || !m.turns[slot].busy || m.turns[slot].replied {
			m.counts.unmatched++ // sent again, or after its turn was given up
			c.noteUnmatchedLocked("outbound", fmt.Appendf(nil, "%s %s", f.customer, f.text), ok && m.turns[slot].replied)
			return
		}
		t := &m.turns[slot]
		t.replied = true
		if bytes.Equal(f.text, c.handover) {
			t.handedOver = true
			m.counts.handedOver++
		} else {
			m.counts.answered++
		}
		if now >= c.clock.warmupEnd && now < c.clock.sendEnd {
			m.counts.measuredReplies++
		}
		c.recordLocked(m.turn, t.scheduled, now)
		c.settleLocked(slot)
	}
}

// noteUnmatchedLocked keeps what the first unmatched frame was: its kind,
// what it named (an event id; an outbound's customer and text) and whether
// its turn had already been answered.
func (c *journeyConn) noteUnmatchedLocked(kind string, named []byte, answered bool) {
	if c.mu.counts.firstUnmatched == "" {
		c.mu.counts.firstUnmatched = fmt.Sprintf("%s %.120q (turn answered already: %v)", kind, named, answered)
	}
}

// confirmLocked hands an outbound id to the writer; when its queue is full
// the outbound stays unconfirmed (the server sends it again in 30 s).
func (c *journeyConn) confirmLocked(id []byte) {
	select {
	case c.accepts <- string(id):
	default:
		c.mu.counts.acceptsDropped++
	}
}

// recordLocked records a latency of a turn scheduled in the measured period.
func (c *journeyConn) recordLocked(h *hdrhistogram.Histogram, scheduled, now int64) {
	if scheduled >= c.clock.warmupEnd && scheduled < c.clock.sendEnd {
		_ = h.RecordValue(min(max((now-scheduled)/int64(time.Microsecond), 1), latencyMaxMicros))
	}
}

func (c *journeyConn) slotOfEventLocked(id []byte) (int, bool) {
	n, ok := parseEventID(id, c.idPrefix)
	if !ok {
		return 0, false
	}
	slot, ok := c.mu.byEvent[n]
	return slot, ok
}

// slotOfCustomer maps a customer id of this connection to its slot.
func (c *journeyConn) slotOfCustomer(id []byte) (int, bool) {
	if !bytes.HasPrefix(id, c.custPrefix) {
		return 0, false
	}
	g, ok := parseUint(id[len(c.custPrefix):])
	if !ok || int(g%uint64(c.connections)) != c.index {
		return 0, false
	}
	slot := int(g / uint64(c.connections))
	return slot, slot < len(c.mu.turns)
}

// settleLocked ends a turn once it is acked and replied to, or failed. A
// customer handed over is not given turns again: the bot no longer answers
// it.
func (c *journeyConn) settleLocked(slot int) {
	m := &c.mu
	t := &m.turns[slot]
	if !t.busy || !(t.failed || t.acked && t.replied) {
		return
	}
	t.busy = false
	delete(m.byEvent, t.event)
	m.inflight--
	if !t.handedOver {
		m.free[(m.freeHead+m.freeLen)%len(m.free)] = slot
		m.freeLen++
		select {
		case c.freed <- struct{}{}:
		default:
		}
	}
	c.checkDrainedLocked()
}

// close ends the connection; the reader and a blocked writer return.
func (c *journeyConn) close() {
	if c.closing.Swap(true) {
		return
	}
	close(c.done)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(controlTimeout))
	_ = c.ws.Close()
}

// collect merges the connection's counts into r once its goroutines have
// returned. A turn of the measured period still in flight at the end is
// recorded at its age then: a lower bound, so a lost reply is not hidden.
func (c *journeyConn) collect(r *journeyResult, now int64) {
	m := &c.mu
	s := &r.counts
	s.sent += m.counts.sent
	s.acked += m.counts.acked
	s.answered += m.counts.answered
	s.handedOver += m.counts.handedOver
	s.failed += m.counts.failed
	s.unmatched += m.counts.unmatched
	if s.firstUnmatched == "" {
		s.firstUnmatched = m.counts.firstUnmatched
	}
	s.malformed += m.counts.malformed
	s.waited += m.counts.waited
	s.acceptsDropped += m.counts.acceptsDropped
	s.measuredReplies += m.counts.measuredReplies
	for code, n := range m.errors {
		r.errors[code] += n
	}
	for i := range m.turns {
		t := &m.turns[i]
		if !t.busy {
			continue
		}
		if !t.acked {
			r.missingAcks++
			c.recordLocked(m.ack, t.scheduled, now)
		}
		if !t.replied {
			r.missingRep++
			c.recordLocked(m.turn, t.scheduled, now)
		}
	}
	r.ack.Merge(m.ack)
	r.turn.Merge(m.turn)
	for _, err := range []error{c.writeErr, c.readErr} {
		if err != nil {
			r.connectionErrors++
			if r.firstConnectionError == nil {
				r.firstConnectionError = err
			}
		}
	}
}
