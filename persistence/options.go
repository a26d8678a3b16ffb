package persistence

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure Open. The zero value is valid: every field says its
// default, which EnsureDefaults fills in.
type Options struct {
	// Partitions is the partition count. It is written at the first open of a
	// directory and checked at every later open: another count fails with
	// ErrPartitionCount. At most PartitionsMax.
	//
	// The default value is DefaultPartitions (64).
	Partitions int

	// FS is the file system. Tests use vfs.NewMem and errorfs.
	//
	// The default value is vfs.Default.
	FS vfs.FS

	// Logger receives the store's and Pebble's logs (group "store").
	//
	// The default value is slog.Default().
	Logger *slog.Logger

	// Registerer, when set, registers the throughline_store_* metrics (see
	// metrics.go). Registering two engines on one Registerer fails Open.
	//
	// The default value is nil: no registration (Stats still counts).
	Registerer prometheus.Registerer

	// QueueLength bounds the requests (appends, identity claims, erasures)
	// waiting for the writer. When the queue is full, Append blocks its caller
	// until there is room or its ctx is done (the append then fails with the
	// ctx's error); admission upstream keeps it from filling. Besides the
	// queue, the writer holds the groups applied and not yet synced (at
	// most 16, each of at most BatchAppendsMax requests and about
	// BatchBytesMax bytes) and one request
	// waiting for room among them.
	//
	// The default value is 8192.
	QueueLength int

	// BatchAppendsMax caps the requests in one group commit.
	//
	// The default value is 4096.
	BatchAppendsMax int

	// BatchBytesMax caps the approximate bytes of one group commit; a single
	// larger request still commits, alone. Keep it well under half of
	// MemTableSize, Pebble's large-batch threshold.
	//
	// The default value is 8 MiB.
	BatchBytesMax int

	// MemTableSize is Pebble's memtable size. A large memtable absorbs the
	// append stream between flushes, so fewer, larger L0 files are written.
	//
	// The default value is 64 MiB.
	MemTableSize uint64

	// CacheSize is Pebble's block cache: activation reads a customer's recent
	// events, which are hot.
	//
	// The default value is 256 MiB.
	CacheSize int64

	// LastSeqsMax bounds the customers whose last stored seq the node's
	// writer remembers (about 50 bytes each), to check an append's
	// expected seq without reading Pebble. Past it the memory is cleared,
	// and each customer's next append reads its last seq from Pebble on
	// the writer's one goroutine: give it room for every customer that is
	// active at once, or appends queue behind those reads (with 2^18 and
	// 300,000 customers resident, `bench memory` took 85 s to ingest
	// instead of 55 s; docs/benchmarking.md, stop 37). The writer also remembers
	// up to 2x as many segment keys it wrote (at least 2^20). A
	// replicated partition's state machine remembers 4 x LastSeqsMax /
	// Partitions customers, at least lastSeqsPartitionMin and at most
	// LastSeqsMaxMax: a node applies the entries of every partition it
	// holds a replica of, led here or not, and customers hash unevenly.
	// LastSeqsMax itself is at most LastSeqsMaxMax.
	//
	// The default value is 2^20 (1,048,576). A node sets it from its
	// resident customers (node.max_resident_customers).
	LastSeqsMax int

	// FailSyncAfter is a test hook for the binary's fault-injection test: when
	// > 0, the FS is wrapped with errorfs so that after that many successful
	// WAL syncs (counting every sync Pebble issues on a *.log file, the first
	// open's partition-count write included) every WAL sync fails. The first
	// commit that fails latches the engine failed.
	//
	// The default value is 0: off. Never set it in production.
	FailSyncAfter int

	// DiskFullAfter is a test hook like FailSyncAfter: when > 0, after that
	// many successful WAL writes every write to a WAL or an sstable fails
	// with ENOSPC, as on a full disk.
	//
	// The default value is 0: off. Never set it in production.
	DiskFullAfter int
}

// Defaults of Options.
const (
	defaultBatchAppendsMax = 4096
	defaultBatchBytesMax   = 8 << 20
	defaultMemTableSize    = 64 << 20
	defaultCacheSize       = 256 << 20
	defaultLastSeqsMax     = 1 << 20
	// LastSeqsMaxMax bounds Options.LastSeqsMax (~850 MB of memory).
	LastSeqsMaxMax = 1 << 24
	// lastSeqsPartitionMin is the least a partition's state machine
	// remembers (~3 MB at most).
	lastSeqsPartitionMin = 1 << 16
)

