package gateway

import "net/http"

// getCluster is GET /v1/cluster (supervisor): members and partitions.
func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) {
	if _, rej := s.auth.authenticate(r, false, RoleSupervisor); rej != nil {
		writeError(w, rej)
		return
	}
	writeJSON(w, http.StatusOK, s.rt.Cluster(s.Addr()))
}
