package gateway

// Privacy (PROTOCOL section 3): a customer's export, streamed from the
// store a page at a time; its erase, through its actor; and the audit log of
// both and of the other sensitive actions.

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// Limits of the privacy endpoints.
const (
	// exportPageEvents is how many events an export reads from the store at
	// once: the most it holds in memory.
	exportPageEvents  = 500
	auditLimitDefault = 100
	// auditWriteTimeout bounds the audit write of a request whose client
	// went away (the entry is still written).
	auditWriteTimeout = 5 * time.Second
)

// Audit actions (PROTOCOL section 3 GET /v1/audit).
const (
	auditExport       = "export"
	auditErase        = "erase"
	auditProfilePatch = "profile.patch"
	auditRefused      = "refused"
)

// audit records an action in the audit log; a failure is logged (callers
// whose response must wait for the entry use auditSync).
func (s *Server) audit(r *http.Request, p principal, action, target, result string) {
	if err := s.auditSync(r, p, action, target, result); err != nil {
		s.log.Error("audit entry not stored", "action", action, "err", err)
	}
}

// auditSync records an action in the audit log, durably when it returns
// nil.
func (s *Server) auditSync(r *http.Request, p principal, action, target, result string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditWriteTimeout)
	defer cancel()
	return s.rt.Audit(ctx, actors.AuditEntry{
		Token: p.auditName(), Role: string(p.role), Action: action, Target: target, Result: result,
	})
}

// resultOf is an audit entry's result: "ok" or the error's code.
func resultOf(err error) string {
	if err == nil {
		return "ok"
	}
	return string(rejection(err).Code)
}

// adminCustomer authenticates an admin request about a customer and admits
// it to the customer's partition; release must be called when ok.
func (s *Server) adminCustomer(w http.ResponseWriter, r *http.Request) (p principal, id string, release func(), ok bool) {
	p = principalOf(r) // the route table audits a refusal
	id = r.PathValue("id")
	if rej := journey.ValidateID("customer", id); rej != nil {
		writeError(w, rej)
		return p, "", nil, false
	}
	part := s.rt.PartitionOf(id)
	if !s.rt.Admit(part) {
		writeError(w, journey.Rejectf(journey.CodeUnavailable, "partition overloaded"))
		return p, "", nil, false
	}
	return p, id, func() { s.rt.Release(part) }, true
}

// exportCustomer is GET /v1/customers/{id}/export: the customer, its
// identities and profile, then every event up to its durable seq at the
// start, read from the store a page at a time and written as it goes.
func (s *Server) exportCustomer(w http.ResponseWriter, r *http.Request) {
	p, id, release, ok := s.adminCustomer(w, r)
	if !ok {
		return
	}
	defer release()
	c, exists, err := s.rt.Context(r.Context(), id)
	if err == nil && !exists {
		err = rejectf404("customer %s is unknown", id)
	}
	if aerr := s.auditSync(r, p, auditExport, id, resultOf(err)); aerr != nil && err == nil {
		err = journey.Rejectf(journey.CodeUnavailable, "the audit log is unavailable; nothing was exported")
	}
	if err != nil {
		writeError(w, err)
		return
	}
	head, err := json.Marshal(struct {
		Customer   string              `json:"customer"`
		Identities map[string][]string `json:"identities"`
		Profile    map[string]any      `json:"profile"`
	}{c.Customer, c.Identities, c.Profile})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(head[:len(head)-1]) // without its closing brace
	_, _ = w.Write([]byte(`,"events":[`))
	if err := s.writeEvents(r.Context(), w, id, c.Seq); err != nil {
		// The status is sent: only a cut connection tells the client the
		// body is incomplete.
		s.log.Warn("export interrupted", "partition", s.rt.PartitionOf(id), "err", err)
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write([]byte("]}\n"))
}

// writeEvents writes the customer's events up to seq upTo, comma
// separated, a page at a time.
func (s *Server) writeEvents(ctx context.Context, w http.ResponseWriter, id string, upTo uint64) error {
	flusher, _ := w.(http.Flusher)
	after, first := uint64(0), true
	for after < upTo {
		s.extendDeadlines(w) // a long export is bounded per page, not as a whole
		events, err := s.rt.StoredEvents(ctx, id, after, int(min(exportPageEvents, upTo-after)))
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return nil // erased meanwhile: what was written stands
		}
		for _, e := range events {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if !first {
				_, _ = w.Write([]byte{','})
			}
			first = false
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		after = events[len(events)-1].Seq
		if flusher != nil {
			flusher.Flush()
		}
	}
	return nil
}

// deleteCustomer is DELETE /v1/customers/{id}: erase the customer (its
// actor drains, erases every key of it and leaves routing).
func (s *Server) deleteCustomer(w http.ResponseWriter, r *http.Request) {
	p, id, release, ok := s.adminCustomer(w, r)
	if !ok {
		return
	}
	defer release()
	_, exists, err := s.rt.Context(r.Context(), id)
	if err == nil && !exists {
		err = rejectf404("customer %s is unknown", id)
	}
	if err == nil {
		err = s.rt.Erase(r.Context(), id)
	}
	if err == nil {
		s.outbound.forget(id)
	}
	if aerr := s.auditSync(r, p, auditErase, id, resultOf(err)); aerr != nil && err == nil {
		err = journey.Rejectf(journey.CodeUnavailable, "the customer was erased but the audit log is unavailable")
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getAudit is GET /v1/audit?since=RFC3339&limit=N: the last N entries at or
// after since, newest last.
func (s *Server) getAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, journey.Rejectf(journey.CodeBadRequest, "since must be an RFC 3339 time"))
			return
		}
		since = t
	}
	limit := auditLimitDefault
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, journey.Rejectf(journey.CodeBadRequest, "limit must be a positive number"))
			return
		}
		limit = min(n, actors.AuditReadMax)
	}
	entries, err := s.rt.AuditEntries(r.Context(), since, limit)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}
