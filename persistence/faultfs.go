package persistence

import (
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// failSyncAfter wraps fs so that the first n WAL syncs pass and every later
// one fails with errorfs.ErrInjected: the Options.FailSyncAfter test hook.
func failSyncAfter(fs vfs.FS, n int) vfs.FS {
	var syncs atomic.Int64
	return errorfs.Wrap(fs, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if isWALSync(op) && syncs.Add(1) > int64(n) {
			return errorfs.ErrInjected
		}
		return nil
	}))
}

// isWALSync reports an fsync of a WAL file (Pebble syncs its WAL through
// vfs.SyncingFile, which calls SyncData; SyncTo is only write-back pacing).
func isWALSync(op errorfs.Op) bool {
	return (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) &&
		strings.HasSuffix(op.Path, ".log")
}
