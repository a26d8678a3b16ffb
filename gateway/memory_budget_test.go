package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/actors"
)

// startBudgetServer runs a gateway over the memory store with the runtime's
// and the gateway's configurations.
func startBudgetServer(t *testing.T, acfg actors.Config, gcfg Config) string {
	t.Helper()
	gcfg.Tokens = []Token{{Token: "gw", Role: RoleChannel}, {Token: "sup", Role: RoleSupervisor}}
	return startTestServer(t, gcfg, acfg).Addr()
}

// metric reads one sample of /metrics by its exact name and labels.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			var v float64
			fmt.Sscan(f[1], &v)
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func postEvent(t *testing.T, addr, id, customer string) (int, string) {
	t.Helper()
	resp, body := do(t, "POST", "http://"+addr+"/v1/events", "gw", fmt.Sprintf(`{"id":%q,"customer":%q,"text":"hi"}`, id, customer))
	return resp.StatusCode, body
}

func patchProfile(t *testing.T, addr, customer string) (int, string) {
	t.Helper()
	resp, body := do(t, "PATCH", "http://"+addr+"/v1/customers/"+customer+"/profile", "sup", `{"tier":"gold"}`)
	return resp.StatusCode, body
}

// loadUntilRefused sends batches of 1,000 events, one new customer each,
// until an event is refused as unavailable; it answers how many customers
// were stored. More than max customers without a refusal fails the test.
func loadUntilRefused(t *testing.T, ws *websocket.Conn, max int) int {
	t.Helper()
	stored := 0
	for b := 0; stored < max; b++ {
		var f strings.Builder
		fmt.Fprintf(&f, `{"type":"batch","id":"b%d","events":[`, b)
		for i := range 1000 {
			if i > 0 {
				f.WriteByte(',')
			}
			fmt.Fprintf(&f, `{"id":"e-%d-%d","customer":"m-%d-%d","text":"my card payment failed again"}`, b, i, b, i)
		}
		f.WriteString(`]}`)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(f.String())); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var acks struct {
			Acks []struct {
				Seq   uint64
				Error *struct{ Code string }
			}
		}
		if err := json.Unmarshal(msg, &acks); err != nil || len(acks.Acks) != 1000 {
			t.Fatalf("acks frame: %.200s (%v)", msg, err)
		}
		refused := false
		for _, a := range acks.Acks {
			switch {
			case a.Error == nil:
				stored++
			case a.Error.Code == "unavailable":
				refused = true
			default:
				t.Fatalf("event refused with %s", a.Error.Code)
			}
		}
		if refused {
			return stored
		}
	}
	t.Fatalf("%d customers stored and still no refusal", stored)
	return 0
}

// The memory budget: with idle WebSockets open, customers are loaded until
// the node passes its high-water mark. New events (WebSocket and HTTP) and
// new connections are then refused with unavailable while /healthz,
// /readyz and /metrics answer; idle customers passivate, least recently
// active first, until the node is below its low-water mark, and new work is
// accepted again. The budget is set a little above what the node holds
// before the load (the customers push it over). THROUGHLINE_INTEG runs it at
// scale: 10,000 idle WebSockets and over 100,000 resident customers.
func TestMemoryBudgetRefusesThenRecovers(t *testing.T) {
	conns, headroom, maxCustomers := 1000, int64(48<<20), 200_000
	if os.Getenv("THROUGHLINE_INTEG") != "" {
		conns, headroom, maxCustomers = 10_000, 700<<20, 1_000_000
		// Both ends of every connection are in this process.
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && int(lim.Cur) < 2*conns+200 {
			conns = (int(lim.Cur) - 200) / 2
			t.Logf("%d idle WebSockets: the open files limit (%d) allows no more", conns, lim.Cur)
		}
	}
	runtime.GC()
	base := int64(actors.MemoryInUse())
	// The high-water mark (0.85) falls headroom above the node at rest.
	limit := int64(float64(base+headroom) / 0.85)
	// As cmd/throughline does: the soft limit at the budget makes a
	// collection, which measures the live heap, come at the latest when
	// the heap reaches the budget.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	addr := startBudgetServer(t, actors.Config{Memory: actors.MemoryConfig{Limit: limit}},
		Config{MaxConnections: conns + 10})
	idle := make([]net.Conn, 0, conns)
	for range conns {
		idle = append(idle, dialRaw(t, addr))
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	loader := dialChannel(t, addr)
	stored := loadUntilRefused(t, loader, maxCustomers)
	t.Logf("budget %d MiB (node at rest %d MiB): refused after %d customers, %d idle WebSockets", limit>>20, base>>20, stored, conns)
	if stored < 1000 {
		t.Fatalf("refused after %d customers: the budget was spent before the load", stored)
	}

	// Under pressure: new work refused, the probes answer.
	if code, body := postEvent(t, addr, "under-pressure", "p-1"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) {
		t.Errorf("HTTP event under pressure: %d %s", code, body)
	}
	if code, body := patchProfile(t, addr, "m-0-0"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) {
		t.Errorf("profile patch under pressure: %d %s", code, body)
	}
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/v1/channels/ws", http.Header{"Authorization": {"Bearer gw"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("WebSocket upgrade under pressure: %v %v", resp, err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		r, err := http.Get("http://" + addr + path)
		if err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("%s under pressure: %v %v", path, r, err)
		}
		r.Body.Close()
	}

	// Recovery: customers passivate, the pressure ends, work is accepted.
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, addr, "throughline_memory_pressure") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still under pressure after 30s; %.0f bytes used of %d, %.0f customers resident, %.0f passivated", metric(t, addr, "throughline_memory_used_bytes"), limit, metric(t, addr, "throughline_active_customers"), metric(t, addr, "throughline_customer_evictions_total"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	evicted, resident := metric(t, addr, "throughline_customer_evictions_total"), metric(t, addr, "throughline_active_customers")
	t.Logf("recovered: %.0f customers passivated, %.0f resident", evicted, resident)
	if evicted == 0 || resident >= float64(stored) {
		t.Errorf("recovered with %.0f evictions, %.0f of %d customers resident", evicted, resident, stored)
	}
	if code, body := postEvent(t, addr, "after-pressure", "p-1"); code != http.StatusOK {
		t.Errorf("HTTP event after the pressure: %d %s", code, body)
	}
	if code, body := patchProfile(t, addr, "m-0-0"); code != http.StatusOK {
		t.Errorf("profile patch after the pressure: %d %s", code, body)
	}
	dialChannel(t, addr).Close()
	if n := metric(t, addr, `throughline_connections{endpoint="channel"}`); n < float64(conns) {
		t.Errorf("%.0f channel connections open; the %d idle ones should be", n, conns)
	}
}
