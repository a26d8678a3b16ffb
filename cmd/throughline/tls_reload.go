package main

import (
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/throughline/throughline/bench"
	"github.com/throughline/throughline/node"
)

// reloadTLSOnHUP reloads the node's TLS certificates (node.tls and
// cluster.tls) on every SIGHUP, beside whatever else SIGHUP reloads: a
// certificate that fails to load is logged and the one in use kept. stop
// ends it.
func reloadTLSOnHUP(n *node.Node, logger *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				if err := n.ReloadTLS(); err != nil {
					logger.Error("tls reload failed", "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

// clientTLSFlags binds --ca and --insecure, for https/wss targets; the
// returned apply sets them on the benches after parsing.
func clientTLSFlags(fs *flag.FlagSet) (apply func() error) {
	ca := fs.String("ca", "", "PEM file of the CA that signed an https target's certificate (default: the system's roots)")
	insecure := fs.Bool("insecure", false, "do not verify an https target's certificate (a self-signed test server)")
	return func() error { return bench.SetClientTLS(*ca, *insecure) }
}
