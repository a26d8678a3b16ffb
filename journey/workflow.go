package journey

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// WorkflowConfig is a named, declarative sequence of steps (config
// `workflows:`): verify the customer with a one-time code, look their
// account up over HTTP, open or resolve a case, then hand back to the bot
// or route. A workflow that fails routes to a person with the reason.
type WorkflowConfig struct {
	Name  string         `yaml:"name"`
	Steps []WorkflowStep `yaml:"steps"`
	// Then ends the workflow: "bot" (hand back to the bot; the default when
	// a bot exists) or a route.
	Then WorkflowEnd `yaml:"then"`
	// FailQueue is where a failed workflow routes; default: the bot's
	// default queue.
	FailQueue string `yaml:"fail_queue"`
}

// WorkflowStep is one step; exactly one field is set.
type WorkflowStep struct {
	SendCode    *SendCodeStep `yaml:"send_code"`
	Call        *CallStep     `yaml:"call"`
	OpenCase    *OpenCaseStep `yaml:"open_case"`
	ResolveCase *struct{}     `yaml:"resolve_case"`
}

// SendCodeStep sends a one-time code on the conversation's channel and
// waits for the customer to send it back. The code is journaled hashed and
// the messages carrying it are recorded redacted.
type SendCodeStep struct {
	Digits   int           `yaml:"digits"`   // default 6
	Text     string        `yaml:"text"`     // must contain {code}; default "Your verification code is {code}."
	Attempts int           `yaml:"attempts"` // wrong replies allowed; default 3
	Expires  time.Duration `yaml:"expires"`  // default 10m
}

// CallStep calls an HTTP endpoint with the customer's context and merges
// the JSON object it answers into the profile (under Into, or at the top).
type CallStep struct {
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"` // per attempt; default 5s
	Retries int           `yaml:"retries"` // extra attempts on 5xx and network errors; default 0, at most 5
	Into    string        `yaml:"into"`    // profile key to merge the answer under; "" merges at the top
}

// OpenCaseStep opens a case.
type OpenCaseStep struct {
	Subject string `yaml:"subject"`
}

// WorkflowEnd is "bot" or a route.
type WorkflowEnd struct {
	Bot   bool         `yaml:"bot"`
	Route *RouteAction `yaml:"route"`
}

// Limits and defaults of workflows.
const (
	WorkflowsMax        = 64
	WorkflowStepsMax    = 16
	CodeDigitsDefault   = 6
	CodeAttemptsDefault = 3
	CodeExpiresDefault  = 10 * time.Minute
	CallTimeoutDefault  = 5 * time.Second
	CallRetriesMax      = 5
	CodeTextDefault     = "Your verification code is {code}."
)

// Workflows are the compiled workflows, by name.
type Workflows map[string]*WorkflowConfig

// CompileWorkflows validates the workflows, with defaults filled in; the
// error lists every problem, naming the workflow and step.
func CompileWorkflows(cfgs []WorkflowConfig) (Workflows, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(cfgs) > WorkflowsMax {
		fail("%d workflows; at most %d", len(cfgs), WorkflowsMax)
	}
	out := Workflows{}
	for i := range cfgs {
		w := cfgs[i]
		name := w.Name
		if !validName(name, RuleIDMaxChars) {
			fail("workflow %d: name %q must match ^[a-z0-9]+([._-][a-z0-9]+)*$", i, name)
			continue
		}
		if out[name] != nil {
			fail("workflow %s: given twice", name)
			continue
		}
		if len(w.Steps) == 0 || len(w.Steps) > WorkflowStepsMax {
			fail("workflow %s: needs 1 to %d steps", name, WorkflowStepsMax)
		}
		w.Steps = append([]WorkflowStep(nil), w.Steps...)
		for j := range w.Steps {
			if err := checkStep(&w.Steps[j]); err != nil {
				fail("workflow %s: step %d: %v", name, j, err)
			}
		}
		if w.Then.Route != nil && w.Then.Route.Queue == "" {
			fail("workflow %s: then.route needs a queue", name)
		}
		if w.Then.Route == nil {
			w.Then.Bot = true
		}
		out[name] = &w
	}
	return out, errors.Join(errs...)
}

