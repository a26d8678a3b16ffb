package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/actors"
)

// maskedFrame is a frame as a client sends it: masked unless unmasked.
func maskedFrame(fin bool, opcode byte, payload []byte, unmasked bool) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	maskBit := byte(0x80)
	if unmasked {
		maskBit = 0
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, maskBit|byte(n))
	case n <= 0xFFFF:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if unmasked {
		return append(b, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, payload...)
	maskBytes(key, b[start:])
	return b
}

// readerPair is a wsReader on the server side of a TCP connection (raw
// reads) or of a net.Pipe (plain reads, as over TLS), and the client's end.
type readerPair struct {
	rd     *wsReader
	client net.Conn
	pings  [][]byte
	pongs  int
	closes []int
}

func newReaderPair(t *testing.T, tcp bool, limit int64) *readerPair {
	t.Helper()
	var server, client net.Conn
	if tcp {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		if server, err = ln.Accept(); err != nil {
			t.Fatal(err)
		}
	} else {
		server, client = net.Pipe()
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	p := &readerPair{rd: &wsReader{}, client: client}
	p.rd.init(server, limit)
	if tcp != (p.rd.raw != nil) {
		t.Fatalf("raw reads: %v on tcp %v", p.rd.raw != nil, tcp)
	}
	p.rd.ping = func(b []byte) { p.pings = append(p.pings, bytes.Clone(b)) }
	p.rd.pong = func() { p.pongs++ }
	p.rd.close = func(code int) { p.closes = append(p.closes, code) }
	return p
}

// send writes the frames from another goroutine (a net.Pipe write waits
// for the reader).
func (p *readerPair) send(t *testing.T, frames ...[]byte) {
	t.Helper()
	data := bytes.Join(frames, nil)
	go func() { _, _ = p.client.Write(data) }()
}

func forBoth(t *testing.T, f func(t *testing.T, tcp bool)) {
	t.Run("tcp", func(t *testing.T) { f(t, true) })
	t.Run("pipe", func(t *testing.T) { f(t, false) })
}

func TestWSReaderMessages(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		p := newReaderPair(t, tcp, 1<<20)
		big := bytes.Repeat([]byte("0123456789abcdefghij"), 5000) // 100,000 bytes: past the buffer
		// Several frames in one write; a message in three fragments with a
		// ping and a pong between them; a large frame; a binary one.
		p.send(t,
			maskedFrame(true, opText, []byte(`{"type":"hello"}`), false),
			maskedFrame(true, opText, []byte(`second`), false),
			maskedFrame(false, opText, []byte(`frag-`), false),
			maskedFrame(true, opPing, []byte(`are you there`), false),
			maskedFrame(false, opContinuation, []byte(`ment-`), false),
			maskedFrame(true, opPong, nil, false),
			maskedFrame(true, opContinuation, []byte(`ed`), false),
			maskedFrame(true, opText, big, false),
			maskedFrame(true, opBinary, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, false),
			maskedFrame(true, opText, nil, false),
		)
		want := [][]byte{[]byte(`{"type":"hello"}`), []byte(`second`), []byte(`frag-ment-ed`), big, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {}}
		var buf []byte
		for i, w := range want {
			msg, err := p.rd.next(buf)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if !bytes.Equal(msg, w) {
				t.Fatalf("message %d: %d bytes %.40q, want %d bytes %.40q", i, len(msg), msg, len(w), w)
			}
			buf = msg
		}
		if len(p.pings) != 1 || string(p.pings[0]) != "are you there" || p.pongs != 1 {
			t.Fatalf("pings %q, pongs %d", p.pings, p.pongs)
		}
		if p.rd.buf != nil {
			t.Fatal("the reader holds a buffer with nothing waiting in it")
		}
		// A ping alone: the reader goes back to waiting (readLoop).
		p.send(t, maskedFrame(true, opPing, []byte("idle?"), false))
		if _, err := p.rd.next(nil); err != errNoMessage || len(p.pings) != 2 || p.rd.buf != nil {
			t.Fatalf("a ping alone: %v, %d pings, buffer held %v", err, len(p.pings), p.rd.buf != nil)
		}
		// The client closes: the end of reading, not a failure.
		p.send(t, maskedFrame(true, opClose, []byte{0x03, 0xE8, 'b', 'y', 'e'}, false))
		if _, err := p.rd.next(nil); !errors.As(err, new(*closeReceived)) || len(p.closes) != 1 || p.closes[0] != 1000 {
			t.Fatalf("close: %v, %v", err, p.closes)
		}
	})
}

func TestWSReaderEnds(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		p := newReaderPair(t, tcp, 1<<10)
		p.send(t, maskedFrame(true, opClose, nil, false))
		if _, err := p.rd.next(nil); !errors.As(err, new(*closeReceived)) || len(p.closes) != 1 || p.closes[0] != websocket.CloseNoStatusReceived {
			t.Fatalf("an empty close: %v, %v", err, p.closes)
		}

		p = newReaderPair(t, tcp, 1<<10)
		_ = p.rd.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := p.rd.next(nil)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("a silent client past the deadline: %v", err)
		}
		if p.rd.buf != nil {
			t.Fatal("a reader that waited holds a buffer")
		}

		p = newReaderPair(t, tcp, 1<<10)
		f := maskedFrame(true, opText, []byte("half a frame"), false)
		go func() { _, _ = p.client.Write(f[:7]); p.client.Close() }()
		if _, err := p.rd.next(nil); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("a client gone in the middle of a frame: %v", err)
		}
	})
}

