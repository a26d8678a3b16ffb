package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Client-to-server frames are read here, not through gorilla's reader
// (gorilla still answers the handshake, and its connection is let go).
// What an idle connection costs is mostly its reader: gorilla kept a read
// buffer per connection. This reader waits for the socket through its
// RawConn and borrows a buffer from readBufs only while bytes wait in it.
// (A goroutine's stack stays at 4 KiB once a frame's handling grew it: Go
// halves a stack at a collection only when under a quarter of it is in use
// counting an 800-byte guard, which no goroutine blocked in the poller is;
// so a channel connection waits on one goroutine and handles frames on
// another, wspeer.go readBursts. docs/benchmarking.md, stop 35.)

// More frame opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opBinary       = 0x2
)

// readBufSize is a borrowed read buffer's size: under load one read takes
// in tens of small frames; a payload larger than what is left of it is
// read straight into the message.
const readBufSize = 8 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// wsFailure is a client's breach of the protocol or of the frame size
// limit: the connection is closed with its code and reason.
type wsFailure struct {
	code   int
	reason string
}

func (f *wsFailure) Error() string { return fmt.Sprintf("websocket: %s (close %d)", f.reason, f.code) }

func protocolError(format string, args ...any) error {
	return &wsFailure{code: websocket.CloseProtocolError, reason: fmt.Sprintf(format, args...)}
}

// errNoMessage is next's when control frames came and nothing waits after
// them: the reader goes back to waiting (readBursts) instead of waiting
// inside next.
var errNoMessage = errors.New("websocket: no message")

// closeReceived ends reading when the client sends a close frame.
type closeReceived struct{ code int }

func (c *closeReceived) Error() string { return fmt.Sprintf("websocket: close %d received", c.code) }

// wsReader reads a client's messages from a server-side connection. Not
// safe for concurrent use: one reader goroutine owns it.
type wsReader struct {
	conn  net.Conn
	raw   syscall.RawConn // nil when conn has no descriptor (TLS): plain reads
	limit int64           // a message's largest size (1009 past it)
	// ping, pong and close are told of control frames, on the reader's
	// goroutine; ping's payload is only valid during the call.
	ping  func(payload []byte)
	pong  func()
	close func(code int)

	buf  *[]byte // borrowed from readBufs while bytes wait in buf[r:w]
	r, w int
	// The raw reads are method values made once (a closure per read would
	// be an allocation per read), with their target and results here.
	toBuf, toDst func(fd uintptr) bool
	dst          []byte
	n            int
	err          error
	// first takes a plain read's first bytes (no descriptor: TLS), so that
	// a connection waiting for its client holds no buffer there either.
	first [16]byte
}

// init readies the reader for conn.
func (rd *wsReader) init(conn net.Conn, limit int64) {
	rd.conn, rd.limit = conn, limit
	if rd.raw = rawConnOf(conn); rd.raw != nil {
		rd.toBuf, rd.toDst = rd.readToBuf, rd.readToDst
	}
}

// wait returns once bytes wait in the buffer, waiting for the socket if
// none do: the reader takes a message buffer (frameBufs) only then, so an
// idle connection holds none.
func (rd *wsReader) wait() error {
	if rd.buf != nil {
		return nil
	}
	return rd.readBuf()
}

// frameHeader is a frame's first bytes, decoded.
type frameHeader struct {
	fin    bool
	opcode byte
	length int64
	mask   [4]byte
}

