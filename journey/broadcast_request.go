package journey

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// BroadcastRequest is the body of POST /v1/broadcasts (PROTOCOL section 5).
type BroadcastRequest struct {
	Segment struct {
		Event  string `json:"event"`
		Within string `json:"within"`
		Where  string `json:"where,omitempty"`
	} `json:"segment"`
	Message struct {
		Text string `json:"text"`
	} `json:"message"`
	CallbackOffer bool   `json:"callback_offer,omitempty"`
	CallbackQueue string `json:"callback_queue,omitempty"`
	Expires       string `json:"expires,omitempty"`
}

// ResolveRequest is the body of POST /v1/broadcasts/{id}/resolve.
type ResolveRequest struct {
	Message struct {
		Text string `json:"text"`
	} `json:"message"`
	Callback bool `json:"callback,omitempty"`
}

// BroadcastPlan is a validated broadcast, as the runtime records and works
// through it. Times are fixed when it is created, so a resumed broadcast
// targets the same segment.
type BroadcastPlan struct {
	ID            string        `json:"id"`
	Event         string        `json:"event"`
	Within        time.Duration `json:"within"`
	Where         string        `json:"where,omitempty"`
	Text          string        `json:"text"`
	CallbackOffer bool          `json:"callback_offer,omitempty"`
	CallbackQueue string        `json:"callback_queue,omitempty"`
	Created       time.Time     `json:"created"`
	Expires       time.Time     `json:"expires"`
}

// BroadcastExpiresDefault is a broadcast's expiry when it names none.
const BroadcastExpiresDefault = 24 * time.Hour

// PlanBroadcast validates a broadcast request made at now: the segment's
// event type and window, the where (compiled), the message, the expiry and
// the callback queue (when the request names none: defaultQueue, else the
// first of queues, else none; a named one must be one of queues). It
// returns the plan, its compiled where (nil when none), or a bad_request
// naming every problem. A callback offer without any queue is allowed: a
// yes is recorded, and the resolve sends the follow-up but can queue no
// callback (CheckResolve refuses callback: true then).
func PlanBroadcast(req *BroadcastRequest, id string, now time.Time, queues []string, defaultQueue string) (*BroadcastPlan, *Condition, *Rejection) {
	var problems []string
	fail := func(s string) { problems = append(problems, s) }
	p := &BroadcastPlan{ID: id, Event: req.Segment.Event, Text: req.Message.Text, CallbackOffer: req.CallbackOffer, Created: now}
	switch {
	case p.Event == "":
		fail("segment.event is required")
	case ValidateType(p.Event) != nil:
		fail("segment.event: " + ValidateType(p.Event).Message)
	}
	if w, err := time.ParseDuration(req.Segment.Within); err != nil || w <= 0 || w > BroadcastWithinMax {
		fail("segment.within must be a duration above 0 and at most " + BroadcastWithinMax.String())
	} else {
		p.Within = w
	}
	var where *Condition
	if req.Segment.Where != "" {
		c, err := CompileCondition(req.Segment.Where)
		if err != nil {
			fail("segment.where: " + err.Error())
		}
		where, p.Where = c, req.Segment.Where
	}
	switch {
	case strings.TrimSpace(p.Text) == "":
		fail("message.text is required")
	case len(p.Text) > BroadcastTextMaxBytes:
		fail(fmt.Sprintf("message.text is longer than %d bytes", BroadcastTextMaxBytes))
	}
	expires := BroadcastExpiresDefault
	if req.Expires != "" {
		e, err := time.ParseDuration(req.Expires)
		if err != nil || e <= 0 || e > BroadcastExpiresMax {
			fail("expires must be a duration above 0 and at most " + BroadcastExpiresMax.String())
		}
		expires = e
	}
	p.Expires = now.Add(expires)
	p.CallbackQueue = req.CallbackQueue
	switch {
	case p.CallbackQueue != "" && !contains(queues, p.CallbackQueue):
		fail("callback_queue " + quote(p.CallbackQueue) + " is not a configured queue")
	case p.CallbackQueue != "":
	case defaultQueue != "":
		p.CallbackQueue = defaultQueue
	case len(queues) > 0:
		p.CallbackQueue = queues[0]
	}
	if len(problems) > 0 {
		return nil, nil, reject(CodeBadRequest, "%s", strings.Join(problems, "; "))
	}
	return p, where, nil
}

// CheckResolve validates a resolve request of a broadcast planned as p.
func CheckResolve(req *ResolveRequest, p *BroadcastPlan) *Rejection {
	switch {
	case req.Callback && p.CallbackQueue == "":
		return reject(CodeBadRequest, "callback: the broadcast has no callback_queue and no queue is configured")
	case strings.TrimSpace(req.Message.Text) == "":
		return reject(CodeBadRequest, "message.text is required")
	case len(req.Message.Text) > BroadcastTextMaxBytes:
		return reject(CodeBadRequest, "message.text is longer than %d bytes", BroadcastTextMaxBytes)
	}
	return nil
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
