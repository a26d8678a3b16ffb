package gateway

// Broadcasts (PROTOCOL sections 3 and 5): start, read, cancel, resolve. The
// runtime records and works them through; this file only maps HTTP to it.

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// broadcastError maps the runtime's broadcast errors to PROTOCOL codes.
func broadcastError(id string, err error) error {
	switch {
	case errors.Is(err, actors.ErrBroadcastNotFound):
		return rejectf404("broadcast %s is unknown", id)
	case errors.Is(err, actors.ErrBroadcastResolved):
		return journey.Rejectf(journey.CodeConflict, "broadcast %s is already resolved", id)
	case errors.Is(err, actors.ErrBroadcastsBusy):
		return journey.Rejectf(journey.CodeUnavailable, "%v; retry when one is done", err)
	}
	return err
}

// decodeJSONBody reads a JSON object body into v.
func (s *Server) decodeJSONBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return journey.Rejectf(journey.CodeBadRequest, "body is not the JSON object expected: %v", err)
	}
	return nil
}

// postBroadcast is POST /v1/broadcasts: 202 {"id"} once the broadcast is
// recorded.
func (s *Server) postBroadcast(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	var req journey.BroadcastRequest
	if err := s.decodeJSONBody(w, r, &req); err != nil {
		s.audited(r, p, "broadcast", "", err)
		writeError(w, err)
		return
	}
	id, err := s.rt.StartBroadcast(r.Context(), &req)
	s.audited(r, p, "broadcast", id, err)
	if err != nil {
		writeError(w, broadcastError(id, err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
}

// broadcastsListMax bounds GET /v1/broadcasts.
const broadcastsListMax = 100

// listBroadcasts is GET /v1/broadcasts: the latest broadcasts, newest
// first (an extension of PROTOCOL section 3, for dashboards).
func (s *Server) listBroadcasts(w http.ResponseWriter, r *http.Request) {
	list, err := s.rt.Broadcasts(r.Context(), broadcastsListMax)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"broadcasts": list})
}

// getBroadcast is GET /v1/broadcasts/{id}: state and progress.
func (s *Server) getBroadcast(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st, err := s.rt.BroadcastStatus(r.Context(), id)
	if err != nil {
		writeError(w, broadcastError(id, err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// deleteBroadcast is DELETE /v1/broadcasts/{id}: 204, the rest of its
// targets are not sent.
func (s *Server) deleteBroadcast(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	id := r.PathValue("id")
	err := s.rt.CancelBroadcast(r.Context(), id)
	s.audited(r, p, "broadcast.cancel", id, err)
	if err != nil {
		writeError(w, broadcastError(id, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// resolveBroadcast is POST /v1/broadcasts/{id}/resolve: 202 once the resolve
// is recorded; a second one answers conflict.
func (s *Server) resolveBroadcast(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	id := r.PathValue("id")
	var req journey.ResolveRequest
	err := s.decodeJSONBody(w, r, &req)
	if err == nil {
		err = s.rt.ResolveBroadcast(r.Context(), id, &req)
	}
	s.audited(r, p, "broadcast.resolve", id, err)
	if err != nil {
		writeError(w, broadcastError(id, err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
}

// audited records an action in the audit log with its outcome: "ok" or the
// error's code.
func (s *Server) audited(r *http.Request, p principal, action, target string, err error) {
	result := "ok"
	if err != nil {
		result = string(rejection(err).Code)
	}
	s.audit(r, p, action, target, result)
}
