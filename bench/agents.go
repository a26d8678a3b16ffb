package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// AgentsConfig is one `throughline bench agents` run: escalations routed
// to agent desks, and the assigned customers' events reaching the desks,
// open loop. Start from DefaultAgents(); RunAgents uses the fields as
// given after Validate. cmd/ only binds flags.
type AgentsConfig struct {
	// Target is the server's base URL. Its config must be what
	// ServerSections states: agents AgentID(0..Agents-1), each with the
	// token DeskTokenPrefix+id, and a rule routing escalate.requested to a
	// queue they serve, bypassing any bot. Required.
	Target string
	// Token is a channel-role bearer token. Default "".
	Token string
	// DeskTokenPrefix: agent id's desk token is DeskTokenPrefix + id.
	// Default "desk-secret-".
	DeskTokenPrefix string
	// Agents are the desks connected, each available with AgentCapacity.
	// Default 200; 1..AgentsMax.
	Agents int
	// AgentCapacity is each agent's capacity (conversations at once).
	// Default 5; 1..AgentCapacityMax.
	AgentCapacity int
	// Rate is the offered load in escalations per second, spread evenly
	// over the connections; each escalation is a new customer's
	// escalate.requested. Default 500; 1..AgentsRateMax.
	Rate int
	// EventsRate is the inbound message.received events per second sent to
	// assigned customers in total: conversation g gets
	// floor((g+1)*EventsRate/Rate) - floor(g*EventsRate/Rate) of them, so
	// each gets EventsRate/Rate on average. Default 1000;
	// 0..Rate*EventsPerConversationMax.
	EventsRate int
	// EventGap is the time between an assignment (the accept's ok) and
	// the first event of the conversation, and between its events.
	// Default 50ms; 1ms..10s.
	EventGap time.Duration
	// Connections are channel WebSockets; customer escalations and events
	// of one customer travel on one connection. Default 8;
	// 1..ConnectionsMax.
	Connections int
	// Duration is the measured period, after Warmup. Default 60s.
	Duration time.Duration
	// Warmup runs the same load first, excluded from the figures.
	// Default 5s.
	Warmup time.Duration
}

// Limits of an agents run.
const (
	// AgentsMax bounds AgentsConfig.Agents (agent ids have three digits
	// up to 999).
	AgentsMax = 10_000
	// AgentCapacityMax bounds AgentsConfig.AgentCapacity (the server's
	// journey.CapacityMax).
	AgentCapacityMax = 1000
	// AgentsRateMax bounds AgentsConfig.Rate.
	AgentsRateMax = 100_000
	// EventsPerConversationMax bounds the events one conversation gets:
	// they are tracked in a 64-bit mask.
	EventsPerConversationMax = 64
	// agentsQueue is the queue of a started server's escalations.
	agentsQueue = "desk"
	// agentsEscalation is the event type the route rule matches.
	agentsEscalation = "escalate.requested"
	// deskOutMax bounds the frames waiting for a desk's writer: at most
	// an accept and a wrap-up per conversation the desk holds or is
	// offered.
	deskOutMax = 4 * AgentCapacityMax
)

// The bars of the issue: 200 agents, 500 escalations/s, an event of an
// assigned customer on the agent's screen under 5 ms at p99, an
// escalation offered to an agent under 10 ms at p99.
const (
	BarOfferP99  = 10 * time.Millisecond
	BarScreenP99 = 5 * time.Millisecond
)

// DefaultAgents is the default agents workload (Target still to be set).
func DefaultAgents() AgentsConfig {
	return AgentsConfig{
		DeskTokenPrefix: "desk-secret-", Agents: 200, AgentCapacity: 5,
		Rate: 500, EventsRate: 1000, EventGap: 50 * time.Millisecond, Connections: 8,
		Duration: 60 * time.Second, Warmup: 5 * time.Second,
	}
}

// AgentID is the id of desk i: a000, a001, ...
func AgentID(i int) string { return fmt.Sprintf("a%03d", i) }

