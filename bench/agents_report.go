package bench

import (
	"fmt"
	"io"
	"strings"
)

// AgentsReport is the outcome of one agents run, as Markdown (Markdown)
// and as JSON (its struct tags).
type AgentsReport struct {
	Config   AgentsReportConfig `json:"config"`
	RunNonce string             `json:"run_nonce"` // part of every customer and event id of the run
	// ServerConfig is the stated configuration of the server the command
	// started for the run; empty with --target.
	ServerConfig string `json:"server_config,omitempty"`

	// Counts over the whole run, warmup included.
	Escalations       int64 `json:"escalations"`        // escalate.requested sent, one a new customer
	EscalationsAcked  int64 `json:"escalations_acked"`  // acknowledged durable
	EscalationsFailed int64 `json:"escalations_failed"` // answered with an error
	Offers            int64 `json:"offers"`             // conversations offered to a desk (first offers)
	Reoffers          int64 `json:"reoffers"`           // offers of a conversation already offered
	Revoked           int64 `json:"revoked"`            // offers taken back
	ForeignOffers     int64 `json:"foreign_offers"`     // offers of conversations this run did not escalate
	Accepted          int64 `json:"accepted"`           // accepts answered ok
	AcceptsFailed     int64 `json:"accepts_failed"`
	AssignedFrames    int64 `json:"assigned_frames"`
	EventsSent        int64 `json:"events_sent"`      // message.received of assigned customers
	EventsAcked       int64 `json:"events_acked"`     // acknowledged durable
	EventsFailed      int64 `json:"events_failed"`    // answered with an error
	EventsDelivered   int64 `json:"events_delivered"` // reached the assigned agent's desk
	ServerEvents      int64 `json:"server_events"`    // event frames of the server's own events (agent.assigned, ...)
	WrappedUp         int64 `json:"wrapped_up"`       // wrap-ups answered ok
	WrapupsFailed     int64 `json:"wrapups_failed"`
	// MissingOffers are escalations never offered, MissingEvents events
	// sent and never on a desk, 5 s after the last escalation (recorded
	// in the latencies at their age then); Open are conversations not
	// wrapped up by then.
	MissingOffers int64            `json:"missing_offers"`
	MissingEvents int64            `json:"missing_events"`
	Open          int              `json:"open"`
	Unmatched     int64            `json:"unmatched"` // answers or event frames naming nothing in flight
	Malformed     int64            `json:"malformed"` // frames that were not JSON
	Dropped       int64            `json:"desk_frames_dropped"`
	Errors        map[string]int64 `json:"errors"` // error answers by code

	// The measured period (after the warmup).
	MeasuredSeconds float64 `json:"measured_seconds"`
	// OffersPerSecond and EventsPerSecond are first offers and events on
	// desks received in the measured period, per second.
	OffersPerSecond float64 `json:"offers_per_second"`
	EventsPerSecond float64 `json:"events_per_second"`
	// EscalationToOffer is an escalation's scheduled send until a desk has
	// its offer; InboundToScreen an event's scheduled send until the
	// assigned agent's desk has its event frame; OfferToAssigned a desk's
	// offer until the ok of its accept. For what was scheduled in the
	// measured period.
	EscalationToOffer Latency `json:"escalation_to_offer"`
	InboundToScreen   Latency `json:"inbound_to_screen"`
	OfferToAssigned   Latency `json:"offer_to_assigned"`
	// StoreCommit and Activation are the server's
	// throughline_store_sync_seconds (one synced commit) and
	// throughline_customer_activation_seconds over the measured period,
	// as bucket upper bounds.
	StoreCommit *BucketQuantiles `json:"store_commit,omitempty"`
	Activation  *BucketQuantiles `json:"activation,omitempty"`

	Bars     []Bar    `json:"bars"`
	Warnings []string `json:"warnings,omitempty"`
}

