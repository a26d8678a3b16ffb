package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// BroadcastReport is the outcome of one broadcast run, as Markdown
// (Markdown) and as JSON (its struct tags).
type BroadcastReport struct {
	Config   BroadcastReportConfig `json:"config"`
	RunNonce string                `json:"run_nonce"` // part of every customer and event id of the run
	// ServerConfig is the stated configuration of the server the command
	// started for the run; empty with --target.
	ServerConfig string `json:"server_config,omitempty"`

	Segment   SegmentFigures   `json:"segment"`
	Broadcast BroadcastFigures `json:"broadcast"`
	Outbounds OutboundFigures  `json:"outbounds"`
	Ingest    LiveIngest       `json:"ingest"`
	// Memory is the server's: before the broadcast was posted, the
	// largest read every second while it ran, and when it was done.
	Memory struct {
		Before Memory `json:"before"`
		Peak   Memory `json:"peak"`
		After  Memory `json:"after"`
	} `json:"server_memory"`
	// GCCycles are the server's Go collections completed in the baseline
	// and while the broadcast ran (nil: not read): one in a window is
	// most of that window's ack p99 on two cores.
	GCCycles struct {
		Baseline *int64 `json:"baseline"`
		During   *int64 `json:"during"`
	} `json:"server_gc_cycles"`
	// ServerCPU is the cores the server kept busy in the baseline and
	// while the broadcast ran, and the CPU time it added per target (the
	// cores above the baseline's, over the broadcast's time, per target;
	// nil: not read): what a target costs, steadier from run to run than
	// the ack p99 it drives.
	ServerCPU struct {
		Baseline        *float64 `json:"baseline_cores"`
		During          *float64 `json:"during_cores"`
		MicrosPerTarget *float64 `json:"during_us_per_target"`
	} `json:"server_cpu"`

	Bars     []Bar    `json:"bars"`
	Warnings []string `json:"warnings,omitempty"`
	warned   map[string]bool
}

// BroadcastReportConfig is the run's config as reported (no tokens).
type BroadcastReportConfig struct {
	Target          string `json:"target"`
	Customers       int    `json:"customers"`
	OptOutPercent   int    `json:"opt_out_percent"`
	SeedBatch       int    `json:"seed_batch"`
	Rate            int    `json:"rate"` // broadcasts.rate, targets/s
	IngestRate      int    `json:"ingest_rate"`
	Connections     int    `json:"connections"`
	Window          int    `json:"window"`
	IngestCustomers int    `json:"ingest_customers"`
	Warmup          string `json:"warmup"`
	Baseline        string `json:"baseline"`
	Timeout         string `json:"timeout"`
}

// SegmentFigures are the segment's creation: one payment.attempted per
// customer in batch frames, then the opt-outs' profile patches.
type SegmentFigures struct {
	Customers       int              `json:"customers"`
	Sent            int64            `json:"sent"`
	Acked           int64            `json:"acked"`
	Failed          int64            `json:"failed"`
	Lost            int64            `json:"lost"`
	Errors          map[string]int64 `json:"errors"`
	Seconds         float64          `json:"seconds"`
	EventsPerSecond float64          `json:"events_per_second"`
	OptedOut        int64            `json:"opted_out"` // patches answered 200
	OptOutsFailed   int64            `json:"opt_outs_failed"`
	OptOutSeconds   float64          `json:"opt_out_seconds"`
}

// BroadcastFigures are the broadcast's: its counts as GET
// /v1/broadcasts/{id} answered once it was done, and its times.
type BroadcastFigures struct {
	ID                string           `json:"id"`
	State             string           `json:"state"`
	Targeted          int64            `json:"targeted"`
	Sent              int64            `json:"sent"`
	Held              int64            `json:"held"`
	Suppressed        map[string]int64 `json:"suppressed"`
	SuppressedTotal   int64            `json:"suppressed_total"`
	CallbacksAccepted int64            `json:"callbacks_accepted"`
	// AcceptSeconds is the POST until its 202; DoneSeconds the 202 until
	// a poll saw the state done (polled every 50 ms).
	AcceptSeconds float64 `json:"accept_seconds"`
	DoneSeconds   float64 `json:"done_seconds"`
	// TargetsPerSecond is Targeted / DoneSeconds: the send rate achieved.
	TargetsPerSecond float64 `json:"targets_per_second"`
	Polls            int     `json:"polls"`
	PollsFailed      int     `json:"polls_failed"`
}

