package e2e

// The browser harness: Debian's chromium, headless, driven by chromedp
// against the real binary. Each test gets one browser; each person in it a
// tab of its own (sessionStorage, and so the signed-in token, is per tab).
// A failed test saves a screenshot of every tab; THROUGHLINE_SCREENSHOTS=dir
// saves the named screens the README shows.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserStepTimeout bounds one wait in the page.
const browserStepTimeout = 15 * time.Second

// chromiumPath finds the browser: Debian's chromium first.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts headless chromium for the test. Without chromium the
// test is skipped locally and fails in CI (CI set), where .ci/run installs
// it.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed, and CI is set: .ci/run installs it (apt-get install -y chromium)")
		}
		t.Skip("chromium is not installed: apt-get install -y chromium to run the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1440, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return bctx
}

// tab is one page of the browser, seen from one test.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
}

// newTab opens a tab; when the test fails, its screenshot is saved.
func newTab(t *testing.T, browser context.Context, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	tb := &tab{t: t, name: name, ctx: ctx}
	t.Cleanup(cancel)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir := filepath.Join(os.TempDir(), "throughline-e2e-screenshots")
		if d := os.Getenv("THROUGHLINE_E2E_ARTIFACTS"); d != "" {
			dir = d
		}
		path := filepath.Join(dir, fmt.Sprintf("%s-%s.png", strings.ReplaceAll(t.Name(), "/", "_"), name))
		if err := tb.saveScreenshot(path); err != nil {
			t.Logf("screenshot of tab %s: %v", name, err)
			return
		}
		t.Logf("screenshot of tab %s at the failure: %s", name, path)
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab %s: %v", name, err)
	}
	return tb
}

func (tb *tab) saveScreenshot(path string) error {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// shot saves the tab as name.png under THROUGHLINE_SCREENSHOTS, when set.
func (tb *tab) shot(name string) {
	dir := os.Getenv("THROUGHLINE_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := tb.saveScreenshot(filepath.Join(dir, name+".png")); err != nil {
		tb.t.Errorf("screenshot %s: %v", name, err)
	}
}

// run runs actions within browserStepTimeout; what says what they do.
func (tb *tab) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("tab %s: %s: %v", tb.name, what, err)
	}
}

// wait polls a JavaScript expression until it is truthy.
func (tb *tab) wait(what, expr string) {
	tb.t.Helper()
	tb.run("wait for "+what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(browserStepTimeout)))
}

// eval evaluates a JavaScript expression into a T.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("tab %s: evaluate %s: %v", tb.name, expr, err)
	}
	return v
}

// signIn opens the app and signs in with token.
func (tb *tab) signIn(base, token string) {
	tb.t.Helper()
	tb.run("sign in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#signin")))
	tb.wait("the signed-in screens", `document.body.dataset.online === "true"`)
}
