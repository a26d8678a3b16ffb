// Command throughline runs the Throughline customer journey runtime.
//
//	throughline serve [--config FILE]
//	throughline bench ingest|activation|journey|agents|broadcast [flags]
//	throughline replay --config FILE --data DIR [--old-config FILE] [--since D] [--customers N] [--json]
//	throughline version
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/throughline/throughline/node"
)

// GC policy, unless GOGC / GOMEMLIMIT say otherwise: the Go soft memory
// limit is the node's memory budget (node.memory_limit), and GOGC is
// gcPercent. The budget, not GOGC, bounds the heap: as it nears the limit
// the collector runs as often as it must, and before that the runtime's
// admission (85% of the budget live) refuses new work and passivates
// customers. Within the budget a larger GOGC trades memory for fewer
// collections, which on two cores are the tail of every latency (bench
// agents: escalation-to-offer p99 20 ms at 100, 6-11 ms at 400). The fixed
// 4 GiB limit this replaces let a node with less memory be killed first.
// README "Memory" has the measurement behind gcPercent.
const gcPercent = 200

// setGCPolicy applies the policy for a budget of limit bytes.
func setGCPolicy(limit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	// The default budget until a command reads its own (serve: the
	// config's node.memory_limit).
	limit, _ := (&node.NodeConfig{}).MemoryLimitBytes()
	setGCPolicy(limit)
	var code int
	switch os.Args[1] {
	case "serve":
		code = serveMain(os.Args[2:])
	case "bench":
		code = benchMain(os.Args[2:])
	case "replay":
		code = replayMain(os.Args[2:])
	case "version", "--version", "-v":
		fmt.Println("throughline", version)
	case "help", "--help", "-h":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "throughline: unknown command %q\n", os.Args[1])
		usage()
		code = 2
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  throughline serve [--config FILE]   run a node (no file: the built-in demo config)
  throughline bench ingest [flags]    measure durable ingest (throughline bench ingest -h)
  throughline bench activation        reactivating passivated customers with long histories
  throughline bench journey           bot turns at 1,000/s with the demo bot
  throughline bench agents            escalations to 200 agents at 500/s, events to their screens
  throughline bench broadcast         a broadcast to 100,000 customers at 10,000/s during live ingest
  throughline replay --config FILE --data DIR [--old-config FILE] [--since 24h] [--customers N] [--json]
                                      what-if: what a new config would have decided on the stored
                                      journeys (read-only; stop the server first)
  throughline version
`)
}
