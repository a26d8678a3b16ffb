package persistence

// RaftMux: every raft group of a node shares one TCP listener (cluster.raft).
// Each TCP connection between two nodes carries a hashicorp/yamux session;
// each raft connection is a yamux stream that opens with a small header
// naming its partition:
//
//	version (1 byte, muxVersion) | partition (uint16, big-endian)
//
// The accepting side reads the header and hands the stream to that
// partition's StreamLayer, whose raft.NetworkTransport serves it. A node
// dials each peer once (one client session per address, redialed when it
// breaks) and accepts the sessions its peers dial.
//
// With a tls.Config (cluster.tls) every TCP connection is mutual TLS before
// yamux starts: the accepting side handshakes on its own goroutine, within
// muxHandshakeTimeout, and a peer whose certificate the config refuses
// never gets a session.

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/yamux"
)

const (
	muxVersion = 1
	// muxHeaderTimeout bounds reading a new stream's header.
	muxHeaderTimeout = 5 * time.Second
	// muxHandshakeTimeout bounds a connection's TLS handshake.
	muxHandshakeTimeout = 5 * time.Second
	// muxHandshakesMax bounds the TLS handshakes accepted at once; a
	// connection past it is closed (its peer dials again).
	muxHandshakesMax = 64
)

var errMuxClosed = errors.New("persistence: raft mux closed")

// RaftMux multiplexes the raft transports of a node's partitions over one
// listener.
type RaftMux struct {
	ln   net.Listener
	tls  *tls.Config   // nil: plain TCP
	hs   chan struct{} // a token per handshake in progress
	log  *slog.Logger
	yamx *yamux.Config
	done chan struct{}
	wg   sync.WaitGroup

	mu struct {
		sync.Mutex
		closed   bool
		layers   map[int]*muxLayer
		outbound map[raft.ServerAddress]*yamux.Session
		inbound  map[*yamux.Session]struct{}
		blocked  map[raft.ServerAddress]bool // a test's network partition (Block)
	}
}

// errBlocked is a dial to a peer a test cut this node off from.
var errBlocked = errors.New("raft mux: peer unreachable (a network partition injected by a test)")

// Block is a test-only fault hook: from now on this node neither dials the
// given raft addresses nor keeps its sessions to them (nil: heal). Both
// sides block each other to cut a link: each side's sessions are the
// other's inbound ones.
func (m *RaftMux) Block(addrs []string) {
	m.mu.Lock()
	m.mu.blocked = map[raft.ServerAddress]bool{}
	var closing []*yamux.Session
	for _, a := range addrs {
		m.mu.blocked[raft.ServerAddress(a)] = true
		if s := m.mu.outbound[raft.ServerAddress(a)]; s != nil {
			closing = append(closing, s)
			delete(m.mu.outbound, raft.ServerAddress(a))
		}
	}
	m.mu.Unlock()
	for _, s := range closing {
		_ = s.Close()
	}
}

// NewRaftMux serves ln until Close. tlsCfg, when set, is mutual TLS on
// every connection, accepted and dialed (it must present a certificate on
// both sides and verify the peer's).
func NewRaftMux(ln net.Listener, tlsCfg *tls.Config, logger *slog.Logger) *RaftMux {
	if logger == nil {
		logger = slog.Default()
	}
	log := logger.WithGroup("raft_mux")
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = nil
	cfg.Logger = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	m := &RaftMux{ln: ln, tls: tlsCfg, hs: make(chan struct{}, muxHandshakesMax), log: log, yamx: cfg, done: make(chan struct{})}
	m.mu.layers = make(map[int]*muxLayer)
	m.mu.outbound = make(map[raft.ServerAddress]*yamux.Session)
	m.mu.inbound = make(map[*yamux.Session]struct{})
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

// Addr is the shared listener's address: every group's raft address.
func (m *RaftMux) Addr() net.Addr { return m.ln.Addr() }

// StreamLayer is partition p's raft.StreamLayer. One per partition at a
// time: closing it frees the partition for a new one.
func (m *RaftMux) StreamLayer(p int) (raft.StreamLayer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return nil, errMuxClosed
	}
	if m.mu.layers[p] != nil {
		return nil, fmt.Errorf("persistence: raft mux: partition %d already has a stream layer", p)
	}
	l := &muxLayer{m: m, p: p, accept: make(chan net.Conn), closed: make(chan struct{})}
	m.mu.layers[p] = l
	return l, nil
}

// Transport is partition p's raft.NetworkTransport over StreamLayer(p);
// closing the transport closes the layer.
func (m *RaftMux) Transport(p int, timeout time.Duration) (raft.Transport, error) {
	l, err := m.StreamLayer(p)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  l,
		MaxPool: 3,
		Timeout: timeout,
		Logger:  newHCLogger(m.log.With("partition", p)),
	}), nil
}

