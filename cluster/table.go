package cluster

import (
	"errors"
	"fmt"
)

// Table says which node hosts each partition. It is immutable.
type Table struct {
	version uint64
	owners  []string // node per partition
}

// Local is the table of a single node that hosts every partition.
func Local(node string, partitions int) (*Table, error) {
	if node == "" {
		return nil, errors.New("cluster: a node needs a name")
	}
	if partitions < 1 {
		return nil, fmt.Errorf("cluster: %d partitions", partitions)
	}
	owners := make([]string, partitions)
	for p := range owners {
		owners[p] = node
	}
	return &Table{version: 1, owners: owners}, nil
}

// Version increases with every placement change.
func (t *Table) Version() uint64 { return t.version }

// Partitions is the partition count.
func (t *Table) Partitions() int { return len(t.owners) }

// Owner is the node that hosts partition p.
func (t *Table) Owner(p int) string { return t.owners[p] }

// Hosted lists the partitions node hosts, in order.
func (t *Table) Hosted(node string) []int {
	var out []int
	for p, o := range t.owners {
		if o == node {
			out = append(out, p)
		}
	}
	return out
}
