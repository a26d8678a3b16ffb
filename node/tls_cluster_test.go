package node

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/throughline/throughline/internal/testcert"
	"github.com/throughline/throughline/persistence"
)

// clusterTLSFor is the mutual TLS of a node holding a certificate of ca
// and trusting trust.
func clusterTLSFor(t *testing.T, ca, trust *testcert.CA, name string) *tls.Config {
	t.Helper()
	cert, key := ca.Issue(t, name)
	h, err := newCertHolder("cluster.tls", TLSFiles{Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return mutualTLS(h, trust.Pool())
}

func startMux(t *testing.T, cfg *tls.Config) *persistence.RaftMux {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := persistence.NewRaftMux(ln, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// With cluster.tls, the raft port serves only peers holding a certificate
// of the cluster's CA: a node with another CA's certificate, or with none,
// never reaches a partition's raft.
func TestRaftMuxRefusesPeerWithoutClusterCertificate(t *testing.T) {
	ca, other := testcert.NewCA(t, "cluster"), testcert.NewCA(t, "other")
	server := startMux(t, clusterTLSFor(t, ca, ca, "n1"))
	layer, err := server.StreamLayer(0)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := layer.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	addr := raft.ServerAddress(server.Addr().String())
	try := func(name string, cfg *tls.Config) bool {
		t.Helper()
		client, err := startMux(t, cfg).StreamLayer(0)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := client.Dial(addr, 2*time.Second)
		if err == nil {
			defer conn.Close()
			_, err = conn.Write([]byte("ping:" + name))
		}
		select {
		case c := <-accepted:
			defer c.Close()
			buf := make([]byte, len("ping:"+name))
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping:"+name {
				t.Fatalf("%s: stream accepted but read %q, %v", name, buf, err)
			}
			return true
		case <-time.After(time.Second):
			return false
		}
	}
	if !try("member", clusterTLSFor(t, ca, ca, "n2")) {
		t.Fatal("a node with the cluster's certificate was refused")
	}
	if try("stranger", clusterTLSFor(t, other, ca, "n3")) {
		t.Fatal("a node with another CA's certificate reached raft")
	}
	noCert := clusterTLSFor(t, ca, ca, "n4")
	noCert.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
	if try("no certificate", noCert) {
		t.Fatal("a node presenting no certificate reached raft")
	}
	if try("plaintext", nil) {
		t.Fatal("a plaintext node reached raft")
	}
}
