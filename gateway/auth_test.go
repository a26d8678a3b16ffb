package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// do is an HTTP request with an optional bearer token; it returns the
// response (body read) and the body.
func do(t *testing.T, method, url, token, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func dialWS(addr, path string, h http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	return d.Dial("ws://"+addr+path, h)
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// A token given as its SHA-256 authenticates with the token, and the digest
// itself is no token.
func TestTokenGivenAsSHA256Authenticates(t *testing.T) {
	s := startTestServer(t, Config{Tokens: []Token{{TokenSHA256: sha256Hex("sup-secret"), Role: RoleSupervisor}}}, actors.Config{})
	base := "http://" + s.Addr()
	if resp, body := do(t, "GET", base+"/v1/whoami", "sup-secret", ""); resp.StatusCode != 200 || body != `{"role":"supervisor"}` {
		t.Fatalf("the token of a token_sha256: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "GET", base+"/v1/whoami", sha256Hex("sup-secret"), ""); resp.StatusCode != 401 {
		t.Fatalf("the digest as a token: %d %s", resp.StatusCode, body)
	}
	for _, bad := range []Token{
		{TokenSHA256: "not-hex", Role: RoleChannel},
		{Token: "x", TokenSHA256: sha256Hex("x"), Role: RoleChannel},
		{Role: RoleChannel},
		{Token: "a", Role: RoleChannel, Rate: -1},
	} {
		if err := s.SetTokens([]Token{bad}); err == nil {
			t.Errorf("token %+v was taken", bad)
		}
	}
}

// Over its rate a token's requests answer 429 rate_limited with
// Retry-After; each event of a batch counts; a batch larger than the
// burst can never fit and answers too_large.
func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	s := startTestServer(t, Config{Tokens: []Token{{Token: "gw", Role: RoleChannel, Rate: 3}, {Token: "sup", Role: RoleSupervisor}}}, actors.Config{})
	base := "http://" + s.Addr()
	resp, body := do(t, "POST", base+"/v1/events", "gw", `{"events":[
		{"id":"r1","customer":"c-rate","type":"page.viewed"},{"id":"r2","customer":"c-rate","type":"page.viewed"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("a batch of 2 under a rate of 3: %d %s", resp.StatusCode, body)
	}
	if resp, body = do(t, "GET", base+"/v1/whoami", "gw", ""); resp.StatusCode != 200 {
		t.Fatalf("the third of 3: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", base+"/v1/whoami", "gw", "")
	var e struct{ Error errorBody }
	_ = json.Unmarshal([]byte(body), &e)
	if resp.StatusCode != 429 || e.Error.Code != "rate_limited" || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("the fourth of 3: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Another token is not limited by this one.
	if resp, body = do(t, "GET", base+"/v1/whoami", "sup", ""); resp.StatusCode != 200 {
		t.Fatalf("another token: %d %s", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond) // a second refills the bucket
	resp, body = do(t, "POST", base+"/v1/events", "gw", `{"events":[{"id":"b1","customer":"c-rate","type":"x.y"},
		{"id":"b2","customer":"c-rate","type":"x.y"},{"id":"b3","customer":"c-rate","type":"x.y"},{"id":"b4","customer":"c-rate","type":"x.y"}]}`)
	if resp.StatusCode != 413 || !strings.Contains(body, "too_large") {
		t.Fatalf("a batch of 4 over a burst of 3: %d %s", resp.StatusCode, body)
	}
	if resp, body = do(t, "GET", base+"/v1/timeline", "gw", ""); resp.StatusCode != 404 {
		// Not a route: the catch-all takes no token and spends nothing.
		t.Fatalf("an unknown path: %d %s", resp.StatusCode, body)
	}
}

// Over its rate a channel connection is told once and its reader pauses:
// the connection stays open and every event is acknowledged exactly once.
func TestRateLimitPausesTheWebSocketReader(t *testing.T) {
	const rate, events = 10, 35
	s := startTestServer(t, Config{Tokens: []Token{{Token: "gw", Role: RoleChannel, Rate: rate}}}, actors.Config{})
	ws, _, err := dialWS(s.Addr(), "/v1/channels/ws", bearer("gw"))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	start := time.Now()
	for i := range events {
		if i == 20 { // a batch counts each of its events
			if err := ws.WriteJSON(map[string]any{"type": "batch", "id": "b", "events": []map[string]any{
				{"id": "e20", "customer": "c-ws", "type": "x.y"}, {"id": "e21", "customer": "c-ws", "type": "x.y"}}}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if i == 21 {
			continue
		}
		if err := ws.WriteJSON(map[string]any{"type": "event", "event": map[string]any{"id": fmt.Sprintf("e%d", i), "customer": "c-ws", "type": "x.y"}}); err != nil {
			t.Fatal(err)
		}
	}
	acked := map[string]int{}
	limited := 0
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for len(acked) < events {
		var f struct {
			Type, ID, Code string
			Acks           []struct{ ID string }
		}
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("after %d acks: %v", len(acked), err)
		}
		switch f.Type {
		case "ack":
			acked[f.ID]++
		case "acks":
			for _, a := range f.Acks {
				acked[a.ID]++
			}
		case "error":
			if f.Code != "rate_limited" || f.ID != "" {
				t.Fatalf("error frame %+v", f)
			}
			limited++
		}
	}
	elapsed := time.Since(start)
	for i := range events {
		if n := acked[fmt.Sprintf("e%d", i)]; n != 1 {
			t.Errorf("e%d acked %d times", i, n)
		}
	}
	// A burst of 10, then 10 a second: 35 events take at least 2.5 s.
	if limited == 0 || elapsed < 2*time.Second {
		t.Fatalf("%d rate_limited frames, %d events in %s at %d a second", limited, events, elapsed, rate)
	}
	// Still open: one more event is acknowledged.
	if err := ws.WriteJSON(map[string]any{"type": "event", "event": map[string]any{"id": "last", "customer": "c-ws", "type": "x.y"}}); err != nil {
		t.Fatal(err)
	}
	for {
		var f struct{ Type, ID string }
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("the connection did not stay open: %v", err)
		}
		if f.Type == "ack" && f.ID == "last" {
			break
		}
	}
}

// Past max concurrent requests the next request answers 503 unavailable;
// the probes still answer.
func TestConcurrentRequestsAreBounded(t *testing.T) {
	s := startTestServer(t, Config{MaxConcurrentRequests: 1, Tokens: []Token{{Token: "gw", Role: RoleChannel}}}, actors.Config{})
	base := "http://" + s.Addr()
	// A request whose body is still coming holds the one slot.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/v1/events", pr)
	req.Header.Set("Authorization", "Bearer gw")
	held := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte(`{"id":"slow","customer":"c-slow",`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.requests) == 0 { // until the server holds it
		if time.Now().After(deadline) {
			t.Fatal("the slow request never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := do(t, "GET", base+"/v1/whoami", "gw", "")
	if resp.StatusCode != 503 || !strings.Contains(body, `"unavailable"`) || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("a second request at a limit of 1: %d %s", resp.StatusCode, body)
	}
	for _, probe := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, body := do(t, "GET", base+probe, "", ""); resp.StatusCode != 200 {
			t.Errorf("%s at the limit: %d %.100s", probe, resp.StatusCode, body)
		}
	}
	_, _ = pw.Write([]byte(`"type":"x.y"}`))
	_ = pw.Close()
	if code := <-held; code != 200 {
		t.Fatalf("the slow request answered %d", code)
	}
	if resp, body := do(t, "GET", base+"/v1/whoami", "gw", ""); resp.StatusCode != 200 {
		t.Fatalf("after the slot is free: %d %s", resp.StatusCode, body)
	}
}

// A browser page of another origin may not open the token WebSockets;
// this server's own pages, the origins configured and non-browser clients
// may. A browser carries its token in a subprotocol, which is not echoed.
func TestWebSocketOriginAndSubprotocolToken(t *testing.T) {
	s := startTestServer(t, Config{AllowedOrigins: []string{"https://desk.example.com"},
		Tokens: []Token{{Token: "gw", Role: RoleChannel}, {Token: "sup", Role: RoleSupervisor}}}, actors.Config{})
	addr := s.Addr()
	for _, path := range []string{"/v1/channels/ws", "/v1/agents/ws"} {
		tok := "gw"
		if path == "/v1/agents/ws" {
			tok = "sup"
		}
		_, resp, err := dialWS(addr, path, http.Header{"Authorization": {"Bearer " + tok}, "Origin": {"https://evil.example.com"}})
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("%s from a foreign origin: %v %v", path, err, resp)
		}
		for _, origin := range []string{"", "http://" + addr, "https://desk.example.com"} {
			h := bearer(tok)
			if origin != "" {
				h.Set("Origin", origin)
			}
			ws, resp, err := dialWS(addr, path, h)
			if err != nil {
				t.Errorf("%s from origin %q: %v %v", path, origin, err, resp)
				continue
			}
			ws.Close()
		}
		enc := base64.RawURLEncoding.EncodeToString([]byte(tok))
		ws, resp, err := dialWS(addr, path, http.Header{"Origin": {"http://" + addr}}, "throughline.v1", "throughline.bearer."+enc)
		if err != nil {
			t.Errorf("%s with the token in a subprotocol: %v %v", path, err, resp)
			continue
		}
		if got := ws.Subprotocol(); got != "throughline.v1" {
			t.Errorf("%s picked subprotocol %q", path, got)
		}
		ws.Close()
		if _, resp, err := dialWS(addr, path, nil, "throughline.v1", "throughline.bearer."+base64.RawURLEncoding.EncodeToString([]byte("wrong"))); err == nil || resp.StatusCode != 401 {
			t.Errorf("%s with a wrong subprotocol token: %v %v", path, err, resp)
		}
		// The access_token parameter still works, for older clients.
		ws, resp, err = dialWS(addr, path+"?access_token="+tok, nil)
		if err != nil {
			t.Errorf("%s with access_token: %v %v", path, err, resp)
			continue
		}
		ws.Close()
	}
}

// readClose reads until the connection closes and returns the close error.
func readClose(t *testing.T, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce
			}
			t.Fatalf("the connection ended without a close frame: %v", err)
		}
	}
}

// Replacing the tokens: the new ones authenticate at once, a removed one
// no longer does and its live WebSockets (channel and agent) close with
// "token revoked"; a token that stays keeps its connections; a bad list
// changes nothing.
func TestSetTokensRevokesAndKeeps(t *testing.T) {
	old := []Token{{Token: "gw-old", Role: RoleChannel, Name: "old-gateway"}, {Token: "gw-kept", Role: RoleChannel},
		{Token: "alice-old", Role: RoleAgent, Agent: "alice"}, {Token: "sup", Role: RoleSupervisor}}
	s := startTestServer(t, Config{Tokens: old}, actors.Config{})
	addr, base := s.Addr(), "http://"+s.Addr()
	channel, _, err := dialWS(addr, "/v1/channels/ws", bearer("gw-old"))
	if err != nil {
		t.Fatal(err)
	}
	defer channel.Close()
	desk, _, err := dialWS(addr, "/v1/agents/ws", bearer("alice-old"))
	if err != nil {
		t.Fatal(err)
	}
	defer desk.Close()
	kept, _, err := dialWS(addr, "/v1/channels/ws", bearer("gw-kept"))
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()

	bad := []Token{{Token: "gw-kept", Role: RoleChannel}, {Token: "bob", Role: RoleAgent}} // agent without agent
	if err := s.SetTokens(bad); err == nil {
		t.Fatal("a token list with an agent token naming no agent was taken")
	}
	if resp, body := do(t, "GET", base+"/v1/whoami", "gw-old", ""); resp.StatusCode != 200 {
		t.Fatalf("after a bad list the old token answers %d %s", resp.StatusCode, body)
	}

	next := []Token{{Token: "gw-kept", Role: RoleChannel}, {Token: "gw-new", Role: RoleChannel}, {Token: "sup", Role: RoleSupervisor}}
	if err := s.SetTokens(next); err != nil {
		t.Fatal(err)
	}
	for _, ws := range []*websocket.Conn{channel, desk} {
		if ce := readClose(t, ws); ce.Code != CloseTokenRevoked || ce.Text != "token revoked" {
			t.Errorf("a revoked token's connection closed with %d %q", ce.Code, ce.Text)
		}
	}
	for tok, want := range map[string]int{"gw-old": 401, "alice-old": 401, "gw-new": 200, "gw-kept": 200} {
		if resp, body := do(t, "GET", base+"/v1/whoami", tok, ""); resp.StatusCode != want {
			t.Errorf("after the reload %s answers %d %s, want %d", tok, resp.StatusCode, body, want)
		}
	}
	if _, resp, err := dialWS(addr, "/v1/channels/ws", bearer("gw-old")); err == nil || resp.StatusCode != 401 {
		t.Errorf("a revoked token upgraded: %v %v", err, resp)
	}
	// The kept token's connection is still open and served.
	_ = kept.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := kept.WriteJSON(map[string]any{"type": "event", "event": map[string]any{"id": "k1", "customer": "c-kept", "type": "x.y"}}); err != nil {
		t.Fatal(err)
	}
	var f struct{ Type, ID string }
	if err := kept.ReadJSON(&f); err != nil || f.Type != "ack" || f.ID != "k1" {
		t.Fatalf("the kept token's connection: %+v %v", f, err)
	}
	// A token whose role changes is revoked too.
	if err := s.SetTokens([]Token{{Token: "gw-kept", Role: RoleSupervisor}}); err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, kept); ce.Code != CloseTokenRevoked {
		t.Errorf("a token whose role changed kept its connection: %d %q", ce.Code, ce.Text)
	}
}

// A connection its token left between the upgrade and its registration
// (SetTokens racing a dial) closes as a live one would, 4001 "token
// revoked", with a close frame: the desk's closed with none (1006), the
// channel's with 1013. Shutting down closes with 1013.
func TestRefusedAfterUpgradeClosesWithACode(t *testing.T) {
	for _, tc := range []struct {
		rej  *journey.Rejection
		code int
		text string
	}{
		{journey.Rejectf(journey.CodeUnauthorized, tokenRevoked), CloseTokenRevoked, tokenRevoked},
		{journey.Rejectf(journey.CodeUnavailable, "shutting down"), websocket.CloseTryAgainLater, "shutting down"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			refuseUpgraded(ws, tc.rej)
		}))
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			srv.Close()
			t.Fatal(err)
		}
		if ce := readClose(t, ws); ce.Code != tc.code || ce.Text != tc.text {
			t.Errorf("%s: closed with %d %q, want %d %q", tc.rej.Code, ce.Code, ce.Text, tc.code, tc.text)
		}
		ws.Close()
		srv.Close()
	}
}
