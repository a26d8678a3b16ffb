package analytics

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Part is one partition's share of an answer for a window, or the sum of
// several (Merge): what a node computes for the partitions it hosts and
// sends to the place that merges.
type Part struct {
	Partitions     int                    `json:"partitions"`
	Figures        *Bucket                `json:"figures"`
	Stuck          map[string]*StuckGroup `json:"stuck,omitempty"`
	FCRProvisional bool                   `json:"fcr_provisional,omitempty"`
}

// StuckGroup is the conversations of one state and queue waiting past
// their queue's threshold now.
type StuckGroup struct {
	State         string `json:"state"`
	Queue         string `json:"queue"`
	Conversations uint64 `json:"conversations"`
	LongestMs     int64  `json:"longest_ms"`
}

// StuckAfter says how long a conversation of a queue may wait before it is
// stuck: the queue's callback_after, or StuckAfterDefault.
type StuckAfter func(queue string) time.Duration

// Part is the partition's figures of the conversations that opened in
// [since, until): the hour buckets from since's hour, and the day buckets
// from since's day (older figures are kept by day), that start before
// until. Stuck is as of now, whatever the window.
func (p *Projection) Part(since, until, now time.Time, stuckAfter StuckAfter) Part {
	part := Part{Partitions: 1, Figures: newBucket(), Stuck: map[string]*StuckGroup{},
		FCRProvisional: until.After(now.Add(-FCRWindow))}
	from, to := since.Unix()/3600, until.Unix()
	for h, b := range p.hours {
		if h >= from && h*3600 < to {
			part.Figures.Merge(b, false)
		}
	}
	for d, b := range p.days {
		if d >= dayOf(from) && d*3600 < to {
			part.Figures.Merge(b, false)
		}
	}
	nowMs := ms(now)
	for _, t := range p.tracked {
		if !t.waiting() || t.WaitingMs == 0 {
			continue
		}
		limit := StuckAfterDefault
		if stuckAfter != nil {
			if d := stuckAfter(t.Queue); d > 0 {
				limit = d
			}
		}
		waited := nowMs - t.WaitingMs
		if waited <= limit.Milliseconds() {
			continue
		}
		key := t.State + "\x00" + t.Queue
		g := part.Stuck[key]
		if g == nil {
			if len(part.Stuck) >= StuckMax {
				continue
			}
			g = &StuckGroup{State: t.State, Queue: t.Queue}
			part.Stuck[key] = g
		}
		g.Conversations++
		g.LongestMs = max(g.LongestMs, waited)
	}
	return part
}

// Merge sums parts: of the partitions of one node, or of every node.
func Merge(parts ...Part) Part {
	sum := Part{Figures: newBucket(), Stuck: map[string]*StuckGroup{}}
	for _, p := range parts {
		sum.Partitions += p.Partitions
		sum.FCRProvisional = sum.FCRProvisional || p.FCRProvisional
		if p.Figures != nil {
			f := *p.Figures
			f.fill()
			sum.Figures.Merge(&f, false)
		}
		for k, g := range p.Stuck {
			s := sum.Stuck[k]
			if s == nil {
				s = &StuckGroup{State: g.State, Queue: g.Queue}
				sum.Stuck[k] = s
			}
			s.Conversations += g.Conversations
			s.LongestMs = max(s.LongestMs, g.LongestMs)
		}
	}
	return sum
}

// Journeys is the answer of GET /v1/analytics/journeys (PROTOCOL section 10).
type Journeys struct {
	Since               time.Time         `json:"since"`
	Until               time.Time         `json:"until"`
	Conversations       uint64            `json:"conversations"`
	Outcomes            Outcomes          `json:"outcomes"`
	ContainmentRate     float64           `json:"containment_rate"`
	FCRRate             float64           `json:"fcr_rate"`
	FCRProvisional      bool              `json:"fcr_provisional"`
	RepeatContact7dRate float64           `json:"repeat_contact_7d_rate"`
	Escalations         map[string]uint64 `json:"escalations"`
	TimeToResolutionMs  Percentiles       `json:"time_to_resolution_ms"`
	Paths               []Path            `json:"paths"`
	DropOffs            []DropOff         `json:"drop_offs"`
	Stuck               []StuckGroup      `json:"stuck"`
	Offers              []OfferFigures    `json:"offers"`
	Partitions          int               `json:"partitions"`
}

