package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echoTarget starts an in-process echo server for one test.
func echoTarget(t *testing.T, failCode string) string {
	t.Helper()
	echo, err := startEcho()
	if err != nil {
		t.Fatal(err)
	}
	echo.failCode = failCode
	t.Cleanup(echo.Close)
	return echo.URL
}

// shortConfig is a run of half a second against target.
func shortConfig(target string) Config {
	cfg := Default()
	cfg.Target = target
	cfg.Token = "gw-secret"
	cfg.Connections = 4
	cfg.Customers = 50
	cfg.Warmup = 100 * time.Millisecond
	cfg.Duration = 400 * time.Millisecond
	cfg.Window = 32
	cfg.DeeperWindows = nil
	cfg.Ceilings = false
	return cfg
}

// checkClean asserts a run in which every event was acknowledged once.
func checkClean(t *testing.T, r *Report) {
	t.Helper()
	if r.Sent == 0 || r.Acked != r.Sent {
		t.Errorf("sent %d, acked %d: want every sent event acked", r.Sent, r.Acked)
	}
	if r.Failed != 0 || len(r.Errors) != 0 || r.Lost != 0 || r.Unmatched != 0 || r.Malformed != 0 || r.Duplicates != 0 {
		t.Errorf("failed %d, errors %v, lost %d, unmatched %d, malformed %d, duplicates %d: want none",
			r.Failed, r.Errors, r.Lost, r.Unmatched, r.Malformed, r.Duplicates)
	}
	if r.EventsPerSecond <= 0 || r.MeasuredAcked <= 0 || r.MeasuredAcked > r.Acked {
		t.Errorf("events/s %v, measured acked %d of %d", r.EventsPerSecond, r.MeasuredAcked, r.Acked)
	}
	if r.AckLatency.Count == 0 || r.AckLatency.P50Us > r.AckLatency.P99Us || r.AckLatency.P99Us > r.AckLatency.MaxUs {
		t.Errorf("ack latency %+v: want a non-empty, ordered distribution", r.AckLatency)
	}
}

func TestRunAgainstEchoSingleEvents(t *testing.T) {
	t.Parallel()
	r, err := Run(t.Context(), shortConfig(echoTarget(t, "")))
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, r)
	if r.ServerMemory.RSSBytes == nil || *r.ServerMemory.RSSBytes <= 0 ||
		r.ServerMemory.HeapInuseBytes == nil || *r.ServerMemory.HeapInuseBytes <= 0 {
		t.Errorf("server memory %+v: want both read from the echo's /metrics", r.ServerMemory)
	}
	if r.WriteStalls.Count != nil || !hasWarning(r, metricStalls) {
		t.Errorf("stalls %+v, warnings %q: the echo exposes no stall counters, want null and a warning", r.WriteStalls, r.Warnings)
	}
}

func TestRunAgainstEchoBatches(t *testing.T) {
	t.Parallel()
	cfg := shortConfig(echoTarget(t, ""))
	cfg.BatchSize = 10
	cfg.Window = 40
	r, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, r)
	if r.Sent%10 != 0 {
		t.Errorf("sent %d events in batches of 10", r.Sent)
	}
}

func TestRunAgainstEchoAtRate(t *testing.T) {
	t.Parallel()
	cfg := shortConfig(echoTarget(t, ""))
	cfg.Rate = 2000
	r, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, r)
	// The schedule, not the echo, sets the count.
	scheduled := int64(cfg.Rate) * int64(cfg.Warmup+cfg.Duration) / int64(time.Second)
	if r.Sent > scheduled+int64(cfg.Connections) {
		t.Errorf("sent %d events, %d scheduled at %d/s", r.Sent, scheduled, cfg.Rate)
	}
}

func TestRunCountsErrorsByCode(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{0, 5} {
		cfg := shortConfig(echoTarget(t, "rate_limited"))
		cfg.BatchSize = batch
		r, err := Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent == 0 || r.Acked != 0 || r.Failed != r.Sent || r.Errors["rate_limited"] != r.Sent || len(r.Errors) != 1 {
			t.Errorf("batch %d: sent %d, acked %d, failed %d, errors %v: want every event counted under rate_limited",
				batch, r.Sent, r.Acked, r.Failed, r.Errors)
		}
		if r.EventsPerSecond != 0 || r.Lost != 0 {
			t.Errorf("batch %d: %v events/s, %d lost: want no durable events and none lost", batch, r.EventsPerSecond, r.Lost)
		}
		var md strings.Builder
		if err := r.Markdown(&md); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("| errors | rate_limited: %d |", r.Sent); !strings.Contains(md.String(), want) {
			t.Errorf("batch %d: Markdown lacks %q:\n%s", batch, want, md.String())
		}
	}
}

