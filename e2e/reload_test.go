package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// SIGHUP re-reads the config file's auth section: a removed token stops
// authenticating and its live WebSocket closes with "token revoked", a new
// one (from the environment, or as its SHA-256) works at once, and a bad
// file is logged and changes nothing. The log names tokens, never shows
// them.
func TestSIGHUPReloadsTokens(t *testing.T) {
	digest := sha256.Sum256([]byte("hashed-sup"))
	s := startServer(t, serverOptions{
		env:    []string{"TL_E2E_GW_TOKEN=gw-from-env"},
		tokens: []string{`{token_env: TL_E2E_GW_TOKEN, role: channel, name: env-gw}`},
	})
	status := func(tok string) int {
		req, _ := http.NewRequest("GET", s.base+"/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := (&http.Client{Timeout: httpTimeout}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status("gw-from-env"); code != 200 {
		t.Fatalf("the token_env token answered %d", code)
	}
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/v1/channels/ws", http.Header{"Authorization": {"Bearer gw-from-env"}})
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	defer ws.Close()

	orig, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	hup := func(config string) {
		t.Helper()
		if err := os.WriteFile(s.config, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	// A bad file: logged, the old tokens stay.
	hup(strings.Replace(string(orig), "{token: sup, role: supervisor}", "{token: sup, token_sha256: abc, role: supervisor}", 1))
	eventually(t, 10*time.Second, "the bad reload is logged", func() bool {
		b, _ := os.ReadFile(s.stderr)
		return strings.Contains(string(b), "reload refused")
	})
	if code := status("gw-from-env"); code != 200 {
		t.Fatalf("after a bad reload the old token answered %d", code)
	}

	next := strings.Replace(string(orig), "{token_env: TL_E2E_GW_TOKEN, role: channel, name: env-gw}",
		`{token_sha256: "`+hex.EncodeToString(digest[:])+`", role: supervisor, name: hashed}`, 1)
	hup(next)
	eventually(t, 10*time.Second, "the new token authenticates", func() bool { return status("hashed-sup") == 200 })
	if code := status("gw-from-env"); code != 401 {
		t.Fatalf("a removed token answered %d", code)
	}
	_ = ws.SetReadDeadline(time.Now().Add(frameTimeout))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "token revoked" {
			t.Fatalf("the removed token's connection ended with %v", err)
		}
		break
	}
	b, _ := os.ReadFile(s.stderr)
	if !strings.Contains(string(b), "token=env-gw") || strings.Contains(string(b), "gw-from-env") || strings.Contains(string(b), "hashed-sup") {
		t.Errorf("the log should name the revoked token and show no token:\n%s", b)
	}
	s.stop()
}
