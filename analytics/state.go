package analytics

import (
	"encoding/json"
	"fmt"
	"time"
)

// stateVersion is the version of the encoding Encode writes.
const stateVersion = 2 // 2: conversations by hash (1 named them, and so their customers)

// state is a projection as saved: everything it needs to continue where it
// was, with its position.
type state struct {
	Version  int                 `json:"version"`
	Position time.Time           `json:"position"`
	Hours    map[int64]*Bucket   `json:"hours"`
	Days     map[int64]*Bucket   `json:"days"`
	Tracked  map[uint64]*tracked `json:"tracked"`
	Seen     map[uint64]seenSeq  `json:"seen"`
	Known    []string            `json:"known_offers,omitempty"`
}

// Encode is the projection's state, to save; Decode reads it back.
func (p *Projection) Encode() ([]byte, error) {
	s := state{Version: stateVersion, Position: p.high, Hours: p.hours, Days: p.days, Tracked: p.tracked, Seen: p.seen}
	for o := range p.known {
		s.Known = append(s.Known, o)
	}
	return json.Marshal(s)
}

// Decode returns the projection saved by Encode.
func Decode(b []byte) (*Projection, error) {
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("analytics: decode state: %w", err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("analytics: state version %d, want %d", s.Version, stateVersion)
	}
	p := New()
	p.high = s.Position
	for h, b := range s.Hours {
		b.fill()
		p.hours[h] = b
	}
	for d, b := range s.Days {
		b.fill()
		p.days[d] = b
	}
	for h, t := range s.Tracked {
		if t != nil && len(p.tracked) < TrackedMax {
			p.tracked[h] = t
		}
	}
	for h, v := range s.Seen {
		if len(p.seen) < SeenMax {
			p.seen[h] = v
		}
	}
	for _, o := range s.Known {
		if len(p.known) < KnownOffersMax {
			p.known[o] = struct{}{}
		}
	}
	return p, nil
}
