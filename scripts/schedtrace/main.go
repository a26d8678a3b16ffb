// Command schedtrace reads a Go execution trace (the server's
// /debug/pprof/trace, THROUGHLINE_PPROF) and reports where goroutines
// waited for a processor: the waits from runnable to running, by the
// function each goroutine started in; the goroutine runs over 3 ms, with
// the CPU samples taken in them (a trace taken while a CPU profile runs
// holds them: a long run with none was off the CPU, its thread descheduled
// by the OS); what ran, and what sat in a syscall, while a wait lasted
// over 5 ms; and the stretches with no event of the process at all.
//
// It is a separate module (golang.org/x/exp/trace reads the newest trace
// format): go run ./scripts/schedtrace TRACE from this directory, or
// cd scripts/schedtrace && go run . TRACE. docs/benchmarking.md, stop 48.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// span is a stretch of one goroutine (or processor) in one state; root
// names it for the report.
type span struct {
	a, b trace.Time
	g    trace.GoID
	root string
}

// named sets each span's root to prefix and its goroutine's start, once
// the whole trace is read: a goroutine's first stacks may be empty.
func named(xs []span, prefix string, root map[trace.GoID]string) {
	for i := range xs {
		xs[i].root = prefix + root[xs[i].g]
	}
}

func (s span) d() time.Duration { return s.b.Sub(s.a) }

// sample is a CPU profile sample in the trace.
type sample struct {
	t     trace.Time
	g     trace.GoID
	stack string
}

const (
	longRun  = 3 * time.Millisecond
	longWait = 5 * time.Millisecond
	gapMin   = time.Millisecond
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: schedtrace TRACE")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fail(err)
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		fail(err)
	}
	var (
		root                   = map[trace.GoID]string{}
		runnableAt, runningAt  = map[trace.GoID]trace.Time{}, map[trace.GoID]trace.Time{}
		syscallAt              = map[trace.GoID]trace.Time{}
		idleAt                 = map[trace.ProcID]trace.Time{}
		waits, runs, sys, idle []span
		samples                []sample
		gaps                   []span
		first, last            trace.Time
	)
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(err)
		}
		t := ev.Time()
		if first == 0 {
			first = t
		}
		if last != 0 && t.Sub(last) > gapMin {
			gaps = append(gaps, span{a: last, b: t})
		}
		last = t
		switch ev.Kind() {
		case trace.EventStackSample:
			samples = append(samples, sample{t, ev.Goroutine(), frames(ev.Stack(), 6)})
			continue
		case trace.EventStateTransition:
		default:
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind == trace.ResourceProc {
			p := st.Resource.Proc()
			from, to := st.Proc()
			if to == trace.ProcIdle {
				idleAt[p] = t
			} else if from == trace.ProcIdle {
				if at, ok := idleAt[p]; ok {
					idle = append(idle, span{a: at, b: t, root: fmt.Sprintf("P%d idle", p)})
				}
			}
			continue
		}
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		g := st.Resource.Goroutine()
		if root[g] == "" || root[g] == "?" { // its first stacks may be empty
			root[g] = startOf(st.Stack)
		}
		from, to := st.Goroutine()
		switch to {
		case trace.GoRunnable:
			runnableAt[g] = t
		case trace.GoRunning:
			if at, ok := runnableAt[g]; ok && from == trace.GoRunnable {
				waits = append(waits, span{a: at, b: t, g: g})
			}
			runningAt[g] = t
		case trace.GoSyscall:
			syscallAt[g] = t
		}
		if from == trace.GoRunning && to != trace.GoRunning {
			if at, ok := runningAt[g]; ok {
				runs = append(runs, span{a: at, b: t, g: g})
				delete(runningAt, g)
			}
		}
		if from == trace.GoSyscall && to != trace.GoSyscall {
			if at, ok := syscallAt[g]; ok {
				sys = append(sys, span{a: at, b: t, g: g})
				delete(syscallAt, g)
			}
		}
	}
	named(waits, "", root)
	named(runs, "", root)
	named(sys, "syscall ", root)
	if len(waits) == 0 {
		fail(fmt.Errorf("no goroutine waited in %s", os.Args[1]))
	}
	rel := func(t trace.Time) time.Duration { return t.Sub(first).Round(100 * time.Microsecond) }
	fmt.Printf("trace of %v\n\n", last.Sub(first).Round(time.Millisecond))

	ds := durations(waits)
	fmt.Printf("waits for a processor: %d, p50 %v p90 %v p99 %v p999 %v max %v\n", len(ds),
		q(ds, .5), q(ds, .9), q(ds, .99), q(ds, .999), ds[len(ds)-1])
	for _, lim := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond} {
		fmt.Printf("  over %v: %d\n", lim, len(ds)-count(ds, lim))
	}
	fmt.Println("\nwaits by the goroutine's start: total, count, p99")
	for _, k := range byRoot(waits, 12) {
		fmt.Printf("  %10v %7d %9v  %s\n", k.total.Round(time.Microsecond), k.n, k.p99, k.root)
	}
	fmt.Println("\nrunning by the goroutine's start: total, runs over 3 ms, longest")
	for _, k := range byRoot(runs, 12) {
		fmt.Printf("  %10v %5d %9v  %s\n", k.total.Round(time.Microsecond), k.over, k.max.Round(time.Microsecond), k.root)
	}

	fmt.Printf("\nruns over %v (CPU samples in each: none in a long run means its thread was off the CPU)\n", longRun)
	for _, x := range runs {
		if x.d() <= longRun {
			continue
		}
		n, top := 0, ""
		for _, s := range samples {
			if s.g == x.g && s.t >= x.a && s.t <= x.b {
				n, top = n+1, s.stack
			}
		}
		fmt.Printf("  %9v at %9v  %s: %d samples %s\n", x.d().Round(10*time.Microsecond), rel(x.a), x.root, n, top)
	}

	var long []span
	for _, w := range waits {
		if w.d() > longWait {
			long = append(long, w)
		}
	}
	during := map[string]time.Duration{}
	var waited time.Duration
	for _, w := range long {
		waited += w.d()
		for _, xs := range [][]span{runs, sys, idle} {
			for _, x := range xs {
				if a, b := max(x.a, w.a), min(x.b, w.b); b > a {
					during[x.root] += b.Sub(a)
				}
			}
		}
	}
	fmt.Printf("\nduring the %d waits over %v (%v in all): what ran, sat in a syscall, or idled\n", len(long), longWait, waited.Round(time.Microsecond))
	for _, k := range top(during, 15) {
		fmt.Printf("  %10v  %s\n", during[k].Round(time.Microsecond), k)
	}

	slices.SortFunc(gaps, func(x, y span) int { return int(y.d() - x.d()) })
	var quiet time.Duration
	for _, g := range gaps {
		quiet += g.d()
	}
	fmt.Printf("\nstretches over %v with no event of the process: %d, %v in all; the longest:\n", gapMin, len(gaps), quiet.Round(time.Microsecond))
	for _, g := range gaps[:min(8, len(gaps))] {
		fmt.Printf("  %9v at %v\n", g.d().Round(10*time.Microsecond), rel(g.a))
	}
}

