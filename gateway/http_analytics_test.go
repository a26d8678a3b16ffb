package gateway

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/throughline/throughline/analytics"
)

// The analytics are for supervisors (and admins); a window that is not two
// RFC 3339 times in order is a bad request.
func TestJourneyAnalyticsRolesAndWindow(t *testing.T) {
	addr := startServer(t)
	get := func(token, query string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/analytics/journeys"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := get("gw", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("channel token: %d", resp.StatusCode)
	}
	if resp := get("nobody", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown token: %d", resp.StatusCode)
	}
	for _, q := range []string{"?since=yesterday", "?until=2026-13-01T00:00:00Z", "?since=2026-11-22T10:00:00Z&until=2026-11-22T10:00:00Z", "?since=2026-11-23T00:00:00Z&until=2026-11-22T00:00:00Z"} {
		resp := get("sup", q)
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusBadRequest || body.Error.Code != "bad_request" {
			t.Errorf("%s: %d %+v %v", q, resp.StatusCode, body, err)
		}
	}
	if resp := get("adm-secret", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("admin token: %d", resp.StatusCode)
	}
	resp := get("sup", "")
	var a analytics.Journeys
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if d := a.Until.Sub(a.Since); d != 24*time.Hour || a.Partitions != 8 || a.Paths == nil || a.Escalations == nil {
		t.Fatalf("default answer %+v", a)
	}
}