// Outcomes of the window's conversations; they add up to Conversations.
type Outcomes struct {
	Contained       uint64 `json:"contained"`
	ResolvedByAgent uint64 `json:"resolved_by_agent"`
	Abandoned       uint64 `json:"abandoned"`
	Open            uint64 `json:"open"`
	Unresolved      uint64 `json:"unresolved"`
	Untracked       uint64 `json:"untracked"`
}

// Percentiles of time to resolution.
type Percentiles struct {
	P50 int64 `json:"p50"`
	P90 int64 `json:"p90"`
}

// Path is one of the most frequent journeys' step sequences.
type Path struct {
	Steps         []string `json:"steps"`
	Conversations uint64   `json:"conversations"`
	Resolved      uint64   `json:"resolved"`
}

// DropOff is the last step of abandoned journeys.
type DropOff struct {
	After         string `json:"after"`
	Conversations uint64 `json:"conversations"`
}

// OfferFigures is an offer's proactive sends and acceptances.
type OfferFigures struct {
	Offer    string `json:"offer"`
	Sent     uint64 `json:"sent"`
	Accepted uint64 `json:"accepted"`
}

// Answer turns a merged part into the endpoint's answer.
func (p Part) Answer(since, until time.Time) Journeys {
	f := p.Figures
	if f == nil {
		f = newBucket()
	}
	j := Journeys{Since: since, Until: until, Conversations: f.Conversations, Partitions: p.Partitions,
		Outcomes: Outcomes{Contained: f.Contained, ResolvedByAgent: f.ResolvedByAgent, Abandoned: f.Abandoned,
			Open: f.Open(), Unresolved: f.Unresolved, Untracked: f.Untracked},
		ContainmentRate:     rate(f.Contained, f.Conversations),
		FCRRate:             rate(f.Resolved()-min(f.Reopened, f.Resolved()), f.Resolved()),
		FCRProvisional:      p.FCRProvisional,
		RepeatContact7dRate: rate(f.Repeat, f.Conversations),
		Escalations:         map[string]uint64{},
		TimeToResolutionMs:  Percentiles{P50: f.Resolution.Quantile(0.5), P90: f.Resolution.Quantile(0.9)},
		Paths:               []Path{}, DropOffs: []DropOff{}, Stuck: []StuckGroup{}, Offers: []OfferFigures{},
	}
	for k, c := range f.Escalations {
		j.Escalations[k] = c.N
	}
	for _, k := range f.Paths.sorted() {
		if k == OtherKey {
			continue
		}
		if len(j.Paths) == TopPaths {
			break
		}
		c := f.Paths[k]
		j.Paths = append(j.Paths, Path{Steps: pathSteps(k), Conversations: c.N, Resolved: c.Resolved})
	}
	for _, k := range f.DropOffs.sorted() {
		if k == OtherKey {
			continue
		}
		if len(j.DropOffs) == TopDropOffs {
			break
		}
		j.DropOffs = append(j.DropOffs, DropOff{After: k, Conversations: f.DropOffs[k].N})
	}
	for _, g := range p.Stuck {
		j.Stuck = append(j.Stuck, *g)
	}
	slices.SortFunc(j.Stuck, func(a, b StuckGroup) int {
		return cmp.Or(cmp.Compare(b.LongestMs, a.LongestMs), cmp.Compare(a.Queue, b.Queue), cmp.Compare(a.State, b.State))
	})
	offers := map[string]*OfferFigures{}
	for k, c := range f.OffersSent {
		offers[k] = &OfferFigures{Offer: k, Sent: c.N}
	}
	for k, c := range f.OffersAccepted {
		if offers[k] == nil {
			offers[k] = &OfferFigures{Offer: k}
		}
		offers[k].Accepted = c.N
	}
	for _, o := range offers {
		j.Offers = append(j.Offers, *o)
	}
	slices.SortFunc(j.Offers, func(a, b OfferFigures) int {
		return cmp.Or(cmp.Compare(b.Sent, a.Sent), cmp.Compare(a.Offer, b.Offer))
	})
	return j
}

// rate is n/of rounded to 4 decimals; 0 when of is 0.
func rate(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(of)*1e4) / 1e4
}
