package persistence

import (
	"io"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The store's file system yields on sstable and blob file I/O only: the
// WAL is the live path, and everything read back is what was written.
func TestStoreFSYieldsOnSSTablesOnly(t *testing.T) {
	opts := Options{FS: vfs.NewMem()}
	fs := opts.storeFS()
	if _, ok := fs.(yieldingFS); !ok {
		t.Fatalf("storeFS is %T, want yieldingFS", fs)
	}
	if fs.(yieldingFS).Unwrap() != opts.FS {
		t.Fatal("Unwrap does not give the FS underneath")
	}
	for name, wantYield := range map[string]bool{"000004.sst": true, "000006.blob": true, "000005.log": false, "MANIFEST-000001": false} {
		f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := f.(yieldingFile); ok != wantYield {
			t.Errorf("%s: yielding %v, want %v", name, ok, wantYield)
		}
		if _, err := f.Write([]byte("block of " + name)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := fs.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.(yieldingFile); ok != wantYield {
			t.Errorf("%s opened: yielding %v, want %v", name, ok, wantYield)
		}
		buf := make([]byte, len("block of "+name))
		if _, err := r.ReadAt(buf, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if string(buf) != "block of "+name {
			t.Errorf("%s read back %q", name, buf)
		}
		r.Close()
	}
	if _, err := fs.Open("missing.sst"); err == nil {
		t.Error("opening a missing sstable succeeded")
	}
}
