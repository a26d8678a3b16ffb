package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// Limits of a memory run.
const (
	// MemoryCustomersMax bounds each of MemoryConfig.Customers.
	MemoryCustomersMax = 10_000_000
	// MemoryEventsMax bounds MemoryConfig.Events.
	MemoryEventsMax = 1000
	// MemoryInFlightMax bounds MemoryConfig.InFlight.
	MemoryInFlightMax = 65_536
	// memoryIdleTimeout keeps every customer resident for the run.
	memoryIdleTimeout = 24 * time.Hour
	// The warm-up before the heap is first read: memoryWarmEvents events
	// for each of memoryWarmCustomers customers of its own.
	memoryWarmCustomers = 16
	memoryWarmEvents    = 256
)

// MemoryConfig is one `throughline bench memory` run: how much live heap a
// resident customer costs. For each count N of Customers it starts the
// customer runtime in this process (actors over a fresh Pebble store under
// DataDir, no gateway, no bench client in the way), warms the store with
// the same load on 16 customers of its own, forces a GC and reads the live
// heap, ingests Events events for each of N customers (nobody is
// passivated: the idle timeout is a day), forces a GC again and reports
// (after - before) / N. Start from DefaultMemory; cmd/ binds flags.
type MemoryConfig struct {
	// Customers are the counts measured, each in a fresh runtime and
	// store. Default [1000, 100000]; the documented set adds 1000000
	// (~11 GB of live heap at ~11 KB per customer: a large machine).
	// Each 1..MemoryCustomersMax.
	Customers []int
	// Events is the events ingested per customer. Default 20;
	// 1..MemoryEventsMax.
	Events int
	// EventBytes is the approximate text size of an event. Default 200;
	// 1..EventBytesMax.
	EventBytes int
	// InFlight bounds the events handed to the runtime and not answered
	// yet, as a gateway's windows would. Default 1024; 1..MemoryInFlightMax.
	InFlight int
	// DataDir is where the store's temporary directory goes. Default "":
	// os.TempDir().
	DataDir string
}

// DefaultMemory returns the default MemoryConfig.
func DefaultMemory() MemoryConfig {
	return MemoryConfig{Customers: []int{1000, 100_000}, Events: 20, EventBytes: 200, InFlight: 1024}
}

// Validate reports every problem of the config in one error.
func (c *MemoryConfig) Validate() error {
	var problems []error
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("bench memory: "+format, args...))
	}
	if len(c.Customers) == 0 {
		bad("customers: at least one count")
	}
	for _, n := range c.Customers {
		if n < 1 || n > MemoryCustomersMax {
			bad("customers %d: must be 1..%d", n, MemoryCustomersMax)
		}
	}
	if c.Events < 1 || c.Events > MemoryEventsMax {
		bad("events %d: must be 1..%d", c.Events, MemoryEventsMax)
	}
	if c.EventBytes < 1 || c.EventBytes > EventBytesMax {
		bad("event bytes %d: must be 1..%d", c.EventBytes, EventBytesMax)
	}
	if c.InFlight < 1 || c.InFlight > MemoryInFlightMax {
		bad("in flight %d: must be 1..%d", c.InFlight, MemoryInFlightMax)
	}
	return errors.Join(problems...)
}

// MemoryReport is the outcome of a memory run.
type MemoryReport struct {
	Events     int         `json:"events_per_customer"`
	EventBytes int         `json:"event_bytes"`
	Rows       []MemoryRow `json:"rows"`
	Warnings   []string    `json:"warnings,omitempty"`
}

