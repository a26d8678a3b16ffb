package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// Timeline paging (PROTOCOL section 3).
const (
	timelineLimitDefault = 100
	timelineLimitMax     = journey.TimelinePageMax
)

// customerRead authenticates a read of a customer: a supervisor (or admin)
// may read anyone; an agent only customers whose conversation is assigned
// to it.
func (s *Server) customerRead(w http.ResponseWriter, r *http.Request) (string, int, bool) {
	p := principalOf(r)
	id := r.PathValue("id")
	if rej := journey.ValidateID("customer", id); rej != nil {
		writeError(w, rej)
		return "", 0, false
	}
	if !p.may(RoleSupervisor) {
		c, _, err := s.rt.Context(r.Context(), id)
		if err != nil {
			writeError(w, err)
			return "", 0, false
		}
		if !c.Conversation.AssignedTo(p.agent) {
			writeError(w, journey.Rejectf(journey.CodeForbidden, "customer %s is not assigned to you", id))
			return "", 0, false
		}
	}
	part := s.rt.PartitionOf(id)
	if !s.rt.Admit(part) {
		writeError(w, journey.Rejectf(journey.CodeUnavailable, "partition overloaded"))
		return "", 0, false
	}
	return id, part, true
}

// getCustomer is GET /v1/customers/{id}: the journey context.
func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) {
	id, part, ok := s.customerRead(w, r)
	if !ok {
		return
	}
	defer s.rt.Release(part)
	c, exists, err := s.rt.Context(r.Context(), id)
	switch {
	case err != nil:
		writeError(w, err)
	case !exists:
		writeError(w, rejectf404("customer %s is unknown", id))
	default:
		writeJSON(w, http.StatusOK, c)
	}
}

// getTimeline is GET /v1/customers/{id}/timeline?after=SEQ&limit=N.
func (s *Server) getTimeline(w http.ResponseWriter, r *http.Request) {
	id, part, ok := s.customerRead(w, r)
	if !ok {
		return
	}
	defer s.rt.Release(part)
	q := r.URL.Query()
	after, limit := uint64(0), timelineLimitDefault
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, journey.Rejectf(journey.CodeBadRequest, "after must be a seq"))
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			writeError(w, journey.Rejectf(journey.CodeBadRequest, "limit must be a positive number"))
			return
		}
	}
	limit = min(limit, timelineLimitMax)
	events, more, exists, err := s.rt.Timeline(r.Context(), id, after, limit)
	switch {
	case err != nil:
		writeError(w, err)
		return
	case !exists:
		writeError(w, rejectf404("customer %s is unknown", id))
		return
	}
	var next *uint64
	if more {
		n := events[len(events)-1].Seq
		next = &n
	}
	if wantsCloudEvents(r) {
		out := make([]cloudEvent, len(events))
		for i, e := range events {
			out[i] = toCloudEvent(e)
		}
		if next != nil {
			w.Header().Set("Throughline-Next-After", strconv.FormatUint(*next, 10))
		}
		writeJSONAs(w, http.StatusOK, out, "application/cloudevents-batch+json")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Events    []journey.Event `json:"events"`
		NextAfter *uint64         `json:"next_after,omitempty"`
	}{events, next})
}

func wantsCloudEvents(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if containsMediaType(v, "application/cloudevents-batch+json") {
			return true
		}
	}
	return false
}

// patchProfile is PATCH /v1/customers/{id}/profile: merge the object into
// the profile (null removes a key); answers the profile. A supervisor's
// patch (a person's change, unlike a channel's) is audited.
func (s *Server) patchProfile(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	id := r.PathValue("id")
	if rej := journey.ValidateID("customer", id); rej != nil {
		writeError(w, rej)
		return
	}
	profile, err := s.patch(w, r, id)
	if p.may(RoleSupervisor) {
		s.audit(r, p, auditProfilePatch, id, resultOf(err))
	}
	switch {
	case r.Context().Err() != nil:
		return // the client went away
	case err != nil:
		writeError(w, err)
	default:
		writeJSON(w, http.StatusOK, profile)
	}
}

// patch merges the request's body into the customer's profile and returns
// the profile once durable.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, id string) (map[string]any, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if rej := s.memoryRefusal("nothing was stored"); rej != nil {
		return nil, rej // a patch records an event (profile.updated)
	}
	if rej := journey.CheckJSONUTF8("profile", body); rej != nil {
		return nil, rej
	}
	part := s.rt.PartitionOf(id)
	if !s.rt.Admit(part) {
		return nil, journey.Rejectf(journey.CodeUnavailable, "partition overloaded")
	}
	defer s.rt.Release(part)
	type answer struct {
		res     actors.Result
		profile map[string]any
	}
	done := make(chan answer, 1)
	s.rt.PatchProfile(id, journey.ProfilePatch{ID: "profile-" + randomHex(12), Patch: body},
		func(res actors.Result, p map[string]any) { done <- answer{res, p} })
	select {
	case a := <-done:
		if a.res.Reject != nil {
			return nil, a.res.Reject
		}
		return a.profile, nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

func rejectf404(format string, args ...any) *journey.Rejection {
	return journey.Rejectf(journey.CodeNotFound, format, args...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("gateway: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// getQueues is GET /v1/queues: live depths and longest waits.
func (s *Server) getQueues(w http.ResponseWriter, r *http.Request) {
	queues, _, err := s.rt.Routing(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"queues": queues})
}

// getAgents is GET /v1/agents: agents' states and loads.
func (s *Server) getAgents(w http.ResponseWriter, r *http.Request) {
	_, agents, err := s.rt.Routing(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	// A capacity reads as PROTOCOL 4 writes it: a number, or per channel.
	writeJSON(w, http.StatusOK, map[string]any{"agents": agents})
}
