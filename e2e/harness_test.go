// Package e2e tests the real throughline binary end to end: a subprocess on
// a loopback port, real WebSocket and HTTP clients, kill -9 and restart,
// injected fsync failures.
//
// This file is the harness: TestMain builds the binary once; startServer runs
// it on a fresh port over a data directory. wsclient_test.go and
// httpclient_test.go speak the public contract (PROTOCOL sections 2 and 3);
// stream_test.go drives many connections at once. Waits poll with a
// deadline; nothing sleeps.
package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tokens every test server is configured with.
const (
	tokChannel    = "gw"
	tokSupervisor = "sup"
	tokAdmin      = "adm"
	tokAgent      = "alice"
)

// Deadlines. Generous: the machine has 2 cores and the suite runs with -race.
const (
	readyTimeout = 20 * time.Second // from exec to /readyz 200
	stopTimeout  = 40 * time.Second // from SIGTERM to exit (the server allows itself 30 s)
	frameTimeout = 15 * time.Second // one expected WebSocket frame
	httpTimeout  = 15 * time.Second // one HTTP request
)

// binary is the throughline binary TestMain built.
var binary string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "throughline-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "throughline")
	build := exec.Command("go", "build", "-o", binary, "./cmd/throughline")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/throughline: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return filepath.Abs("..")
	}
	return filepath.Dir(gomod), nil
}

// serverOptions configures one server process.
type serverOptions struct {
	dataDir     string   // default: a new t.TempDir()
	idleTimeout string   // node.idle_timeout; empty: the default
	nodeExtra   string   // more lines of the node section, indented two spaces
	env         []string // extra environment, KEY=VALUE
	sections    string   // more top-level sections of the config (ai, rules, ...)
	tokens      []string // more auth.tokens entries, each a YAML flow map
	demo        bool     // no config file: the built-in demo (data in ./data of a temp dir), on addr
	addr        string   // host:port to listen on; default: a free port
	name        string   // node.name; default n1
}

// server is one running throughline process, seen from one test: with
// gives the view of a subtest, so its helpers fail the right test.
type server struct {
	t *testing.T
	*process
}

// process is the throughline process behind a server.
type process struct {
	dataDir string
	addr    string // host:port
	base    string // http://host:port
	cmd     *exec.Cmd
	config  string // path of the config file (a test may rewrite it and send SIGHUP)
	stderr  string // path of the captured stderr

	exited   chan struct{} // closed when the process has exited
	exitCode int           // valid once exited is closed
}

// with is the same server seen from test t (a subtest).
func (s *server) with(t *testing.T) *server { return &server{t: t, process: s.process} }

var serverSeq atomic.Int64

// startServer starts the binary and waits until /readyz answers 200. The
// process is killed at the end of the test if still running, and its stderr
// is logged if the test failed. A port taken between freeAddr and the
// server's listen is retried on another.
func startServer(t *testing.T, o serverOptions) *server {
	t.Helper()
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	for attempt := 0; ; attempt++ {
		s := launch(t, o)
		err := s.waitReady()
		if err == nil {
			return s
		}
		if b, _ := os.ReadFile(s.stderr); attempt < 3 && strings.Contains(string(b), "address already in use") {
			continue
		}
		t.Fatal(err)
	}
}