// MemoryRow is one count of resident customers.
type MemoryRow struct {
	Customers      int     `json:"customers"`
	IngestSeconds  float64 `json:"ingest_seconds"`
	Acked          int64   `json:"acked"`
	Rejected       int64   `json:"rejected"`
	Resident       int64   `json:"resident"`               // customers in memory at the end: Customers, unless evicted
	Evictions      int64   `json:"evictions"`              // customers passivated early (the resident cap, the memory budget)
	HeapBefore     uint64  `json:"live_heap_before_bytes"` // after a forced GC, the runtime started
	HeapAfter      uint64  `json:"live_heap_after_bytes"`  // after a forced GC, every customer resident
	BytesPerCust   float64 `json:"live_heap_bytes_per_customer"`
	RSSBefore      uint64  `json:"rss_before_bytes,omitempty"` // the process, Pebble's memtables and cache included
	RSSAfter       uint64  `json:"rss_after_bytes,omitempty"`
	RSSPerCustomer float64 `json:"rss_bytes_per_customer,omitempty"`
	// ObjectsPerCust and ScanPerCust are the heap objects and the
	// scannable heap bytes (the parts that may hold pointers) per
	// customer: what a collection's mark phase walks.
	ObjectsPerCust float64 `json:"heap_objects_per_customer"`
	ScanPerCust    float64 `json:"scannable_heap_bytes_per_customer"`
}

// RunMemory measures each count of customers in turn.
func RunMemory(ctx context.Context, cfg MemoryConfig) (*MemoryReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dataDir := cfg.DataDir
	if dataDir == "" {
		dataDir = os.TempDir()
	}
	r := &MemoryReport{Events: cfg.Events, EventBytes: cfg.EventBytes}
	for _, n := range cfg.Customers {
		row, err := measureMemory(ctx, &cfg, dataDir, n)
		if err != nil {
			return nil, err
		}
		if row.Rejected > 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d customers: %d events rejected", n, row.Rejected))
		}
		if row.Evictions > 0 || row.Resident != int64(n) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d customers: %d resident at the end, %d evicted: the figure is not per resident customer", n, row.Resident, row.Evictions))
		}
		r.Rows = append(r.Rows, *row)
	}
	return r, nil
}

