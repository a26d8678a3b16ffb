package bench

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Every bench reaches a server over http/ws or https/wss, as its target URL
// says. Over TLS the server's certificate is checked against the system's
// roots, or against the CA cmd passes (--ca), or not at all (--insecure,
// for a self-signed test certificate). cmd sets this once, before a run.
var clientTLS atomic.Pointer[tls.Config]

// SetClientTLS sets how every bench's connections verify a server's
// certificate: caFile (PEM) trusted in place of the system's roots, or
// insecure: not verified. Neither: the system's roots.
func SetClientTLS(caFile string, insecure bool) error {
	switch {
	case caFile != "" && insecure:
		return errors.New("--ca and --insecure: give one")
	case insecure:
		clientTLS.Store(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // asked for, for self-signed test servers
	case caFile != "":
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca: %s holds no PEM certificate", caFile)
		}
		clientTLS.Store(&tls.Config{RootCAs: pool})
	default:
		clientTLS.Store(nil)
	}
	return nil
}

// tlsConfig is the configuration of a dial (a copy: dialers may change it).
func tlsConfig() *tls.Config {
	if c := clientTLS.Load(); c != nil {
		return c.Clone()
	}
	return nil
}

// newHTTPClient is an HTTP client for the benches' requests and scrapes.
func newHTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConfig()
	return &http.Client{Timeout: timeout, Transport: t}
}
