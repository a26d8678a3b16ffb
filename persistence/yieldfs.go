package persistence

import (
	"runtime"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// yieldingFS makes Pebble's flushes and compactions yield the CPU between
// the blocks they read and write. They are long CPU-bound loops, and the
// Go scheduler preempts a running goroutine only after 10 ms: on two cores,
// with one busy compacting and the other flushing or running the actors,
// every hop of a live event (the gateway's read, the customer, the
// commit's completion, the ack) could wait that long for a core. A yield
// per sstable block read or written (a few µs of work each) puts those
// goroutines first; with nothing else runnable it costs ~100 ns.
//
// Only sstables and blob files (the values compactions do not rewrite;
// options.go): a WAL write is the live path itself. A live read of a
// block that is not in the block cache (a customer's first load) yields
// too; it then waits behind what is runnable, as it would for the
// disk.
//
// Measured (bench ingest --rate 30000 --duration 3m on a fresh store, then
// --rate 10000 --duration 30s three times on the same server), runs of
// each binary: ack p99 at 30k/s in minute 2 was 48-145 ms (median 70,
// three runs) without the yields, 32-125 ms (median 39, six runs) with
// them; in minute 3, 122-220 ms (median 123) against 45-167 ms (median
// 75). The 10k/s runs after stayed at 18-42 ms either way: that tail is
// not this (issue 9, stop 23).
type yieldingFS struct{ vfs.FS }

func (fs yieldingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return yielding(name, f, err)
}

func (fs yieldingFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	return yielding(name, f, err)
}

func (fs yieldingFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return yielding(name, f, err)
}

func (fs yieldingFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return yielding(name, f, err)
}

func (fs yieldingFS) Unwrap() vfs.FS { return fs.FS }

func yielding(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !isSSTable(name) && !isBlobFile(name) {
		return f, err
	}
	return yieldingFile{f}, nil
}

// isBlobFile is true of a Pebble blob file's name (NNNNNN.blob).
func isBlobFile(path string) bool { return strings.HasSuffix(path, ".blob") }

// yieldingFile yields before each read and write of an sstable or blob file.
type yieldingFile struct{ vfs.File }

func (f yieldingFile) Write(p []byte) (int, error) {
	runtime.Gosched()
	return f.File.Write(p)
}

func (f yieldingFile) ReadAt(p []byte, off int64) (int, error) {
	runtime.Gosched()
	return f.File.ReadAt(p, off)
}