func TestRunWithCeilingsRendersReport(t *testing.T) {
	t.Parallel()
	cfg := shortConfig(echoTarget(t, ""))
	cfg.Ceilings = true
	cfg.DeeperWindows = []int{64}
	cfg.DataDir = t.TempDir()
	cfg.Duration = 500 * time.Millisecond
	cfg.Warmup = 100 * time.Millisecond
	r, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, r)
	// Deeper window, store ceiling, echo; no peer command in a test.
	if len(r.Rows) != 3 {
		t.Fatalf("rows %+v, warnings %q: want the deeper window, the store ceiling and the echo", r.Rows, r.Warnings)
	}
	for i, want := range []struct {
		prefix string
		window int
	}{{"server, window 64", 64}, {"store ceiling", 32}, {"WebSocket echo", 32}} {
		row := r.Rows[i]
		if !strings.HasPrefix(row.Name, want.prefix) || row.Window != want.window || row.Connections != 4 {
			t.Errorf("row %d: %+v, want %q at window %d", i, row, want.prefix, want.window)
		}
		if row.Events <= 0 || row.EventsPerSecond <= 0 || row.Ratio <= 0 || row.Lost != 0 || row.Failed != 0 || row.AckLatency.Count == 0 {
			t.Errorf("row %q: %+v: want acked events, a ratio and latencies", row.Name, row)
		}
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "no NATS JetStream peer") {
		t.Errorf("warnings %q: want one saying the peer did not run", r.Warnings)
	}

	var md bytes.Buffer
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"durable acked events/s", "ack latency p50 / p99 / p999 / max", "store ceiling: persistence group commit", "WebSocket echo", "| server, window 64 | 4 × 64 |", "| connections / customers | 4 / 50 |", "server RSS"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}

	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(out, &fields); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"config", "run_nonce", "sent", "acked", "errors", "lost", "events_per_second", "ack_latency", "write_stalls", "server_memory", "rows"} {
		if _, ok := fields[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, out)
		}
	}
	for _, part := range []string{`"p999_us":`, `"rss_bytes":`, `"ratio":`, `"batch_size":0`} {
		if !bytes.Contains(out, []byte(part)) {
			t.Errorf("JSON lacks %s: %s", part, out)
		}
	}
	if bytes.Contains(out, []byte("gw-secret")) {
		t.Errorf("JSON report carries the token: %s", out)
	}
}

func TestRunRefusedUpgradeFails(t *testing.T) {
	t.Parallel()
	cfg := shortConfig(echoTarget(t, ""))
	cfg.Target += "/nowhere"
	if _, err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Run against a path with no WebSocket = %v, want a dial error naming 404", err)
	}
}

func TestRunsDoNotShareEventIDs(t *testing.T) {
	t.Parallel()
	target := echoTarget(t, "")
	a, err := Run(t.Context(), shortConfig(target))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(t.Context(), shortConfig(target))
	if err != nil {
		t.Fatal(err)
	}
	if a.RunNonce == b.RunNonce || len(a.RunNonce) != 8 {
		t.Fatalf("run nonces %q and %q: want two different", a.RunNonce, b.RunNonce)
	}
}

func hasWarning(r *Report, part string) bool {
	for _, w := range r.Warnings {
		if strings.Contains(w, part) {
			return true
		}
	}
	return false
}

// silentServer accepts WebSockets and neither reads nor answers, like a
// server that hangs.
func silentServer(t *testing.T) string {
	t.Helper()
	upgrader := websocket.Upgrader{}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		<-release
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv.URL
}

func TestDriveCountsUnansweredAsLost(t *testing.T) {
	t.Parallel()
	target := silentServer(t)
	cfg := shortConfig(target)
	// Frames big and many enough to fill the socket buffers: the writers
	// block in a write and only closing the connection frees them.
	cfg.EventBytes = 50_000
	cfg.Window = 4096
	wsURL, _, err := targetURLs(target)
	if err != nil {
		t.Fatal(err)
	}
	res, err := drive(t.Context(), driveConfig{cfg: cfg, wsURL: wsURL, nonce: "silent", drain: 200 * time.Millisecond}, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.sent == 0 || res.acked != 0 || res.lost != res.sent {
		t.Fatalf("sent %d, acked %d, lost %d: want every sent event lost", res.sent, res.acked, res.lost)
	}
	if res.connectionErrors != 0 {
		t.Fatalf("%d connection errors (%v): closing at the end is not an error", res.connectionErrors, res.firstConnectionError)
	}
}

func TestRunStopsWhenCanceled(t *testing.T) {
	t.Parallel()
	cfg := shortConfig(echoTarget(t, ""))
	cfg.Duration = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	if _, err := Run(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run canceled = %v, want context.Canceled", err)
	}
}

func TestRunReportsDroppedConnections(t *testing.T) {
	t.Parallel()
	upgrader := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r)
			return
		}
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		_, _, _ = ws.ReadMessage()
		_ = ws.Close() // drops the connection without a close frame
	}))
	t.Cleanup(srv.Close)
	r, err := Run(t.Context(), shortConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if r.Acked != 0 || r.Lost != r.Sent || !hasWarning(r, "connection errors") || !hasWarning(r, "no server metrics") {
		t.Fatalf("sent %d, acked %d, lost %d, warnings %q: want all lost and the dropped connections and missing metrics reported",
			r.Sent, r.Acked, r.Lost, r.Warnings)
	}
}

func TestWriterAnswersPings(t *testing.T) {
	t.Parallel()
	upgrader := websocket.Upgrader{}
	var pongs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.SetPongHandler(func(string) error { pongs.Add(1); return nil })
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
					if ws.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)) != nil {
						return
					}
				}
			}
		}()
		for { // read and never answer: the client's window stays full
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	cfg := shortConfig(srv.URL)
	cfg.Connections, cfg.Window = 1, 4
	wsURL, _, _ := targetURLs(srv.URL)
	res, err := drive(t.Context(), driveConfig{cfg: cfg, wsURL: wsURL, nonce: "ping", drain: 50 * time.Millisecond}, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.sent != 4 || pongs.Load() == 0 || res.connectionErrors != 0 {
		t.Fatalf("sent %d, %d pongs, %d connection errors (%v): want a full window, pongs while waiting, no errors",
			res.sent, pongs.Load(), res.connectionErrors, res.firstConnectionError)
	}
}
