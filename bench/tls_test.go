package bench

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A bench reaches an https server with a self-signed certificate when told
// its CA (--ca) or told not to verify (--insecure), and not otherwise.
func TestClientTLSReachesSelfSignedServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = SetClientTLS("", false) })
	get := func() error {
		resp, err := newHTTPClient(5 * time.Second).Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, c := range []struct {
		name     string
		ca       string
		insecure bool
		ok       bool
	}{{"system roots", "", false, false}, {"--ca", caFile, false, true}, {"--insecure", "", true, true}} {
		if err := SetClientTLS(c.ca, c.insecure); err != nil {
			t.Fatal(err)
		}
		if err := get(); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if SetClientTLS(caFile, true) == nil {
		t.Error("--ca with --insecure accepted")
	}
}