// EnsureDefaults fills in every zero field with its default.
func (o *Options) EnsureDefaults() {
	if o.Partitions == 0 {
		o.Partitions = DefaultPartitions
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.QueueLength == 0 {
		o.QueueLength = defaultQueueLength
	}
	if o.BatchAppendsMax == 0 {
		o.BatchAppendsMax = defaultBatchAppendsMax
	}
	if o.BatchBytesMax == 0 {
		o.BatchBytesMax = defaultBatchBytesMax
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = defaultMemTableSize
	}
	if o.CacheSize == 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.LastSeqsMax == 0 {
		o.LastSeqsMax = defaultLastSeqsMax
	}
}

// Validate reports every problem of o (after EnsureDefaults) in one error.
func (o *Options) Validate() error {
	var errs []error
	if o.Partitions < 1 || o.Partitions > PartitionsMax {
		errs = append(errs, fmt.Errorf("partitions %d not in [1, %d]", o.Partitions, PartitionsMax))
	}
	if o.QueueLength < 1 {
		errs = append(errs, fmt.Errorf("queue length %d < 1", o.QueueLength))
	}
	if o.BatchAppendsMax < 1 {
		errs = append(errs, fmt.Errorf("batch appends max %d < 1", o.BatchAppendsMax))
	}
	if o.BatchBytesMax < 1 {
		errs = append(errs, fmt.Errorf("batch bytes max %d < 1", o.BatchBytesMax))
	}
	if o.MemTableSize < 1<<20 {
		errs = append(errs, fmt.Errorf("memtable size %d < 1 MiB", o.MemTableSize))
	} else if uint64(o.BatchBytesMax) >= o.MemTableSize/2 {
		errs = append(errs, fmt.Errorf("batch bytes max %d not under half the memtable size %d", o.BatchBytesMax, o.MemTableSize))
	}
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("cache size %d < 0", o.CacheSize))
	}
	if o.LastSeqsMax < 1 || o.LastSeqsMax > LastSeqsMaxMax {
		errs = append(errs, fmt.Errorf("last seqs max %d not in [1, %d]", o.LastSeqsMax, LastSeqsMaxMax))
	}
	if o.DiskFullAfter < 0 {
		errs = append(errs, fmt.Errorf("disk full after %d < 0", o.DiskFullAfter))
	}
	if o.FailSyncAfter < 0 {
		errs = append(errs, fmt.Errorf("fail sync after %d < 0", o.FailSyncAfter))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("persistence: options: %w", err)
	}
	return nil
}

