package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	dto "github.com/prometheus/client_model/go"
	"github.com/throughline/throughline/journey"
)

// JourneyConfig is one `throughline bench journey` run: bot turns through
// the channel gateway, open loop. Start from DefaultJourney(); RunJourney
// uses the fields as given after Validate. cmd/ only binds flags.
type JourneyConfig struct {
	// Target is the server's base URL; its `ai:` section must be a bot that
	// answers journeyQuestions (the demo's intents and knowledge base).
	// Required.
	Target string
	// Token is a channel-role bearer token. Default "".
	Token string
	// Rate is the offered load in turns per second, spread evenly over the
	// connections; latency counts from each turn's scheduled time. Default
	// 1000; 1..JourneyRateMax.
	Rate int
	// Connections are channel WebSockets, each saying hello for chat.
	// Default 8; 1..ConnectionsMax.
	Connections int
	// Customers: customer i travels on connection i % Connections and has
	// at most one turn in flight. Default 1000; Connections..JourneyCustomersMax.
	Customers int
	// Duration is the measured period, after Warmup. Default 60s.
	Duration time.Duration
	// Warmup runs the same load first, excluded from the figures; it
	// covers each customer's first turn, which creates the customer and
	// opens its conversation. Default 5s.
	Warmup time.Duration
	// Handover is the text the server sends when it hands a customer over
	// (ai.handover); a reply with another text is an answer. Default
	// journey.HandoverTextDefault.
	Handover string
	// Brain is the brain label of throughline_bot_brain_seconds read for
	// the brain's own time. Default "builtin".
	Brain string
}

// Limits of a journey run.
const (
	// JourneyRateMax bounds JourneyConfig.Rate.
	JourneyRateMax = 100_000
	// JourneyCustomersMax bounds JourneyConfig.Customers.
	JourneyCustomersMax = 1_000_000
	// journeyChannel is the session channel the turns travel on.
	journeyChannel = "chat"
	// brainMetric is the server's histogram of the brain's time per turn.
	brainMetric = "throughline_bot_brain_seconds"
	// JourneyEscalateBelow is the ai.escalate_below of a server started for
	// the run: under every question's confidence.
	JourneyEscalateBelow = 0.5
)

// The bars of the issue: at 1,000 turns/s, a bot turn under 2 ms at p50
// and 5 ms at p99, the builtin brain's own work under 1 ms at p99.
const (
	BarTurnP50   = 2 * time.Millisecond
	BarTurnP99   = 5 * time.Millisecond
	BarBrainP99  = time.Millisecond
	barRateShare = 0.99 // the achieved rate must be at least this share of Rate
)

// journeyQuestions are what customers ask: phrasings of the demo knowledge
// base's topics (card declined, password reset, refunds, delivery, opening
// hours, address change, fees). With the demo's intents the builtin brain
// answers each with a confidence of 0.56 to 1.00, so none is handed over
// under an ai.escalate_below of 0.5; each is worded without negative words
// (sentiment 0), so a customer's run of questions never reads as growing
// frustration, which hands over too. journey_test checks both.
var journeyQuestions = []string{
	"I can't pay with my card online",
	"my card payment was rejected online",
	"the card payment at checkout does not work",
	"I forgot my password",
	"how do I reset my password",
	"my account is locked after too many login attempts",
	"I want a refund for my order",
	"how can I return an item I bought",
	"the item I received is not what I ordered, can I get my money back",
	"when will my parcel arrive",
	"how long does standard delivery take",
	"how do I track my order",
	"what are your opening hours",
	"is the branch open on saturday",
	"when is the contact center open",
	"I moved, how do I change my address",
	"can I update the delivery address of my order",
	"is there a monthly fee for the account",
	"how much does a foreign currency payment cost",
	"what does it cost to withdraw cash at another bank's atm",
}

// DefaultJourney is the default journey workload (Target still to be set).
func DefaultJourney() JourneyConfig {
	return JourneyConfig{
		Rate: 1000, Connections: 8, Customers: 1000,
		Duration: 60 * time.Second, Warmup: 5 * time.Second,
		Handover: journey.HandoverTextDefault, Brain: "builtin",
	}
}

