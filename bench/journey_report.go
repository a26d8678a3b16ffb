package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// JourneyReport is the outcome of one journey run, as Markdown (Markdown)
// and as JSON (its struct tags).
type JourneyReport struct {
	Config   JourneyReportConfig `json:"config"`
	RunNonce string              `json:"run_nonce"` // part of every event and customer id of the run
	// ServerConfig is the stated configuration of the server the command
	// started for the run; empty with --target.
	ServerConfig string `json:"server_config,omitempty"`

	// Counts over the whole run, warmup included.
	Turns      int64            `json:"turns"`       // message.received events sent
	Acked      int64            `json:"acked"`       // events acknowledged durable
	Answered   int64            `json:"answered"`    // replies from the bot
	HandedOver int64            `json:"handed_over"` // replies that were the hand-over message
	Failed     int64            `json:"failed"`      // events answered with an error
	Errors     map[string]int64 `json:"errors"`      // error answers by code
	// MissingAcks and MissingReplies are turns still unanswered 5 s after
	// the last was sent.
	MissingAcks    int64 `json:"missing_acks"`
	MissingReplies int64 `json:"missing_replies"`
	// Unmatched are acks or outbounds naming no turn in flight: an outbound
	// sent again, or a reply after its turn was given up.
	Unmatched int64 `json:"unmatched"`
	Malformed int64 `json:"malformed"` // server frames that were not JSON
	// WaitedForCustomer are turns that found every customer of their
	// connection busy and waited for one (their latency still counts from
	// the schedule).
	WaitedForCustomer int64 `json:"waited_for_customer"`
	// AcceptsDropped are outbounds not confirmed with accepted.
	AcceptsDropped int64 `json:"accepts_dropped"`

	// The measured period (after the warmup).
	MeasuredSeconds float64 `json:"measured_seconds"`
	// TurnsPerSecond are replies received in the measured period, per
	// second: the rate achieved.
	TurnsPerSecond float64 `json:"turns_per_second"`
	// AckLatency is inbound sent to ack received; TurnLatency inbound sent
	// to the outbound reply received (answers and hand-overs), for turns
	// scheduled in the measured period, from their scheduled time.
	AckLatency  Latency `json:"ack_latency"`
	TurnLatency Latency `json:"turn_latency"`
	// Brain is the server's throughline_bot_brain_seconds over the measured
	// period, as bucket upper bounds.
	Brain *BucketQuantiles `json:"brain,omitempty"`

	Bars     []Bar    `json:"bars"`
	Warnings []string `json:"warnings,omitempty"`
}

// JourneyReportConfig is the run's config as reported (no token).
type JourneyReportConfig struct {
	Target      string `json:"target"`
	Rate        int    `json:"rate"` // turns/s offered, open loop
	Connections int    `json:"connections"`
	Customers   int    `json:"customers"`
	Duration    string `json:"duration"`
	Warmup      string `json:"warmup"`
	Brain       string `json:"brain"`
}

// Bar is one figure the issue sets a limit on.
type Bar struct {
	Name  string `json:"name"`
	Limit string `json:"limit"`
	Value string `json:"value"`
	Pass  bool   `json:"pass"`
}

// writeBars writes a report's bars as a table, each with its verdict.
func writeBars(b *strings.Builder, bars []Bar) {
	b.WriteString("\n| bar | limit | measured | |\n|---|---|---|---|\n")
	for _, bar := range bars {
		verdict := "FAIL"
		if bar.Pass {
			verdict = "PASS"
		}
		fmt.Fprintf(b, "| %s | %s | %s | **%s** |\n", bar.Name, bar.Limit, bar.Value, verdict)
	}
}

func newJourneyReport(cfg *JourneyConfig, nonce string, res *journeyResult) *JourneyReport {
	s := &res.counts
	r := &JourneyReport{
		Config: JourneyReportConfig{
			Target: cfg.Target, Rate: cfg.Rate, Connections: cfg.Connections, Customers: cfg.Customers,
			Duration: cfg.Duration.String(), Warmup: cfg.Warmup.String(), Brain: cfg.Brain,
		},
		RunNonce: nonce,
		Turns:    s.sent, Acked: s.acked, Answered: s.answered, HandedOver: s.handedOver, Failed: s.failed,
		Errors:      res.errors,
		MissingAcks: res.missingAcks, MissingReplies: res.missingRep,
		Unmatched: s.unmatched, Malformed: s.malformed,
		WaitedForCustomer: s.waited, AcceptsDropped: s.acceptsDropped,
		MeasuredSeconds: res.measured.Seconds(),
		TurnsPerSecond:  float64(s.measuredReplies) / res.measured.Seconds(),
		AckLatency:      newLatency(res.ack),
		TurnLatency:     newLatency(res.turn),
	}
	if res.counts.unmatched > 0 {
		r.warn("%d frames named no turn in flight, the first: %s", res.counts.unmatched, res.counts.firstUnmatched)
	}
	if res.connectionErrors > 0 {
		r.warn("%d connection errors, the first: %v", res.connectionErrors, res.firstConnectionError)
	}
	if r.MissingAcks > 0 || r.MissingReplies > 0 {
		r.warn("%d acks and %d replies missing %v after the end: recorded at their age then", r.MissingAcks, r.MissingReplies, drainTimeout)
	}
	if r.HandedOver > 0 {
		r.warn("%d turns were handed over (is ai.escalate_below over the questions' confidence?); those customers got no more turns", r.HandedOver)
	}
	if r.WaitedForCustomer > 0 {
		r.warn("%d turns waited for a free customer: more customers would keep the load open", r.WaitedForCustomer)
	}
	if r.AcceptsDropped > 0 {
		r.warn("%d outbounds were not confirmed with accepted", r.AcceptsDropped)
	}
	return r
}

