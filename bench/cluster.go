package bench

// bench cluster (issue 8): ingest through every node of a cluster, with
// single and batch frames, next to one node measured in the same run; then
// a kill -9 of the node leading the most partitions under load: how long
// until every partition is led again, what the clients saw, and whether
// everything acknowledged is stored.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClusterTarget is one node the bench drives: its base URL, and for the
// kill the means to kill it (nil: the node is not the bench's to kill).
type ClusterTarget struct {
	Name string
	URL  string
	Kill func() error
}

// ClusterConfig is one `throughline bench cluster` run.
type ClusterConfig struct {
	// Load is the workload of every phase (Connections, Customers, Window,
	// EventBytes, Duration, Warmup); Target is not used.
	Load Config
	// Batch is the batch frame size of the batch phases. Default 100.
	Batch int
	// Single, when set, is one node measured with the same load first.
	Single *ClusterTarget
	// Nodes are the cluster's nodes; connections are spread over them.
	Nodes []ClusterTarget
	// Token is the channel token; ReadToken a supervisor's (GET
	// /v1/cluster and customers' seqs).
	Token, ReadToken string
	// FailoverRate is the open-loop rate of the failover phase (events/s);
	// the kill comes after a third of Load.Duration. Default 5000.
	FailoverRate int
	// Kill runs the failover phase. Default true.
	Kill bool
}

