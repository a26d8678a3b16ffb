package node

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/gateway"
)

// startAuthNode runs a node whose auth section is the YAML given, its logs
// in the returned buffer.
func startAuthNode(t *testing.T, authYAML string) (*channelsNode, *syncBuffer) {
	t.Helper()
	cfg, err := LoadConfig(writeConfig(t, authYAML))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.DataDir = t.TempDir()
	cfg.Node.HTTP = "127.0.0.1:0"
	cfg.Node.Partitions = 2
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	n := startNode(t, cfg)
	return &channelsNode{t: t, n: n, base: "http://" + n.Addr()}, logs
}

// Tokens from the environment and as SHA-256 authenticate; a reload of the
// auth section adds and removes tokens and closes the WebSocket of a
// removed one; a bad reload keeps the old tokens; no log line shows a
// token.
func TestReloadTokensFromTheConfigFile(t *testing.T) {
	t.Setenv("TL_NODE_TEST_GW", "gw-from-env")
	c, logs := startAuthNode(t, `
auth:
  tokens:
    - {token_env: TL_NODE_TEST_GW, role: channel, name: env-gateway}
    - {token_sha256: "`+sha256Hex("sup-hashed")+`", role: supervisor, name: ops}
`)
	for tok, want := range map[string]int{"gw-from-env": 200, "sup-hashed": 200, "TL_NODE_TEST_GW": 401, sha256Hex("sup-hashed"): 401} {
		if code, body := c.do("GET", "/v1/whoami", tok, "", "", nil); code != want {
			t.Errorf("token %q answered %d %s, want %d", tok, code, body, want)
		}
	}
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.base, "http")+"/v1/channels/ws", http.Header{"Authorization": {"Bearer gw-from-env"}})
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	defer ws.Close()

	// A bad file: the old tokens stay, the problems are all named.
	bad, err := LoadConfig(writeConfig(t, `
auth:
  tokens:
    - {token: x, token_env: TL_NODE_TEST_GW, role: channel}
    - {token_env: TL_NODE_TEST_NOT_SET, role: supervisor}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.n.Reload(bad)
	if err == nil || !strings.Contains(err.Error(), "auth.tokens[0]: give exactly one") || !strings.Contains(err.Error(), "TL_NODE_TEST_NOT_SET is unset") {
		t.Fatalf("a bad reload: %v", err)
	}
	if code, body := c.do("GET", "/v1/whoami", "gw-from-env", "", "", nil); code != 200 {
		t.Fatalf("after a bad reload the old token answers %d %s", code, body)
	}

	t.Setenv("TL_NODE_TEST_GW", "gw-rotated")
	good, err := LoadConfig(writeConfig(t, `
auth:
  tokens:
    - {token_env: TL_NODE_TEST_GW, role: channel, name: env-gateway}
    - {token: admin-new, role: admin}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.n.Reload(good); err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]int{"gw-from-env": 401, "sup-hashed": 401, "gw-rotated": 200, "admin-new": 200} {
		if code, body := c.do("GET", "/v1/whoami", tok, "", "", nil); code != want {
			t.Errorf("after the reload %q answered %d %s, want %d", tok, code, body, want)
		}
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != gateway.CloseTokenRevoked || ce.Text != "token revoked" {
			t.Fatalf("the rotated token's connection ended with %v", err)
		}
		break
	}
	out := logs.String()
	if !strings.Contains(out, "token=env-gateway") {
		t.Errorf("the revocation is not logged by the token's name:\n%s", out)
	}
	for _, secret := range []string{"gw-from-env", "gw-rotated", "sup-hashed", "admin-new"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows the token %q:\n%s", secret, out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