// next reads the next text or binary message into dst[:0] and returns it,
// answering control frames between (and inside) its frames. Its error ends
// the connection: a *wsFailure to close with, a *closeReceived, or the
// socket's (a timeout is the read deadline).
func (rd *wsReader) next(dst []byte) ([]byte, error) {
	dst = dst[:0]
	inMessage := false
	for {
		h, err := rd.header()
		if err != nil {
			return dst, err
		}
		if h.opcode >= opClose {
			if err := rd.control(h); err != nil {
				return dst, err
			}
			if !inMessage && rd.buf == nil {
				return dst, errNoMessage
			}
			continue
		}
		switch {
		case h.opcode > opBinary:
			return dst, protocolError("reserved opcode %d", h.opcode)
		case h.opcode == opContinuation && !inMessage:
			return dst, protocolError("continuation frame without a message")
		case h.opcode != opContinuation && inMessage:
			return dst, protocolError("a new message inside a fragmented one")
		}
		inMessage = true
		if h.length > rd.limit-int64(len(dst)) {
			return dst, &wsFailure{code: websocket.CloseMessageTooBig, reason: fmt.Sprintf("message over %d bytes", rd.limit)}
		}
		if dst, err = rd.payload(dst, h); err != nil {
			return dst, err
		}
		if h.fin {
			return dst, nil
		}
	}
}

