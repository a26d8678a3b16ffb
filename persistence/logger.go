package persistence

import (
	"fmt"
	"log/slog"
)

// pebbleLogger is Pebble's Logger over the project's slog logger.
//
// Fatalf never returns. Pebble calls it when it cannot go on; in particular
// DB.Apply calls it when a commit fails (a WAL write or sync error): Pebble
// does not return that error to the committer. Fatalf logs, latches the engine
// failed (onFatal), then panics with a *pebbleFatal. The writer recovers that
// panic around its commit and fails the batch; anywhere else (a Pebble
// background goroutine) the panic ends the process with exit status 2.
type pebbleLogger struct {
	log     *slog.Logger
	onFatal func(error)
}

// pebbleFatal is the panic value of pebbleLogger.Fatalf.
type pebbleFatal struct{ msg string }

func (f *pebbleFatal) Error() string { return "pebble fatal: " + f.msg }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Info(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	f := &pebbleFatal{msg: fmt.Sprintf(format, args...)}
	l.log.Error("pebble fatal", "err", f.msg)
	if l.onFatal != nil {
		l.onFatal(f)
	}
	panic(f)
}
