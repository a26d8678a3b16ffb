// Package cluster keeps the partition table: which node hosts each
// partition (Table, today a single node hosts every partition), and the
// placement of replicated partitions (placement.go: Placement, the pure
// Plan from table, members and now to changes, and Apply). Membership
// (memberlist) and the meta raft group that drives Plan come next. It knows nothing of the domain: a partition is a number, a
// node a name.
//
// Concurrency: a Table is immutable; a new placement is a new Table.
package cluster
