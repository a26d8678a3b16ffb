package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Limits of an idle run.
const (
	// IdleConnectionsMax bounds IdleConfig.Connections.
	IdleConnectionsMax = 200_000
	// IdleSettleMax bounds IdleConfig.Settle.
	IdleSettleMax = 10 * time.Minute
	// IdleRSSBar is issue 9's bar: an idle channel WebSocket costs at most
	// 16 KiB of the server's RSS.
	IdleRSSBar = 16 << 10
	// idleDialers is how many connections are opened at once.
	idleDialers = 16
	// idleReadyTimeout bounds the wait for a hello's ready.
	idleReadyTimeout = 10 * time.Second
	// idleBufferBytes are the client's gorilla buffers: small, the client
	// only says hello and answers pings.
	idleBufferBytes = 256
)

// IdleConfig is one `throughline bench idle` run: what an idle channel
// WebSocket costs the server. It reads the server's RSS and Go heap in use
// from its /metrics, opens Connections channel WebSockets that each say
// hello (the server answers ready) and then nothing but answer the
// server's pings, waits Settle, reads the server's memory again and
// reports (after - before) / Connections. Start from DefaultIdle; cmd/
// binds flags.
type IdleConfig struct {
	// Target is the server's base URL (http:// or https://). Required.
	Target string
	// Token is a channel token of Target. Required.
	Token string
	// Connections is how many idle WebSockets are opened. Default 10,000
	// (issue 9's count); 1..IdleConnectionsMax. The client needs a file
	// descriptor for each, and so does the server.
	Connections int
	// Settle is the wait after the last connection said hello, before
	// the second reading. Default 35 s: a round of the server's pings
	// (every 30 s at the defaults) falls inside it. 0..IdleSettleMax.
	Settle time.Duration
}

// DefaultIdle is the run issue 9 states: 10,000 idle channel WebSockets.
func DefaultIdle() IdleConfig {
	return IdleConfig{Connections: 10_000, Settle: 35 * time.Second}
}

// Validate reports every problem of c.
func (c IdleConfig) Validate() error {
	var errs []error
	if c.Target == "" {
		errs = append(errs, errors.New("a target is required"))
	} else if _, _, err := targetURLs(c.Target); err != nil {
		errs = append(errs, fmt.Errorf("target: %w", err))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("a channel token is required"))
	}
	if c.Connections < 1 || c.Connections > IdleConnectionsMax {
		errs = append(errs, fmt.Errorf("connections %d: want 1..%d", c.Connections, IdleConnectionsMax))
	}
	if c.Settle < 0 || c.Settle > IdleSettleMax {
		errs = append(errs, fmt.Errorf("settle %v: want 0..%v", c.Settle, IdleSettleMax))
	}
	return errors.Join(errs...)
}

// IdleReport is what an idle run measured.
type IdleReport struct {
	Target      string  `json:"target"`
	Connections int     `json:"connections"`
	Settle      string  `json:"settle"`
	OpenSeconds float64 `json:"open_seconds"` // opening every connection took
	Before      Memory  `json:"server_before"`
	After       Memory  `json:"server_after"`
	// RSSPerConnection and HeapPerConnection are (after - before) /
	// Connections; nil when the server does not expose the metric.
	RSSPerConnection  *float64 `json:"rss_bytes_per_connection"`
	HeapPerConnection *float64 `json:"heap_inuse_bytes_per_connection"`
	Bars              []Bar    `json:"bars"`
}