func checkStep(s *WorkflowStep) error {
	n := 0
	for _, set := range []bool{s.SendCode != nil, s.Call != nil, s.OpenCase != nil, s.ResolveCase != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("needs exactly one of send_code, call, open_case, resolve_case")
	}
	switch {
	case s.SendCode != nil:
		c := *s.SendCode
		c.Digits = cmpOr(c.Digits, CodeDigitsDefault)
		c.Attempts = cmpOr(c.Attempts, CodeAttemptsDefault)
		if c.Expires == 0 {
			c.Expires = CodeExpiresDefault
		}
		if c.Text == "" {
			c.Text = CodeTextDefault
		}
		s.SendCode = &c
		switch {
		case c.Digits < 4 || c.Digits > 10:
			return fmt.Errorf("send_code.digits %d: must be 4 to 10", c.Digits)
		case c.Attempts < 1 || c.Attempts > 10:
			return fmt.Errorf("send_code.attempts %d: must be 1 to 10", c.Attempts)
		case c.Expires < 0 || c.Expires > 24*time.Hour:
			return fmt.Errorf("send_code.expires %s: must be at most 24h", c.Expires)
		case !strings.Contains(c.Text, "{code}"):
			return errors.New("send_code.text must contain {code}")
		}
	case s.Call != nil:
		c := *s.Call
		if c.Timeout == 0 {
			c.Timeout = CallTimeoutDefault
		}
		s.Call = &c
		u, err := url.Parse(c.URL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return fmt.Errorf("call.url %q: must be an http(s) URL", c.URL)
		case c.Timeout < 0 || c.Timeout > time.Minute:
			return fmt.Errorf("call.timeout %s: must be at most 1m", c.Timeout)
		case c.Retries < 0 || c.Retries > CallRetriesMax:
			return fmt.Errorf("call.retries %d: must be 0 to %d", c.Retries, CallRetriesMax)
		}
	}
	return nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// WorkflowRun is the customer's running workflow.
type WorkflowRun struct {
	Name         string    `json:"name"`
	Conversation string    `json:"conversation"`
	Step         int       `json:"step"`               // the step running, or to run next
	Awaiting     string    `json:"awaiting,omitempty"` // "code", "call": waiting for the customer or the endpoint
	CodeHash     string    `json:"code_hash,omitempty"`
	AttemptsLeft int       `json:"attempts_left,omitempty"`
	Expires      time.Time `json:"expires,omitzero"`
}

// WorkflowTask asks the workflow runner (outside journey: it has the
// randomness and the network) for a step's work: a fresh code, or an HTTP
// call. The answer comes back as a WorkflowResult input.
type WorkflowTask struct {
	Customer string
	Workflow string
	Step     int
	Kind     string // "code" or "call"
	Digits   int    // code
	Call     *CallStep
	Context  Context // call: the customer's journey context
}

// WorkflowResult is the runner's answer to a WorkflowTask.
type WorkflowResult struct {
	Workflow string
	Step     int
	Code     string          // code: the digits generated
	Answer   json.RawMessage // call: the endpoint's JSON object
	Err      string          // the step failed
}

func (*WorkflowResult) isInput() {}

// workflowStepData is the data of workflow.step.
type workflowStepData struct {
	Workflow     string    `json:"workflow"`
	Rule         string    `json:"rule,omitempty"` // the rule that started it (on start)
	Step         string    `json:"step"`           // "start", "<n>:<kind>", "done"
	Index        int       `json:"index"`
	Result       string    `json:"result"`
	Conversation string    `json:"conversation,omitempty"`
	Error        string    `json:"error,omitempty"`
	CodeSHA256   string    `json:"code_sha256,omitempty"`
	AttemptsLeft int       `json:"attempts_left,omitempty"`
	Expires      time.Time `json:"expires,omitzero"`
}

// Results of workflow.step.
const (
	StepStarted  = "started"
	StepWaiting  = "waiting"
	StepOK       = "ok"
	StepVerified = "verified"
	StepMismatch = "mismatch"
	StepFailed   = "failed"
	StepBot      = "bot"
	StepRouted   = "routed"
)

// applyWorkflow keeps the running workflow in step with its events.
func (c *Customer) applyWorkflow(e *Event) {
	if e.Type != TypeWorkflowStep {
		return
	}
	var d workflowStepData
	if json.Unmarshal(e.Data, &d) != nil {
		return
	}
	w := c.Workflow
	switch {
	case d.Result == StepStarted:
		c.Workflow = &WorkflowRun{Name: d.Workflow, Conversation: d.Conversation}
		c.moveConversation(e, StateWorkflow)
		return
	case w == nil || w.Name != d.Workflow:
		return
	}
	w.Step = d.Index
	switch d.Result {
	case StepWaiting:
		w.Awaiting = "code"
		if d.CodeSHA256 == "" {
			w.Awaiting = "call"
		}
		w.CodeHash, w.AttemptsLeft, w.Expires = d.CodeSHA256, d.AttemptsLeft, d.Expires
	case StepMismatch:
		w.AttemptsLeft = d.AttemptsLeft
	case StepOK, StepVerified:
		w.Step = d.Index + 1
		w.Awaiting, w.CodeHash, w.AttemptsLeft, w.Expires = "", "", 0, time.Time{}
	case StepFailed, StepRouted:
		c.Workflow = nil
	case StepBot:
		c.Workflow = nil
		if cv := c.Conversation; cv.Open() && cv.State == StateWorkflow {
			cv.State, cv.Since = StateBot, e.RecordedAt
		}
	}
}

// codeHash is how a code is journaled: salted with the customer and the
// workflow step, so equal codes of different customers differ.
func codeHash(customer, workflow string, step int, code string) string {
	h := sha256.Sum256([]byte(customer + "\x00" + workflow + "\x00" + strconv.Itoa(step) + "\x00" + code))
	return hex.EncodeToString(h[:])
}

// codeIn is the digits of a message (a code the customer sends back).
func codeIn(text string) string {
	var b strings.Builder
	for _, r := range text {
		if unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// redactDigits hides the digits of a message that carries a code.
func redactDigits(text string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsDigit(r) {
			return '•'
		}
		return r
	}, text)
}

// UnmarshalYAML accepts `then: bot` as well as `then: {route: {...}}`. It
// takes yaml.v3's function form so journey does not import the YAML
// package.
func (e *WorkflowEnd) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if unmarshal(&s) == nil {
		if s != "bot" {
			return fmt.Errorf("then: %q: want bot or {route: {queue, priority}}", s)
		}
		*e = WorkflowEnd{Bot: true}
		return nil
	}
	type plain WorkflowEnd
	return unmarshal((*plain)(e))
}
