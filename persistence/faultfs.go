package persistence

import (
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

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

// diskFullAfter wraps fs so that the first n WAL writes pass and every
// later write to a WAL or an sstable fails with ENOSPC: the
// Options.DiskFullAfter test hook.
func diskFullAfter(fs vfs.FS, n int) vfs.FS {
	var writes atomic.Int64
	return errorfs.Wrap(fs, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind != errorfs.OpFileWrite && op.Kind != errorfs.OpFileWriteAt {
			return nil
		}
		wal, sst := isWAL(op.Path), isSSTable(op.Path)
		switch {
		case !wal && !sst:
			return nil
		case wal && writes.Add(1) <= int64(n):
			return nil
		case sst && writes.Load() <= int64(n):
			return nil
		}
		return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
	}))
}

// isDiskError reports an error of the disk itself: full, failing or
// read-only. Pebble hands those of flushes and compactions to its
// BackgroundError listener and would try again and again; the engine
// latches failed instead, as on a failed commit.
func isDiskError(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EIO) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EDQUOT)
}

// isWALSync reports an fsync of a WAL file (Pebble syncs its WAL through
// vfs.SyncingFile, which calls SyncData; SyncTo is only write-back pacing).
func isWALSync(op errorfs.Op) bool {
	return (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) && isWAL(op.Path)
}

// isWAL and isSSTable tell Pebble's files apart by name (NNNNNN.log,
// NNNNNN.sst).
func isWAL(path string) bool     { return strings.HasSuffix(path, ".log") }
func isSSTable(path string) bool { return strings.HasSuffix(path, ".sst") }