func TestWSReaderFailures(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 126)
	cases := []struct {
		name   string
		frames [][]byte
		code   int
	}{
		{"unmasked", [][]byte{maskedFrame(true, opText, []byte("hi"), true)}, websocket.CloseProtocolError},
		{"reserved bits", [][]byte{func() []byte { f := maskedFrame(true, opText, []byte("hi"), false); f[0] |= 0x40; return f }()}, websocket.CloseProtocolError},
		{"reserved data opcode", [][]byte{maskedFrame(true, 0x3, []byte("hi"), false)}, websocket.CloseProtocolError},
		{"reserved control opcode", [][]byte{maskedFrame(true, 0xB, nil, false)}, websocket.CloseProtocolError},
		{"continuation first", [][]byte{maskedFrame(true, opContinuation, []byte("hi"), false)}, websocket.CloseProtocolError},
		{"text inside a message", [][]byte{maskedFrame(false, opText, []byte("a"), false), maskedFrame(true, opText, []byte("b"), false)}, websocket.CloseProtocolError},
		{"long ping", [][]byte{maskedFrame(true, opPing, long, false)}, websocket.CloseProtocolError},
		{"fragmented ping", [][]byte{maskedFrame(false, opPing, nil, false)}, websocket.CloseProtocolError},
		{"close of one byte", [][]byte{maskedFrame(true, opClose, []byte{3}, false)}, websocket.CloseProtocolError},
		{"close code 1005 sent", [][]byte{maskedFrame(true, opClose, []byte{0x03, 0xED}, false)}, websocket.CloseProtocolError},
		{"close reason not UTF-8", [][]byte{maskedFrame(true, opClose, []byte{0x03, 0xE8, 0xff}, false)}, websocket.CloseInvalidFramePayloadData},
		{"frame over the limit", [][]byte{maskedFrame(true, opText, bytes.Repeat([]byte("y"), 257), false)}, websocket.CloseMessageTooBig},
		{"message over the limit", [][]byte{maskedFrame(false, opText, bytes.Repeat([]byte("y"), 200), false), maskedFrame(true, opContinuation, bytes.Repeat([]byte("y"), 57), false)}, websocket.CloseMessageTooBig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newReaderPair(t, true, 256)
			p.send(t, c.frames...)
			_, err := p.rd.next(nil)
			f, ok := readFailure(err)
			if !ok || f.code != c.code {
				t.Fatalf("got %v, want a failure with close code %d", err, c.code)
			}
		})
	}
	// At the limit exactly: read.
	p := newReaderPair(t, true, 256)
	p.send(t, maskedFrame(false, opText, bytes.Repeat([]byte("y"), 200), false), maskedFrame(true, opContinuation, bytes.Repeat([]byte("y"), 56), false))
	if msg, err := p.rd.next(nil); err != nil || len(msg) != 256 {
		t.Fatalf("a message at the limit: %d bytes, %v", len(msg), err)
	}
}

// TestWSReaderArbitraryBytes: whatever a client sends, the reader returns
// messages or an error, never panics or reads past what was sent.
func TestWSReaderArbitraryBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		p := newReaderPair(t, true, 1<<12)
		var frames [][]byte
		for range 1 + r.IntN(6) {
			payload := make([]byte, r.IntN(300))
			for j := range payload {
				payload[j] = byte(r.Uint32())
			}
			f := maskedFrame(r.IntN(4) != 0, byte(r.IntN(16)), payload, r.IntN(10) == 0)
			if r.IntN(3) == 0 { // damage a header byte
				f[r.IntN(min(len(f), 14))] = byte(r.Uint32())
			}
			frames = append(frames, f)
		}
		data := bytes.Join(frames, nil)
		go func() { _, _ = p.client.Write(data); p.client.Close() }() // the frames, then the end
		for n := 0; ; n++ {
			if _, err := p.rd.next(nil); err != nil {
				break
			}
			if n > 10 {
				t.Fatalf("case %d: more messages than frames", i)
			}
		}
	}
}