// ClusterReport is the run's figures.
type ClusterReport struct {
	Nodes    int          `json:"nodes"`
	Rows     []ClusterRow `json:"rows"`
	Failover *Failover    `json:"failover,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
}

// ClusterRow is one measured phase.
type ClusterRow struct {
	Phase           string           `json:"phase"`
	Nodes           int              `json:"nodes"`
	BatchSize       int              `json:"batch_size"`
	EventsPerSecond float64          `json:"events_per_second"`
	Ratio           float64          `json:"ratio_to_single,omitempty"`
	AckLatency      Latency          `json:"ack_latency"`
	Errors          map[string]int64 `json:"errors,omitempty"`
	Lost            int64            `json:"lost"`
}

// Failover is what a kill -9 of the busiest leader looked like.
type Failover struct {
	Killed            string  `json:"killed"`
	PartitionsLed     int     `json:"partitions_led"`
	FailoverSeconds   float64 `json:"failover_seconds"` // kill -> every partition led by a live node
	Rate              int     `json:"rate"`
	Acked             int64   `json:"acked"`
	Unavailable       int64   `json:"unavailable"` // answers unavailable
	LostAnswers       int64   `json:"lost_answers"`
	DroppedConns      int     `json:"dropped_connections"`
	MaxAckLatencyMs   float64 `json:"max_ack_latency_ms"`
	Stored            int64   `json:"stored"` // events stored for the phase's customers
	AckedNotStored    int64   `json:"acked_not_stored"`
	CustomersVerified int     `json:"customers_verified"`
}

// RunCluster runs the phases.
func RunCluster(ctx context.Context, cc ClusterConfig) (*ClusterReport, error) {
	if len(cc.Nodes) == 0 {
		return nil, errors.New("bench cluster: no nodes")
	}
	if cc.Batch <= 1 {
		cc.Batch = 100
	}
	if cc.FailoverRate <= 0 {
		cc.FailoverRate = 5000
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	rep := &ClusterReport{Nodes: len(cc.Nodes)}
	single := map[int]float64{}
	phase := func(name string, targets []ClusterTarget, batch int) (*driveResult, error) {
		cfg := cc.Load
		cfg.BatchSize = batch
		if batch > 1 {
			cfg.Window = max(cfg.Window, 4*batch)
		}
		res, err := driveTargets(ctx, cfg, targets, cc.Token, nonce+"-"+name, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		row := ClusterRow{Phase: name, Nodes: len(targets), BatchSize: max(batch, 1),
			EventsPerSecond: float64(res.measuredAcked) / res.measured.Seconds(),
			AckLatency:      newLatency(res.latency), Errors: res.errors, Lost: res.lost}
		if len(targets) == 1 {
			single[row.BatchSize] = row.EventsPerSecond
		} else if s := single[row.BatchSize]; s > 0 {
			row.Ratio = row.EventsPerSecond / s
		}
		rep.Rows = append(rep.Rows, row)
		return res, nil
	}
	for _, batch := range []int{1, cc.Batch} {
		if cc.Single != nil {
			if _, err := phase("one node", []ClusterTarget{*cc.Single}, batch); err != nil {
				return nil, err
			}
		}
		if _, err := phase("cluster", cc.Nodes, batch); err != nil {
			return nil, err
		}
	}
	if cc.Kill {
		fo, err := runFailover(ctx, cc, nonce+"-failover")
		if err != nil {
			rep.Warnings = append(rep.Warnings, "failover: "+err.Error())
		}
		rep.Failover = fo
	}
	return rep, nil
}

// driveTargets is one drive with the connections spread over the targets.
func driveTargets(ctx context.Context, cfg Config, targets []ClusterTarget, token, prefix string, until func(context.Context, *clock), atStart func()) (*driveResult, error) {
	var urls []string
	for _, t := range targets {
		ws, _, err := targetURLs(t.URL)
		if err != nil {
			return nil, err
		}
		urls = append(urls, ws)
	}
	dc := driveConfig{cfg: cfg, wsURL: urls[0], wsURLs: urls, nonce: prefix, drain: 10 * time.Second,
		customerPrefix: prefix + "-c-", until: until, atMeasureStart: atStart}
	return drive(ctx, dc, token)
}

// clusterView is GET /v1/cluster.
type clusterView struct {
	Partitions []struct {
		Leader string `json:"leader"`
	} `json:"partitions"`
}

func getJSON(ctx context.Context, url, token string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := newHTTPClient(2 * time.Second)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.Unmarshal(b, out)
}

// runFailover drives the cluster at a fixed rate, kills the node leading
// the most partitions a third of the way in, measures until every
// partition is led again, and checks every customer's stored count
// against the acknowledgements.
func runFailover(ctx context.Context, cc ClusterConfig, prefix string) (*Failover, error) {
	var v clusterView
	if _, err := getJSON(ctx, cc.Nodes[0].URL+"/v1/cluster", cc.ReadToken, &v); err != nil {
		return nil, err
	}
	leads := map[string]int{}
	for _, p := range v.Partitions {
		leads[p.Leader]++
	}
	var victim *ClusterTarget
	var rest []ClusterTarget
	for i := range cc.Nodes {
		n := &cc.Nodes[i]
		if n.Kill != nil && (victim == nil || leads[n.Name] > leads[victim.Name]) {
			victim = n
		}
	}
	if victim == nil {
		return nil, errors.New("no node the bench may kill")
	}
	for _, n := range cc.Nodes {
		if n.Name != victim.Name {
			rest = append(rest, n)
		}
	}
	fo := &Failover{Killed: victim.Name, PartitionsLed: leads[victim.Name], Rate: cc.FailoverRate}
	cfg := cc.Load
	cfg.Rate, cfg.BatchSize = cc.FailoverRate, 0
	var mu sync.Mutex
	var failErr error
	until := func(ctx context.Context, clk *clock) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(cfg.Duration / 3):
		}
		killed := time.Now()
		if err := victim.Kill(); err != nil {
			mu.Lock()
			failErr = fmt.Errorf("kill %s: %w", victim.Name, err)
			mu.Unlock()
			return
		}
		for ctx.Err() == nil {
			var v clusterView
			if code, err := getJSON(ctx, rest[0].URL+"/v1/cluster", cc.ReadToken, &v); err == nil && code == 200 {
				ok := len(v.Partitions) > 0
				for _, p := range v.Partitions {
					if p.Leader == "" || p.Leader == victim.Name {
						ok = false
					}
				}
				if ok {
					fo.FailoverSeconds = time.Since(killed).Seconds()
					break
				}
			}
			if time.Since(killed) > 30*time.Second {
				mu.Lock()
				failErr = errors.New("partitions not led again within 30 s")
				mu.Unlock()
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
		case <-time.After(cfg.Duration * 2 / 3):
		}
	}
	res, err := driveTargets(ctx, cfg, cc.Nodes, cc.Token, prefix, until, nil)
	if err != nil {
		return fo, err
	}
	fo.Acked = res.acked
	fo.Unavailable = res.errors["unavailable"]
	fo.LostAnswers = res.lost
	fo.DroppedConns = res.connectionErrors
	fo.MaxAckLatencyMs = float64(res.latency.Max()) / 1000
	// Stored against acknowledged, customer by customer through a survivor.
	for i := range cfg.Customers {
		customer := prefix + "-c-" + strconv.Itoa(i)
		var c struct {
			Seq uint64 `json:"seq"`
		}
		code, err := getJSON(ctx, rest[0].URL+"/v1/customers/"+customer, cc.ReadToken, &c)
		if err != nil {
			return fo, fmt.Errorf("customer %s: %w", customer, err)
		}
		if code == 200 {
			fo.Stored += int64(c.Seq)
		}
		fo.CustomersVerified++
	}
	if acked := res.acked - res.duplicates; fo.Stored < acked {
		fo.AckedNotStored = acked - fo.Stored
	}
	mu.Lock()
	defer mu.Unlock()
	return fo, failErr
}

// Markdown renders the report.
func (r *ClusterReport) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## bench cluster: %d nodes\n\n", r.Nodes)
	b.WriteString("| phase | nodes | frames | acked events/s | vs one node | ack p50 | p99 | p999 | errors | lost |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		frames := "single"
		if row.BatchSize > 1 {
			frames = "batch " + strconv.Itoa(row.BatchSize)
		}
		ratio := ""
		if row.Ratio > 0 {
			ratio = fmt.Sprintf("%.2fx", row.Ratio)
		}
		var errs []string
		for code, n := range row.Errors {
			errs = append(errs, fmt.Sprintf("%s %d", code, n))
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %d |\n", row.Phase, row.Nodes, frames,
			formatCount(row.EventsPerSecond), ratio, usText(row.AckLatency.P50Us), usText(row.AckLatency.P99Us), usText(row.AckLatency.P999Us),
			strings.Join(errs, ", "), row.Lost)
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(&b, "\n### kill -9 of %s (leading %d partitions) at %d events/s\n\n", f.Killed, f.PartitionsLed, f.Rate)
		fmt.Fprintf(&b, "- failover (kill to every partition led by a live node): **%.2f s**\n", f.FailoverSeconds)
		fmt.Fprintf(&b, "- clients: %d acked, %d answered unavailable (safe to send again), %d unanswered when their connection dropped, %d connections dropped (those to the killed node); longest wait for one ack %.0f ms\n",
			f.Acked, f.Unavailable, f.LostAnswers, f.DroppedConns, f.MaxAckLatencyMs)
		verdict := "nothing acknowledged was lost"
		if f.AckedNotStored > 0 {
			verdict = fmt.Sprintf("**%d acknowledged events are missing**", f.AckedNotStored)
		}
		fmt.Fprintf(&b, "- stored for the phase's %d customers: %d events; %s\n", f.CustomersVerified, f.Stored, verdict)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(&b, "\nwarning: %s\n", warn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func usText(us int64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.1f ms", float64(us)/1000)
	}
	return fmt.Sprintf("%d µs", us)
}
