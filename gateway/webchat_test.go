package gateway

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/journey"
)

// visitorPair is a visitor's socket on the hub (the server's end) and the
// browser's end of it.
func visitorPair(t *testing.T, hub *webchatHub, customer string) (browser *websocket.Conn, c *visitorConn) {
	t.Helper()
	conns := make(chan *visitorConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := newVisitorConn(ws, customer)
		if !hub.add(c) { // as serveWebchatWS: refused
			_ = ws.Close()
			c.stop()
			conns <- c
			return
		}
		conns <- c
		for { // the handler's reader, as serveWebchatWS's
			if _, _, err := ws.ReadMessage(); err != nil {
				hub.remove(c)
				_ = ws.Close()
				c.stop()
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	browser, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = browser.Close() })
	return browser, <-conns
}

// receipts collects the receipts deliver gives.
type receipts struct {
	mu  sync.Mutex
	got map[string]string
}

func (r *receipts) add(rc journey.Receipt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.got[rc.Outbound]; dup {
		panic("two receipts for " + rc.Outbound)
	}
	r.got[rc.Outbound] = rc.Kind
}

func (r *receipts) wait(t *testing.T, n int) map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		k := len(r.got)
		r.mu.Unlock()
		if k == n {
			return r.got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d receipts of %d", k, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An outbound is shown to the visitor's open socket in order, and its
// receipt says delivered; with no socket open it is accepted.
func TestWebchatDeliversInOrderWithReceipts(t *testing.T) {
	hub := newWebchatHub()
	browser, _ := visitorPair(t, hub, "c-1")
	rs := &receipts{got: map[string]string{}}
	for i := range 20 {
		hub.deliver(journey.Outbound{ID: "o-" + strconv.Itoa(i), Customer: "c-1", Actor: journey.ActorAI, Text: "answer " + strconv.Itoa(i), Seq: uint64(i + 1)}, rs.add)
	}
	hub.deliver(journey.Outbound{ID: "o-x", Customer: "c-2", Text: "nobody's here"}, rs.add)
	_ = browser.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range 20 {
		var m webchatMessage
		if err := browser.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m.ID != "o-"+strconv.Itoa(i) || m.From != "bot" || m.Text != "answer "+strconv.Itoa(i) {
			t.Fatalf("frame %d: %+v", i, m)
		}
	}
	got := rs.wait(t, 21)
	for i := range 20 {
		if k := got["o-"+strconv.Itoa(i)]; k != journey.ReceiptDelivered {
			t.Errorf("o-%d: receipt %q, want delivered", i, k)
		}
	}
	if got["o-x"] != journey.ReceiptAccepted {
		t.Errorf("o-x with no socket: receipt %q, want accepted", got["o-x"])
	}
}

// A visitor whose browser does not read holds up nobody: deliver returns
// at once however full its socket is (it used to write in the caller, the
// customer's actor, for up to webchatWriteWait each), the socket that
// falls webchatQueueMax frames behind is closed, and every outbound still
// gets one receipt.
func TestWebchatSlowVisitorDoesNotBlockDelivery(t *testing.T) {
	hub := newWebchatHub()
	browser, c := visitorPair(t, hub, "c-1")
	_ = browser // never read
	rs := &receipts{got: map[string]string{}}
	text := strings.Repeat("x", 256<<10) // the socket's buffers fill after a few
	const n = 3 * webchatQueueMax
	start := time.Now()
	for i := range n {
		hub.deliver(journey.Outbound{ID: "o-" + strconv.Itoa(i), Customer: "c-1", Text: text, Seq: uint64(i + 1)}, rs.add)
	}
	if d := time.Since(start); d > webchatWriteWait/2 {
		t.Fatalf("%d deliveries to a visitor not reading took %v", n, d)
	}
	got := rs.wait(t, n)
	accepted := 0
	for _, k := range got {
		if k == journey.ReceiptAccepted {
			accepted++
		}
	}
	if accepted == 0 {
		t.Errorf("every outbound was receipted delivered to a socket that took none")
	}
	select {
	case <-c.ended: // the slow socket was closed and its writer stopped
	case <-time.After(10 * time.Second):
		t.Errorf("the slow visitor's writer is still running")
	}
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if len(hub.conns["c-1"]) > 0 {
		t.Errorf("the closed socket is still on the hub")
	}
}

// A customer's visitor sockets are at most webchatSocketsMax: the hub
// refuses more (serveWebchatWS answers 429 before the upgrade when it can
// tell), and outbounds go to the ones open.
func TestWebchatSocketsPerCustomerAreBounded(t *testing.T) {
	hub := newWebchatHub()
	var browsers []*websocket.Conn
	for range webchatSocketsMax + 2 {
		b, _ := visitorPair(t, hub, "c-1")
		browsers = append(browsers, b)
	}
	hub.mu.Lock()
	n := len(hub.conns["c-1"])
	hub.mu.Unlock()
	if n != webchatSocketsMax || !hub.full("c-1") || hub.full("c-2") {
		t.Fatalf("%d sockets on the hub, want %d", n, webchatSocketsMax)
	}
	rs := &receipts{got: map[string]string{}}
	hub.deliver(journey.Outbound{ID: "o-1", Customer: "c-1", Text: "hi", Seq: 1}, rs.add)
	for i, b := range browsers {
		_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m webchatMessage
		err := b.ReadJSON(&m)
		var timeout net.Error
		switch {
		case i >= webchatSocketsMax && (err == nil || errors.As(err, &timeout) && timeout.Timeout()):
			t.Errorf("socket %d, past the bound, was not closed: read %+v, %v", i, m, err)
		case i < webchatSocketsMax && (err != nil || m.ID != "o-1"):
			t.Errorf("socket %d: %+v, %v", i, m, err)
		}
	}
	if got := rs.wait(t, 1); got["o-1"] != journey.ReceiptDelivered {
		t.Errorf("receipt %q", got["o-1"])
	}
}