// RunIdle runs cfg against its target.
func RunIdle(ctx context.Context, cfg IdleConfig) (*IdleReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	wsURL, metricsURL, err := targetURLs(cfg.Target)
	if err != nil {
		return nil, err
	}
	client := newHTTPClient(scrapeTimeout)
	before, err := readMemory(ctx, client, metricsURL)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	conns, err := openIdle(ctx, wsURL, cfg)
	defer func() {
		for _, ws := range conns {
			ws.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	open := time.Since(start)
	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	after, err := readMemory(ctx, client, metricsURL)
	if err != nil {
		return nil, err
	}
	r := &IdleReport{Target: cfg.Target, Connections: cfg.Connections, Settle: cfg.Settle.String(),
		OpenSeconds: open.Seconds(), Before: before, After: after}
	per := func(a, b *int64) *float64 {
		if a == nil || b == nil {
			return nil
		}
		return ptr(float64(*b-*a) / float64(cfg.Connections))
	}
	r.RSSPerConnection = per(before.RSSBytes, after.RSSBytes)
	r.HeapPerConnection = per(before.HeapInuseBytes, after.HeapInuseBytes)
	bar := Bar{Name: "server RSS per idle channel WebSocket", Limit: fmt.Sprintf("≤ %d B (16 KiB)", IdleRSSBar), Value: "n/a"}
	if r.RSSPerConnection != nil {
		bar.Value = fmt.Sprintf("%.0f B", *r.RSSPerConnection)
		bar.Pass = *r.RSSPerConnection <= IdleRSSBar
	}
	r.Bars = []Bar{bar}
	return r, nil
}

// readMemory reads the server's RSS and heap in use.
func readMemory(ctx context.Context, client *http.Client, metricsURL string) (Memory, error) {
	m, err := scrape(ctx, client, metricsURL)
	if err != nil {
		return Memory{}, err
	}
	return memoryOf(m), nil
}

// openIdle opens cfg.Connections WebSockets, each past its hello's ready
// and answering pings from then on (gorilla's default ping handler, run by
// a reader that discards everything else). It returns those it opened,
// with the first error.
func openIdle(ctx context.Context, wsURL string, cfg IdleConfig) ([]*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: handshakeTimeout, ReadBufferSize: idleBufferBytes,
		WriteBufferSize: idleBufferBytes, TLSClientConfig: tlsConfig()}
	header := http.Header{"Authorization": {"Bearer " + cfg.Token}}
	var (
		mu    sync.Mutex
		conns = make([]*websocket.Conn, 0, cfg.Connections)
		first error
		next  int
		wg    sync.WaitGroup
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if first != nil || next == cfg.Connections {
			return false
		}
		next++
		return true
	}
	for range min(idleDialers, cfg.Connections) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for take() {
				ws, err := dialIdle(ctx, &d, wsURL, header)
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
					}
				} else {
					conns = append(conns, ws)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return conns, first
}

// dialIdle opens one connection, says hello, waits for ready and leaves a
// reader to answer the pings.
func dialIdle(ctx context.Context, d *websocket.Dialer, wsURL string, header http.Header) (*websocket.Conn, error) {
	ws, _, err := d.DialContext(ctx, wsURL, header)
	if err != nil {
		return nil, fmt.Errorf("bench: dial %s: %w", wsURL, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","channels":["sms"]}`)); err != nil {
		ws.Close()
		return nil, fmt.Errorf("bench: hello: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(idleReadyTimeout))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("bench: waiting for ready: %w", err)
	}
	var f struct{ Type string }
	if json.Unmarshal(msg, &f) != nil || f.Type != "ready" {
		ws.Close()
		return nil, fmt.Errorf("bench: the hello was answered %.200s, not ready", msg)
	}
	_ = ws.SetReadDeadline(time.Time{})
	go func() {
		for {
			if _, _, err := ws.NextReader(); err != nil {
				return
			}
		}
	}()
	return ws, nil
}

// Markdown renders the report.
func (r *IdleReport) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## throughline bench idle\n\n%d idle channel WebSockets against %s: each said hello (answered ready) and then only answered pings; the server's memory read from its /metrics before the first was opened and %s after the last (opening took %.1f s).\n\n",
		r.Connections, r.Target, r.Settle, r.OpenSeconds)
	b.WriteString("| | before | after | per connection |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| server RSS | %s | %s | %s |\n", formatBytes(r.Before.RSSBytes), formatBytes(r.After.RSSBytes), perConn(r.RSSPerConnection))
	fmt.Fprintf(&b, "| Go heap in use | %s | %s | %s |\n", formatBytes(r.Before.HeapInuseBytes), formatBytes(r.After.HeapInuseBytes), perConn(r.HeapPerConnection))
	writeBars(&b, r.Bars)
	_, err := io.WriteString(w, b.String())
	return err
}

func perConn(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.0f B", *v)
}