// OutboundFigures are what the sms gateway connection received.
type OutboundFigures struct {
	Frames      int64 `json:"frames"`      // outbound frames
	Unique      int64 `json:"unique"`      // different outbound ids
	Redelivered int64 `json:"redelivered"` // frames of an id already received
	Segment     int64 `json:"segment"`     // unique, to the segment's customers
	Foreign     int64 `json:"foreign"`     // unique, to other customers (an earlier run's segment?)
	// Missing is the broadcast's sent minus Unique, after waiting up to
	// 30 s (5 s without a new one).
	Missing        int64            `json:"missing"`
	AcceptsDropped int64            `json:"accepts_dropped"` // not confirmed: the writer was behind
	Malformed      int64            `json:"malformed"`
	Errors         map[string]int64 `json:"errors"`
	// FirstSeconds and LastSeconds are the first and last segment
	// outbound's arrival after the 202 (null: none came; the first can be
	// negative, before the 202 reached the bench); PerSecond is Segment /
	// LastSeconds.
	FirstSeconds *float64 `json:"first_seconds"`
	LastSeconds  *float64 `json:"last_seconds"`
	PerSecond    float64  `json:"per_second"`
}

// LiveIngest is the live ingest's ack latency before the broadcast (the
// baseline) and during it, same connections and rate, by each event's
// scheduled time.
type LiveIngest struct {
	Sent     int64            `json:"sent"`
	Acked    int64            `json:"acked"`
	Failed   int64            `json:"failed"`
	Lost     int64            `json:"lost"`
	Errors   map[string]int64 `json:"errors"`
	Baseline Latency          `json:"baseline"`
	During   Latency          `json:"during"`
	// P99Ratio is During.P99Us / Baseline.P99Us (0 when either is empty).
	P99Ratio float64 `json:"p99_ratio"`
	// BaselineSeconds and DuringSeconds sum up the p99 of each second of
	// the phase: a tail set by a few bad seconds has a low median and a
	// high max, one raised all along both high.
	BaselineSeconds SecondsP99 `json:"baseline_seconds"`
	DuringSeconds   SecondsP99 `json:"during_seconds"`
}

// SecondsP99 sums up the ack p99s of a phase's seconds (those with at
// least secondSamplesMin samples; p99 within 1%).
type SecondsP99 struct {
	Seconds  int   `json:"seconds"`
	MedianUs int64 `json:"median_p99_us"`
	MaxUs    int64 `json:"max_p99_us"`
	// OverTwiceBaseline counts the seconds whose p99 is over twice the
	// whole baseline's p99.
	OverTwiceBaseline int `json:"over_twice_baseline_p99"`
}

func newSecondsP99(p99s []int64, baselineP99 int64) SecondsP99 {
	s := SecondsP99{Seconds: len(p99s)}
	if len(p99s) == 0 {
		return s
	}
	sorted := slices.Sorted(slices.Values(p99s))
	s.MedianUs, s.MaxUs = sorted[(len(sorted)-1)/2], sorted[len(sorted)-1]
	for _, v := range p99s {
		if baselineP99 > 0 && v > 2*baselineP99 {
			s.OverTwiceBaseline++
		}
	}
	return s
}

func newBroadcastReport(cfg *BroadcastConfig, nonce string) *BroadcastReport {
	return &BroadcastReport{
		Config: BroadcastReportConfig{
			Target: cfg.Target, Customers: cfg.Customers, OptOutPercent: cfg.OptOutPercent,
			SeedBatch: cfg.SeedBatch, Rate: cfg.Rate, IngestRate: cfg.IngestRate,
			Connections: cfg.Connections, Window: cfg.Window, IngestCustomers: cfg.IngestCustomers,
			Warmup: cfg.Warmup.String(), Baseline: cfg.Baseline.String(), Timeout: cfg.Timeout.String(),
		},
		RunNonce: nonce,
		Segment:  SegmentFigures{Customers: cfg.Customers, Errors: map[string]int64{}},
		Ingest:   LiveIngest{Errors: map[string]int64{}},
	}
}