// Pebble tuning for an append-heavy, synced log read by customer prefix. On
// the 2-core machines of DESIGN ("Measured on these machines"), sustained
// synced load stalled Pebble for 0.3-1.3 s with its defaults.
const (
	// Bloom filters on every level (Pebble's default has none on L0, where
	// fresh events land): point reads (dedup look-ups, identities,
	// snapshots) skip the tables that lack the key. 10 bits per key: ~1%
	// false positives.
	bloomBitsPerKey = 10
	// Pebble scores L0 at twice its sublevels over this threshold, so at 32
	// an L0->Lbase compaction starts at 16 sublevels (Pebble's default, 4:
	// at 2): each one takes more of the append stream at once, so fewer,
	// larger compactions (less write amplification) keep up with a steady
	// log. The keys are customer-major, so each one rewrites all of Lbase's
	// keys whatever L0 brings. Point reads pay with more L0 files to check
	// (their Bloom filters skip most). docs/benchmarking.md, stop 39: 16 against 8 (8
	// sublevels against 4): bench ingest 90.6k against 88.2k acked events/s
	// at 1,000 customers, 79.9k against 75.9k at 100,000 (60 s runs); 32
	// against 16: 97.5k and 97.3k against 92.1k and 91.3k, and over 10
	// minutes at 30k/s 112 s of compaction CPU against 163, ack p99 14.3
	// against 15.0 ms, at 10k/s after it p99 4.16 against 4.50 ms.
	l0CompactionThreshold = 32
	// Stop writes only at 256 L0 sublevels instead of 12: a stall blocks every
	// customer's acks at once, and admission upstream slows producers long
	// before; reads pay for the extra sublevels, and bloom filters cut that.
	l0StopWritesThreshold = 256
	// Four memtables may queue for flushing (default 2) before writes stop,
	// riding out a slow flush.
	memTableStopWritesThreshold = 4
	// Lbase sized to the larger memtable (default 64 MiB), so flushed data
	// is not rewritten by an Lbase that is always over its size.
	lBaseMaxBytes = 256 << 20
	// Compactions: one at a time normally, two when Pebble sees L0 or
	// compaction debt growing. On two cores a second concurrent compaction
	// takes the core the request path needs: under the ingest bench, the Go
	// scheduler's latency reached 10-100 ms while both cores were busy.
	compactionsLower, compactionsUpper = 1, 2
	// At least 500 µs between WAL syncs: a commit that comes sooner after
	// the last sync waits for the rest of it and shares the next one. At
	// 10,000 events/s open loop, back-to-back syncs of one or two events
	// each took CPU from the request path; with the floor, bench ingest
	// --rate 10000 gave ack p99 7.1-8.6 ms (median 7.6, 6 runs) against
	// 10.7-11.7 ms (median 11.0) without it, p50 2.2 against 1.5 ms. At
	// full load the syncs are further apart anyway: throughput unchanged.
	walMinSyncInterval = 500 * time.Microsecond
	// While elastic work runs (a broadcast: Engine.Elastic), 1 ms between
	// syncs. A broadcast at 10,000 targets/s with 5,000 live events/s made
	// ~2,300 commits a second, and the syncs and their wake-ups were a tenth
	// of the node's CPU (docs/benchmarking.md, stop 29). 2 ms took the server's CPU per
	// target from ~105 to ~80 µs then, but every live event waited for it:
	// once the rest of a target's cost came down (~35 µs), bench broadcast's
	// live ack p50 during the broadcast was 3.8 ms with 2 ms against 2.85
	// with 1 ms (2.2 before it), the p99 9.1 against 8.2 ms, for 0.79
	// against 0.87 server cores (ten interleaved runs each, docs/benchmarking.md, stop
	// 36); 0.5 ms cost 0.3 more cores for no lower p99.
	walMinSyncIntervalElastic = 1 * time.Millisecond
	// Value separation (Pebble's blob files, WiscKey's idea): a value of
	// at least valueSeparationMin bytes (an event's; not the small values
	// of dedup, identity and segment keys) is written to a blob file when
	// its memtable is flushed, and compactions then move its key and a
	// handle, not the value. The keys are customer-major, so every flush
	// overlaps all of Lbase and each L0->Lbase compaction rewrote it,
	// values and all: under bench ingest at 30,000 events/s, by the third
	// minute compactions wrote 3.0-3.1 GB (3.2x what flushes wrote) and
	// took 49-62 s of CPU; with the values apart, 1.6 GB and 26-30 s
	// (docs/benchmarking.md, stop 28). An sstable may reference blobReferenceDepthMax
	// overlapping blob files before a compaction copies its values into a
	// new one (at 10, many did: 2.5 GB, 41 s). Blob files older than
	// blobRewriteAge are rewritten once blobGarbageRatio of the blob values
	// are garbage (deleted, or overwritten: customers' snapshots); until
	// then they hold the space: after 10 minutes at 30k/s the store took
	// 4.1 GB against 3.1 GB with values inline.
	valueSeparationMin    = 128
	blobReferenceDepthMax = 40
	blobRewriteAge        = 5 * time.Minute
	blobGarbageRatio      = 0.2
)

// storeFS is the file system Pebble is given: o.FS with the test hooks'
// fault injection, if set, and sstable I/O that yields the CPU (yieldfs.go).
func (o *Options) storeFS() vfs.FS {
	fs := o.FS
	if o.FailSyncAfter > 0 {
		fs = failSyncAfter(fs, o.FailSyncAfter)
	}
	if o.DiskFullAfter > 0 {
		fs = diskFullAfter(fs, o.DiskFullAfter)
	}
	return yieldingFS{fs}
}

// pebbleOptions are Pebble's options for fs (o.storeFS()).
func (o *Options) pebbleOptions(fs vfs.FS, syncInterval func() time.Duration, logger pebble.Logger, listener *pebble.EventListener) *pebble.Options {
	po := &pebble.Options{
		FS:                          fs,
		Logger:                      logger,
		EventListener:               listener,
		CacheSize:                   o.CacheSize,
		MemTableSize:                o.MemTableSize,
		MemTableStopWritesThreshold: memTableStopWritesThreshold,
		L0CompactionThreshold:       l0CompactionThreshold,
		L0StopWritesThreshold:       l0StopWritesThreshold,
		LBaseMaxBytes:               lBaseMaxBytes,
		CompactionConcurrencyRange:  func() (int, int) { return compactionsLower, compactionsUpper },
		FormatMajorVersion:          pebble.FormatNewest,
		WALMinSyncInterval:          syncInterval,
	}
	po.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           valueSeparationMin,
			MaxBlobReferenceDepth: blobReferenceDepthMax,
			RewriteMinimumAge:     blobRewriteAge,
			TargetGarbageRatio:    blobGarbageRatio,
		}
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
	}
	// MinLZ (Pebble's "fastest" profile on amd64) instead of its default,
	// Snappy: the blob files a flush writes hold every event's value, and
	// compressing them with Snappy was ~2% of the server's CPU under bench
	// ingest. Blocks name their compression, so a store written with
	// Snappy reads as before.
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	po.EnsureDefaults()
	// Disk-health checks on every FS (Pebble adds them only when it picks
	// the FS itself): an operation stuck over 5 s is reported as DiskSlow.
	po.WithFSDefaults()
	return po
}