// startOf names a goroutine by the function it started in (the last frame
// of its first stack seen), short.
func startOf(st trace.Stack) string {
	name := "?"
	for fr := range st.Frames() {
		name = fr.Func
	}
	return short(name)
}

func frames(st trace.Stack, n int) string {
	var fs []string
	for fr := range st.Frames() {
		if fs = append(fs, short(fr.Func)); len(fs) == n {
			break
		}
	}
	return strings.Join(fs, " < ")
}

func short(fn string) string {
	for _, p := range []string{"github.com/throughline/throughline/", "github.com/cockroachdb/", "github.com/"} {
		fn = strings.TrimPrefix(fn, p)
	}
	return fn
}

func durations(xs []span) []time.Duration {
	ds := make([]time.Duration, len(xs))
	for i, x := range xs {
		ds[i] = x.d()
	}
	slices.Sort(ds)
	return ds
}

func q(ds []time.Duration, p float64) time.Duration { return ds[int(p*float64(len(ds)-1))] }

// count is how many of the sorted ds are at most lim.
func count(ds []time.Duration, lim time.Duration) int {
	n, _ := slices.BinarySearch(ds, lim+1)
	return n
}

type rootSum struct {
	root       string
	n, over    int
	total, max time.Duration
	p99        time.Duration
	all        []time.Duration
}

// byRoot sums spans by their root, the largest totals first, at most n.
func byRoot(xs []span, n int) []*rootSum {
	m := map[string]*rootSum{}
	for _, x := range xs {
		s := m[x.root]
		if s == nil {
			s = &rootSum{root: x.root}
			m[x.root] = s
		}
		d := x.d()
		s.n++
		s.total += d
		s.max = max(s.max, d)
		if d > longRun {
			s.over++
		}
		s.all = append(s.all, d)
	}
	out := make([]*rootSum, 0, len(m))
	for _, s := range m {
		slices.Sort(s.all)
		s.p99 = q(s.all, .99)
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *rootSum) int { return int(y.total - x.total) })
	return out[:min(n, len(out))]
}

// top is m's keys, the largest values first, at most n.
func top(m map[string]time.Duration, n int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(x, y string) int { return int(m[y] - m[x]) })
	return ks[:min(n, len(ks))]
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "schedtrace:", err)
	os.Exit(1)
}
