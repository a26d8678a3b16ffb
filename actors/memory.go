package actors

// The memory budget (node.memory_limit). One goroutine samples the memory
// the node holds every MemoryConfig.Interval from runtime/metrics: the live
// heap as of the last collection plus goroutine stacks (what the program
// keeps, not garbage waiting for the collector; reading it is cheap and
// stops nothing, unlike runtime.ReadMemStats). Past the high-water mark it
// raises a flag that the gateway reads for every new event and connection
// (MemoryPressure: answered unavailable), and every MemoryConfig.Round it
// passivates idle customers, least recently active first, in proportion to
// how far above the low-water mark the node is. A round starts with a
// collection (runtime.GC): the live heap is only measured by one, and a
// node that refuses work allocates too little to start one soon. Below the
// low-water mark the flag goes down and work is accepted again.

import (
	"math"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// MemoryConfig is the node's memory budget. The zero value of a field
// means its default.
type MemoryConfig struct {
	// Limit is the budget in bytes; 0: none (no admission by memory).
	Limit int64
	// High and Low are the marks, as fractions of Limit: at High new work
	// is refused and customers passivate until the node holds less than
	// Low. Defaults 0.85 and 0.75.
	High, Low float64
	// Interval is how often memory is sampled. Default 100ms.
	Interval time.Duration
	// Round is how often, under pressure, memory is measured afresh and
	// customers passivated. Default 1s.
	Round time.Duration
}

func (c *MemoryConfig) ensureDefaults() {
	if c.High <= 0 {
		c.High = 0.85
	}
	if c.Low <= 0 {
		c.Low = 0.75
	}
	if c.Interval <= 0 {
		c.Interval = 100 * time.Millisecond
	}
	if c.Round <= 0 {
		c.Round = time.Second
	}
}

// memoryGuard is the sampling goroutine's state; pressure and used are
// read by any goroutine.
type memoryGuard struct {
	rt        *Runtime
	cfg       MemoryConfig
	high, low uint64 // bytes
	samples   []metrics.Sample
	pressure  atomic.Bool
	used      atomic.Uint64 // at the last sample
	stop      chan struct{}
	done      chan struct{}
}

// MemoryInUse is what the budget counts: the live heap as of the last
// collection plus goroutine stacks, in bytes.
func MemoryInUse() uint64 {
	s := memorySamples()
	metrics.Read(s)
	return memoryOf(s)
}

func memorySamples() []metrics.Sample {
	return []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
}

func memoryOf(s []metrics.Sample) uint64 {
	var n uint64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			n += x.Value.Uint64()
		}
	}
	return n
}

func startMemoryGuard(rt *Runtime, cfg MemoryConfig) *memoryGuard {
	g := &memoryGuard{rt: rt, cfg: cfg, samples: memorySamples(),
		high: uint64(float64(cfg.Limit) * cfg.High), low: uint64(float64(cfg.Limit) * cfg.Low),
		stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

func (g *memoryGuard) run() {
	defer close(g.done)
	tick := time.NewTicker(g.cfg.Interval)
	defer tick.Stop()
	var lastRound time.Time
	rounds := 0 // under this pressure so far
	for {
		select {
		case <-g.stop:
			return
		case <-tick.C:
		}
		used := g.sample()
		if !g.pressure.Load() {
			if used < g.high {
				continue
			}
			g.pressure.Store(true)
			g.rt.cfg.Logger.Warn("memory budget: past the high-water mark; refusing new work and passivating customers",
				"used_bytes", used, "high_bytes", g.high, "limit_bytes", g.cfg.Limit)
			lastRound, rounds = time.Time{}, 0
		}
		if time.Since(lastRound) < g.cfg.Round {
			continue
		}
		lastRound = time.Now()
		runtime.GC()
		if used = g.sample(); used < g.low {
			g.pressure.Store(false)
			g.rt.cfg.Logger.Info("memory budget: below the low-water mark; accepting work again", "used_bytes", used, "low_bytes", g.low)
			continue
		}
		rounds++
		g.rt.shed(shedShare(used, g.low, rounds))
	}
}

func (g *memoryGuard) sample() uint64 {
	metrics.Read(g.samples)
	used := memoryOf(g.samples)
	g.used.Store(used)
	return used
}

// shedShare is the share of the resident customers to passivate in the
// given round of a pressure, when used bytes are held and low is the goal:
// the share of what is used that the excess is, a quarter more, doubled
// with every round that did not bring the node below low (not all that is
// used is customers': connections and the store hold the rest).
func shedShare(used, low uint64, round int) float64 {
	if used <= low {
		return 0
	}
	share := float64(used-low) / float64(used) * 1.25
	return min(share*math.Exp2(float64(min(round, 16)-1)), 1)
}

func (g *memoryGuard) close() {
	close(g.stop)
	<-g.done
}

// shed asks every hosted partition to passivate a share (0 to 1) of its
// resident customers, least recently active first.
func (r *Runtime) shed(share float64) {
	if share <= 0 {
		return
	}
	for p := range r.parts {
		if h := r.hostOf(p); h != nil {
			r.system.Root.Send(h, &passivateLRU{share: share})
		}
	}
}

// MemoryPressure reports whether the node is past its memory budget's
// high-water mark and not yet back below the low one: new work is then
// refused (unavailable).
func (r *Runtime) MemoryPressure() bool {
	return r.memory != nil && r.memory.pressure.Load()
}

// MemoryUsed is the memory the budget counted at its last sample, and the
// budget (0: none).
func (r *Runtime) MemoryUsed() (used uint64, limit int64) {
	if r.memory == nil {
		return MemoryInUse(), 0
	}
	return r.memory.used.Load(), r.cfg.Memory.Limit
}
