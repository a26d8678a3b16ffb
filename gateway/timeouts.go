package gateway

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Deadlines. http.Server's ReadTimeout and WriteTimeout would also bound a
// WebSocket (the connection keeps the deadlines set before the hijack) and
// a streamed export, so the server leaves them unset and sets each request's
// deadlines itself through http.ResponseController: a plain request gets
// HTTPReadTimeout to send its body and HTTPWriteTimeout to be answered (an
// export extends its write deadline at every page it writes); a WebSocket
// handshake gets the WebSocket idle timeout, and once upgraded the
// connection's keepalive owns its read deadline and its writer the write
// deadline of each write. Header reading is bounded by ReadHeaderTimeout
// and MaxHeaderBytes on the server itself.

// withDeadlines sets the read and write deadlines of every request.
func (s *Server) withDeadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if isWebSocketUpgrade(r) {
			_ = rc.SetReadDeadline(now.Add(s.cfg.WSIdleTimeout))
			_ = rc.SetWriteDeadline(now.Add(s.cfg.WriteTimeout))
		} else {
			_ = rc.SetReadDeadline(now.Add(s.cfg.HTTPReadTimeout))
			_ = rc.SetWriteDeadline(now.Add(s.cfg.HTTPWriteTimeout))
		}
		h.ServeHTTP(w, r)
	})
}

// extendDeadlines gives a streamed answer another HTTPWriteTimeout to write
// its next part. The read deadline moves with it: net/http reads on in the
// background while a handler runs, and a read deadline passing there would
// cancel the request's context mid-stream.
func (s *Server) extendDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(s.cfg.HTTPWriteTimeout)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// keepalive is a WebSocket's read deadline: the reader renews it before
// each read (so the time it spends handling a frame, or waiting for credit
// or its token's rate, is never counted as the client's silence), and every
// ping or pong the client sends while it waits renews it too. The server
// pings every WSPingInterval, so a live client that has nothing to say
// still answers within the timeout, and a silent one is closed when it
// passes.
//
// A renewal that would move the deadline by little is skipped: the
// deadline is moved only when less than the idle timeout is left, and then
// to an eighth past it, so a client is closed after between 1 and 1.125
// idle timeouts of silence. Setting it for every frame took ~1% of the
// server's CPU in bench ingest (the runtime's timers).
type keepalive struct {
	conn     net.Conn
	idle     time.Duration
	mu       sync.Mutex
	stopped  bool      // reading was stopped (drain): no frame extends it again
	deadline time.Time // the read deadline set last
}

// newKeepalive sets the first deadline. Pings are the writer's to send;
// the reader calls alive for every ping and pong the client sends.
func newKeepalive(conn net.Conn, idle time.Duration) *keepalive {
	k := &keepalive{conn: conn, idle: idle}
	k.alive()
	return k
}

// alive extends the read deadline: the client was heard from.
func (k *keepalive) alive() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	now := time.Now()
	if k.deadline.Sub(now) >= k.idle {
		return // an idle timeout or more is left
	}
	k.deadline = now.Add(k.idle + k.idle/8)
	_ = k.conn.SetReadDeadline(k.deadline)
}

// ended tells why a read failed: a client silent past the idle timeout is
// counted (the drain's own deadline is not).
func (k *keepalive) ended(m *metrics, endpoint string, err error) {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return
	}
	k.mu.Lock()
	stopped := k.stopped
	k.mu.Unlock()
	if !stopped {
		m.idleClosed.WithLabelValues(endpoint).Inc()
	}
}

// stopReading ends the reader's wait now, for good.
func (k *keepalive) stopReading() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	_ = k.conn.SetReadDeadline(time.Now())
}
