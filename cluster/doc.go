// Package cluster keeps the partition table: which node hosts each
// partition. Membership (memberlist) and moving partitions between nodes
// come later; today a single node is a cluster of one that hosts every
// partition. It knows nothing of the domain: a partition is a number, a
// node a name.
//
// Concurrency: a Table is immutable; a new placement is a new Table.
package cluster
