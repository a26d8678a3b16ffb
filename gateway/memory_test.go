package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// dialRaw opens a channel WebSocket with a bare handshake, says hello
// (the server's reader and writer have then worked once) and keeps only
// the socket, so the client side adds next to nothing to the heap that
// idleConnBytes measures.
func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	req := "GET /v1/channels/ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer gw\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	// A hello, answered by ready: the connection has read and written once.
	hello := []byte(`{"type":"hello","channels":["sms"]}`)
	frame := append([]byte{0x81, 0x80 | byte(len(hello)), 0, 0, 0, 0}, hello...) // mask key 0
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	ready := make([]byte, 2+len(`{"type":"ready"}`))
	if _, err := io.ReadFull(conn, ready); err != nil || string(ready[2:]) != `{"type":"ready"}` {
		t.Fatalf("ready: %q %v", ready, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn
}

// heapAndStacks is the memory the Go runtime holds for objects and
// goroutine stacks, after a collection.
func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// idleConnBytes is what one idle channel WebSocket costs the server: the
// heap and stacks held with n idle connections open, less without them,
// over n (the client's sockets are bare net.Conns: a few hundred bytes).
func idleConnBytes(t *testing.T, addr string, n int) float64 {
	goroutines := runtime.NumGoroutine()
	before := heapAndStacks()
	conns := make([]net.Conn, 0, n)
	for range n {
		conns = append(conns, dialRaw(t, addr))
	}
	// Every connection has been registered once the server counts them,
	// and is idle once its writer has ended (writerIdle after the ready):
	// its reader is then its only goroutine.
	waitFor(t, func() bool { return openConns(t, addr) >= n })
	waitFor(t, func() bool { return runtime.NumGoroutine() <= goroutines+n+idleGoroutinesSlack })
	after := heapAndStacks()
	for _, c := range conns {
		c.Close()
	}
	return (float64(after) - float64(before)) / float64(n)
}

// idleGoroutinesSlack is the test server's goroutines that may come and
// go while the connections open (timers, the HTTP server's).
const idleGoroutinesSlack = 20

func openConns(t *testing.T, addr string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, `throughline_connections{endpoint="channel"}`) {
			var v float64
			fmt.Sscan(strings.Fields(line)[1], &v)
			return int(v)
		}
	}
	return 0
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An idle channel WebSocket costs the server ~6.6 KB of heap and stacks
// (it was ~400 KB: queues preallocated at their limits; ~14 KB while each
// kept a writer goroutine and a ticker; ~9.4 KB while gorilla read its
// frames, with a read buffer per connection; ~8 KB while the goroutine
// that waited had handled frames, with a 4 KiB stack). Measured with 2,000
// connections that said hello, once their writers ended; the bound
// (7.5 KiB, 12 KiB under the race detector, which adds ~2-4 KB) is an
// upper bound, not a timing.
func TestIdleChannelConnMemory(t *testing.T) {
	old := writerIdle
	writerIdle = 100 * time.Millisecond
	t.Cleanup(func() { writerIdle = old })
	addr := startServer(t)
	per := idleConnBytes(t, addr, 2000)
	t.Logf("idle channel WebSocket: %.0f bytes of heap and stacks each", per)
	bound := 7<<10 + 512
	if raceEnabled {
		bound = 12 << 10
	}
	if per > float64(bound) {
		t.Errorf("idle channel WebSocket costs %.0f bytes; at most %d", per, bound)
	}
}
