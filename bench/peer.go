package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The NATS JetStream peer: a mature durable log measured in the same run,
// on the same disk, with the same events, connections and window as the
// server. It runs as its own command (bench/cmd/peer, built by make bench
// as bin/throughline-peer) so that the throughline binary never links
// nats-server. The command prints its WindowedResult as JSON on stdout.

// PeerCommand is the peer command's file name, looked for beside the
// throughline binary and then on PATH.
const PeerCommand = "throughline-peer"

// PeerRowName names the peer's row.
const PeerRowName = "NATS JetStream peer: file store, sync always, dedup by Nats-Msg-Id, async publish"

// PeerNote says what the peer's figure is made of: with sync always, the
// file store syncs every message it writes, and one stream has one writer,
// so there is no group commit to share a sync among publishers.
const PeerNote = "one stream, each message synced on its own (JetStream sync always has no group commit)"

// peerStopTimeout is how long an interrupted peer has to clean up.
const peerStopTimeout = 10 * time.Second

// peerStderrMax bounds the peer's stderr quoted in an error.
const peerStderrMax = 4 << 10

// FindPeer returns the peer command beside the running executable or on
// PATH, or "" when there is none.
func FindPeer() string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), PeerCommand)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath(PeerCommand); err == nil {
		return p
	}
	return ""
}

// PeerArgs are the peer command's flags for a windowed load whose data
// goes under dataDir; the command parses them with ParsePeerArgs.
func PeerArgs(wc WindowedConfig, dataDir string) []string {
	return []string{
		"-connections", strconv.Itoa(wc.Connections), "-customers", strconv.Itoa(wc.Customers),
		"-window", strconv.Itoa(wc.Window), "-event-bytes", strconv.Itoa(wc.EventBytes),
		"-warmup", wc.Warmup.String(), "-duration", wc.Duration.String(), "-nonce", wc.Nonce,
		"-data-dir", dataDir,
	}
}

// RunPeer runs the peer command at path for the windowed load and returns
// what it measured.
func RunPeer(ctx context.Context, path string, wc WindowedConfig, dataDir string) (*WindowedResult, error) {
	cmd := exec.CommandContext(ctx, path, PeerArgs(wc, dataDir)...)
	// Interrupted, the peer stops its server and removes its directory;
	// killed only if it has not within peerStopTimeout.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = peerStopTimeout
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > peerStderrMax {
			msg = msg[len(msg)-peerStderrMax:]
		}
		return nil, fmt.Errorf("%s: %w: %s", path, err, msg)
	}
	var res WindowedResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("%s: its output: %w", path, err)
	}
	return &res, nil
}