func (r *BroadcastReport) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// warnOnce warns once per key.
func (r *BroadcastReport) warnOnce(key, format string, args ...any) {
	if r.warned == nil {
		r.warned = map[string]bool{}
	}
	if !r.warned[key] {
		r.warned[key] = true
		r.warn(format, args...)
	}
}

// addSeed takes the segment's creation.
func (r *BroadcastReport) addSeed(res *driveResult) {
	s := &r.Segment
	s.Sent, s.Acked, s.Failed, s.Lost, s.Errors = res.sent, res.acked, res.failed, res.lost, res.errors
	s.Seconds = res.measured.Seconds()
	if s.Seconds > 0 {
		s.EventsPerSecond = float64(res.acked) / s.Seconds
	}
	if res.connectionErrors > 0 {
		r.warn("segment: %d connection errors, the first: %v", res.connectionErrors, res.firstConnectionError)
	}
	if s.Acked != int64(s.Customers) {
		r.warn("segment: %d of %d customers' events acknowledged (%d failed, %d lost): the broadcast targets fewer", s.Acked, s.Customers, s.Failed, s.Lost)
	}
}

// addLive takes the live ingest.
func (r *BroadcastReport) addLive(res *driveResult) {
	in := &r.Ingest
	in.Sent, in.Acked, in.Failed, in.Lost, in.Errors = res.sent, res.acked, res.failed, res.lost, res.errors
	if len(res.phases) == phaseCount {
		in.Baseline = newLatency(res.phases[phaseBaseline])
		in.During = newLatency(res.phases[phaseDuring])
	}
	if in.Baseline.P99Us > 0 && in.During.Count > 0 {
		in.P99Ratio = float64(in.During.P99Us) / float64(in.Baseline.P99Us)
	}
	if len(res.seconds) == phaseCount {
		in.BaselineSeconds = newSecondsP99(res.seconds[phaseBaseline], in.Baseline.P99Us)
		in.DuringSeconds = newSecondsP99(res.seconds[phaseDuring], in.Baseline.P99Us)
	}
	if res.connectionErrors > 0 {
		r.warn("live ingest: %d connection errors, the first: %v", res.connectionErrors, res.firstConnectionError)
	}
	if res.lost > 0 {
		r.warn("live ingest: %d events sent were not answered within %v of the end", res.lost, drainTimeout)
	}
}

// addStatus takes the broadcast's final counts.
func (r *BroadcastReport) addStatus(st *broadcastStatus) {
	b := &r.Broadcast
	b.State, b.Targeted, b.Sent, b.Held = st.State, st.Targeted, st.Sent, st.Held
	b.Suppressed, b.CallbacksAccepted = st.Suppressed, st.CallbacksAccepted
	if b.Suppressed == nil {
		b.Suppressed = map[string]int64{}
	}
	for _, n := range b.Suppressed {
		b.SuppressedTotal += n
	}
	if b.DoneSeconds > 0 {
		b.TargetsPerSecond = float64(b.Targeted) / b.DoneSeconds
	}
	if b.State != "done" {
		r.warn("the broadcast ended %q, not done", b.State)
	}
	if b.Targeted != r.Segment.Acked {
		r.warn("the broadcast targeted %d customers, the segment has %d: other customers with a %s in the last %s (an earlier run?) count too",
			b.Targeted, r.Segment.Acked, broadcastEvent, broadcastWithin)
	}
	if got := b.Sent + b.Held + b.SuppressedTotal; got != b.Targeted {
		r.warn("sent + held + suppressed is %d, targeted %d", got, b.Targeted)
	}
	if b.Suppressed["no_consent"] != r.Segment.OptedOut {
		r.warn("%d suppressed for no_consent, %d customers opted out", b.Suppressed["no_consent"], r.Segment.OptedOut)
	}
}

