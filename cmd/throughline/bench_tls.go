package main

import (
	"flag"

	"github.com/throughline/throughline/bench"
)

// clientTLSFlags binds --ca and --insecure, for https/wss targets; the
// returned apply sets them on the benches after parsing.
func clientTLSFlags(fs *flag.FlagSet) (apply func() error) {
	ca := fs.String("ca", "", "PEM file of the CA that signed an https target's certificate (default: the system's roots)")
	insecure := fs.Bool("insecure", false, "do not verify an https target's certificate (a self-signed test server)")
	return func() error { return bench.SetClientTLS(*ca, *insecure) }
}
