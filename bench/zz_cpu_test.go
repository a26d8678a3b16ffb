package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/persistence"
)

func TestZZCPU(t *testing.T) {
	cfg := DefaultMemory()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine, err := persistence.Open(dir, persistence.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	rt, err := actors.Start(actors.Config{IdleTimeout: memoryIdleTimeout, Logger: quiet}, engine)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Create("/tmp/prof/zzcpu.pprof")
	pprof.StartCPUProfile(f)
	start := time.Now()
	row := &MemoryRow{}
	cfg.Events = 20
	if err := fillCustomers(context.Background(), rt, &cfg, 300000, row); err != nil {
		t.Fatal(err)
	}
	pprof.StopCPUProfile()
	f.Close()
	t.Log(time.Since(start), row.Acked)
}
