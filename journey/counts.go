package journey

import (
	"slices"
	"time"
)

// Bounds of the derived data behind rules' count(): the latest
// CountPerTypeMax recorded_at times of each of CountTypesMax event types
// (the least recently seen type gives way). A count over a window holding
// more events than that answers CountPerTypeMax: rules compare counts with
// small thresholds.
const (
	CountTypesMax   = 32
	CountPerTypeMax = 64
)

// eventCounts keeps, per event type, the recorded_at of its latest events
// (unix ns, oldest first). It is derived from the events, so Apply keeps it
// and a rebuild reproduces it.
type eventCounts struct {
	types []typeTimes // most recently seen last
}

type typeTimes struct {
	Type  string  `json:"type"`
	Times []int64 `json:"times"`
	// next: once Times holds CountPerTypeMax it is a ring, its oldest at
	// next, where the next time goes (shifting the 63 others each time
	// was ~1% of the server's CPU in bench ingest). ordered puts it back
	// oldest first for a snapshot.
	next int
}

func (ec *eventCounts) add(typ string, at time.Time) {
	i := ec.find(typ)
	var tt typeTimes
	if i >= 0 {
		tt = ec.types[i]
		ec.types = append(ec.types[:i], ec.types[i+1:]...)
	} else {
		tt.Type = Intern(typ)
		if len(ec.types) >= CountTypesMax {
			ec.types = append(ec.types[:0], ec.types[1:]...)
		}
	}
	tt.push(at.UnixNano())
	ec.types = append(ec.types, tt)
}

// push adds t, in place of the oldest once there are CountPerTypeMax. The
// slice grows by a quarter (at least four), to the whole of the
// allocator's size class: append's doubling left a customer's 20 message
// times in room for 32.
func (tt *typeTimes) push(t int64) {
	times := tt.Times
	switch n := len(times); {
	case n == CountPerTypeMax:
		times[tt.next] = t
		tt.next = (tt.next + 1) % n
		return
	case n > CountPerTypeMax: // a snapshot's, oldest first: the latest go on
		tt.ordered()
		times = append(times[:0], times[n-CountPerTypeMax+1:]...)
	}
	if len(times) == cap(times) {
		grown := slices.Grow([]int64(nil), min(len(times)+max(len(times)/4, 4), CountPerTypeMax))
		times = append(grown, times...)
	}
	tt.Times = append(times, t)
}

// ordered puts the times back oldest first.
func (tt *typeTimes) ordered() {
	if tt.next > 0 {
		n := tt.next
		slices.Reverse(tt.Times[:n])
		slices.Reverse(tt.Times[n:])
		slices.Reverse(tt.Times)
		tt.next = 0
	}
}

// ordered puts every type's times oldest first (a snapshot's order).
func (ec *eventCounts) ordered() {
	for i := range ec.types {
		ec.types[i].ordered()
	}
}

func (ec *eventCounts) find(typ string) int {
	for i := range ec.types {
		if ec.types[i].Type == typ {
			return i
		}
	}
	return -1
}

// count is how many events of the type were recorded in (now-window, now].
func (ec *eventCounts) count(typ string, window time.Duration, now time.Time) int {
	i := ec.find(typ)
	if i < 0 {
		return 0
	}
	from, to := now.Add(-window).UnixNano(), now.UnixNano()
	n := 0
	for _, t := range ec.types[i].Times {
		if t > from && t <= to {
			n++
		}
	}
	return n
}

// Count is how many events of a type the customer recorded in the window
// before now, from the bounded derived data (never the timeline).
func (c *Customer) Count(typ string, window time.Duration, now time.Time) int {
	return c.counts.count(typ, window, now)
}