// TestWSReaderChunked: frames whose headers and payloads come in pieces of
// any size (a byte at a time, or across the buffer's end), with pings
// inside fragmented messages, are read whole and in order.
func TestWSReaderChunked(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		r := rand.New(rand.NewPCG(7, 9))
		for round := range 4 {
			p := newReaderPair(t, tcp, 1<<20)
			var stream []byte
			var want, wantPings [][]byte
			for m := range 40 {
				frags := 1 + r.IntN(3)
				var msg []byte
				for f := range frags {
					payload := make([]byte, r.IntN(300))
					if r.IntN(10) == 0 {
						payload = make([]byte, 9000+r.IntN(9000))
					}
					for i := range payload {
						payload[i] = byte(r.Uint32())
					}
					op := byte(opText)
					if f > 0 {
						op = opContinuation
					}
					stream = append(stream, maskedFrame(f == frags-1, op, payload, false)...)
					msg = append(msg, payload...)
					if r.IntN(4) == 0 {
						ping := []byte{byte(m), byte(f), 'p'}
						stream = append(stream, maskedFrame(true, opPing, ping, false)...)
						wantPings = append(wantPings, ping)
					}
				}
				want = append(want, msg)
			}
			w := rand.New(rand.NewPCG(uint64(round), 3))
			go func() {
				for s := stream; len(s) > 0; {
					k := min(len(s), 1+w.IntN(40))
					if w.IntN(8) == 0 {
						k = min(len(s), 1+w.IntN(20000))
					}
					if _, err := p.client.Write(s[:k]); err != nil {
						return
					}
					s = s[k:]
				}
			}()
			var buf []byte
			for i, m := range want {
				msg, err := p.rd.next(buf)
				for err == errNoMessage { // pings between messages
					msg, err = p.rd.next(buf)
				}
				if err != nil {
					t.Fatalf("round %d, message %d: %v", round, i, err)
				}
				if !bytes.Equal(msg, m) {
					t.Fatalf("round %d, message %d: %d bytes, want %d", round, i, len(msg), len(m))
				}
				buf = msg
			}
			if len(p.pings) != len(wantPings) {
				t.Fatalf("round %d: %d pings, want %d", round, len(p.pings), len(wantPings))
			}
			for i := range wantPings {
				if !bytes.Equal(p.pings[i], wantPings[i]) {
					t.Fatalf("round %d, ping %d: %q", round, i, p.pings[i])
				}
			}
			if p.rd.buf != nil {
				t.Fatal("the reader holds a buffer with nothing waiting in it")
			}
		}
	})
}

// A header alone does not make the reader allocate the length it claims:
// the message grows as its bytes come.
func TestWSReaderClaimedLength(t *testing.T) {
	p := newReaderPair(t, true, 16<<20)
	h := []byte{0x81, 0x80 | 127}
	h = binary.BigEndian.AppendUint64(h, 16<<20)
	p.send(t, append(h, 1, 2, 3, 4))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_ = p.rd.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := p.rd.next(nil); err == nil {
		t.Fatal("a frame with no payload was read")
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("a 14-byte header claiming 16 MiB allocated %d bytes", n)
	}
}

// Close codes a client may send are answered; others are a protocol error.
// A length with its top bit set is one too; one past the limit is too big.
func TestWSReaderCloseCodesAndLengths(t *testing.T) {
	for _, code := range []int{1000, 1001, 1011, 1012, 1013, 1014, 3000, 4999, 1004, 1005, 1006, 1015, 2999, 5000} {
		p := newReaderPair(t, true, 1<<10)
		p.send(t, maskedFrame(true, opClose, []byte{byte(code >> 8), byte(code)}, false))
		_, err := p.rd.next(nil)
		if validCloseCode(code) != errors.As(err, new(*closeReceived)) {
			t.Fatalf("close %d: %v", code, err)
		}
		if f, ok := readFailure(err); !validCloseCode(code) && (!ok || f.code != websocket.CloseProtocolError) {
			t.Fatalf("close %d: %v, want a protocol error", code, err)
		}
	}
	for l, code := range map[uint64]int{1 << 63: websocket.CloseProtocolError, 1<<62 + 1: websocket.CloseMessageTooBig} {
		p := newReaderPair(t, true, 1<<10)
		h := []byte{0x81, 0x80 | 127}
		h = binary.BigEndian.AppendUint64(h, l)
		p.send(t, append(h, 1, 2, 3, 4))
		_, err := p.rd.next(nil)
		if f, ok := readFailure(err); !ok || f.code != code {
			t.Fatalf("length %#x: %v, want close %d", l, err, code)
		}
	}
}

func TestMaskBytes(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for n := range 40 {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		got := bytes.Clone(p)
		maskBytes(key, got)
		for i := range p {
			if got[i] != p[i]^key[i%4] {
				t.Fatalf("length %d, byte %d: %x", n, i, got[i])
			}
		}
	}
}

// TestChannelFrameTooLarge: a frame over the gateway's limit closes the
// connection with 1009, and a frame a client did not mask with 1002.
func TestChannelFrameTooLarge(t *testing.T) {
	addr := startGateway(t, actors.Config{}, func(c *Config) { c.FrameMaxBytes = 1 << 10 })
	for _, c := range []struct {
		send func(*websocket.Conn) error
		code int
	}{
		{func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("z"), 2<<10))
		}, websocket.CloseMessageTooBig},
		{func(ws *websocket.Conn) error {
			_, err := ws.NetConn().Write(maskedFrame(true, opText, []byte(`{"type":"hello"}`), true))
			return err
		}, websocket.CloseProtocolError},
	} {
		ws := dialChannel(t, addr)
		if err := c.send(ws); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var err error
		for err == nil {
			_, _, err = ws.ReadMessage()
		}
		if !websocket.IsCloseError(err, c.code) {
			t.Fatalf("got %v, want close %d", err, c.code)
		}
	}
}
