package cluster

// A data dir remembers the cluster it belongs to (PROTOCOL section 8): its
// name, its partition count, the node's name, and the placement the node
// last knew. A node refuses to start on a data dir of another cluster or
// partition count, rather than mixing two clusters' data.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DataDirFile is the file in the data dir that holds its DataDirState.
const DataDirFile = "cluster.json"

// DataDirState is what a data dir remembers of its cluster.
type DataDirState struct {
	Cluster    string     `json:"cluster"`
	Partitions int        `json:"partitions"`
	Node       string     `json:"node"`
	Placement  *Placement `json:"placement,omitempty"`
	// Peers are the gossip addresses of the members last seen (at most
	// PeersMax): a restarted node rejoins through them even when its
	// config names none (the first node's).
	Peers []string `json:"peers,omitempty"`
}

// PeersMax bounds DataDirState.Peers.
const PeersMax = 64

// OpenDataDir reads dir's state, or records want's identity when the dir
// has none yet. A dir of another cluster, partition count or node is an
// error that says which and how to proceed.
func OpenDataDir(dir string, want DataDirState) (*DataDirState, error) {
	path := filepath.Join(dir, DataDirFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		st := &DataDirState{Cluster: want.Cluster, Partitions: want.Partitions, Node: want.Node}
		return st, SaveDataDir(dir, st)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	var st DataDirState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("cluster: %s is damaged: %w", path, err)
	}
	var errs []error
	if st.Cluster != want.Cluster {
		errs = append(errs, fmt.Errorf("cluster: data dir %s belongs to cluster %q, this node is configured for %q: use another data dir or cluster.name %q", dir, st.Cluster, want.Cluster, st.Cluster))
	}
	if st.Partitions != want.Partitions {
		errs = append(errs, fmt.Errorf("cluster: data dir %s has %d partitions, node.partitions says %d: the count is fixed when a cluster is created", dir, st.Partitions, want.Partitions))
	}
	if st.Node != want.Node {
		errs = append(errs, fmt.Errorf("cluster: data dir %s is node %q's, this node is %q: a node keeps its name with its data", dir, st.Node, want.Node))
	}
	if st.Placement != nil && len(st.Placement.Partitions) != st.Partitions {
		errs = append(errs, fmt.Errorf("cluster: %s: a placement of %d partitions for %d", path, len(st.Placement.Partitions), st.Partitions))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &st, nil
}

// SaveDataDir writes st to dir atomically (a temporary file renamed over
// the old one, both synced).
func SaveDataDir(dir string, st *DataDirState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, DataDirFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, DataDirFile))
	}
	if err == nil {
		var d *os.File
		if d, err = os.Open(dir); err == nil {
			err = errors.Join(d.Sync(), d.Close())
		}
	}
	if err != nil {
		return fmt.Errorf("cluster: save %s: %w", DataDirFile, err)
	}
	return nil
}
