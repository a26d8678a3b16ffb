package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/throughline/throughline/bench"
)

// clientTLSFlags binds --ca and --insecure, for https/wss targets; the
// returned apply sets them on the benches after parsing.
func clientTLSFlags(fs *flag.FlagSet) (apply func() error) {
	ca := fs.String("ca", "", "PEM file of the CA that signed an https target's certificate (default: the system's roots)")
	insecure := fs.Bool("insecure", false, "do not verify an https target's certificate (a self-signed test server)")
	return func() error { return bench.SetClientTLS(*ca, *insecure) }
}

// parseBenchFlags adds the TLS flags to a bench command's flags, parses
// args and applies them; false when the command is to exit 2 (the error is
// told).
func parseBenchFlags(fs *flag.FlagSet, args []string) bool {
	applyTLS := clientTLSFlags(fs)
	if err := fs.Parse(args); err != nil {
		return false
	}
	if err := applyTLS(); err != nil {
		fmt.Fprintln(os.Stderr, "throughline bench:", err)
		return false
	}
	return true
}
