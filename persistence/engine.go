package persistence

// Engine is one node's storage: a Store per partition, sharing one writer.
// Pebble (Open) and memory (NewMemory) implement it.
type Engine interface {
	// Partitions is the partition count, fixed at first open.
	Partitions() int
	// Store returns partition p's store, 0 <= p < Partitions().
	Store(p int) Store
	// Failed is closed when a commit has failed: the engine is latched
	// failed, every pending and later append fails with ErrUnavailable, and
	// the process must exit (DESIGN "The customer actor").
	Failed() <-chan struct{}
	// Err is the error that latched the engine failed, or nil.
	Err() error
	// Close flushes and closes. Safe to call twice.
	Close() error
	// Stats are the writer's counters since open (the numbers behind the
	// throughline_store_* metrics), for bench and tests.
	Stats() Stats
	// Flushing reports whether a memtable flush is running: a flush takes
	// most of a core for a while (a 64 MiB memtable, ~0.4 s on the bench
	// machine), so elastic work (a broadcast) holds back meanwhile.
	Flushing() bool
	// Elastic counts the elastic work running on the node (a broadcast's
	// runner adds 1 when it starts and -1 when it ends). While any runs,
	// WAL syncs are further apart: each sync costs CPU that the live path
	// then lacks, and more events share one.
	Elastic(delta int)
}
