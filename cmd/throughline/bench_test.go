package main

import (
	"flag"
	"slices"
	"testing"

	"github.com/throughline/throughline/bench"
)

// The ingest flags default to a gateway's window, 64 events or 4 batch
// frames, with a deeper window beside it; what is set explicitly stays.
func TestWindowFlags(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		window         int
		deeper         []int
		peerNone       bool
		wantInvalidErr bool
	}{
		{args: nil, window: 64, deeper: []int{256}},
		{args: []string{"-batch", "100"}, window: 400, deeper: []int{1600}},
		{args: []string{"-batch", "100", "-window", "1000"}, window: 1000, deeper: []int{4000}},
		{args: []string{"-window", "32", "-deeper", "128, 512"}, window: 32, deeper: []int{128, 512}},
		{args: []string{"-deeper", "none", "-peer", "none"}, window: 64, deeper: nil, peerNone: true},
		{args: []string{"-batch", "100", "-deeper", "50"}, wantInvalidErr: true},
	} {
		cfg := bench.Default()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.IntVar(&cfg.Window, "window", cfg.Window, "")
		fs.IntVar(&cfg.BatchSize, "batch", 0, "")
		fs.StringVar(&cfg.Peer, "peer", "", "")
		deeper := fs.String("deeper", "", "")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := windowFlags(fs, &cfg, *deeper)
		if tc.wantInvalidErr {
			if err == nil {
				t.Errorf("%v: no error, want one (a deeper window under the batch size)", tc.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if cfg.Window != tc.window || !slices.Equal(cfg.DeeperWindows, tc.deeper) {
			t.Errorf("%v: window %d, deeper %v; want %d, %v", tc.args, cfg.Window, cfg.DeeperWindows, tc.window, tc.deeper)
		}
		if tc.peerNone && cfg.Peer != "" {
			t.Errorf("%v: peer %q, want none", tc.args, cfg.Peer)
		}
	}
}