// AgentsReportConfig is the run's config as reported (no tokens).
type AgentsReportConfig struct {
	Target        string `json:"target"`
	Agents        int    `json:"agents"`
	AgentCapacity int    `json:"agent_capacity"`
	Rate          int    `json:"rate"`        // escalations/s offered, open loop
	EventsRate    int    `json:"events_rate"` // events/s of assigned customers
	EventGap      string `json:"event_gap"`
	Connections   int    `json:"connections"`
	Duration      string `json:"duration"`
	Warmup        string `json:"warmup"`
}

func newAgentsReport(cfg *AgentsConfig, nonce string, res *agentsResult) *AgentsReport {
	s := &res.counts
	r := &AgentsReport{
		Config: AgentsReportConfig{
			Target: cfg.Target, Agents: cfg.Agents, AgentCapacity: cfg.AgentCapacity, Rate: cfg.Rate,
			EventsRate: cfg.EventsRate, EventGap: cfg.EventGap.String(), Connections: cfg.Connections,
			Duration: cfg.Duration.String(), Warmup: cfg.Warmup.String(),
		},
		RunNonce:    nonce,
		Escalations: s.escalations, EscalationsAcked: s.escalationsAcked, EscalationsFailed: s.escalationsFailed,
		Offers: s.offers, Reoffers: s.reoffers, Revoked: s.revoked, ForeignOffers: s.foreignOffers,
		Accepted: s.accepted, AcceptsFailed: s.acceptsFailed, AssignedFrames: s.assignedFrames,
		EventsSent: s.eventsSent, EventsAcked: s.eventsAcked, EventsFailed: s.eventsFailed,
		EventsDelivered: s.eventsDelivered, ServerEvents: s.serverEvents,
		WrappedUp: s.wrappedUp, WrapupsFailed: s.wrapupsFailed,
		MissingOffers: s.missingOffers, MissingEvents: s.missingEvents, Open: res.open,
		Unmatched: s.unmatched, Malformed: s.malformed, Dropped: s.deskFramesDropped,
		Errors:            res.errors,
		MeasuredSeconds:   res.measured.Seconds(),
		OffersPerSecond:   float64(s.measuredOffers) / res.measured.Seconds(),
		EventsPerSecond:   float64(s.measuredDelivered) / res.measured.Seconds(),
		EscalationToOffer: newLatency(res.lat.offer),
		InboundToScreen:   newLatency(res.lat.screen),
		OfferToAssigned:   newLatency(res.lat.accept),
	}
	if res.connectionErrors > 0 {
		r.warn("%d connection errors, the first: %v", res.connectionErrors, res.firstConnError)
	}
	if r.MissingOffers > 0 || r.MissingEvents > 0 {
		r.warn("%d offers and %d events missing %v after the end: recorded at their age then", r.MissingOffers, r.MissingEvents, drainTimeout)
	}
	if r.Revoked > 0 || r.Reoffers > 0 {
		r.warn("%d offers revoked and %d conversations offered again: desks accept at once, so the server took offers back", r.Revoked, r.Reoffers)
	}
	if r.ForeignOffers > 0 {
		r.warn("%d offers of conversations this run did not escalate (an earlier run's?) were accepted and wrapped up", r.ForeignOffers)
	}
	if r.Dropped > 0 {
		r.warn("%d desk frames (accepts, wrap-ups) dropped: a desk's writer was behind", r.Dropped)
	}
	return r
}

func formatBuckets(q *BucketQuantiles, what string) string {
	if q == nil {
		return "n/a"
	}
	return fmt.Sprintf("%s / %s / %s (%d %s; bucket upper bounds)", formatBound(q.P50UsLE), formatBound(q.P99UsLE), formatBound(q.P999UsLE), q.Count, what)
}

