// In-process clusters are not run under -race (see cluster_test.go).

//go:build !race

package node

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/testcert"
)

// Three nodes with cluster.tls and an encrypted gossip: they form the
// cluster, replicate and forward (raft and remote over mutual TLS).
func TestClusterOverMutualTLS(t *testing.T) {
	ca := testcert.NewCA(t, "cluster")
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgs := clusterConfigs(t, 3, 4)
	for i := range cfgs {
		cert, key := ca.Issue(t, cfgs[i].Node.Name)
		cfgs[i].Cluster.TLS = &TLSFiles{Cert: cert, Key: key, CA: ca.File}
		cfgs[i].Cluster.GossipKeyFile = keyFile
		if err := cfgs[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}
	nodes := startAll(t, cfgs)
	for _, n := range nodes {
		waitReady(t, n.Addr(), 20*time.Second)
	}
	for c := range 4 {
		for i, n := range nodes {
			code, out := postEvent(t, n.Addr(), fmt.Sprintf(`{"id":"e-%d","customer":"c-%d","text":"hi"}`, i, c))
			if code != 200 || out.Ack.Seq != uint64(i+1) {
				t.Fatalf("customer c-%d through node %d: %d %+v", c, i+1, code, out)
			}
		}
	}
	if err := nodes[0].ReloadTLS(); err != nil {
		t.Fatalf("reload of unchanged cluster certificates: %v", err)
	}
}