// header reads and checks a frame's header.
func (rd *wsReader) header() (frameHeader, error) {
	var h frameHeader
	if err := rd.fill(2); err != nil {
		return h, err
	}
	b := (*rd.buf)[rd.r:]
	h.fin, h.opcode = b[0]&0x80 != 0, b[0]&0x0F
	if b[0]&0x70 != 0 {
		return h, protocolError("reserved bits set (no extension was agreed)")
	}
	if b[1]&0x80 == 0 {
		return h, protocolError("a client frame must be masked")
	}
	size := 6
	switch b[1] & 0x7F {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if err := rd.fill(size); err != nil {
		return h, err
	}
	b = (*rd.buf)[rd.r:]
	switch n := b[1] & 0x7F; n {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		l := binary.BigEndian.Uint64(b[2:])
		if l>>63 != 0 {
			return h, protocolError("frame length with its most significant bit set")
		}
		h.length = int64(l)
	default:
		h.length = int64(n)
	}
	copy(h.mask[:], b[size-4:size])
	rd.r += size
	if h.opcode >= opClose && (h.length > 125 || !h.fin) {
		return h, protocolError("control frame fragmented or over 125 bytes")
	}
	return h, nil
}

// control reads a control frame's payload and tells its handler.
func (rd *wsReader) control(h frameHeader) error {
	var b [125]byte
	p, err := rd.payload(b[:0], h)
	if err != nil {
		return err
	}
	switch h.opcode {
	case opPing:
		rd.ping(p)
	case opPong:
		rd.pong()
	case opClose:
		code := websocket.CloseNoStatusReceived
		switch {
		case len(p) == 1:
			return protocolError("close frame of one byte")
		case len(p) >= 2:
			code = int(binary.BigEndian.Uint16(p))
			if !validCloseCode(code) {
				return protocolError("close code %d", code)
			}
			if !utf8.Valid(p[2:]) {
				return &wsFailure{code: websocket.CloseInvalidFramePayloadData, reason: "close reason is not UTF-8"}
			}
		}
		rd.close(code)
		return &closeReceived{code: code}
	default:
		return protocolError("reserved opcode %d", h.opcode)
	}
	return nil
}

// validCloseCode is a code a peer may send (RFC 6455 section 7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// payload appends a frame's unmasked payload to dst: what the buffer holds,
// then the rest read straight into dst, which grows as the bytes come (a
// header alone must not make the server allocate the length it claims).
func (rd *wsReader) payload(dst []byte, h frameHeader) ([]byte, error) {
	start, n := len(dst), int(h.length)
	if rd.buf != nil {
		k := min(n, rd.w-rd.r)
		dst = append(dst, (*rd.buf)[rd.r:rd.r+k]...)
		rd.r += k
	}
	if len(dst) < start+n {
		rd.release()
		for len(dst) < start+n {
			if len(dst) == cap(dst) {
				dst = slices.Grow(dst, min(start+n-len(dst), max(readBufSize, len(dst)-start)))
			}
			k, err := rd.read(dst[len(dst):min(cap(dst), start+n)])
			if err != nil {
				return dst, err
			}
			dst = dst[:len(dst)+k]
		}
	}
	maskBytes(h.mask, dst[start:])
	if rd.r == rd.w {
		rd.release() // nothing waits: an idle connection holds no buffer
	}
	return dst, nil
}

// fill makes at least n (≤ readBufSize) bytes wait in the buffer.
func (rd *wsReader) fill(n int) error {
	for rd.buf == nil || rd.w-rd.r < n {
		if rd.buf != nil && rd.r > 0 { // room at the end for the rest
			rd.w = copy(*rd.buf, (*rd.buf)[rd.r:rd.w])
			rd.r = 0
		}
		if err := rd.readBuf(); err != nil {
			return err
		}
	}
	return nil
}

// readBuf reads into the buffer, borrowing one once the socket has bytes.
func (rd *wsReader) readBuf() error {
	if rd.raw == nil {
		return rd.readPlain()
	}
	rd.n, rd.err = 0, nil
	if err := rd.raw.Read(rd.toBuf); err != nil {
		return err // the read deadline, or the socket closed
	}
	if rd.err != nil {
		return rd.err
	}
	rd.w += rd.n
	return nil
}

// readPlain is readBuf without a descriptor: with no buffer held, the wait
// reads into first and the bytes are copied into a borrowed buffer.
func (rd *wsReader) readPlain() error {
	var k int
	var err error
	if rd.buf == nil {
		if k, err = rd.conn.Read(rd.first[:]); k > 0 {
			rd.borrow()
			rd.w = copy(*rd.buf, rd.first[:k])
		}
	} else {
		k, err = rd.conn.Read((*rd.buf)[rd.w:])
		rd.w += k
	}
	if k > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readToBuf is the raw read into the buffer: false (wait for the socket)
// while it has nothing to read. The buffer is borrowed for the read and
// given back if the socket had nothing.
func (rd *wsReader) readToBuf(fd uintptr) bool {
	borrowed := rd.buf == nil
	if borrowed {
		rd.borrow()
	}
	n, err := rawRead(fd, (*rd.buf)[rd.w:])
	if err == syscall.EAGAIN {
		if borrowed {
			rd.release()
		}
		return false
	}
	rd.rawResult(n, err)
	return true
}

// readToDst is the raw read into dst (a payload's rest).
func (rd *wsReader) readToDst(fd uintptr) bool {
	n, err := rawRead(fd, rd.dst)
	if err == syscall.EAGAIN {
		return false
	}
	rd.rawResult(n, err)
	return true
}

func (rd *wsReader) rawResult(n int, err error) {
	switch {
	case err != nil:
		rd.err = os.NewSyscallError("read", err)
	case n == 0:
		rd.err = io.EOF
	default:
		rd.n = n
	}
}

// read reads into p (a payload's rest) straight from the socket.
func (rd *wsReader) read(p []byte) (int, error) {
	if rd.raw == nil {
		k, err := rd.conn.Read(p)
		if k > 0 {
			return k, nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return 0, err
	}
	rd.dst, rd.n, rd.err = p, 0, nil
	err := rd.raw.Read(rd.toDst)
	rd.dst = nil
	switch {
	case err != nil:
		return 0, err
	case rd.err != nil:
		return 0, rd.err
	}
	return rd.n, nil
}

func (rd *wsReader) borrow() {
	if rd.buf == nil {
		rd.buf = readBufs.Get().(*[]byte)
		rd.r, rd.w = 0, 0
	}
}

// discard gives the buffer back with what waits in it: reading ended.
func (rd *wsReader) discard() {
	rd.r = rd.w
	rd.release()
}

// release gives the buffer back; what waits in it must have been taken.
func (rd *wsReader) release() {
	if rd.buf != nil && rd.r == rd.w {
		readBufs.Put(rd.buf)
		rd.buf, rd.r, rd.w = nil, 0, 0
	}
}

// maskBytes unmasks (or masks) p with a frame's key, eight bytes at a time.
func maskBytes(key [4]byte, p []byte) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k64)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}

// readFailure is the failure to close the connection with, if err is one.
func readFailure(err error) (*wsFailure, bool) {
	var f *wsFailure
	ok := errors.As(err, &f)
	return f, ok
}
