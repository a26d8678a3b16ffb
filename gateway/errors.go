package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// statusOf is the one table of client-visible codes (PROTOCOL section 7).
var statusOf = map[journey.Code]int{
	journey.CodeBadRequest:   http.StatusBadRequest,
	journey.CodeUnauthorized: http.StatusUnauthorized,
	journey.CodeForbidden:    http.StatusForbidden,
	journey.CodeNotFound:     http.StatusNotFound,
	journey.CodeConflict:     http.StatusConflict,
	journey.CodeTooLarge:     http.StatusRequestEntityTooLarge,
	journey.CodeRateLimited:  http.StatusTooManyRequests,
	journey.CodeUnavailable:  http.StatusServiceUnavailable,
	journey.CodeInternal:     http.StatusInternalServerError,
}

// rejection maps any error to the rejection a client sees.
func rejection(err error) *journey.Rejection {
	var r *journey.Rejection
	switch {
	case errors.As(err, &r):
		return r
	case errors.Is(err, persistence.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return journey.Rejectf(journey.CodeUnavailable, "unavailable; retry later with the same id")
	default:
		return journey.Rejectf(journey.CodeInternal, "internal error")
	}
}

type errorBody struct {
	Code    journey.Code `json:"code"`
	Message string       `json:"message"`
}

// writeError answers an HTTP request with the error's status and body.
func writeError(w http.ResponseWriter, err error) {
	r := rejection(err)
	status, ok := statusOf[r.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, map[string]errorBody{"error": {Code: r.Code, Message: r.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, v, "application/json")
}

func writeJSONAs(w http.ResponseWriter, status int, v any, contentType string) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encode"}}`)
		contentType = "application/json"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// containsMediaType reports whether an Accept-style header value lists the
// media type.
func containsMediaType(header, mediaType string) bool {
	for _, part := range strings.Split(header, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == mediaType {
			return true
		}
	}
	return false
}
