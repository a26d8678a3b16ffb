package gateway

import (
	"net/http"

	"github.com/throughline/throughline/journey"
)

// getCluster is GET /v1/cluster (supervisor): members and partitions.
func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.rt.Cluster(s.Addr()))
}

// postClusterLeave is POST /v1/cluster/leave (admin): this node's replicas
// move to the others, then it stops (PROTOCOL 8). 202 once the departure
// started; 409 on a node without a cluster.
func (s *Server) postClusterLeave(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Leave == nil {
		writeError(w, journey.Rejectf(journey.CodeConflict, "this node is not in a cluster (no cluster: section)"))
		return
	}
	if err := s.cfg.Leave(); err != nil {
		writeError(w, journey.Rejectf(journey.CodeUnavailable, "%v", err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "leaving"})
}
