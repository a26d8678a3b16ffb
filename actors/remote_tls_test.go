package actors

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"github.com/throughline/throughline/internal/testcert"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// With RemoteTLS, the remote port answers only peers presenting a
// certificate its config accepts: a peer with one reaches protoactor's
// endpoint (connect request answered), a peer without one does not.
func TestRemoteRefusesPeerWithoutClientCertificate(t *testing.T) {
	ca := testcert.NewCA(t, "cluster")
	serverCert := issue(t, ca, "n1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	startTest(t, Config{Remote: addr, RemoteTLS: &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{serverCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(), RootCAs: ca.Pool(),
	}})

	connect := func(client *tls.Config) error {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(client)))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		stream, err := remote.NewRemotingClient(conn).Receive(ctx)
		if err != nil {
			return err
		}
		err = stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{ConnectRequest: &remote.ConnectRequest{
			ConnectionType: &remote.ConnectRequest_ServerConnection{ServerConnection: &remote.ServerConnection{SystemId: "test", Address: "127.0.0.1:1"}},
		}}})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	member := &tls.Config{RootCAs: ca.Pool(), ServerName: "n1", Certificates: []tls.Certificate{issue(t, ca, "n2")}}
	if err := connect(member); err != nil {
		t.Fatalf("a peer with the cluster's certificate: %v", err)
	}
	stranger := testcert.NewCA(t, "other")
	for name, c := range map[string]*tls.Config{
		"no certificate": {RootCAs: ca.Pool(), ServerName: "n1"},
		"another CA's":   {RootCAs: ca.Pool(), ServerName: "n1", Certificates: []tls.Certificate{issue(t, stranger, "n3")}},
	} {
		if err := connect(c); err == nil {
			t.Errorf("a peer with %s certificate reached the remote", name)
		}
	}
}

func issue(t *testing.T, ca *testcert.CA, name string) tls.Certificate {
	cert, key := ca.Issue(t, name)
	return testcert.KeyPair(t, cert, key)
}
