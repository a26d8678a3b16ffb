package gateway

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/throughline/throughline/actors"
)

// A node without a cluster is a cluster of one: alive, leading every
// partition; the view is for supervisors.
func TestClusterOfOne(t *testing.T) {
	addr := startServer(t)
	get := func(token string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := get("gw"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("channel token: %d", resp.StatusCode)
	}
	resp := get("sup")
	defer resp.Body.Close()
	var v actors.ClusterView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if v.Node != "n1" || len(v.Nodes) != 1 || v.Nodes[0].State != "alive" || v.Nodes[0].HTTP != addr || len(v.Partitions) != 8 {
		t.Fatalf("view %+v", v)
	}
	for _, p := range v.Partitions {
		if p.Leader != "n1" || len(p.Replicas) != 1 {
			t.Errorf("partition %+v", p)
		}
	}
}
