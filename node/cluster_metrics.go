package node

// Metrics of the cluster (PROTOCOL 8, issue 8): per partition this node
// replicates, whether it leads, its commit index, apply lag, proposals and
// elections; per node, the members by state.

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/throughline/throughline/cluster"
)

type clusterCollector struct {
	cn                                                  *clusterNode
	leader, commit, applyLag, proposals, elections, mem *prometheus.Desc
}

func newClusterCollector(cn *clusterNode) *clusterCollector {
	p := []string{"partition"}
	return &clusterCollector{cn: cn,
		leader:    prometheus.NewDesc("throughline_partition_leader", "1 when this node leads the partition's raft group and has applied its earlier terms.", p, nil),
		commit:    prometheus.NewDesc("throughline_partition_commit_index", "The highest raft index this replica knows committed.", p, nil),
		applyLag:  prometheus.NewDesc("throughline_partition_apply_lag", "Committed raft entries whose effects are not yet in this replica's Pebble.", p, nil),
		proposals: prometheus.NewDesc("throughline_partition_proposals_total", "Raft entries this replica proposed as leader.", p, nil),
		elections: prometheus.NewDesc("throughline_partition_elections_total", "Times this replica became the partition's leader.", p, nil),
		mem:       prometheus.NewDesc("throughline_cluster_members", "Members of the cluster by state, as this node sees them.", []string{"state"}, nil),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.leader, c.commit, c.applyLag, c.proposals, c.elections, c.mem} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	for p := range c.cn.cfg.Node.Partitions {
		if c.cn.repl == nil || !c.cn.repl.Replicates(p) {
			continue
		}
		st := c.cn.repl.ReplicaStats(p)
		label := strconv.Itoa(p)
		lead := 0.0
		if st.Ready {
			lead = 1
		}
		lag := 0.0
		if st.CommitIndex > st.StoredIndex {
			lag = float64(st.CommitIndex - st.StoredIndex)
		}
		ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, lead, label)
		ch <- prometheus.MustNewConstMetric(c.commit, prometheus.GaugeValue, float64(st.CommitIndex), label)
		ch <- prometheus.MustNewConstMetric(c.applyLag, prometheus.GaugeValue, lag, label)
		ch <- prometheus.MustNewConstMetric(c.proposals, prometheus.CounterValue, float64(st.Proposals), label)
		ch <- prometheus.MustNewConstMetric(c.elections, prometheus.CounterValue, float64(st.Elections), label)
	}
	count := map[cluster.MemberState]int{}
	for _, m := range c.cn.members.Members() {
		count[m.State]++
	}
	for _, s := range []cluster.MemberState{cluster.Alive, cluster.Suspect, cluster.Dead, cluster.Left} {
		ch <- prometheus.MustNewConstMetric(c.mem, prometheus.GaugeValue, float64(count[s]), s.String())
	}
}