// Validate lists every problem.
func (c *JourneyConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("bench: "+format, args...)) }
	if _, _, err := targetURLs(c.Target); err != nil {
		bad("target: %v", err)
	}
	if c.Rate < 1 || c.Rate > JourneyRateMax {
		bad("rate %d: must be 1..%d turns/s", c.Rate, JourneyRateMax)
	}
	if c.Connections < 1 || c.Connections > ConnectionsMax {
		bad("connections %d: must be 1..%d", c.Connections, ConnectionsMax)
	}
	if c.Customers < c.Connections || c.Customers > JourneyCustomersMax {
		bad("customers %d: must be connections (%d)..%d", c.Customers, c.Connections, JourneyCustomersMax)
	}
	if c.Duration <= 0 || c.Duration > DurationMax {
		bad("duration %v: must be over 0 and at most %v", c.Duration, DurationMax)
	}
	if c.Warmup < 0 || c.Warmup > DurationMax {
		bad("warmup %v: must be 0..%v", c.Warmup, DurationMax)
	}
	if c.Handover == "" {
		bad("handover: the server's hand-over text is required")
	}
	if c.Brain == "" {
		bad("brain: the brain label to read is required")
	}
	return errors.Join(errs...)
}

// RunJourney runs the journey workload: it opens Connections channel
// WebSockets that say hello for chat, sends Rate message.received events
// per second for Warmup+Duration, each for the next customer of its
// connection without a turn in flight, matches every ack by event id and
// every outbound by customer, answers each outbound with accepted, waits
// up to 5 s for what is in flight, and reads the brain's histogram at the
// start and the end of the measured period.
//
// It fails when the config is invalid, a connection cannot be opened or is
// not answered ready, or ctx ends; lost answers and a missing histogram are
// counted or warned about in the report.
func RunJourney(ctx context.Context, cfg JourneyConfig) (*JourneyReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	wsURL, metricsURL, err := targetURLs(cfg.Target)
	if err != nil {
		return nil, err
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	handover, err := json.Marshal(cfg.Handover)
	if err != nil {
		return nil, err
	}
	conns, err := dialJourney(ctx, &cfg, wsURL, nonce, handover[1:len(handover)-1])
	if err != nil {
		return nil, err
	}
	httpClient := newHTTPClient(scrapeTimeout)
	var before, after *dto.Histogram
	var beforeErr, afterErr error
	scrapeBrain := func() (*dto.Histogram, error) {
		return scrapeHistogramSeries(ctx, httpClient, metricsURL, brainMetric, "brain", cfg.Brain)
	}
	res, err := driveJourney(ctx, &cfg, conns,
		func() { before, beforeErr = scrapeBrain() },
		func() { after, afterErr = scrapeBrain() })
	if err != nil {
		return nil, err
	}
	r := newJourneyReport(&cfg, nonce, res)
	switch {
	case afterErr != nil:
		r.warn("no brain time: %v", afterErr)
	case beforeErr != nil:
		// Not exposed yet when the brain had not run before the measured
		// period (no warmup): the histogram's whole content is the period's.
		r.warn("brain time counted from the server's start: at the start of the measured period, %v", beforeErr)
		r.Brain = bucketQuantiles(nil, after)
	default:
		r.Brain = bucketQuantiles(before, after)
	}
	r.judge(&cfg)
	return r, nil
}

// journeyResult is what the connections of one run counted, merged.
type journeyResult struct {
	counts                  journeyCounts
	errors                  map[string]int64
	ack, turn               *hdrhistogram.Histogram
	measured                time.Duration
	connectionErrors        int
	firstConnectionError    error
	missingAcks, missingRep int64
}

// driveJourney runs the connections for Warmup+Duration, drains and closes.
func driveJourney(ctx context.Context, cfg *JourneyConfig, conns []*journeyConn, atStart, atEnd func()) (*journeyResult, error) {
	clk := conns[0].clock
	clk.base = time.Now()
	clk.warmupEnd = int64(cfg.Warmup)
	clk.sendEnd = int64(cfg.Warmup + cfg.Duration)
	period := 1e9 * float64(cfg.Connections) / float64(cfg.Rate) // ns between turns of one connection
	stop := make(chan struct{})
	var writers, readers sync.WaitGroup
	for i, c := range conns {
		phase := int64(period * float64(i) / float64(len(conns)))
		readers.Go(c.read)
		writers.Go(func() { c.write(stop, period, phase) })
	}
	canceled := !sleepUntil(ctx, clk, clk.warmupEnd)
	if !canceled {
		atStart()
	}
	canceled = canceled || !sleepUntil(ctx, clk, clk.sendEnd)
	close(stop)
	if !canceled {
		atEnd()
	}
	drainEnd := time.Now().Add(drainTimeout)
	// A writer returns once its connection has nothing in flight.
	waitUntil(ctx, &writers, drainEnd)
	now := clk.now()
	for _, c := range conns {
		c.close()
	}
	writers.Wait()
	readers.Wait()
	if canceled {
		return nil, ctx.Err()
	}
	r := &journeyResult{
		errors: map[string]int64{}, measured: cfg.Duration,
		ack: newHistogram(), turn: newHistogram(),
	}
	for _, c := range conns {
		c.collect(r, now)
	}
	return r, nil
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, latencyMaxMicros, 3)
}
