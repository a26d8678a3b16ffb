package node

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/gateway"
	"github.com/throughline/throughline/internal/testcert"
)

// startTLSNode starts a node serving HTTPS with cert and key files.
func startTLSNode(t *testing.T, certFile, keyFile string) *Node {
	t.Helper()
	cfg, err := LoadConfig(writeConfig(t, fmt.Sprintf("node: {http: 127.0.0.1:0, partitions: 4, tls: {cert: %q, key: %q}}\n", certFile, keyFile)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.DataDir = t.TempDir()
	cfg.Auth.Tokens = []gateway.Token{{Token: "gw", Role: gateway.RoleChannel}}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n := startNode(t, cfg)
	return n
}

// copyFile replaces dst's contents with src's (a certificate rotated in
// place, as an operator or cert-manager does).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func dialWSS(t *testing.T, addr string, roots *x509.CertPool) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots}, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("wss://"+addr+"/v1/channels/ws", http.Header{"Authorization": {"Bearer gw"}})
	if err != nil {
		t.Fatalf("wss dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	return ws
}

// sendEvent sends an event frame and wants its ack.
func sendEvent(t *testing.T, ws *websocket.Conn, id string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"event","event":{"id":"`+id+`","customer":"c-1","text":"hi"}}`)); err != nil {
		t.Fatal(err)
	}
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("event %s: %v", id, err)
	}
	var f struct{ Type, ID string }
	if json.Unmarshal(msg, &f); f.Type != "ack" || f.ID != id {
		t.Fatalf("event %s answered %s", id, msg)
	}
}

func peerSerial(ws *websocket.Conn) string {
	return ws.NetConn().(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// node.tls serves HTTPS and WSS; on ReloadTLS a rotated certificate is
// used by new handshakes while an open WSS connection goes on, and a bad
// pair leaves the one in use.
func TestNodeServesTLSAndReloadsItsCertificate(t *testing.T) {
	ca1 := testcert.NewCA(t, "ca1")
	certFile, keyFile := ca1.Issue(t, "n1")
	n := startTLSNode(t, certFile, keyFile)
	if !n.TLS() {
		t.Fatal("node.tls given, TLS() false")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca1.Pool()}}}
	req, _ := http.NewRequest("POST", "https://"+n.Addr()+"/v1/events", strings.NewReader(`{"id":"h1","customer":"c-1","text":"over https"}`))
	req.Header.Set("Authorization", "Bearer gw")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"seq":1`) {
		t.Fatalf("https POST: %d %s", resp.StatusCode, body)
	}
	// Plain HTTP on the TLS port is refused.
	if resp, err := http.Get("http://" + n.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS listener")
		}
	}

	old := dialWSS(t, n.Addr(), ca1.Pool())
	sendEvent(t, old, "w1")
	oldSerial := peerSerial(old)

	// Rotate to a certificate of another CA, in place, and reload.
	ca2 := testcert.NewCA(t, "ca2")
	newCert, newKey := ca2.Issue(t, "n1")
	copyFile(t, newCert, certFile)
	copyFile(t, newKey, keyFile)
	if err := n.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	sendEvent(t, old, "w2") // the open connection is untouched
	fresh := dialWSS(t, n.Addr(), ca2.Pool())
	if peerSerial(fresh) == oldSerial {
		t.Fatal("a new handshake after reload got the old certificate")
	}
	sendEvent(t, fresh, "w3")
	if _, _, err := (&websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca1.Pool()}}).Dial("wss://"+n.Addr()+"/v1/channels/ws", http.Header{"Authorization": {"Bearer gw"}}); err == nil {
		t.Fatal("a client trusting only the old CA still connected after reload")
	}

	// A broken pair is refused and the certificate in use kept.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.ReloadTLS(); err == nil || !strings.Contains(err.Error(), "node.tls") {
		t.Fatalf("a broken pair reloaded: %v", err)
	}
	sendEvent(t, dialWSS(t, n.Addr(), ca2.Pool()), "w4")
	sendEvent(t, old, "w5")
}

func TestConfigRefusesBadTLS(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	cert, key := ca.Issue(t, "n1")
	cfg, err := LoadConfig(writeConfig(t, fmt.Sprintf(`
node: {tls: {cert: /nonexistent.pem, key: %q}, ws_ping_interval: 30s, ws_idle_timeout: 10s, header_max_bytes: 10}
cluster: {gossip: 127.0.0.1:7946, remote: 127.0.0.1:8090, raft: 127.0.0.1:8100, tls: {cert: %q, key: %q}}
`, key, cert, key)))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	for _, want := range []string{"node.tls:", "node.ws_idle_timeout:", "node.header_max_bytes:", "cluster.tls.ca: required", "cluster.gossip_key_file: required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate did not say %q: %v", want, err)
		}
	}
}