// addOutbounds takes the sms gateway's counts.
func (r *BroadcastReport) addOutbounds(s outboundStats, connErrs ...error) {
	o := &r.Outbounds
	o.Frames, o.Unique, o.Redelivered, o.Segment, o.Foreign = s.frames, s.unique, s.redelivered, s.segment, s.foreign
	o.AcceptsDropped, o.Malformed, o.Errors = s.dropped, s.malformed, s.errors
	o.Missing = max(0, r.Broadcast.Sent-s.unique)
	if s.arrived {
		o.FirstSeconds, o.LastSeconds = ptr(s.firstAfter.Seconds()), ptr(s.lastAfter.Seconds())
		if s.lastAfter > 0 {
			o.PerSecond = float64(s.segment) / s.lastAfter.Seconds()
		}
	}
	if o.Missing > 0 {
		r.warn("%d messages sent did not reach the sms gateway", o.Missing)
	}
	if o.AcceptsDropped > 0 {
		r.warn("%d outbounds were not confirmed with accepted", o.AcceptsDropped)
	}
	for _, err := range connErrs {
		if err != nil {
			r.warn("sms gateway connection: %v", err)
		}
	}
}

// judge states the bars and whether the run meets each. A figure
// that could not be measured fails its bar.
func (r *BroadcastReport) judge(cfg *BroadcastConfig) {
	b, in := &r.Broadcast, &r.Ingest
	reached := b.Sent + b.Held + b.SuppressedTotal
	want := BarBroadcastRateShare * float64(cfg.Rate)
	ratio := Bar{Name: "ingest ack p99 during ÷ before", Limit: fmt.Sprintf("≤ %.1f", BarIngestP99Ratio), Value: "n/a"}
	if in.P99Ratio > 0 {
		ratio.Value = fmt.Sprintf("%.2f (%s ÷ %s)", in.P99Ratio, formatMicros(in.During.P99Us), formatMicros(in.Baseline.P99Us))
		ratio.Pass = in.P99Ratio <= BarIngestP99Ratio
	}
	r.Bars = []Bar{
		{
			Name: "targets reached (sent + held + suppressed)", Limit: "= " + formatCount(float64(cfg.Customers)),
			Value: formatCount(float64(reached)),
			Pass:  b.State == "done" && reached >= int64(cfg.Customers) && reached == b.Targeted,
		},
		{
			Name: "send rate (targeted ÷ time to done)", Limit: "≥ " + formatCount(want) + "/s",
			Value: formatCount(b.TargetsPerSecond) + "/s", Pass: b.State == "done" && b.TargetsPerSecond >= want,
		},
		ratio,
	}
}

