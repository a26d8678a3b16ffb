package actors

// ClusterView is the cluster as this node sees it (PROTOCOL section 8, GET
// /v1/cluster): its members and, per partition, its leader and replicas.
type ClusterView struct {
	Node       string             `json:"node"`
	Nodes      []ClusterNode      `json:"nodes"`
	Partitions []ClusterPartition `json:"partitions"`
}

// ClusterNode is one member.
type ClusterNode struct {
	Name  string `json:"name"`
	HTTP  string `json:"http"`
	State string `json:"state"` // alive, suspect, dead
}

// ClusterPartition is one partition's placement.
type ClusterPartition struct {
	ID       int      `json:"id"`
	Leader   string   `json:"leader"`
	Replicas []string `json:"replicas"`
}

// Cluster is the cluster view; httpAddr is this node's HTTP address. A
// node without a cluster is a cluster of one that leads every partition.
func (r *Runtime) Cluster(httpAddr string) ClusterView {
	if r.cfg.Cluster != nil {
		return r.cfg.Cluster.View()
	}
	t := r.cfg.Table
	v := ClusterView{Node: r.cfg.Node, Nodes: []ClusterNode{{Name: r.cfg.Node, HTTP: httpAddr, State: "alive"}}}
	for p := range t.Partitions() {
		owner := t.Owner(p)
		v.Partitions = append(v.Partitions, ClusterPartition{ID: p, Leader: owner, Replicas: []string{owner}})
	}
	return v
}