func (r *AgentsReport) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// judge states the bars and whether the run meets each. A figure
// that could not be measured fails its bar.
func (r *AgentsReport) judge(cfg *AgentsConfig) {
	want := barRateShare * float64(cfg.Rate)
	r.Bars = []Bar{
		{
			Name: "escalations offered/s", Limit: "≥ " + formatCount(want),
			Value: formatCount(r.OffersPerSecond), Pass: r.OffersPerSecond >= want,
		},
		latencyBar("escalation → offer p99", BarOfferP99, r.EscalationToOffer.P99Us, r.EscalationToOffer.Count > 0),
		latencyBar("inbound → agent screen p99", BarScreenP99, r.InboundToScreen.P99Us, r.InboundToScreen.Count > 0),
	}
}

// Markdown writes the agents report.
func (r *AgentsReport) Markdown(w io.Writer) error {
	var b strings.Builder
	c := &r.Config
	b.WriteString("## throughline bench agents\n\n| setting | value |\n|---|---|\n")
	row(&b, "target", c.Target)
	row(&b, "desks", fmt.Sprintf("%d agents, capacity %d each, available; every offer accepted at once, wrapped up once its events are on the desk", c.Agents, c.AgentCapacity))
	row(&b, "escalations", formatCount(float64(c.Rate))+"/s, open loop, each a new customer's "+agentsEscalation+" (latency from each one's scheduled time)")
	row(&b, "events of assigned customers", fmt.Sprintf("%s/s in total (%.2f a conversation), message.received, the first %s after the accept's ok and %s apart", formatCount(float64(c.EventsRate)), float64(c.EventsRate)/float64(c.Rate), c.EventGap, c.EventGap))
	row(&b, "channel connections", fmt.Sprint(c.Connections))
	row(&b, "warmup + measured", c.Warmup+" + "+c.Duration)
	row(&b, "run nonce", r.RunNonce)

	writeBars(&b, r.Bars)

	b.WriteString("\n| figure | value |\n|---|---|\n")
	row(&b, "**escalation → offer** (scheduled send → offer on a desk) p50 / p99 / p999 / max", "**"+formatLatency(&r.EscalationToOffer)+"**")
	row(&b, "**inbound → agent screen** (scheduled send → event frame on the assigned desk) p50 / p99 / p999 / max", "**"+formatLatency(&r.InboundToScreen)+"**")
	row(&b, "offer → assigned (offer on the desk → the accept's ok) p50 / p99 / p999 / max", formatLatency(&r.OfferToAssigned))
	row(&b, "server: synced store commit p50 / p99 / p999", formatBuckets(r.StoreCommit, "commits"))
	row(&b, "server: customer activation p50 / p99 / p999", formatBuckets(r.Activation, "activations"))
	row(&b, "samples escalation → offer / inbound → screen", fmt.Sprintf("%d / %d", r.EscalationToOffer.Count, r.InboundToScreen.Count))
	row(&b, "offers/s and events on desks/s achieved (measured period)", formatCount(r.OffersPerSecond)+" / "+formatCount(r.EventsPerSecond))
	row(&b, "escalations sent / acked / failed", fmt.Sprintf("%d / %d / %d", r.Escalations, r.EscalationsAcked, r.EscalationsFailed))
	row(&b, "offers / re-offers / revoked / foreign", fmt.Sprintf("%d / %d / %d / %d", r.Offers, r.Reoffers, r.Revoked, r.ForeignOffers))
	row(&b, "accepted / accepts failed / assigned frames", fmt.Sprintf("%d / %d / %d", r.Accepted, r.AcceptsFailed, r.AssignedFrames))
	row(&b, "events sent / acked / failed / on desks", fmt.Sprintf("%d / %d / %d / %d", r.EventsSent, r.EventsAcked, r.EventsFailed, r.EventsDelivered))
	row(&b, "server's own events on desks", fmt.Sprint(r.ServerEvents))
	row(&b, "wrapped up / wrap-ups failed / open at the end", fmt.Sprintf("%d / %d / %d", r.WrappedUp, r.WrapupsFailed, r.Open))
	row(&b, "missing offers / missing events / unmatched / malformed", fmt.Sprintf("%d / %d / %d / %d", r.MissingOffers, r.MissingEvents, r.Unmatched, r.Malformed))
	row(&b, "errors", formatErrors(r.Errors))

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
