package gateway

import "net/http"

// getNextBestAction is GET /v1/customers/{id}/next-best-action (PROTOCOL
// section 5): the customer's ranked offers and why, as of its durable seq;
// the same readers and 404 as GET /v1/customers/{id}.
func (s *Server) getNextBestAction(w http.ResponseWriter, r *http.Request) {
	id, part, ok := s.customerRead(w, r)
	if !ok {
		return
	}
	defer s.rt.Release(part)
	ranking, exists, err := s.rt.NextBestAction(r.Context(), id)
	switch {
	case err != nil:
		writeError(w, err)
	case !exists:
		writeError(w, rejectf404("customer %s is unknown", id))
	default:
		writeJSON(w, http.StatusOK, ranking)
	}
}
