package analytics

import (
	"cmp"
	"slices"
)

// Tally is a count per key with room for at most a fixed number of keys:
// a new key past the limit is counted under OtherKey. Paths carry a second
// count (resolved); other tallies leave it zero.
type Tally map[string]*Count

// Count is what a Tally holds per key.
type Count struct {
	N        uint64 `json:"n"`
	Resolved uint64 `json:"resolved,omitempty"`
}

// add counts one under key (resolved adds to the second count too), in
// room for limit keys besides OtherKey.
func (t Tally) add(key string, resolved bool, limit int) {
	c, ok := t[key]
	if !ok {
		if len(t) >= limit {
			key = OtherKey
			c = t[key]
		}
		if c == nil {
			c = &Count{}
			t[key] = c
		}
	}
	c.N++
	if resolved {
		c.Resolved++
	}
}

// merge adds o into t, keeping the limit: when the keys do not fit, the
// largest counts keep their keys and the rest go to OtherKey. limit <= 0
// merges without a limit (an answer's sum over partitions).
func (t Tally) merge(o Tally, limit int) {
	for k, c := range o {
		d, ok := t[k]
		if !ok {
			d = &Count{}
			t[k] = d
		}
		d.N += c.N
		d.Resolved += c.Resolved
	}
	if limit <= 0 || len(t) <= limit+1 {
		return
	}
	keys := t.sorted()
	other := t[OtherKey]
	if other == nil {
		other = &Count{}
	}
	kept := 0
	for _, k := range keys {
		if k == OtherKey {
			continue
		}
		if kept < limit {
			kept++
			continue
		}
		other.N += t[k].N
		other.Resolved += t[k].Resolved
		delete(t, k)
	}
	t[OtherKey] = other
}

// sorted is the keys by count, largest first, then by key.
func (t Tally) sorted() []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(t[b].N, t[a].N); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return keys
}