// launch starts the binary over o.dataDir on a free port.
func launch(t *testing.T, o serverOptions) *server {
	t.Helper()
	n := serverSeq.Add(1)
	work := t.TempDir()
	addr := o.addr
	if addr == "" {
		addr = freeAddr(t)
	}
	name := o.name
	if name == "" {
		name = "n1"
	}
	cfg := fmt.Sprintf(`node:
  name: %s
  data_dir: %q
  http: %q
`, name, o.dataDir, addr)
	if o.idleTimeout != "" {
		cfg += fmt.Sprintf("  idle_timeout: %s\n", o.idleTimeout)
	}
	cfg += o.nodeExtra
	cfg += `auth:
  tokens:
    - {token: gw, role: channel}
    - {token: sup, role: supervisor}
    - {token: adm, role: admin}
    - {token: alice, role: agent, agent: alice}
`
	for _, tok := range o.tokens {
		cfg += "    - " + tok + "\n"
	}
	cfg += o.sections
	cfgPath := filepath.Join(work, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, process: &process{
		dataDir: o.dataDir, addr: addr, base: "http://" + addr, config: cfgPath,
		stderr: filepath.Join(work, fmt.Sprintf("stderr-%d.log", n)),
		exited: make(chan struct{}),
	}}
	errFile, err := os.Create(s.stderr)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(binary, "serve", "--config", cfgPath)
	if o.demo {
		s.cmd = exec.Command(binary, "serve", "--http", addr)
		s.cmd.Dir = o.dataDir // the demo keeps its data in ./data
	}
	s.cmd.Stdout = errFile
	s.cmd.Stderr = errFile
	s.cmd.Env = append(os.Environ(), o.env...)
	if err := s.cmd.Start(); err != nil {
		errFile.Close()
		t.Fatalf("start %s: %v", binary, err)
	}
	go func() {
		_ = s.cmd.Wait()
		s.exitCode = s.cmd.ProcessState.ExitCode()
		errFile.Close()
		close(s.exited)
	}()
	t.Cleanup(func() {
		if !s.hasExited() {
			_ = s.cmd.Process.Signal(syscall.SIGKILL)
			<-s.exited
		}
		if t.Failed() {
			s.logStderr(t)
		}
	})
	return s
}

// handedOut are the ports freeAddr gave in this process: the kernel may
// give a closed port again at once, and a cluster's node needs four
// distinct ones (and distinct from its peers').
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// freeAddr finds a free loopback port: listen on :0, close, reuse; never
// one it gave before in this test process.
func freeAddr(t *testing.T) string {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		handedOut.Lock()
		seen := handedOut.ports[addr]
		handedOut.ports[addr] = true
		handedOut.Unlock()
		if !seen {
			return addr
		}
	}
}

func (s *process) hasExited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

func (s *process) logStderr(t *testing.T) {
	b, err := os.ReadFile(s.stderr)
	if err != nil {
		t.Logf("server stderr %s: %v", s.stderr, err)
		return
	}
	const tail = 16 << 10
	if len(b) > tail {
		b = append([]byte("...\n"), b[len(b)-tail:]...)
	}
	t.Logf("server %s (data %s) stderr:\n%s", s.addr, s.dataDir, b)
}

// waitReady polls GET /readyz until 200.
func (s *server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		if s.hasExited() {
			return fmt.Errorf("server exited with code %d before it was ready", s.exitCode)
		}
		resp, err := client.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server %s not ready within %s (last: %v)", s.addr, readyTimeout, err)
		}
		pause(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects exit code 0 within stopTimeout.
func (s *server) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM: %v", err)
	}
	if code := s.waitExit(stopTimeout); code != 0 {
		s.t.Fatalf("after SIGTERM the server exited with code %d, want 0", code)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	s.waitExit(10 * time.Second)
}

// waitExit waits for the process to exit and returns its exit code.
func (s *server) waitExit(d time.Duration) int {
	s.t.Helper()
	select {
	case <-s.exited:
		return s.exitCode
	case <-time.After(d):
		// SIGQUIT: the Go runtime prints every goroutine's stack to
		// stderr, which the failure shows: where it hangs.
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
		}
		s.t.Fatalf("server %s still running %s later (its goroutines are in its stderr)", s.addr, d)
		return -1
	}
}

// pause waits d: used only as the tick of a poll with a deadline.
func pause(d time.Duration) {
	<-time.After(d)
}

// eventually polls cond every tick until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		pause(20 * time.Millisecond)
	}
}
