package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestDataDirRemembersItsCluster(t *testing.T) {
	dir := t.TempDir()
	want := DataDirState{Cluster: "c1", Partitions: 8, Node: "n1"}
	st, err := OpenDataDir(dir, want)
	if err != nil || st.Cluster != "c1" || st.Placement != nil {
		t.Fatalf("first open: %+v, %v", st, err)
	}
	pl, err := NewPlacement(8).Apply(Plan(NewPlacement(8), []Member{{Name: "n1"}, {Name: "n2"}}, time.Now(), PlacementConfig{Replicas: 2, BootstrapExpect: 2}))
	if err != nil {
		t.Fatal(err)
	}
	st.Placement = pl
	if err := SaveDataDir(dir, st); err != nil {
		t.Fatal(err)
	}
	again, err := OpenDataDir(dir, want)
	if err != nil || again.Placement == nil || len(again.Placement.Partitions) != 8 || again.Placement.Partitions[3].Leader != pl.Partitions[3].Leader {
		t.Fatalf("reopen: %+v, %v", again, err)
	}
	for _, c := range []struct {
		want DataDirState
		says string
	}{
		{DataDirState{Cluster: "c2", Partitions: 8, Node: "n1"}, `belongs to cluster "c1"`},
		{DataDirState{Cluster: "c1", Partitions: 16, Node: "n1"}, "has 8 partitions"},
		{DataDirState{Cluster: "c1", Partitions: 8, Node: "n2"}, `is node "n1"'s`},
	} {
		if _, err := OpenDataDir(dir, c.want); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("open as %+v: %v, want an error saying %q", c.want, err, c.says)
		}
	}
}
