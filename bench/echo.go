package bench

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// echoServer is the bare WebSocket ceiling: it serves /v1/channels/ws on
// loopback, parses every frame as the gateway must (json.Unmarshal into the
// event fields) and answers with the same ack or acks frame, storing
// nothing. /metrics serves the process's Go and process collectors, so a
// workload pointed at it finds the memory figures it scrapes. Any token is
// accepted.
type echoServer struct {
	URL string // http://127.0.0.1:PORT

	// failCode, when set, answers every event with an error of that code
	// instead of an ack (a test seam). Set before the first connection.
	failCode string

	ln  net.Listener
	srv *http.Server

	mu     sync.Mutex
	conns  map[*websocket.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // Serve and the connections
}

// echoFrame is a client frame as the echo parses it.
type echoFrame struct {
	Type   string      `json:"type"`
	ID     string      `json:"id"`
	Event  *echoEvent  `json:"event"`
	Events []echoEvent `json:"events"`
}

type echoEvent struct {
	ID       string            `json:"id"`
	Customer string            `json:"customer"`
	Identity map[string]string `json:"identity"`
	Type     string            `json:"type"`
	Channel  string            `json:"channel"`
	Text     string            `json:"text"`
	Data     json.RawMessage   `json:"data"`
	Time     string            `json:"time"`
}

// startEcho listens on 127.0.0.1:0 and serves until Close.
func startEcho() (*echoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &echoServer{URL: "http://" + ln.Addr().String(), ln: ln, conns: map[*websocket.Conn]struct{}{}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/channels/ws", e.serveWS)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	e.wg.Go(func() { _ = e.srv.Serve(ln) })
	return e, nil
}

// Close stops the server and closes its WebSocket connections (which
// http.Server.Close does not: they are hijacked). Safe to call twice.
func (e *echoServer) Close() {
	_ = e.srv.Close()
	e.mu.Lock()
	e.closed = true
	for c := range e.conns {
		_ = c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

var echoUpgrader = websocket.Upgrader{
	ReadBufferSize:  wsBufferBytes,
	WriteBufferSize: wsBufferBytes,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func (e *echoServer) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := echoUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = ws.Close()
		return
	}
	e.conns[ws] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.conns, ws)
		e.mu.Unlock()
		_ = ws.Close()
		e.wg.Done()
	}()
	ws.SetReadLimit(readLimitBytes)
	seqs := map[string]uint64{} // per customer: a customer stays on one connection
	var out []byte
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var f echoFrame
		if err := json.Unmarshal(msg, &f); err != nil {
			out = appendError(out[:0], "", "bad_request", "not JSON")
		} else {
			out = e.answer(out[:0], &f, seqs)
		}
		if err := ws.WriteMessage(websocket.TextMessage, out); err != nil {
			return
		}
	}
}

// answer appends the answer to one client frame.
func (e *echoServer) answer(b []byte, f *echoFrame, seqs map[string]uint64) []byte {
	switch {
	case f.Type == "hello": // PROTOCOL section 2's answer
		return append(b, `{"type":"ready"}`...)
	case f.Type == "event" && f.Event != nil:
		if e.failCode != "" {
			return appendError(b, f.Event.ID, e.failCode, "refused by the echo")
		}
		seqs[f.Event.Customer]++
		b = append(b, `{"type":"ack",`...)
		return appendAck(b, f.Event, seqs[f.Event.Customer])
	case f.Type == "batch" && len(f.Events) <= BatchSizeMax:
		b = append(b, `{"type":"acks","id":`...)
		b = appendString(b, f.ID)
		b = append(b, `,"acks":[`...)
		for i := range f.Events {
			ev := &f.Events[i]
			if i > 0 {
				b = append(b, ',')
			}
			if e.failCode != "" {
				b = append(b, `{"id":`...)
				b = appendString(b, ev.ID)
				b = append(b, `,"error":{"code":`...)
				b = appendString(b, e.failCode)
				b = append(b, `,"message":"refused by the echo"}}`...)
				continue
			}
			seqs[ev.Customer]++
			b = append(b, '{')
			b = appendAck(b, ev, seqs[ev.Customer])
		}
		return append(b, "]}"...)
	case f.Type == "batch":
		return appendError(b, f.ID, "too_large", "a batch carries at most 1000 events")
	}
	return appendError(b, "", "bad_request", "unknown frame type")
}

// appendAck appends the fields of an ack after an opening brace, and the
// closing brace.
func appendAck(b []byte, ev *echoEvent, seq uint64) []byte {
	b = append(b, `"id":`...)
	b = appendString(b, ev.ID)
	b = append(b, `,"customer":`...)
	b = appendString(b, ev.Customer)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, `,"duplicate":false}`...)
}

func appendError(b []byte, id, code, message string) []byte {
	b = append(b, `{"type":"error","id":`...)
	b = appendString(b, id)
	b = append(b, `,"code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	return append(b, '}')
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
		}
	}
	return append(b, '"')
}
