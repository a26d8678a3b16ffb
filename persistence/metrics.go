package persistence

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Pebble engine's Prometheus metrics. They exist (and count)
// without a Registerer; Options.Registerer only exposes them.
type metrics struct {
	batchEvents     prometheus.Histogram
	syncSeconds     prometheus.Histogram
	queueSeconds    prometheus.Histogram
	commits         prometheus.Counter
	writeStalls     prometheus.Counter
	writeStallSecs  prometheus.Counter
	seqReads        prometheus.Counter
	idLookupSeconds prometheus.Histogram
	registeredOnto  prometheus.Registerer
	registeredColls []prometheus.Collector
}

func newMetrics() *metrics {
	return &metrics{
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "throughline_store_batch_events",
			Help:    "Events per committed (synced) batch of the store writer.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13), // 1 .. 4096
		}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "throughline_store_sync_seconds",
			Help:    "Latency of one commit of the store writer, WAL sync included.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50 µs .. 1.6 s
		}),
		queueSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "throughline_store_queue_seconds",
			Help: "Time an append waited in the store writer's queue before joining a commit " +
				"(the writer applying a group, or its groups in flight all waiting for their sync).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50 µs .. 1.6 s
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "throughline_store_commits_total",
			Help: "Synced batches committed by the store writer.",
		}),
		writeStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "throughline_store_write_stalls_total",
			Help: "Pebble write stalls begun.",
		}),
		writeStallSecs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "throughline_store_write_stall_seconds_total",
			Help: "Seconds Pebble spent in write stalls that have ended.",
		}),
		seqReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "throughline_store_seq_reads_total",
			Help: "Customers' last stored seqs the store writer (or a replicated partition's state machine) read from Pebble " +
				"because it did not remember them: once per customer it has not seen, more when more customers are active than it remembers.",
		}),
		// The look-ups a customer's memory could not answer: an id its
		// Bloom filters may hold (a false positive, mostly), a retry of an
		// id that left them, and the first event of a customer with no
		// events (was its id erased: customer.lookupErased). Their
		// count against the events ingested is the filters' cost in
		// store reads, and their time what each costs (docs/benchmarking.md,
		// stop 51).
		idLookupSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "throughline_store_id_lookup_seconds",
			Help: "Time of one look-up of an event id in the store (its dedup key, the dedup blocks that may hold it, " +
				"its tombstone): ids a customer's in-memory idempotency window could not rule out, and the first event of a customer with no events.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 2, 16), // 10 µs .. 330 ms
		}),
	}
}

// register exposes the metrics on r, with lsm (Pebble's LSM shape, read at
// each scrape).
func (m *metrics) register(r prometheus.Registerer, lsm lsmCollector) error {
	if r == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.batchEvents, m.syncSeconds, m.queueSeconds, m.commits, m.writeStalls, m.writeStallSecs, m.seqReads, m.idLookupSeconds, lsm} {
		if err := r.Register(c); err != nil {
			m.unregister()
			return fmt.Errorf("persistence: register metrics: %w", err)
		}
		m.registeredOnto = r
		m.registeredColls = append(m.registeredColls, c)
	}
	return nil
}

// unregister removes what register added, so a closed engine's metrics can
// be registered again by the next Open.
func (m *metrics) unregister() {
	for _, c := range m.registeredColls {
		m.registeredOnto.Unregister(c)
	}
	m.registeredColls = nil
}

func (m *metrics) commit(events int, took time.Duration) {
	m.commits.Inc()
	m.batchEvents.Observe(float64(events))
	m.syncSeconds.Observe(took.Seconds())
}

// eventListener counts write stalls and sends Pebble's troubles to the log.
func eventListener(log *slog.Logger, m *metrics, c *counters, diskFailed func(error)) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			log.Error("pebble background error", "err", err)
			if isDiskError(err) {
				// A flush or compaction that cannot write: fatal, as a
				// failed commit is (the WAL holds what was acknowledged).
				diskFailed(err)
			}
		},
		FlushBegin: func(pebble.FlushInfo) { c.flushes.Add(1) },
		FlushEnd:   func(pebble.FlushInfo) { c.flushes.Add(-1) },
		DiskSlow: func(info pebble.DiskSlowInfo) {
			log.Warn("pebble disk slow", "op", info.OpType.String(), "duration", info.Duration)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			c.stalls.Add(1)
			c.stallBegin.Store(time.Now().UnixNano())
			m.writeStalls.Inc()
			log.Warn("pebble write stall begin", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			began := c.stallBegin.Swap(0)
			if began == 0 {
				return
			}
			took := time.Duration(time.Now().UnixNano() - began)
			c.stallNanos.Add(int64(took))
			m.writeStallSecs.Add(took.Seconds())
			log.Warn("pebble write stall end", "duration", took)
		},
	}
}