// Close stops accepting, closes every session and layer. Safe to call twice.
func (m *RaftMux) Close() error {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return nil
	}
	m.mu.closed = true
	close(m.done)
	var sessions []*yamux.Session
	for _, s := range m.mu.outbound {
		sessions = append(sessions, s)
	}
	for s := range m.mu.inbound {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	err := m.ln.Close()
	for _, s := range sessions {
		_ = s.Close()
	}
	m.wg.Wait()
	return err
}

func (m *RaftMux) acceptLoop() {
	defer m.wg.Done()
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			m.log.Warn("accept failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if m.tls == nil {
			m.startSession(conn)
			continue
		}
		select {
		case m.hs <- struct{}{}:
		default:
			m.log.Warn("peer refused: too many tls handshakes at once", "remote", conn.RemoteAddr().String())
			_ = conn.Close()
			continue
		}
		m.mu.Lock()
		if m.mu.closed {
			m.mu.Unlock()
			_ = conn.Close()
			return
		}
		m.wg.Add(1)
		m.mu.Unlock()
		go func() {
			defer m.wg.Done()
			defer func() { <-m.hs }()
			tc := tls.Server(conn, m.tls)
			ctx, cancel := context.WithTimeout(context.Background(), muxHandshakeTimeout)
			defer cancel()
			if err := tc.HandshakeContext(ctx); err != nil {
				m.log.Warn("peer refused: tls handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
				_ = conn.Close()
				return
			}
			m.startSession(tc)
		}()
	}
}

// startSession serves an accepted connection's yamux session.
func (m *RaftMux) startSession(conn net.Conn) {
	sess, err := yamux.Server(conn, m.yamx)
	if err != nil {
		_ = conn.Close()
		return
	}
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		_ = sess.Close()
		return
	}
	m.mu.inbound[sess] = struct{}{}
	m.wg.Add(1)
	m.mu.Unlock()
	go m.serveSession(sess)
}

// serveSession routes the streams of an accepted session until it ends.
func (m *RaftMux) serveSession(sess *yamux.Session) {
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		delete(m.mu.inbound, sess)
		m.mu.Unlock()
		_ = sess.Close()
	}()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go m.route(st)
	}
}

// route reads a stream's header and hands it to its partition's layer.
func (m *RaftMux) route(st *yamux.Stream) {
	var h [3]byte
	_ = st.SetReadDeadline(time.Now().Add(muxHeaderTimeout))
	if _, err := io.ReadFull(st, h[:]); err != nil || h[0] != muxVersion {
		_ = st.Close()
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	p := int(binary.BigEndian.Uint16(h[1:]))
	m.mu.Lock()
	l := m.mu.layers[p]
	m.mu.Unlock()
	if l == nil {
		_ = st.Close()
		return
	}
	select {
	case l.accept <- st:
	case <-l.closed:
		_ = st.Close()
	case <-m.done:
		_ = st.Close()
	}
}

// session is the client session to addr, dialed when there is none.
func (m *RaftMux) session(addr raft.ServerAddress, timeout time.Duration) (*yamux.Session, error) {
	m.mu.Lock()
	s := m.mu.outbound[addr]
	closed, blocked := m.mu.closed, m.mu.blocked[addr]
	m.mu.Unlock()
	if closed {
		return nil, errMuxClosed
	}
	if blocked {
		return nil, errBlocked
	}
	if s != nil && !s.IsClosed() {
		return s, nil
	}
	conn, err := m.dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	s, err = yamux.Client(conn, m.yamx)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		_ = s.Close()
		return nil, errMuxClosed
	}
	if cur := m.mu.outbound[addr]; cur != nil && !cur.IsClosed() {
		_ = s.Close() // another dial won
		return cur, nil
	}
	m.mu.outbound[addr] = s
	return s, nil
}

// dial connects to a peer's mux, with TLS when configured.
func (m *RaftMux) dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", string(addr))
	if err != nil || m.tls == nil {
		return conn, err
	}
	tc := tls.Client(conn, m.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("raft mux: tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// muxLayer is one partition's raft.StreamLayer on a RaftMux.
type muxLayer struct {
	m         *RaftMux
	p         int
	accept    chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *muxLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.closed:
		return nil, errMuxClosed
	case <-l.m.done:
		return nil, errMuxClosed
	}
}

func (l *muxLayer) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.m.mu.Lock()
		if l.m.mu.layers[l.p] == l {
			delete(l.m.mu.layers, l.p)
		}
		l.m.mu.Unlock()
	})
	return nil
}

func (l *muxLayer) Addr() net.Addr { return l.m.ln.Addr() }

func (l *muxLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	s, err := l.m.session(addr, timeout)
	if err != nil {
		return nil, err
	}
	st, err := s.OpenStream()
	if err != nil {
		return nil, err
	}
	h := [3]byte{muxVersion}
	binary.BigEndian.PutUint16(h[1:], uint16(l.p))
	if timeout > 0 {
		_ = st.SetWriteDeadline(time.Now().Add(timeout))
	}
	if _, err := st.Write(h[:]); err != nil {
		_ = st.Close()
		return nil, err
	}
	_ = st.SetWriteDeadline(time.Time{})
	return st, nil
}
