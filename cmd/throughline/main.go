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
)

// GC policy, unless GOGC / GOMEMLIMIT say otherwise. The live heap of a
// node is small (tens of MB) and allocation-heavy (JSON, events, frames):
// at Go's default GOGC=100 it collects many times a second, and on two
// cores those cycles are the tail of every latency the benches measure
// (bench agents: escalation-to-offer p99 20 ms at 100, 6-11 ms at 400).
// A larger GOGC trades memory for fewer cycles; the soft limit keeps a
// heap that grows from ever running the machine out of memory.
const (
	gcPercent      = 400
	gcMemoryLimitB = 4 << 30
)

func setGCPolicy() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(gcMemoryLimitB)
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	setGCPolicy()
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
