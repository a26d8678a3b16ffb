package node

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The web chat's visitor sockets are pinged like every WebSocket of the
// server (node.ws_ping_interval), and one that stops answering is closed
// after node.ws_idle_timeout.
func TestWebchatIdleVisitorIsClosed(t *testing.T) {
	t.Setenv("TL_WEBCHAT", "webchat-secret")
	c := startChannelsNode(t, ChannelsConfig{Webchat: &WebchatChannel{VisitorSecretEnv: "TL_WEBCHAT", AllowedOrigins: []string{"https://shop.example.com"}}},
		func(cfg *Config) {
			cfg.Node.WSPingInterval = 100 * time.Millisecond
			cfg.Node.WSIdleTimeout = 400 * time.Millisecond
		})
	code, body := c.do("POST", "/v1/webchat/token", "gw-secret", "application/json", `{"visitor":"v-1"}`, nil)
	var tok struct{ Token string }
	if code != 200 || json.Unmarshal([]byte(body), &tok) != nil {
		t.Fatalf("token %d %s", code, body)
	}
	wsURL := "ws" + strings.TrimPrefix(c.base, "http") + "/v1/webchat/ws?token=" + url.QueryEscape(tok.Token)
	dial := func() *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://shop.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	live := dial() // gorilla's default ping handler answers
	_ = live.SetReadDeadline(time.Now().Add(1200 * time.Millisecond))
	for {
		_, _, err := live.ReadMessage()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil {
			t.Fatalf("a visitor answering pings was closed: %v", err)
		}
	}
	silent := dial()
	silent.SetPingHandler(func(string) error { return nil })
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := silent.ReadMessage()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a visitor that stopped answering pings was still open after 5s")
		}
		return
	}
}