// measureMemory starts a fresh runtime and store, fills it with n
// customers and reads the heap before and after.
func measureMemory(ctx context.Context, cfg *MemoryConfig, dataDir string, n int) (row *MemoryRow, err error) {
	dir, err := os.MkdirTemp(dataDir, "throughline-bench-memory-")
	if err != nil {
		return nil, fmt.Errorf("bench memory: %w", err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine, err := persistence.Open(dir, persistence.Options{Logger: quiet})
	if err != nil {
		return nil, fmt.Errorf("bench memory: open: %w", err)
	}
	defer func() {
		if cerr := engine.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("bench memory: close: %w", cerr)
		}
	}()
	// Room for every customer: the resident cap is split between the
	// partitions, and a partition holding more than its share evicts its
	// least recently active, which a round over every customer then
	// loads again (with the default cap of 1,000,000, a run of 1,000,000
	// customers spent 70% of its CPU loading evicted customers).
	rt, err := actors.Start(actors.Config{IdleTimeout: memoryIdleTimeout, Logger: quiet, ResidentMax: 2 * (n + memoryWarmCustomers)}, engine)
	if err != nil {
		return nil, fmt.Errorf("bench memory: start: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := rt.Stop(stopCtx); err == nil && serr != nil {
			err = fmt.Errorf("bench memory: stop: %w", serr)
		}
	}()

	// The store's own buffers (the WAL's blocks, its batches) grow to
	// what the load keeps in flight, the same whatever the number of
	// customers: the same load on a few customers of their own, resident
	// before and after, grows them before the heap is read, so that the
	// difference is the measured customers'. Without it the 1,000-customer
	// figure moved by ±300 bytes a customer from run to run.
	warm := *cfg
	warm.Events = memoryWarmEvents
	if err := fillCustomers(ctx, rt, &warm, memoryWarmCustomers, "warm-", &MemoryRow{}); err != nil {
		return nil, err
	}
	row = &MemoryRow{Customers: n}
	row.HeapBefore, row.RSSBefore = liveHeap(), rss()
	before := heapShape()
	start := time.Now()
	if err := fillCustomers(ctx, rt, cfg, n, "c-", row); err != nil {
		return nil, err
	}
	row.IngestSeconds = time.Since(start).Seconds()
	// The warm-up's customers are resident before and after: not counted.
	row.Resident, row.Evictions = rt.ActiveCustomers.Load()-memoryWarmCustomers, rt.Evictions.Load()
	row.HeapAfter, row.RSSAfter = liveHeap(), rss()
	after := heapShape()
	runtime.KeepAlive(rt)
	row.ObjectsPerCust = (float64(after.objects) - float64(before.objects)) / float64(n)
	row.ScanPerCust = (float64(after.scannable) - float64(before.scannable)) / float64(n)
	row.BytesPerCust = (float64(row.HeapAfter) - float64(row.HeapBefore)) / float64(n)
	if row.RSSBefore > 0 && row.RSSAfter > 0 {
		row.RSSPerCustomer = (float64(row.RSSAfter) - float64(row.RSSBefore)) / float64(n)
	}
	return row, nil
}

// fillCustomers ingests cfg.Events events for each of n customers (named
// prefix and a number), one round over every customer per event, at most
// cfg.InFlight unanswered.
func fillCustomers(ctx context.Context, rt *actors.Runtime, cfg *MemoryConfig, n int, prefix string, row *MemoryRow) error {
	slots := make(chan struct{}, cfg.InFlight)
	var mu sync.Mutex
	text := string(randomText(1, cfg.EventBytes))
	done := func(res actors.Result) {
		mu.Lock()
		if res.Reject != nil || res.Ack == nil {
			row.Rejected++
		} else {
			row.Acked++
		}
		mu.Unlock()
		<-slots
	}
	for round := range cfg.Events {
		for i := range n {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			customer := prefix + strconv.Itoa(i)
			ev := journey.Event{
				ID: "m-" + strconv.Itoa(i) + "-" + strconv.Itoa(round), Customer: customer,
				Type: "message.received", Channel: "chat", Text: text,
			}
			ev.Compact() // the event's own strings, as the gateway gives them
			rt.Ingest(customer, journey.Inbound{Event: ev}, done)
		}
	}
	for range cap(slots) { // every answer is in
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// liveHeap forces a full GC and returns the live heap it left.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // the first may leave finalizers' objects for the second
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	return s[0].Value.Uint64()
}

// shape is what the last collection left: heap objects and scannable
// heap bytes.
type shape struct{ objects, scannable uint64 }

// heapShape reads the shape of the live heap; call it after liveHeap.
func heapShape() shape {
	s := []metrics.Sample{{Name: "/gc/heap/objects:objects"}, {Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	var out shape
	if s[0].Value.Kind() == metrics.KindUint64 {
		out.objects = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		out.scannable = s[1].Value.Uint64()
	}
	return out
}

// rss is the process's resident set from /proc, or 0 where there is none.
func rss() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// Markdown writes the report as a Markdown table.
func (r *MemoryReport) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## throughline bench memory\n\n%d events of ~%d bytes of text per customer, every customer resident (in-process runtime over Pebble, no gateway); live heap after a forced GC.\n\n",
		r.Events, r.EventBytes)
	b.WriteString("| customers | live heap before / after | **live heap per customer** | heap objects / scannable bytes per customer | RSS per customer (Pebble included) | ingest s | acked / rejected |\n|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s / %s | **%s** | %.1f / %s B | %s | %.1f | %d / %d |\n", formatCount(float64(row.Customers)),
			formatBytes(ptr(int64(row.HeapBefore))), formatBytes(ptr(int64(row.HeapAfter))),
			formatCount(row.BytesPerCust)+" B", row.ObjectsPerCust, formatCount(row.ScanPerCust),
			formatCount(row.RSSPerCustomer)+" B", row.IngestSeconds, row.Acked, row.Rejected)
	}
	for _, warning := range r.Warnings {
		b.WriteString("\n- " + warning)
	}
	if len(r.Warnings) > 0 {
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
