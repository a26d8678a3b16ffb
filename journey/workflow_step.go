package journey

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// The workflow's side of Step: starting a workflow, running its steps one
// at a time (a step that needs randomness or the network asks the runner
// with a WorkflowTask and continues on its WorkflowResult), checking a code
// the customer sends back, and ending by handing back to the bot or
// routing; any failure routes to a person with the reason.

// Messages of the code step.
const (
	CodeMismatchText = "That code does not match. Please check it and send it again."
	CodeVerifiedText = "Thank you, you are verified."
)

// callSlack is how long past its attempts' timeouts a call step may take
// before the workflow gives it up (a runner lost in a restart).
const callSlack = 30 * time.Second

// startWorkflow starts a workflow for a rule.
func (s *stepper) startWorkflow(rule, name string) {
	wf := s.p.Workflows[name]
	actor := ActorWorkflowPrefix + name
	if wf == nil {
		s.record(TypeWorkflowStep, actor, workflowStepData{Workflow: name, Rule: rule, Step: "start", Result: StepFailed, Error: "no such workflow"}, "", "")
		return
	}
	cv := s.c.Conversation
	switch {
	case s.c.Workflow != nil:
		s.record(TypeWorkflowStep, actor, workflowStepData{Workflow: name, Rule: rule, Step: "start", Result: StepFailed, Error: "workflow " + s.c.Workflow.Name + " is running"}, "", "")
		return
	case !cv.Open():
		if cv = s.open(StateWorkflow, "", "", 0, ""); cv == nil {
			return
		}
	case cv.State != StateWorkflow && !CanMove(cv.State, StateWorkflow):
		s.record(TypeWorkflowStep, actor, workflowStepData{Workflow: name, Rule: rule, Step: "start", Result: StepFailed, Error: "the conversation is " + cv.State}, "", "")
		return
	}
	s.record(TypeWorkflowStep, actor, workflowStepData{Workflow: name, Rule: rule, Step: "start", Result: StepStarted, Conversation: cv.ID}, "", "")
	s.runStep(wf, 0)
}

// runStep runs step i, or ends the workflow after its last step.
func (s *stepper) runStep(wf *WorkflowConfig, i int) {
	if i >= len(wf.Steps) {
		s.finishWorkflow(wf)
		return
	}
	actor := ActorWorkflowPrefix + wf.Name
	st := wf.Steps[i]
	step := stepName(i, st)
	switch {
	case st.SendCode != nil:
		s.d.Workflow = append(s.d.Workflow, WorkflowTask{Customer: s.c.ID, Workflow: wf.Name, Step: i, Kind: "code", Digits: st.SendCode.Digits})
	case st.Call != nil:
		expires := s.at.Add(time.Duration(st.Call.Retries+1)*st.Call.Timeout + callSlack)
		s.record(TypeWorkflowStep, actor, workflowStepData{Workflow: wf.Name, Step: step, Index: i, Result: StepWaiting, Expires: expires}, "", "")
		s.d.DueAdd = append(s.d.DueAdd, Due{At: expires, Kind: DueWorkflowExpire, Ref: wf.Name + ":" + strconv.Itoa(i)})
		s.d.Workflow = append(s.d.Workflow, WorkflowTask{Customer: s.c.ID, Workflow: wf.Name, Step: i, Kind: "call", Call: st.Call, Context: s.c.Context(s.c.Seq)})
	case st.OpenCase != nil:
		s.record(TypeCaseOpened, actor, caseData{Case: "case-" + strconv.FormatUint(s.c.Seq+1, 10) + "-" + s.c.ID, Subject: st.OpenCase.Subject}, "", "")
		s.stepDone(wf, i, StepOK)
	case st.ResolveCase != nil:
		for j := len(s.c.Cases) - 1; j >= 0; j-- {
			if s.c.Cases[j].Status == "open" {
				s.record(TypeCaseResolved, actor, caseData{Case: s.c.Cases[j].ID}, "", "")
				break
			}
		}
		s.stepDone(wf, i, StepOK)
	}
}

func stepName(i int, st WorkflowStep) string {
	kind := "resolve_case"
	switch {
	case st.SendCode != nil:
		kind = "send_code"
	case st.Call != nil:
		kind = "call"
	case st.OpenCase != nil:
		kind = "open_case"
	}
	return strconv.Itoa(i) + ":" + kind
}

