package bench

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Desk frame kinds the workload reads (PROTOCOL section 4).
const (
	deskOther = iota // presence answers, subscribed, later types: ignored
	deskOffer
	deskAssigned
	deskRevoked
	deskEvent
	deskOK
	deskError
)

// deskServerFrame is a decoded desk frame; its slices point into the
// message buffer and hold raw string contents. The offer's and the
// assignment's context is skipped unread.
type deskServerFrame struct {
	kind         int
	customer     []byte
	conversation []byte
	ref          []byte
	code         []byte
	eventID      []byte // an event frame's event.id
}

// decodeDeskFrame decodes msg into f. Unknown fields are skipped, fields
// come in any order.
func decodeDeskFrame(msg []byte, f *deskServerFrame) error {
	*f = deskServerFrame{}
	s := scanner{b: msg}
	var typ []byte
	s.object(func(key []byte) {
		switch string(key) {
		case "type":
			typ = s.str()
		case "customer":
			f.customer = s.str()
		case "conversation":
			f.conversation = s.str()
		case "ref":
			f.ref = s.str()
		case "code":
			f.code = s.str()
		case "event":
			s.object(func(key []byte) {
				if string(key) == "id" {
					f.eventID = s.str()
				} else {
					s.skip(1)
				}
			})
		default:
			s.skip(0)
		}
	})
	s.space()
	if s.err == nil && s.i != len(s.b) {
		s.err = errSyntax
	}
	if s.err != nil {
		return s.err
	}
	switch string(typ) {
	case "offer":
		f.kind = deskOffer
	case "assigned":
		f.kind = deskAssigned
	case "revoked":
		f.kind = deskRevoked
	case "event":
		f.kind = deskEvent
	case "ok":
		f.kind = deskOK
	case "error":
		f.kind = deskError
	}
	return nil
}

// agentsDesk is one agent's desk WebSocket. Its reader hands each frame to
// the run, which answers offers and wrap-ups through out; the writer sends
// them. The reader never writes.
type agentsDesk struct {
	run      *agentsRun
	ws       *websocket.Conn
	agent    string
	out      chan []byte // frames for the writer, at most deskOutMax
	closing  atomic.Bool
	writeErr error // writer-owned
	readErr  error // reader-owned
}

func newAgentsDesk(run *agentsRun, ws *websocket.Conn, agent string) *agentsDesk {
	return &agentsDesk{run: run, ws: ws, agent: agent, out: make(chan []byte, deskOutMax)}
}

// presence makes the desk available with capacity and waits for its ok.
func presence(ws *websocket.Conn, capacity int) error {
	deadline := time.Now().Add(handshakeTimeout)
	_ = ws.SetWriteDeadline(deadline)
	frame := `{"type":"presence","status":"available","capacity":` + strconv.Itoa(capacity) + `,"ref":"p"}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	_ = ws.SetReadDeadline(deadline)
	var f deskServerFrame
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("waiting for presence ok: %w", err)
		}
		if decodeDeskFrame(msg, &f) != nil || string(f.ref) != "p" {
			continue
		}
		if f.kind == deskError {
			return fmt.Errorf("presence refused: %s", f.code)
		}
		if f.kind == deskOK {
			break
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	_ = ws.SetWriteDeadline(time.Time{})
	return nil
}

// queueLocked hands a frame to the writer, under the run's lock; a full
// queue drops it (counted: the bound is far above what a desk holds).
func (d *agentsDesk) queueLocked(frame []byte) {
	select {
	case d.out <- frame:
	default:
		d.run.mu.counts.deskFramesDropped++
	}
}

// write sends the queued frames until done or a write fails.
func (d *agentsDesk) write(done <-chan struct{}) {
	for {
		select {
		case frame := <-d.out:
			if err := d.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				if !d.closing.Load() {
					d.writeErr = err
				}
				return
			}
		case <-done:
			return
		}
	}
}

// read hands the server's frames to the run until the connection closes.
func (d *agentsDesk) read() {
	var f deskServerFrame
	buf := make([]byte, 0, 16<<10)
	for {
		var err error
		if buf, err = nextMessage(d.ws, buf); err != nil {
			if !d.closing.Load() {
				d.readErr = err
			}
			return
		}
		now := d.run.clock.now()
		if decodeDeskFrame(buf, &f) != nil {
			d.run.mu.Lock()
			d.run.mu.counts.malformed++
			d.run.mu.Unlock()
			continue
		}
		d.run.deskMessage(d, &f, now)
	}
}

// close ends the desk; the reader returns.
func (d *agentsDesk) close() {
	if d.closing.Swap(true) {
		return
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = d.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(controlTimeout))
	_ = d.ws.Close()
}