func (r *JourneyReport) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// judge states the bars and whether the run meets each. A figure
// that could not be measured fails its bar. The brain's bar compares the
// upper bound of p99's bucket, so it passes only when surely under.
func (r *JourneyReport) judge(cfg *JourneyConfig) {
	measured := r.TurnLatency.Count > 0
	r.Bars = []Bar{
		{
			Name:  "turns/s achieved",
			Limit: "≥ " + formatCount(barRateShare*float64(cfg.Rate)),
			Value: formatCount(r.TurnsPerSecond),
			Pass:  r.TurnsPerSecond >= barRateShare*float64(cfg.Rate),
		},
		latencyBar("bot turn p50", BarTurnP50, r.TurnLatency.P50Us, measured),
		latencyBar("bot turn p99", BarTurnP99, r.TurnLatency.P99Us, measured),
	}
	b := Bar{Name: "brain p99 (" + cfg.Brain + ")", Limit: "< " + formatMicros(BarBrainP99.Microseconds()), Value: "n/a"}
	if q := r.Brain; q != nil && q.Count > 0 {
		b.Value = formatBound(q.P99UsLE)
		b.Pass = q.P99UsLE > 0 && q.P99UsLE < BarBrainP99.Microseconds()
	}
	r.Bars = append(r.Bars, b)
}

func latencyBar(name string, limit time.Duration, us int64, measured bool) Bar {
	b := Bar{Name: name, Limit: "< " + formatMicros(limit.Microseconds()), Value: "n/a"}
	if measured {
		b.Value = formatMicros(us)
		b.Pass = us < limit.Microseconds()
	}
	return b
}

// formatBound shows a bucket's upper bound; 0 is past the last bucket.
func formatBound(us int64) string {
	if us == 0 {
		return "past the last bucket"
	}
	return "≤ " + formatMicros(us)
}

// Markdown writes the journey report.
func (r *JourneyReport) Markdown(w io.Writer) error {
	var b strings.Builder
	c := &r.Config
	b.WriteString("## throughline bench journey\n\n| setting | value |\n|---|---|\n")
	row(&b, "target", c.Target)
	row(&b, "load", formatCount(float64(c.Rate))+" turns/s, open loop (latency from each turn's scheduled time)")
	row(&b, "connections / customers", fmt.Sprintf("%d / %d, hello for %s, at most one turn in flight per customer", c.Connections, c.Customers, journeyChannel))
	row(&b, "questions", strconv.Itoa(len(journeyQuestions))+" phrasings of the demo knowledge base's topics")
	row(&b, "warmup + measured", c.Warmup+" + "+c.Duration)
	row(&b, "run nonce", r.RunNonce)

	writeBars(&b, r.Bars)

	b.WriteString("\n| figure | value |\n|---|---|\n")
	row(&b, "**bot turn** (inbound sent → outbound received) p50 / p99 / p999 / max", "**"+formatLatency(&r.TurnLatency)+"**")
	row(&b, "ack (inbound sent → ack received) p50 / p99 / p999 / max", formatLatency(&r.AckLatency))
	brain := "n/a"
	if q := r.Brain; q != nil {
		brain = fmt.Sprintf("%s / %s / %s (%d turns; bucket upper bounds)", formatBound(q.P50UsLE), formatBound(q.P99UsLE), formatBound(q.P999UsLE), q.Count)
	}
	row(&b, "brain's own time ("+c.Brain+") p50 / p99 / p999", brain)
	row(&b, "turns/s achieved (replies in the measured period)", formatCount(r.TurnsPerSecond))
	row(&b, "turns sent / acked / answered / handed over", fmt.Sprintf("%d / %d / %d / %d", r.Turns, r.Acked, r.Answered, r.HandedOver))
	row(&b, "errors", formatErrors(r.Errors))
	row(&b, "missing acks / missing replies / unmatched / malformed", fmt.Sprintf("%d / %d / %d / %d", r.MissingAcks, r.MissingReplies, r.Unmatched, r.Malformed))
	row(&b, "turns that waited for a free customer", strconv.FormatInt(r.WaitedForCustomer, 10))

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
