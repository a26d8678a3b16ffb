package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is the outcome of one ingest run. It renders as Markdown
// (Markdown) and as JSON (its struct tags). Figures the server does not
// expose are null in JSON and "n/a" in Markdown, with a warning.
type Report struct {
	Config   ReportConfig `json:"config"`
	RunNonce string       `json:"run_nonce"` // part of every event id of the run

	// Counts over the whole run, warmup included.
	Sent       int64            `json:"sent"`       // events written to the connections
	Acked      int64            `json:"acked"`      // events acknowledged durable
	Duplicates int64            `json:"duplicates"` // acks with duplicate: true (a sign of a reused nonce or a server bug)
	Failed     int64            `json:"failed"`     // events answered with an error
	Errors     map[string]int64 `json:"errors"`     // error answers by code (PROTOCOL section 7)
	Lost       int64            `json:"lost"`       // sent, not answered within 5 s of the end
	Unmatched  int64            `json:"unmatched"`  // answers naming no event in flight
	Malformed  int64            `json:"malformed"`  // server frames that were not JSON

	// The measured period (after the warmup).
	MeasuredSeconds float64 `json:"measured_seconds"`
	MeasuredAcked   int64   `json:"measured_acked"`    // acks received in the measured period
	EventsPerSecond float64 `json:"events_per_second"` // durable acked events per second
	AckLatency      Latency `json:"ack_latency"`       // events scheduled in the measured period

	// Minutes are the server's per-minute figures of a run measured for
	// more than a minute (sustained mode).
	Minutes []Minute `json:"minutes,omitempty"`

	WriteStalls  Stalls `json:"write_stalls"`  // Pebble write stalls in the measured period
	ServerMemory Memory `json:"server_memory"` // at the end of the measured period
	// Rows are the loads measured after the server run, in the same shape:
	// the server at each deeper window, the store ceiling, the NATS
	// JetStream peer and the WebSocket echo. One that could not run is
	// missing, with a warning.
	Rows     []Row    `json:"rows,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// ReportConfig is the run's Config as reported (no token).
type ReportConfig struct {
	Target      string `json:"target"`
	Connections int    `json:"connections"`
	Customers   int    `json:"customers"`
	Duration    string `json:"duration"`
	Warmup      string `json:"warmup"`
	Rate        int    `json:"rate"` // events/s; 0: max rate, closed loop
	Window      int    `json:"window"`
	Deeper      []int  `json:"deeper_windows,omitempty"`
	BatchSize   int    `json:"batch_size"`
	EventBytes  int    `json:"event_bytes"`
	Ceilings    bool   `json:"ceilings"`
}

// Latency is a send-to-ack latency distribution, in microseconds. In rate
// mode it counts from each event's scheduled send time.
type Latency struct {
	Count  int64   `json:"count"`
	P50Us  int64   `json:"p50_us"`
	P99Us  int64   `json:"p99_us"`
	P999Us int64   `json:"p999_us"`
	MaxUs  int64   `json:"max_us"`
	MeanUs float64 `json:"mean_us"`
}

// Stalls are the server's Pebble write stalls over the measured period
// (the difference of its counters); nil when not exposed.
type Stalls struct {
	Count   *int64   `json:"count"`
	Seconds *float64 `json:"seconds"`
}

// Memory is the server's memory from /metrics; nil when not exposed.
type Memory struct {
	RSSBytes       *int64 `json:"rss_bytes"`
	HeapInuseBytes *int64 `json:"heap_inuse_bytes"`
}

func newLatency(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count:  h.TotalCount(),
		P50Us:  h.ValueAtQuantile(50),
		P99Us:  h.ValueAtQuantile(99),
		P999Us: h.ValueAtQuantile(99.9),
		MaxUs:  h.Max(),
		MeanUs: h.Mean(),
	}
}

// Markdown writes the report as Markdown tables.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	c := &r.Config
	mode := "max rate, closed loop"
	if c.Rate > 0 {
		mode = formatCount(float64(c.Rate)) + " events/s, open loop"
	}
	frames := "single event frames"
	if c.BatchSize > 1 {
		frames = "batch frames of " + strconv.Itoa(c.BatchSize)
	}
	b.WriteString("## throughline bench ingest\n\n| setting | value |\n|---|---|\n")
	row(&b, "target", c.Target)
	row(&b, "connections / customers", fmt.Sprintf("%d / %d", c.Connections, c.Customers))
	row(&b, "load", mode+", window "+strconv.Itoa(c.Window)+" per connection")
	row(&b, "frames", frames+", ~"+strconv.Itoa(c.EventBytes)+" bytes of text per event")
	row(&b, "warmup + measured", c.Warmup+" + "+c.Duration)
	row(&b, "run nonce", r.RunNonce)

	b.WriteString("\n| figure | value |\n|---|---|\n")
	row(&b, "**durable acked events/s**", "**"+formatCount(r.EventsPerSecond)+"**")
	row(&b, "ack latency p50 / p99 / p999 / max", formatLatency(&r.AckLatency))
	row(&b, "sent / acked / duplicates", fmt.Sprintf("%d / %d / %d", r.Sent, r.Acked, r.Duplicates))
	row(&b, "errors", formatErrors(r.Errors))
	row(&b, "lost / unmatched / malformed", fmt.Sprintf("%d / %d / %d", r.Lost, r.Unmatched, r.Malformed))
	stalls := "n/a"
	if r.WriteStalls.Count != nil && r.WriteStalls.Seconds != nil {
		stalls = fmt.Sprintf("%d (%.2f s)", *r.WriteStalls.Count, *r.WriteStalls.Seconds)
	}
	row(&b, "Pebble write stalls", stalls)
	row(&b, "server RSS / heap in use", formatBytes(r.ServerMemory.RSSBytes)+" / "+formatBytes(r.ServerMemory.HeapInuseBytes))

	writeRows(&b, r.Rows)
	writeMinutes(&b, "server, window "+strconv.Itoa(c.Window), r.Minutes)
	for i := range r.Rows {
		writeMinutes(&b, r.Rows[i].Name, r.Rows[i].Minutes)
	}
	if len(r.Warnings) > 0 {
		b.WriteString("\nWarnings:\n\n")
		for _, warning := range r.Warnings {
			b.WriteString("- " + warning + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRows writes the loads beside the server's, one table.
func writeRows(b *strings.Builder, rows []Row) {
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n| load | connections × window | s | acked events/s | ack p50 / p99 / p999 | server ÷ load | note |\n|---|---|---|---|---|---|---|\n")
	for i := range rows {
		r := &rows[i]
		note := r.Note
		if r.Failed > 0 || r.Lost > 0 {
			note = strings.TrimPrefix(note+fmt.Sprintf("; failed %d, lost %d", r.Failed, r.Lost), "; ")
		}
		fmt.Fprintf(b, "| %s | %d × %d | %.0f | %s | %s | %.2f | %s |\n", r.Name, r.Connections, r.Window, r.Seconds,
			formatCount(r.EventsPerSecond), formatLatency3(&r.AckLatency), r.Ratio, note)
	}
}

// writeMinutes writes a load's per-minute figures, if it has them.
func writeMinutes(b *strings.Builder, name string, minutes []Minute) {
	if len(minutes) == 0 {
		return
	}
	fmt.Fprintf(b, "\nPer minute, %s:\n\n| minute | acked events/s | ack p50 / p99 / p999 |\n|---|---|---|\n", name)
	for _, m := range minutes {
		minute := strconv.Itoa(m.Minute)
		if m.Seconds < 60 {
			minute += fmt.Sprintf(" (%.0f s)", m.Seconds)
		}
		fmt.Fprintf(b, "| %s | %s | %s / %s / %s |\n", minute, formatCount(m.EventsPerSecond),
			formatMicros(m.P50Us), formatMicros(m.P99Us), formatMicros(m.P999Us))
	}
}

func formatLatency3(l *Latency) string {
	if l.Count == 0 {
		return "n/a"
	}
	return formatMicros(l.P50Us) + " / " + formatMicros(l.P99Us) + " / " + formatMicros(l.P999Us)
}

func row(b *strings.Builder, name, value string) {
	fmt.Fprintf(b, "| %s | %s |\n", name, value)
}

func formatLatency(l *Latency) string {
	if l.Count == 0 {
		return "n/a"
	}
	return strings.Join([]string{formatMicros(l.P50Us), formatMicros(l.P99Us), formatMicros(l.P999Us), formatMicros(l.MaxUs)}, " / ")
}

func formatErrors(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, code := range sortedCodes(m) {
		parts = append(parts, fmt.Sprintf("%s: %d", code, m[code]))
	}
	return strings.Join(parts, ", ")
}

// formatMicros shows a latency in µs, ms or s.
func formatMicros(us int64) string {
	switch {
	case us < 1000:
		return strconv.FormatInt(us, 10) + " µs"
	case us < 1_000_000:
		return strconv.FormatFloat(float64(us)/1e3, 'f', 2, 64) + " ms"
	}
	return strconv.FormatFloat(float64(us)/1e6, 'f', 2, 64) + " s"
}

// formatCount rounds to a whole number with thousands separators.
func formatCount(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func formatBytes(n *int64) string {
	if n == nil {
		return "n/a"
	}
	return strconv.FormatFloat(float64(*n)/(1<<20), 'f', 1, 64) + " MiB"
}
