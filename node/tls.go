package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// A certificate is read from its files at start and again on SIGHUP
// (ReloadTLS); handshakes take whichever pair was loaded last, so a reload
// drops no connection: open ones keep the certificate they were made with,
// new ones get the new one. A pair that fails to load is reported and the
// old one kept.

// certHolder holds the pair a key's files last loaded.
type certHolder struct {
	key   string // the config key, for messages: "node.tls", "cluster.tls"
	files TLSFiles
	cert  atomic.Pointer[tls.Certificate]
}

func newCertHolder(key string, files TLSFiles) (*certHolder, error) {
	h := &certHolder{key: key, files: files}
	if err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// Reload reads the files again; on error the pair in use stays.
func (h *certHolder) Reload() error {
	c, err := loadKeyPair(h.key, &h.files)
	if err != nil {
		return err
	}
	h.cert.Store(c)
	return nil
}

func (h *certHolder) serverCert(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return h.cert.Load(), nil
}

func (h *certHolder) clientCert(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return h.cert.Load(), nil
}

// loadKeyPair reads a PEM certificate and key, and checks the certificate
// is in force.
func loadKeyPair(key string, f *TLSFiles) (*tls.Certificate, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, fmt.Errorf("%s: cert and key are both required", key)
	}
	c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &c, nil
}

// serverTLS is the node's HTTPS configuration.
func serverTLS(h *certHolder) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: h.serverCert}
}

// loadCA reads a PEM bundle of certificate authorities.
func loadCA(key, path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, fmt.Errorf("%s.ca: required (the authority every node's certificate is signed by)", key)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s.ca: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s.ca: %s holds no PEM certificate", key, path)
	}
	return pool, nil
}

// mutualTLS is the configuration of node-to-node traffic, for both ends of
// a connection: each side presents its certificate and requires the other's
// to be signed by the cluster's CA. Nodes dial each other by the addresses
// they gossip (often IPs), so a peer's certificate is checked against the
// CA, not against a host name: holding a certificate of the cluster's CA is
// what makes a node a member.
func mutualTLS(h *certHolder, ca *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetCertificate:       h.serverCert,
		GetClientCertificate: h.clientCert,
		ClientAuth:           tls.RequireAndVerifyClientCert,
		ClientCAs:            ca,
		// The server's certificate is verified by VerifyConnection below,
		// without a host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("cluster tls: the peer presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: ca, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			if err != nil {
				return fmt.Errorf("cluster tls: peer certificate: %w", err)
			}
			return nil
		},
	}
}

// TLS tells whether the node's HTTP listener serves HTTPS (node.tls).
func (n *Node) TLS() bool { return n.httpCert != nil }

// ReloadTLS reads the certificates of node.tls and cluster.tls again (on
// SIGHUP). Connections open stay open with the certificate they were made
// with; new handshakes get the new one. A pair that fails to load is
// returned in the error and the one in use kept; the others still reload.
func (n *Node) ReloadTLS() error {
	var errs []error
	for _, h := range []*certHolder{n.httpCert, n.clusterCert()} {
		if h == nil {
			continue
		}
		if err := h.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("%w (the certificate in use is kept)", err))
			continue
		}
		n.logger.Info("tls certificate reloaded", "config", h.key)
	}
	return errors.Join(errs...)
}

// clusterCert is cluster.tls's holder; nil without one.
func (n *Node) clusterCert() *certHolder {
	if n.cluster == nil {
		return nil
	}
	return n.cluster.cert
}