// stepDone records a step's success and runs the next.
func (s *stepper) stepDone(wf *WorkflowConfig, i int, result string) {
	s.record(TypeWorkflowStep, ActorWorkflowPrefix+wf.Name, workflowStepData{Workflow: wf.Name, Step: stepName(i, wf.Steps[i]), Index: i, Result: result}, "", "")
	s.runStep(wf, i+1)
}

// workflowResult continues a workflow with the runner's answer.
func (s *stepper) workflowResult(r *WorkflowResult) {
	w := s.c.Workflow
	wf := s.p.Workflows[r.Workflow]
	if w == nil || wf == nil || w.Name != r.Workflow || r.Step >= len(wf.Steps) || w.Step != r.Step {
		return // the workflow ended or moved on: a stale answer
	}
	st := wf.Steps[r.Step]
	if r.Err != "" {
		s.failWorkflow(wf, r.Step, r.Err)
		return
	}
	switch {
	case st.SendCode != nil && w.Awaiting == "":
		s.sendCode(wf, r.Step, st.SendCode, r.Code)
	case st.Call != nil && w.Awaiting == "call" && w.Step == r.Step:
		var answer map[string]any
		if json.Unmarshal(r.Answer, &answer) != nil || answer == nil {
			s.failWorkflow(wf, r.Step, "the endpoint did not answer a JSON object")
			return
		}
		patch := answer
		if st.Call.Into != "" {
			patch = map[string]any{st.Call.Into: answer}
		}
		merged := cloneProfile(s.c.Profile)
		mergeProfile(merged, patch)
		raw, _ := json.Marshal(patch)
		if b, _ := json.Marshal(merged); len(b) > ProfileMaxBytes || len(raw) > DataMaxBytes {
			s.failWorkflow(wf, r.Step, "the endpoint's answer is too large for the profile")
			return
		}
		s.record(TypeProfileUpdated, ActorWorkflowPrefix+wf.Name, json.RawMessage(raw), "", "")
		s.d.DueDone = append(s.d.DueDone, Due{At: w.Expires, Kind: DueWorkflowExpire, Ref: wf.Name + ":" + strconv.Itoa(r.Step)})
		s.stepDone(wf, r.Step, StepOK)
	}
}

// sendCode journals the code hashed, sends it (recorded redacted) and
// waits for the customer to send it back.
func (s *stepper) sendCode(wf *WorkflowConfig, i int, st *SendCodeStep, code string) {
	if len(code) != st.Digits || codeIn(code) != code {
		s.failWorkflow(wf, i, "the runner gave no code")
		return
	}
	cv := s.c.Conversation
	expires := s.at.Add(st.Expires)
	s.record(TypeWorkflowStep, ActorWorkflowPrefix+wf.Name, workflowStepData{
		Workflow: wf.Name, Step: stepName(i, wf.Steps[i]), Index: i, Result: StepWaiting,
		CodeSHA256: codeHash(s.c.ID, wf.Name, i, code), AttemptsLeft: st.Attempts, Expires: expires,
	}, "", "")
	s.d.DueAdd = append(s.d.DueAdd, Due{At: expires, Kind: DueWorkflowExpire, Ref: wf.Name + ":" + strconv.Itoa(i)})
	text := strings.ReplaceAll(st.Text, "{code}", code)
	seq := s.send(ActorWorkflowPrefix+wf.Name, cv.Channel, redactDigits(text), messageSent{Conversation: cv.ID, Redacted: true})
	if p := s.c.pendingOutbound(seq); p != nil {
		p.Text, p.Clear = text, true
		s.d.Outbounds[len(s.d.Outbounds)-1].Text = text
	}
}

// codeVerdict is what a customer message said to a waiting code step.
type codeVerdict struct {
	seq   uint64
	match bool
}

