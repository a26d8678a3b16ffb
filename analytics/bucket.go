package analytics

// Bucket holds the figures of the conversations that opened in one hour
// (or, once rolled up, one day), and of the offers sent and accepted in it.
type Bucket struct {
	Conversations   uint64 `json:"conversations"`
	Contained       uint64 `json:"contained"`
	ResolvedByAgent uint64 `json:"resolved_by_agent"`
	Abandoned       uint64 `json:"abandoned"`
	Unresolved      uint64 `json:"unresolved"`
	Untracked       uint64 `json:"untracked"`
	// Reopened counts resolved conversations whose customer opened another
	// conversation within FCRWindow of their end.
	Reopened uint64 `json:"reopened"`
	// Repeat counts conversations that opened within FCRWindow of the end
	// of their customer's previous one.
	Repeat         uint64 `json:"repeat"`
	Escalations    Tally  `json:"escalations,omitempty"`
	Resolution     Sketch `json:"resolution,omitempty"` // time to resolution, ms
	Paths          Tally  `json:"paths,omitempty"`
	DropOffs       Tally  `json:"drop_offs,omitempty"`
	OffersSent     Tally  `json:"offers_sent,omitempty"`
	OffersAccepted Tally  `json:"offers_accepted,omitempty"`
}

func newBucket() *Bucket {
	return &Bucket{Escalations: Tally{}, Resolution: Sketch{}, Paths: Tally{}, DropOffs: Tally{},
		OffersSent: Tally{}, OffersAccepted: Tally{}}
}

// fill makes the maps a decoded bucket may lack.
func (b *Bucket) fill() {
	for _, t := range []*Tally{&b.Escalations, &b.Paths, &b.DropOffs, &b.OffersSent, &b.OffersAccepted} {
		if *t == nil {
			*t = Tally{}
		}
	}
	if b.Resolution == nil {
		b.Resolution = Sketch{}
	}
}

// Resolved is the conversations resolved: contained or resolved by an agent.
func (b *Bucket) Resolved() uint64 { return b.Contained + b.ResolvedByAgent }

// Open is the conversations not ended (nor dropped from tracking).
func (b *Bucket) Open() uint64 {
	ended := b.Contained + b.ResolvedByAgent + b.Abandoned + b.Unresolved + b.Untracked
	if ended > b.Conversations {
		return 0
	}
	return b.Conversations - ended
}

// Merge adds o into b. bounded keeps each tally within its bucket limit
// (a roll-up); unbounded sums everything (an answer across partitions).
func (b *Bucket) Merge(o *Bucket, bounded bool) {
	b.Conversations += o.Conversations
	b.Contained += o.Contained
	b.ResolvedByAgent += o.ResolvedByAgent
	b.Abandoned += o.Abandoned
	b.Unresolved += o.Unresolved
	b.Untracked += o.Untracked
	b.Reopened += o.Reopened
	b.Repeat += o.Repeat
	b.Resolution.Merge(o.Resolution)
	limit := func(n int) int {
		if bounded {
			return n
		}
		return 0
	}
	b.Escalations.merge(o.Escalations, limit(ReasonsMax))
	b.Paths.merge(o.Paths, limit(PathsMax))
	b.DropOffs.merge(o.DropOffs, limit(DropOffsMax))
	b.OffersSent.merge(o.OffersSent, limit(OffersMax))
	b.OffersAccepted.merge(o.OffersAccepted, limit(OffersMax))
}