// lsmCollector reads Pebble's LSM shape at each scrape: compaction debt
// and work, flushed and WAL bytes, L0 sublevels and read amplification.
// Under sustained load these say whether the store is falling behind (the
// debt grows) and how much of the node's CPU and disk compactions take,
// beside the ack latency. read gives nil once the engine has closed.
type lsmCollector struct {
	read func() *pebble.Metrics
}

var (
	lsmDebt        = prometheus.NewDesc("throughline_store_compaction_debt_bytes", "Pebble's estimate of the bytes compactions must rewrite to bring the LSM back into shape.", nil, nil)
	lsmRunning     = prometheus.NewDesc("throughline_store_compactions_running", "Pebble compactions in progress.", nil, nil)
	lsmCompactSecs = prometheus.NewDesc("throughline_store_compaction_seconds_total", "Seconds Pebble spent in compactions since the store opened (concurrent ones add up).", nil, nil)
	lsmCompacted   = prometheus.NewDesc("throughline_store_compacted_bytes_total", "Bytes of sstables and blob files written by Pebble's compactions since the store opened (blob file rewrites are not counted: throughline_store_blob_rewrites_total counts them).", nil, nil)
	lsmFlushed     = prometheus.NewDesc("throughline_store_flushed_bytes_total", "Bytes of sstables and blob files written by Pebble's memtable flushes since the store opened.", nil, nil)
	lsmWAL         = prometheus.NewDesc("throughline_store_wal_bytes_total", "Bytes written to Pebble's write-ahead log since the store opened.", nil, nil)
	lsmL0          = prometheus.NewDesc("throughline_store_l0_sublevels", "Pebble's L0 sublevels: every read may look in each.", nil, nil)
	lsmReadAmp     = prometheus.NewDesc("throughline_store_read_amplification", "Pebble's read amplification: L0 sublevels plus the non-empty levels below.", nil, nil)
	blobRewrites   = prometheus.NewDesc("throughline_store_blob_rewrites_total", "Blob files Pebble rewrote to reclaim the space of values no key references (overwritten or deleted), since the store opened.", nil, nil)
	blobValues     = prometheus.NewDesc("throughline_store_blob_value_bytes", "Bytes of values (uncompressed) in the store's live blob files, garbage included.", nil, nil)
	blobReferenced = prometheus.NewDesc("throughline_store_blob_referenced_bytes", "Bytes of values (uncompressed) in the store's live blob files that a key still references: the rest of throughline_store_blob_value_bytes is garbage.", nil, nil)
)

func (c lsmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{lsmDebt, lsmRunning, lsmCompactSecs, lsmCompacted, lsmFlushed, lsmWAL, lsmL0, lsmReadAmp, blobRewrites, blobValues, blobReferenced} {
		ch <- d
	}
}

func (c lsmCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.read()
	if m == nil {
		return
	}
	var compacted uint64
	for i := range m.Levels {
		compacted += m.Levels[i].TableBytesCompacted + m.Levels[i].BlobBytesCompacted
	}
	ch <- prometheus.MustNewConstMetric(lsmDebt, prometheus.GaugeValue, float64(m.Compact.EstimatedDebt))
	ch <- prometheus.MustNewConstMetric(lsmRunning, prometheus.GaugeValue, float64(m.Compact.NumInProgress))
	ch <- prometheus.MustNewConstMetric(lsmCompactSecs, prometheus.CounterValue, m.Compact.Duration.Seconds())
	ch <- prometheus.MustNewConstMetric(lsmCompacted, prometheus.CounterValue, float64(compacted))
	// Flushes write L0 only. (Metrics.Total's TableBytesFlushed adds the
	// WAL's bytes: not used, so that each figure is one thing.)
	ch <- prometheus.MustNewConstMetric(lsmFlushed, prometheus.CounterValue, float64(m.Levels[0].TableBytesFlushed+m.Levels[0].BlobBytesFlushed))
	ch <- prometheus.MustNewConstMetric(lsmWAL, prometheus.CounterValue, float64(m.WAL.BytesWritten))
	ch <- prometheus.MustNewConstMetric(lsmL0, prometheus.GaugeValue, float64(m.Levels[0].Sublevels))
	ch <- prometheus.MustNewConstMetric(lsmReadAmp, prometheus.GaugeValue, float64(m.ReadAmp()))
	ch <- prometheus.MustNewConstMetric(blobRewrites, prometheus.CounterValue, float64(m.Compact.BlobFileRewriteCount))
	ch <- prometheus.MustNewConstMetric(blobValues, prometheus.GaugeValue, float64(m.BlobFiles.ValueSize))
	ch <- prometheus.MustNewConstMetric(blobReferenced, prometheus.GaugeValue, float64(m.BlobFiles.ReferencedValueSize))
}
