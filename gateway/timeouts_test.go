package gateway

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/actors"
)

// A client that sends its headers byte by byte, never finishing them, is
// cut off after ReadHeaderTimeout rather than holding a connection.
func TestSlowLorisHeaderIsCutOff(t *testing.T) {
	addr := startGateway(t, actors.Config{}, func(c *Config) { c.ReadHeaderTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")); err != nil {
		t.Fatal(err)
	}
	// Trickle a byte every 100 ms: each arrives within any per-read
	// timeout, only a deadline on the whole header stops it.
	closed := make(chan error, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				closed <- err
				return
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
				t.Fatalf("closed after %v; want about 300ms", d)
			}
			return
		case <-tick.C:
			if _, err := conn.Write([]byte("a")); err != nil {
				if d := time.Since(start); d < 250*time.Millisecond {
					t.Fatalf("write failed after %v: %v", d, err)
				}
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a trickled header held the connection for 5s")
		}
	}
}

// Headers past HeaderMaxBytes are refused (431), not buffered.
func TestHeaderMaxBytes(t *testing.T) {
	addr := startGateway(t, actors.Config{}, func(c *Config) { c.HeaderMaxBytes = 4 << 10 })
	req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Big", stringOf('a', 16<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d; want 431", resp.StatusCode)
	}
}

func stringOf(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

// Every WebSocket is pinged; one whose client stops answering is closed
// after WSIdleTimeout, and one that answers stays open.
func TestWebSocketIdleClientIsClosed(t *testing.T) {
	addr := startGateway(t, actors.Config{}, func(c *Config) {
		c.Tokens = append(c.Tokens, Token{Token: "alice", Role: RoleAgent, Agent: "alice"})
		c.WSPingInterval = 100 * time.Millisecond
		c.WSIdleTimeout = 400 * time.Millisecond
	})
	for _, ep := range []struct{ path, token string }{{"/v1/channels/ws", "gw"}, {"/v1/agents/ws", "alice"}} {
		t.Run(ep.path, func(t *testing.T) {
			dial := func() *websocket.Conn {
				ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+ep.path, http.Header{"Authorization": {"Bearer " + ep.token}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ws.Close() })
				return ws
			}
			// Answers pings (gorilla's default handler): open well past
			// the idle timeout.
			live := dial()
			pinged := 0
			live.SetPingHandler(func(d string) error {
				pinged++
				return live.WriteControl(websocket.PongMessage, []byte(d), time.Now().Add(time.Second))
			})
			_ = live.SetReadDeadline(time.Now().Add(1200 * time.Millisecond))
			for {
				_, _, err := live.ReadMessage()
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // our own deadline: the server kept it open
				}
				if err != nil {
					t.Fatalf("a client answering pings was closed: %v", err)
				}
			}
			if pinged < 5 {
				t.Fatalf("%d pings in 1.2s; want one every 100ms", pinged)
			}
			live.Close() // a close is not an idle timeout (the metric below)
			// Stops answering: closed after the idle timeout.
			silent := dial()
			silent.SetPingHandler(func(string) error { return nil })
			start := time.Now()
			_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				_, _, err := silent.ReadMessage()
				if err == nil {
					continue
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("a client that stopped answering pings was still open after 5s")
				}
				if d := time.Since(start); d < 350*time.Millisecond {
					t.Fatalf("closed after %v, before the idle timeout: %v", d, err)
				}
				return
			}
		})
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`throughline_connections_idle_closed_total{endpoint="channel"} 1`, `throughline_connections_idle_closed_total{endpoint="agent"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(string(body), "idle_closed"))
		}
	}
}

// A body that stops arriving is cut off after HTTPReadTimeout.
func TestSlowBodyIsCutOff(t *testing.T) {
	addr := startGateway(t, actors.Config{}, func(c *Config) { c.HTTPReadTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, err = conn.Write([]byte("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer gw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":"))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf) // an answer (400) or the close
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("answered after %v (%q); want about 300ms", d, buf[:n])
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A reader paused by its token's rate for longer than the idle timeout is
// not taken for a silent client: the wait is the server's, not the
// client's.
func TestRatePausedWebSocketIsNotIdle(t *testing.T) {
	addr := startGateway(t, actors.Config{}, func(c *Config) {
		c.Tokens = append(c.Tokens, Token{Token: "slow", Role: RoleChannel, Rate: 2})
		c.WSPingInterval = 100 * time.Millisecond
		c.WSIdleTimeout = 300 * time.Millisecond
	})
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/v1/channels/ws", http.Header{"Authorization": {"Bearer slow"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	batch := func(id string) []byte {
		return []byte(`{"type":"batch","id":"` + id + `","events":[{"id":"` + id + `-1","customer":"c-r","text":"a"},{"id":"` + id + `-2","customer":"c-r","text":"b"}]}`)
	}
	// The second batch waits about a second for the rate: three idle
	// timeouts.
	for _, id := range []string{"b1", "b2"} {
		if err := ws.WriteMessage(websocket.TextMessage, batch(id)); err != nil {
			t.Fatal(err)
		}
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	acks := 0
	for acks < 2 {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("closed while its reader waited for the rate (%d batches answered): %v", acks, err)
		}
		if strings.Contains(string(msg), `"type":"acks"`) {
			acks++
		}
	}
	// And it still reads: the wait left no expired deadline behind (this
	// event waits for the rate too, while the client answers pings).
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"event","event":{"id":"e3","customer":"c-r","text":"c"}}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("closed after its reader waited for the rate: %v", err)
		}
		if strings.Contains(string(msg), `"type":"ack"`) {
			return
		}
	}
}

// An idle connection's writer ends after writerIdle, and what comes next
// starts another: an ack, the pings, the close frame.
func TestIdleConnectionWriterEnds(t *testing.T) {
	old := writerIdle
	writerIdle = 50 * time.Millisecond
	t.Cleanup(func() { writerIdle = old })
	s := startTestServer(t, Config{
		Tokens:         []Token{{Token: "gw", Role: RoleChannel}},
		WSPingInterval: 300 * time.Millisecond,
	}, actors.Config{})
	ws := dialChannel(t, s.Addr())
	pings := make(chan struct{}, 16)
	ws.SetPingHandler(func(string) error { pings <- struct{}{}; return nil })
	conn := func() *channelConn {
		s.mu.Lock()
		defer s.mu.Unlock()
		for d := range s.mu.conns {
			if c, ok := d.(*channelConn); ok {
				return c
			}
		}
		return nil
	}
	writing := func(c *channelConn) bool {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.writing
	}
	idle := func(c *channelConn) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for writing(c) {
			if time.Now().After(deadline) {
				t.Fatal("the writer of an idle connection still runs")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var c *channelConn
	waitFor(t, func() bool { c = conn(); return c != nil })
	idle(c) // never started: nothing to write yet
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"event","event":{"id":"e1","customer":"c-1","type":"message.received","text":"hi"}}`)); err != nil {
		t.Fatal(err)
	}
	_, msg, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(msg), `"ack"`) {
		t.Fatalf("ack: %s %v", msg, err)
	}
	idle(c)
	// Pings keep coming while the writer is gone between them; the
	// client's reads run the ping handler.
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for range 2 {
		select {
		case <-pings:
		case <-time.After(2 * time.Second):
			t.Fatal("no ping from an idle connection")
		}
		idle(c)
	}
	// A close from the server: the writer sends the close frame and
	// closes the socket.
	c.closeWith(websocket.CloseNormalClosure, "bye")
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		t.Fatal("the writer did not close the socket")
	}
}
