package gateway

import (
	"net/http"
	"time"

	"github.com/throughline/throughline/journey"
)

// analyticsWindowDefault is the window of GET /v1/analytics/journeys
// without since.
const analyticsWindowDefault = 24 * time.Hour

// getJourneyAnalytics is GET /v1/analytics/journeys?since=&until=
// (supervisor): the journey figures of the conversations that opened in
// the window (PROTOCOL section 10), merged over the partitions hosted here.
func (s *Server) getJourneyAnalytics(w http.ResponseWriter, r *http.Request) {
	since, until, rej := analyticsWindow(r, time.Now())
	if rej != nil {
		writeError(w, rej)
		return
	}
	a, err := s.rt.JourneyAnalytics(r.Context(), since, until)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// analyticsWindow reads since and until (RFC 3339; defaults: until now,
// since a day before until); since must be before until.
func analyticsWindow(r *http.Request, now time.Time) (since, until time.Time, rej *journey.Rejection) {
	q := r.URL.Query()
	until = now.UTC()
	if v := q.Get("until"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return since, until, journey.Rejectf(journey.CodeBadRequest, "until must be an RFC 3339 time")
		}
		until = t
	}
	since = until.Add(-analyticsWindowDefault)
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return since, until, journey.Rejectf(journey.CodeBadRequest, "since must be an RFC 3339 time")
		}
		since = t
	}
	if !since.Before(until) {
		return since, until, journey.Rejectf(journey.CodeBadRequest, "since must be before until")
	}
	return since, until, nil
}
