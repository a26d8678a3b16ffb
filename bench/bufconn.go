package bench

import (
	"bufio"
	"net"
	"sync"
)

// bufConnBytes is the write buffer of one client connection.
const bufConnBytes = 16 << 10

// bufConn is a client connection whose writes, once buffering is switched on
// after the WebSocket handshake, collect in a buffer until Flush, so the
// frames a writer sends back to back leave in one system call: client and
// server share the machine, and a write per frame would eat the server's CPU.
// The writer flushes whenever it is about to wait, and it also sends the
// pongs; close() flushes the close frame. Safe for concurrent use: gorilla
// serializes its own writes, and mu orders them with Flush.
type bufConn struct {
	net.Conn
	mu       sync.Mutex
	w        *bufio.Writer
	buffered bool
}

func newBufConn(c net.Conn) *bufConn {
	return &bufConn{Conn: c, w: bufio.NewWriterSize(c, bufConnBytes)}
}

// startBuffering switches buffering on; the handshake wrote straight through.
func (c *bufConn) startBuffering() {
	c.mu.Lock()
	c.buffered = true
	c.mu.Unlock()
}

func (c *bufConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.buffered {
		return c.Conn.Write(p)
	}
	return c.w.Write(p)
}

// Flush writes out what is buffered.
func (c *bufConn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Flush()
}
