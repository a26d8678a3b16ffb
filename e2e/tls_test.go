package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/internal/testcert"
)

// The binary serves HTTPS and WSS with node.tls, and on SIGHUP takes a
// certificate rotated in place: new handshakes get it, a WSS connection
// opened before goes on, and SIGTERM still stops it cleanly.
func TestTLSServeAndSIGHUPReload(t *testing.T) {
	ca1 := testcert.NewCA(t, "ca1")
	certFile, keyFile := ca1.Issue(t, "n1")
	s := launch(t, serverOptions{dataDir: t.TempDir(), nodeExtra: fmt.Sprintf("  tls: {cert: %q, key: %q}\n", certFile, keyFile)})
	trusting := func(ca *testcert.CA) *http.Client {
		return &http.Client{Timeout: httpTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	}
	eventually(t, readyTimeout, "https /readyz 200", func() bool {
		resp, err := trusting(ca1).Get("https://" + s.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	dial := func(roots *x509.CertPool) (*websocket.Conn, error) {
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots}, HandshakeTimeout: 5 * time.Second}
		ws, _, err := d.Dial("wss://"+s.addr+"/v1/channels/ws", http.Header{"Authorization": {"Bearer " + tokChannel}})
		if err == nil {
			t.Cleanup(func() { ws.Close() })
		}
		return ws, err
	}
	send := func(ws *websocket.Conn, id string) {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(frameTimeout))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"event","event":{"id":"`+id+`","customer":"c-tls","text":"hi"}}`)); err != nil {
			t.Fatal(err)
		}
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("event %s: %v", id, err)
		}
		var f struct{ Type, ID string }
		if err := json.Unmarshal(msg, &f); err != nil || f.Type != "ack" || f.ID != id {
			t.Fatalf("event %s answered %s", id, msg)
		}
	}
	old, err := dial(ca1.Pool())
	if err != nil {
		t.Fatal(err)
	}
	send(old, "t1")

	ca2 := testcert.NewCA(t, "ca2")
	newCert, newKey := ca2.Issue(t, "n1")
	for src, dst := range map[string]string{newCert: certFile, newKey: keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a handshake with the rotated certificate", func() bool {
		_, err := dial(ca2.Pool())
		return err == nil
	})
	if _, err := dial(ca1.Pool()); err == nil {
		t.Error("a client trusting only the old CA connected after the reload")
	}
	send(old, "t2")
	s.stop()
}
