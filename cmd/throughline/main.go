// Command throughline runs the Throughline customer journey runtime.
//
//	throughline serve [--config FILE]
//	throughline bench ingest [flags]
//	throughline version
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var code int
	switch os.Args[1] {
	case "serve":
		code = serveMain(os.Args[2:])
	case "bench":
		code = benchMain(os.Args[2:])
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
  throughline version
`)
}