// checkCode looks at an inbound message while a code step waits: it
// compares the digits with the journaled hash and redacts them before the
// message is stored.
func (s *stepper) checkCode(e *Event) {
	w, cv := s.c.Workflow, s.c.Conversation
	if w == nil || w.Awaiting != "code" || e.Type != TypeMessageReceived || !cv.Open() || cv.ID != w.Conversation {
		return
	}
	digits := codeIn(e.Text)
	if digits == "" {
		return // not an attempt; the step keeps waiting
	}
	s.code = &codeVerdict{seq: e.Seq, match: codeHash(s.c.ID, w.Name, w.Step, digits) == w.CodeHash}
	e.Text = redactDigits(e.Text)
}

// codeReply continues the code step after the customer's attempt.
func (s *stepper) codeReply() {
	v, w := s.code, s.c.Workflow
	s.code = nil
	wf := s.p.Workflows[w.Name]
	if wf == nil {
		return
	}
	cv := s.c.Conversation
	ref := Due{At: w.Expires, Kind: DueWorkflowExpire, Ref: w.Name + ":" + strconv.Itoa(w.Step)}
	if v.match {
		s.d.DueDone = append(s.d.DueDone, ref)
		s.send(ActorWorkflowPrefix+wf.Name, cv.Channel, CodeVerifiedText, messageSent{Conversation: cv.ID})
		s.stepDone(wf, w.Step, StepVerified)
		return
	}
	left := w.AttemptsLeft - 1
	if left <= 0 {
		s.d.DueDone = append(s.d.DueDone, ref)
		s.failWorkflow(wf, w.Step, "the code did not match")
		return
	}
	s.record(TypeWorkflowStep, ActorWorkflowPrefix+wf.Name, workflowStepData{Workflow: wf.Name, Step: stepName(w.Step, wf.Steps[w.Step]), Index: w.Step, Result: StepMismatch, AttemptsLeft: left}, "", "")
	s.send(ActorWorkflowPrefix+wf.Name, cv.Channel, CodeMismatchText, messageSent{Conversation: cv.ID})
}

// dueWorkflowExpire fails a step that waited too long.
func (s *stepper) dueWorkflowExpire(in *Due) {
	w := s.c.Workflow
	if w == nil || w.Awaiting == "" || in.Ref != w.Name+":"+strconv.Itoa(w.Step) {
		return
	}
	if wf := s.p.Workflows[w.Name]; wf != nil {
		s.failWorkflow(wf, w.Step, "timed out")
	}
}

// finishWorkflow ends a workflow by its `then`.
func (s *stepper) finishWorkflow(wf *WorkflowConfig) {
	actor := ActorWorkflowPrefix + wf.Name
	cv := s.c.Conversation
	if wf.Then.Route == nil {
		s.record(TypeWorkflowStep, actor, workflowStepData{Workflow: wf.Name, Step: "done", Index: len(wf.Steps), Result: StepBot}, "", "")
		return
	}
	s.record(TypeWorkflowStep, actor, workflowStepData{Workflow: wf.Name, Step: "done", Index: len(wf.Steps), Result: StepRouted}, "", "")
	if cv.Open() {
		s.record(TypeRoutingDecided, actor, RoutingDecided{Conversation: cv.ID, Reason: ReasonWorkflow,
			Queue: wf.Then.Route.Queue, Priority: wf.Then.Route.Priority, Summary: cv.summary()}, "", "")
	}
}

// failWorkflow ends a workflow that failed and routes to a person.
func (s *stepper) failWorkflow(wf *WorkflowConfig, i int, reason string) {
	actor := ActorWorkflowPrefix + wf.Name
	s.record(TypeWorkflowStep, actor, workflowStepData{Workflow: wf.Name, Step: stepName(i, wf.Steps[i]), Index: i, Result: StepFailed, Error: cut(reason, ReasonMaxChars)}, "", "")
	cv := s.c.Conversation
	queue := wf.FailQueue
	if queue == "" && s.p.Bot != nil {
		queue = s.p.Bot.DefaultQueue
	}
	if !cv.Open() || queue == "" {
		return
	}
	s.record(TypeRoutingDecided, actor, RoutingDecided{Conversation: cv.ID, Reason: ReasonWorkflowFailed,
		Queue: queue, Summary: cv.summary()}, "", "")
	if s.p.Bot != nil {
		s.send(actor, cv.Channel, s.p.Bot.Handover, messageSent{Conversation: cv.ID})
	}
}