// Validate lists every problem.
func (c *AgentsConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("bench: "+format, args...)) }
	if _, _, err := targetURLs(c.Target); err != nil {
		bad("target: %v", err)
	}
	if c.DeskTokenPrefix == "" || strings.ContainsAny(c.DeskTokenPrefix, " \t\r\n\"'") {
		bad("desk token prefix %q: must be printable, without spaces or quotes", c.DeskTokenPrefix)
	}
	if c.Agents < 1 || c.Agents > AgentsMax {
		bad("agents %d: must be 1..%d", c.Agents, AgentsMax)
	}
	if c.AgentCapacity < 1 || c.AgentCapacity > AgentCapacityMax {
		bad("agent capacity %d: must be 1..%d", c.AgentCapacity, AgentCapacityMax)
	}
	if c.Rate < 1 || c.Rate > AgentsRateMax {
		bad("rate %d: must be 1..%d escalations/s", c.Rate, AgentsRateMax)
	} else if c.EventsRate < 0 || c.EventsRate > c.Rate*EventsPerConversationMax {
		bad("events rate %d: must be 0..%d (at most %d events a conversation)", c.EventsRate, c.Rate*EventsPerConversationMax, EventsPerConversationMax)
	}
	if c.EventGap < time.Millisecond || c.EventGap > 10*time.Second {
		bad("event gap %v: must be 1ms..10s", c.EventGap)
	}
	if c.Connections < 1 || c.Connections > ConnectionsMax {
		bad("connections %d: must be 1..%d", c.Connections, ConnectionsMax)
	}
	if c.Duration <= 0 || c.Duration > DurationMax {
		bad("duration %v: must be over 0 and at most %v", c.Duration, DurationMax)
	}
	if c.Warmup < 0 || c.Warmup > DurationMax {
		bad("warmup %v: must be 0..%v", c.Warmup, DurationMax)
	}
	return errors.Join(errs...)
}

// ServerSections are what a server needs for the run: the desks' agent
// tokens (lines of auth.tokens) and the agents, queues and rules sections.
// The queue's offer_timeout is long: desks accept at once, and a revoked
// offer shows in the report.
func (c *AgentsConfig) ServerSections() (tokens, sections string) {
	var t, s strings.Builder
	s.WriteString("agents:\n")
	for i := range c.Agents {
		id := AgentID(i)
		fmt.Fprintf(&t, "    - {token: %q, role: agent, agent: %s}\n", c.DeskTokenPrefix+id, id)
		fmt.Fprintf(&s, "  - {id: %s, capacity: %d}\n", id, c.AgentCapacity)
	}
	fmt.Fprintf(&s, `queues:
  - {name: %s, offer_timeout: 30s}
rules:
  - id: escalate
    when: "event.type == '%s'"
    do: [{route: {queue: %s, bypass_bot: true}}]
`, agentsQueue, agentsEscalation, agentsQueue)
	return t.String(), s.String()
}

// RunAgents runs the agents workload. It connects the Agents desks and
// makes each available, opens Connections channel WebSockets, and for
// Warmup+Duration sends Rate escalations per second, each a new
// customer's escalate.requested. Desks accept every offer at once; once
// the accept is answered ok the customer's events follow on its
// connection, EventGap apart, and once the desk has them all it wraps the
// conversation up, which frees the agent. Then it waits up to 5 s for the
// conversations still open.
//
// It fails when the config is invalid, a connection cannot be opened, a
// desk's presence is refused, or ctx ends; what goes missing is counted
// in the report.
func RunAgents(ctx context.Context, cfg AgentsConfig) (*AgentsReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	channelURL, metricsURL, err := targetURLs(cfg.Target)
	if err != nil {
		return nil, err
	}
	deskURL := strings.TrimSuffix(channelURL, "/v1/channels/ws") + "/v1/agents/ws"
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	run := newAgentsRun(&cfg, nonce)
	desks, err := dialDesks(ctx, run, deskURL)
	if err != nil {
		return nil, err
	}
	channels, err := dialAgentsChannels(ctx, run, channelURL)
	if err != nil {
		for _, d := range desks {
			d.close()
		}
		return nil, err
	}
	// The server's own figures over the measured period: where the
	// time goes when a bar fails.
	httpClient := newHTTPClient(scrapeTimeout)
	var before, after [2]*dto.Histogram
	scrapeServer := func(into *[2]*dto.Histogram) {
		for i, name := range agentsServerMetrics {
			into[i], _ = scrapeHistogramSeries(ctx, httpClient, metricsURL, name, "", "")
		}
	}
	res, err := driveAgents(ctx, run, channels, desks, func() { scrapeServer(&before) }, func() { scrapeServer(&after) })
	if err != nil {
		return nil, err
	}
	r := newAgentsReport(&cfg, nonce, res)
	for i, into := range []**BucketQuantiles{&r.StoreCommit, &r.Activation} {
		if after[i] == nil {
			r.warn("%s not read from the server", agentsServerMetrics[i])
			continue
		}
		*into = bucketQuantiles(before[i], after[i]) // nil before: counted from the start
	}
	r.judge(&cfg)
	return r, nil
}

