package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/actors"
)

// startServer runs a gateway on a loopback port over the memory store.
func startServer(t *testing.T) string {
	t.Helper()
	return startServerWith(t, actors.Config{})
}

// startServerWith is startServer with the actors' configuration.
func startServerWith(t *testing.T, cfg actors.Config) string {
	t.Helper()
	return startGateway(t, cfg, nil)
}

// startGateway is startServerWith with changes to the gateway's
// configuration (nil: none).
func startGateway(t *testing.T, cfg actors.Config, change func(*Config)) string {
	t.Helper()
	gcfg := Config{Tokens: []Token{{Token: "gw", Role: RoleChannel}, {Token: "sup", Role: RoleSupervisor}, {Token: "adm-secret", Role: RoleAdmin, Name: "ops"}}}
	if change != nil {
		change(&gcfg)
	}
	return startTestServer(t, gcfg, cfg).Addr()
}

func dialChannel(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/v1/channels/ws", http.Header{"Authorization": {"Bearer gw"}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	return ws
}

// The writer batches frames itself: frames of every length class, pongs and
// the close handshake must still be valid WebSocket for a standard client.
func TestChannelWriterFramesAreValidWebSocket(t *testing.T) {
	addr := startServer(t)
	ws := dialChannel(t, addr)

	pong := make(chan string, 1)
	ws.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := ws.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// A batch of 1000 answers with an acks frame over 64 KiB (8-byte length).
	var b strings.Builder
	b.WriteString(`{"type":"batch","id":"big","events":[`)
	for i := range 1000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"an-event-with-a-longer-id-%d","customer":"customer-%d","text":"x"}`, i, i%7)
	}
	b.WriteString(`]}`)
	frames := []string{
		`{"type":"hello","channels":["sms"]}`, // short frame
		`{"type":"event","event":{"id":"mid","customer":"c-1","text":"` + strings.Repeat("y", 300) + `"}}`,
		b.String(),
	}
	for _, f := range frames {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	var sawReady, sawAck, sawAcks bool
	for !(sawReady && sawAck && sawAcks) {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var f struct {
			Type string
			ID   string
			Acks []json.RawMessage
		}
		if err := json.Unmarshal(msg, &f); err != nil {
			t.Fatalf("frame %q: %v", msg, err)
		}
		switch f.Type {
		case "ready":
			sawReady = true
		case "ack":
			sawAck = f.ID == "mid"
		case "acks":
			sawAcks = len(msg) > 65535 && len(f.Acks) == 1000
		}
	}
	select {
	case got := <-pong:
		if got != "hi" {
			t.Fatalf("pong %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
	// A client close is answered with a close frame.
	if err := ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				t.Fatalf("closing: %v", err)
			}
			break
		}
	}
}

func TestAppendFrameLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := appendFrame(nil, opText, make([]byte, n))
		head := map[bool]int{true: 2}[n < 126]
		if n >= 126 && n <= 65535 {
			head = 4
		} else if n > 65535 {
			head = 10
		}
		if len(f) != head+n || f[0] != 0x81 {
			t.Errorf("frame of %d: %d bytes, first byte %x", n, len(f), f[0])
		}
	}
}

// Ack frames are written from buffers the writer gives back to a pool
// once a frame is in its batch (outFrame.owned): thousands of acks in
// flight on one connection each arrive once, whole, with its own id. A
// buffer handed back while its frame still waited would show here as a
// repeated or garbled ack (and under -race as a race).
func TestOwnedAckFramesArriveIntact(t *testing.T) {
	addr := startServer(t)
	ws := dialChannel(t, addr)
	const n = 3000
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			f := fmt.Sprintf(`{"type":"event","event":{"id":"owned-%d","customer":"c-%d","text":"z%s"}}`, i, i%50, strings.Repeat("z", i%200))
			if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	seen := make(map[string]bool, n)
	for len(seen) < n {
		if err := ws.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read after %d acks: %v", len(seen), err)
		}
		var f struct {
			Type, ID, Customer string
			Seq                uint64
		}
		if err := json.Unmarshal(msg, &f); err != nil || f.Type != "ack" || f.Seq == 0 {
			t.Fatalf("frame %q: %v", msg, err)
		}
		var i int
		if _, err := fmt.Sscanf(f.ID, "owned-%d", &i); err != nil || f.Customer != fmt.Sprintf("c-%d", i%50) {
			t.Fatalf("ack %q names another event's customer", msg)
		}
		if seen[f.ID] {
			t.Fatalf("ack for %s twice", f.ID)
		}
		seen[f.ID] = true
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Answers are counted in /metrics whichever way they go out: a WebSocket's
// acks by its writer, its errors and HTTP's answers as they are made.
func TestAnswersAreCounted(t *testing.T) {
	addr := startServer(t)
	ws := dialChannel(t, addr)
	frames := []string{
		`{"type":"event","event":{"id":"m-1","customer":"c-1","text":"a"}}`,
		`{"type":"event","event":{"id":"m-2","customer":"c-2","text":"b"}}`,
		`{"type":"event","event":{"id":"m-1","customer":"c-1","text":"a"}}`, // a duplicate
		`{"type":"event","event":{"customer":"c-1","text":"no id"}}`,        // refused
		`{"type":"event","event":{"id":"m-3","customer":"c-1","text":"c"}}`,
	}
	code := ""
	for _, f := range frames {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			t.Fatal(err)
		}
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var a struct{ Type, Code string }
		if err := json.Unmarshal(msg, &a); err != nil {
			t.Fatalf("frame %q: %v", msg, err)
		}
		if a.Type == "error" {
			code = a.Code
		}
	}
	if code == "" {
		t.Fatal("the event without an id was not refused")
	}
	if status, body := postEvent(t, addr, "m-4", "c-3"); status != http.StatusAccepted && status != http.StatusOK {
		t.Fatalf("POST: %d %s", status, body)
	}
	for name, want := range map[string]float64{
		"throughline_events_ingested_total":                      4,
		"throughline_events_duplicate_total":                     1,
		`throughline_events_rejected_total{code="` + code + `"}`: 1,
		"throughline_ack_latency_seconds_count":                  6,
	} {
		if got := metric(t, addr, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metric(t, addr, "throughline_ack_latency_seconds_bucket{le=\"+Inf\"}"); got != 6 {
		t.Errorf("the latency's +Inf bucket holds %v answers, want 6", got)
	}
}

// A connection's queue, drained as its writer ends, refuses what comes
// after: the answerer counts such an ack itself (channelConn.result).
func TestQueueRefusesAfterItsLastDrain(t *testing.T) {
	q := newQueue[int](4)
	q.push(1)
	q.push(2)
	var got []int
	q.drainClosed(func(v int) { got = append(got, v) })
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("drained %v, want [1 2]", got)
	}
	if q.push(3) {
		t.Fatal("a closed queue took an item")
	}
	if q.len() != 0 {
		t.Fatalf("%d items wait in a closed queue", q.len())
	}
}