// Markdown writes the broadcast report.
func (r *BroadcastReport) Markdown(w io.Writer) error {
	var b strings.Builder
	c := &r.Config
	b.WriteString("## throughline bench broadcast\n\n| setting | value |\n|---|---|\n")
	row(&b, "target", c.Target)
	row(&b, "segment", fmt.Sprintf("%s customers, one %s each with a phone, batch frames of %d; %d%% opted out of sms", formatCount(float64(c.Customers)), broadcastEvent, c.SeedBatch, c.OptOutPercent))
	row(&b, "broadcast", fmt.Sprintf(`segment {event: %s, within: %s}, callback_offer; broadcasts.rate %s/s`, broadcastEvent, broadcastWithin, formatCount(float64(c.Rate))))
	row(&b, "live ingest", fmt.Sprintf("%s events/s, open loop, single-event frames, %d connections, %d in flight each at most, %s other customers", formatCount(float64(c.IngestRate)), c.Connections, c.Window, formatCount(float64(c.IngestCustomers))))
	row(&b, "warmup + baseline", c.Warmup+" + "+c.Baseline+", then the broadcast until done")
	row(&b, "sms gateway", "one connection, hello for sms, every outbound accepted")
	row(&b, "run nonce", r.RunNonce)

	writeBars(&b, r.Bars)

	bc, in, o, s := &r.Broadcast, &r.Ingest, &r.Outbounds, &r.Segment
	b.WriteString("\n| figure | value |\n|---|---|\n")
	row(&b, "**time from the 202 to done**", fmt.Sprintf("**%.2f s**", bc.DoneSeconds))
	row(&b, "**send rate achieved** (targeted ÷ time)", "**"+formatCount(bc.TargetsPerSecond)+"/s**")
	row(&b, "broadcast", fmt.Sprintf("%s, state %s, POST → 202 %s", bc.ID, bc.State, formatMicros(int64(bc.AcceptSeconds*1e6))))
	row(&b, "targeted / sent / held / suppressed", fmt.Sprintf("%d / %d / %d / %d", bc.Targeted, bc.Sent, bc.Held, bc.SuppressedTotal))
	row(&b, "suppressed by reason", formatErrors(bc.Suppressed))
	row(&b, "**ingest ack p50 / p99 / p999 / max, before** (baseline)", "**"+formatLatency(&in.Baseline)+"**")
	row(&b, "**ingest ack p50 / p99 / p999 / max, during**", "**"+formatLatency(&in.During)+"**")
	row(&b, "ingest ack p99 of each second, median / max: before; during", fmt.Sprintf("%s; %s, %d of %d seconds over twice the baseline's p99",
		formatSeconds(&in.BaselineSeconds), formatSeconds(&in.DuringSeconds), in.DuringSeconds.OverTwiceBaseline, in.DuringSeconds.Seconds))
	row(&b, "ingest samples before / during", fmt.Sprintf("%d / %d", in.Baseline.Count, in.During.Count))
	row(&b, "ingest sent / acked / failed / lost", fmt.Sprintf("%d / %d / %d / %d", in.Sent, in.Acked, in.Failed, in.Lost))
	row(&b, "ingest errors", formatErrors(in.Errors))
	first, last := "n/a", "n/a"
	if o.FirstSeconds != nil {
		first, last = fmt.Sprintf("%.2f s", *o.FirstSeconds), fmt.Sprintf("%.2f s", *o.LastSeconds)
	}
	row(&b, "outbounds at the sms gateway: segment / missing / other / redelivered", fmt.Sprintf("%d / %d / %d / %d", o.Segment, o.Missing, o.Foreign, o.Redelivered))
	row(&b, "outbounds: first / last after the 202, rate", first+" / "+last+", "+formatCount(o.PerSecond)+"/s")
	row(&b, "server RSS before / peak / after", memoryTriple(r.Memory.Before.RSSBytes, r.Memory.Peak.RSSBytes, r.Memory.After.RSSBytes))
	row(&b, "server Go heap in use before / peak / after", memoryTriple(r.Memory.Before.HeapInuseBytes, r.Memory.Peak.HeapInuseBytes, r.Memory.After.HeapInuseBytes))
	row(&b, "server GC cycles in the baseline / during the broadcast", formatOptional(r.GCCycles.Baseline)+" / "+formatOptional(r.GCCycles.During))
	row(&b, "server CPU in the baseline / during the broadcast, added per target", formatFloat(r.ServerCPU.Baseline, "%.2f cores")+" / "+formatFloat(r.ServerCPU.During, "%.2f cores")+", "+formatFloat(r.ServerCPU.MicrosPerTarget, "%.0f µs"))
	row(&b, "segment created", fmt.Sprintf("%d acked of %d in %.1f s (%s events/s), %d failed, %d lost; errors %s",
		s.Acked, s.Customers, s.Seconds, formatCount(s.EventsPerSecond), s.Failed, s.Lost, formatErrors(s.Errors)))
	row(&b, "opt-outs patched / failed", fmt.Sprintf("%d / %d in %.1f s", s.OptedOut, s.OptOutsFailed, s.OptOutSeconds))

	if r.ServerConfig != "" {
		b.WriteString("\nServer started for the run, with this configuration:\n\n```yaml\n" + strings.TrimRight(r.ServerConfig, "\n") + "\n```\n")
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

func memoryTriple(a, b, c *int64) string {
	return strings.Join([]string{formatBytes(a), formatBytes(b), formatBytes(c)}, " / ")
}

// formatOptional is n, or n/a when it was not read.
func formatOptional(n *int64) string {
	if n == nil {
		return "n/a"
	}
	return fmt.Sprint(*n)
}

// formatFloat is a figure in format, or n/a when it was not read.
func formatFloat(v *float64, format string) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v)
}

// formatSeconds is a phase's per-second p99s: median / max (seconds).
func formatSeconds(s *SecondsP99) string {
	if s.Seconds == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s / %s (%d s)", formatMicros(s.MedianUs), formatMicros(s.MaxUs), s.Seconds)
}