// agentsServerMetrics are the server's histograms the report reads: a
// synced commit of the store writer (every step of both paths waits for
// one) and a customer's activation (every escalation activates a new
// customer).
var agentsServerMetrics = [2]string{"throughline_store_sync_seconds", activationMetric}

// dialDesks opens the desks, a few at a time, and makes each available.
func dialDesks(ctx context.Context, run *agentsRun, deskURL string) ([]*agentsDesk, error) {
	desks := make([]*agentsDesk, run.cfg.Agents)
	errs := make([]error, run.cfg.Agents)
	sem := make(chan struct{}, dialParallel)
	var wg sync.WaitGroup
	for i := range desks {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			id := AgentID(i)
			header := http.Header{}
			header.Set("Authorization", "Bearer "+run.cfg.DeskTokenPrefix+id)
			ws, err := dialJourneyConn(ctx, deskURL, header)
			if err == nil {
				err = presence(ws, run.cfg.AgentCapacity)
				if err != nil {
					_ = ws.Close()
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("bench: desk %s: %w", id, err)
				return
			}
			desks[i] = newAgentsDesk(run, ws, id)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, d := range desks {
			if d != nil {
				d.close()
			}
		}
		return nil, err
	}
	return desks, nil
}

// agentsResult is what one run counted, once its goroutines returned.
type agentsResult struct {
	counts           agentsCounts
	errors           map[string]int64
	lat              agentsLatencies
	measured         time.Duration
	open             int
	connectionErrors int
	firstConnError   error
}

// driveAgents runs the channels and desks for Warmup+Duration, waits for
// the open conversations, and closes everything.
func driveAgents(ctx context.Context, run *agentsRun, channels []*agentsChannel, desks []*agentsDesk, atStart, atEnd func()) (*agentsResult, error) {
	cfg, clk := run.cfg, run.clock
	clk.base = time.Now()
	clk.warmupEnd = int64(cfg.Warmup)
	clk.sendEnd = int64(cfg.Warmup + cfg.Duration)
	period := 1e9 * float64(cfg.Connections) / float64(cfg.Rate) // ns between escalations of one connection
	stop, done := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for _, d := range desks {
		wg.Go(d.read)
		wg.Go(func() { d.write(done) })
	}
	for i, c := range channels {
		phase := int64(period * float64(i) / float64(len(channels)))
		wg.Go(c.read)
		wg.Go(func() { c.write(stop, done, period, phase) })
	}
	canceled := !sleepUntil(ctx, clk, clk.warmupEnd)
	if !canceled {
		atStart()
	}
	canceled = canceled || !sleepUntil(ctx, clk, clk.sendEnd)
	close(stop)
	if !canceled {
		atEnd()
		run.waitDrained(ctx, time.Now().Add(drainTimeout))
	}
	now := clk.now()
	close(done)
	for _, c := range channels {
		c.close()
	}
	for _, d := range desks {
		d.close()
	}
	wg.Wait()
	if canceled || ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res := run.collect(now)
	for _, c := range channels {
		res.connErr(c.writeErr, c.readErr)
	}
	for _, d := range desks {
		res.connErr(d.writeErr, d.readErr)
	}
	return res, nil
}

func (r *agentsResult) connErr(errs ...error) {
	for _, err := range errs {
		if err != nil {
			r.connectionErrors++
			if r.firstConnError == nil {
				r.firstConnError = err
			}
		}
	}
}
