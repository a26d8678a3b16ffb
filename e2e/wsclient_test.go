package e2e

// Events and frames of the channel WebSocket (PROTOCOL sections 1 and 2),
// and a client that reads every frame on its own goroutine.

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// event is an inbound event as a client sends it.
type event struct {
	ID       string            `json:"id,omitempty"`
	Customer string            `json:"customer,omitempty"`
	Identity map[string]string `json:"identity,omitempty"`
	Type     string            `json:"type,omitempty"`
	Channel  string            `json:"channel,omitempty"`
	Text     string            `json:"text,omitempty"`
	Data     any               `json:"data,omitempty"`
}

// storedEvent is an event as readers see it.
type storedEvent struct {
	ID         string            `json:"id"`
	Customer   string            `json:"customer"`
	Identity   map[string]string `json:"identity"`
	Type       string            `json:"type"`
	Channel    string            `json:"channel"`
	Text       string            `json:"text"`
	Data       map[string]any    `json:"data"`
	Seq        uint64            `json:"seq"`
	Actor      string            `json:"actor"`
	RecordedAt time.Time         `json:"recorded_at"`
}

// apiError is the body of every error: {"error":{"code","message"}}, and the
// error of a batch item.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ack is an ack, or a batch item that failed (Error set).
type ack struct {
	ID        string    `json:"id"`
	Customer  string    `json:"customer"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate"`
	Error     *apiError `json:"error"`
}

// frame is any frame the server sends on the channel WebSocket.
type frame struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Customer  string `json:"customer"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Acks      []ack  `json:"acks"`
	// outbound frames
	Channel string            `json:"channel"`
	Text    string            `json:"text"`
	Actor   string            `json:"actor"`
	To      map[string]string `json:"to"`
	raw     []byte
}

func eventFrame(e event) map[string]any { return map[string]any{"type": "event", "event": e} }

func batchFrame(id string, es []event) map[string]any {
	return map[string]any{"type": "batch", "id": id, "events": es}
}

// wsClient is one channel WebSocket. A reader goroutine decodes every frame
// into frames; closed is closed when the connection ends.
type wsClient struct {
	t      *testing.T
	conn   *websocket.Conn
	wmu    sync.Mutex
	frames chan frame
	closed chan struct{}
}

const wsFramesMax = 1 << 16

// dialWS opens the channel WebSocket with a token; it fails the test when
// the upgrade is refused.
func dialWS(t *testing.T, s *server, token string) *wsClient {
	t.Helper()
	c, resp, err := tryDialWS(s, token)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial channel WebSocket: %v (status %d)", err, status)
	}
	w := &wsClient{t: t, conn: c, frames: make(chan frame, wsFramesMax), closed: make(chan struct{})}
	go w.readLoop()
	t.Cleanup(func() { w.conn.Close() })
	return w
}

// tryDialWS dials GET /v1/channels/ws; an empty token sends no Authorization.
// The response is returned with its body read, for refused upgrades.
func tryDialWS(s *server, token string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	return d.Dial("ws://"+s.addr+"/v1/channels/ws", h)
}

func (w *wsClient) readLoop() {
	defer close(w.closed)
	for {
		_, data, err := w.conn.ReadMessage()
		if err != nil {
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			f = frame{Type: "<not json>"}
		}
		f.raw = data
		select {
		case w.frames <- f:
		default:
			panic("e2e: a test does not read its WebSocket frames")
		}
	}
}

// send writes one frame as JSON; a write error is returned (the server may
// be gone).
func (w *wsClient) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		panic("e2e: marshal frame: " + err.Error()) // the tests' own types
	}
	return w.sendRaw(b)
}

func (w *wsClient) sendRaw(b []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return w.conn.WriteMessage(websocket.TextMessage, b)
}

// mustSend sends a frame and fails the test on a write error.
func (w *wsClient) mustSend(v any) {
	w.t.Helper()
	if err := w.send(v); err != nil {
		w.t.Fatalf("write frame: %v", err)
	}
}

// next returns the next frame; ok is false when the connection closed
// first. It fails the test after frameTimeout.
func (w *wsClient) next() (frame, bool) {
	w.t.Helper()
	f, ok, late := w.receive(time.After(frameTimeout))
	if late {
		w.t.Fatalf("no frame within %s", frameTimeout)
	}
	return f, ok
}

// receive waits for the next frame: ok is false when the connection closed
// first (frames that arrived before the close are still returned), late is
// true when timeout fired first; a nil timeout waits without limit. It
// never touches the test, so any goroutine may call it.
func (w *wsClient) receive(timeout <-chan time.Time) (f frame, ok, late bool) {
	select {
	case f := <-w.frames:
		return f, true, false
	default:
	}
	select {
	case f := <-w.frames:
		return f, true, false
	case <-w.closed:
		select {
		case f := <-w.frames:
			return f, true, false
		default:
			return frame{}, false, false
		}
	case <-timeout:
		return frame{}, false, true
	}
}

// expect returns the next frame and fails the test when the connection
// closed or the frame is not of type typ.
func (w *wsClient) expect(typ string) frame {
	w.t.Helper()
	f, ok := w.next()
	if !ok {
		w.t.Fatalf("connection closed while waiting for a %q frame", typ)
	}
	if f.Type != typ {
		w.t.Fatalf("got frame %s, want type %q", f.raw, typ)
	}
	return f
}

// sendEvent sends one event frame and returns its ack, failing on an error.
func (w *wsClient) sendEvent(e event) frame {
	w.t.Helper()
	w.mustSend(eventFrame(e))
	f := w.expect("ack")
	if f.ID != e.ID {
		w.t.Fatalf("ack %s answers event %q", f.raw, e.ID)
	}
	return f
}
