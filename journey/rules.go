package journey

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rules (PROTOCOL section 6): a rule says, in CEL, when a stored event of a
// customer makes something happen (route, send, workflow, offer_callback,
// tag, stage, open_case), at once or `after` a delay unless a later event
// cancels it. This file holds the configuration, its validation and the
// compiled rule set; rules_cel.go holds the CEL environment, the values rules
// see and the evaluation.

// Limits of the rule configuration. Every one is checked by CompileRules.
const (
	RulesMax           = 256                 // rules in one configuration
	ActionsPerRuleMax  = 16                  // actions in one rule
	RuleOnTypesMax     = 32                  // event types in one rule's on:
	RuleIDMaxChars     = 64                  // a rule id
	RuleNameMaxChars   = 64                  // tag and stage names
	RuleExprMaxChars   = 4096                // a when or unless expression
	RuleAfterMax       = 30 * 24 * time.Hour // the longest after:
	SendTextMaxBytes   = 16 << 10            // the text of a send action
	SendExpiresMax     = 30 * 24 * time.Hour // the longest expires of a send action
	CaseSubjectMax     = 256                 // the subject of an open_case action, in bytes
	SendExpiresDefault = 24 * time.Hour      // a send action's expires when none is given (PROTOCOL section 5)
)

// RuleConfig is one rule as written in the configuration (PROTOCOL section 6).
type RuleConfig struct {
	ID     string         `yaml:"id"`
	When   string         `yaml:"when"`   // CEL, boolean; sees event and customer
	On     []string       `yaml:"on"`     // event types that trigger the rule, whatever their actor; empty: events of the customer
	After  time.Duration  `yaml:"after"`  // fire this long after the triggering event, durably; 0: at once
	Unless string         `yaml:"unless"` // CEL, boolean; sees event (the later one), trigger and customer; needs after
	Do     []ActionConfig `yaml:"do"`
}

// ActionConfig is one action of a rule; exactly one field is set. In YAML it
// is a map of one key, the action's name (see UnmarshalYAML).
type ActionConfig struct {
	Route         *RouteAction
	Send          *SendAction
	Workflow      string // the workflow's name
	OfferCallback bool
	Tag           string // the tag's name
	Stage         string // the journey stage's name
	OpenCase      *OpenCaseAction
	// NextBestAction sends the best eligible offer (PROTOCOL section 5).
	NextBestAction *NextBestActionAction
}

// NextBestActionAction sends the customer the best eligible offer of the
// ranking (RankOffers) as a proactive message, through governance.
type NextBestActionAction struct {
	Expires time.Duration `yaml:"expires"` // 0 in the config: SendExpiresDefault once compiled
}

// RouteAction hands the conversation to a queue.
type RouteAction struct {
	Queue     string `yaml:"queue"`
	Priority  int    `yaml:"priority"`
	BypassBot bool   `yaml:"bypass_bot"`
}

// SendAction sends a proactive message, which passes the customer's
// governance (PROTOCOL section 5).
type SendAction struct {
	Text    string        `yaml:"text"`
	Channel string        `yaml:"channel"` // empty: the proactive channel choice of section 5
	Expires time.Duration `yaml:"expires"` // 0 in the config: SendExpiresDefault once compiled
}

// OpenCaseAction opens a case for the customer.
type OpenCaseAction struct {
	Subject string `yaml:"subject"`
}

// Action kinds, as returned by ActionConfig.Kind and written in YAML.
const (
	ActionRoute         = "route"
	ActionSend          = "send"
	ActionWorkflow      = "workflow"
	ActionOfferCallback = "offer_callback"
	ActionTag           = "tag"
	ActionStage         = "stage"
	ActionOpenCase      = "open_case"
	ActionNextBest      = "next_best_action"
)

// Kind returns the name of the action that is set, or "" when none is.
func (a ActionConfig) Kind() string {
	switch {
	case a.Route != nil:
		return ActionRoute
	case a.Send != nil:
		return ActionSend
	case a.Workflow != "":
		return ActionWorkflow
	case a.OfferCallback:
		return ActionOfferCallback
	case a.Tag != "":
		return ActionTag
	case a.Stage != "":
		return ActionStage
	case a.OpenCase != nil:
		return ActionOpenCase
	case a.NextBestAction != nil:
		return ActionNextBest
	}
	return ""
}

// count returns how many fields are set; a valid action has exactly one.
func (a ActionConfig) count() int {
	n := 0
	for _, set := range []bool{a.Route != nil, a.Send != nil, a.Workflow != "", a.OfferCallback, a.Tag != "", a.Stage != "", a.OpenCase != nil, a.NextBestAction != nil} {
		if set {
			n++
		}
	}
	return n
}

// Rule is one compiled rule. Its fields are read-only: a Rule is shared by
// every customer and safe for concurrent use.
type Rule struct {
	ID         string
	Index      int    // its position in the configuration; rules fire in this order
	WhenExpr   string // the source of when, for audit
	On         []string
	After      time.Duration
	UnlessExpr string // the source of unless; "" when none
	Do         []ActionConfig

	when   ruleProgram
	unless ruleProgram // zero when Unless is ""
}

// Rules is the compiled rule set: immutable and safe for concurrent use.
type Rules struct {
	rules     []*Rule
	maxWindow time.Duration
	queues    []string
	workflows []string
}

// CompileRules validates and compiles every rule, once, at start. The error
// lists every problem found (errors.Join), each naming its rule by id, or by
// index when the id is missing or invalid. Queue and workflow names are not
// checked against the rest of the configuration: that is the caller's job,
// with Queues and Workflows.
func CompileRules(cfgs []RuleConfig) (*Rules, error) {
	env, err := newRuleEnv()
	if err != nil {
		panic(fmt.Sprintf("journey: the CEL environment of rules does not build: %v", err)) // a bug, not a config problem
	}
	var errs []error
	if len(cfgs) > RulesMax {
		errs = append(errs, fmt.Errorf("rules: %d rules, more than %d", len(cfgs), RulesMax))
		cfgs = cfgs[:RulesMax]
	}
	rs := &Rules{rules: make([]*Rule, 0, len(cfgs))}
	seen := make(map[string]int, len(cfgs))
	queues, workflows := map[string]bool{}, map[string]bool{}
	for i, cfg := range cfgs {
		name := ruleName(i, cfg.ID)
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
		}
		if first, dup := seen[cfg.ID]; dup && cfg.ID != "" {
			fail("duplicate id (also rule #%d)", first)
		} else {
			seen[cfg.ID] = i
		}
		r, windows := compileRule(env, i, cfg, fail)
		rs.rules = append(rs.rules, r)
		rs.maxWindow = max(rs.maxWindow, windows)
		for _, a := range r.Do {
			if a.Route != nil && a.Route.Queue != "" {
				queues[a.Route.Queue] = true
			}
			if a.Workflow != "" {
				workflows[a.Workflow] = true
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	rs.queues = sortedKeys(queues)
	rs.workflows = sortedKeys(workflows)
	return rs, nil
}

// ruleName names a rule in errors: by its id when it is valid, else by index.
func ruleName(i int, id string) string {
	switch {
	case id == "":
		return fmt.Sprintf("rule #%d (no id)", i)
	case !validName(id, RuleIDMaxChars):
		return fmt.Sprintf("rule #%d (id %q)", i, id)
	}
	return "rule " + id
}

// compileRule checks and compiles one rule, reporting every problem to fail.
// It returns the rule (incomplete when fail was called) and the longest
// count() window of its expressions.
func compileRule(env *ruleEnv, i int, cfg RuleConfig, fail func(string, ...any)) (*Rule, time.Duration) {
	r := &Rule{ID: cfg.ID, Index: i, WhenExpr: cfg.When, On: slices.Clone(cfg.On), After: cfg.After, UnlessExpr: cfg.Unless}
	if cfg.ID == "" {
		fail("id is required")
	} else if !validName(cfg.ID, RuleIDMaxChars) {
		fail("id must match ^[a-z0-9]+([._-][a-z0-9]+)*$, at most %d characters", RuleIDMaxChars)
	}
	if len(cfg.On) > RuleOnTypesMax {
		fail("on: %d types, more than %d", len(cfg.On), RuleOnTypesMax)
	}
	for _, t := range cfg.On {
		if rej := ValidateType(t); rej != nil {
			fail("on: %s", rej.Message)
		}
	}
	if cfg.After < 0 || cfg.After > RuleAfterMax {
		fail("after: %v is outside 0 to %v", cfg.After, RuleAfterMax)
	}
	var window time.Duration
	if strings.TrimSpace(cfg.When) == "" {
		fail("when is required")
	} else if p, w, err := env.compile(cfg.When, false); err != nil {
		fail("when: %v", err)
	} else {
		r.when, window = p, w
	}
	if cfg.Unless != "" {
		if cfg.After == 0 {
			fail("unless needs after: it cancels a rule that fires later")
		}
		if p, w, err := env.compile(cfg.Unless, true); err != nil {
			fail("unless: %v", err)
		} else {
			r.unless, window = p, max(window, w)
		}
	}
	r.Do = compileActions(cfg.Do, fail)
	return r, window
}

// compileActions checks the actions of a rule and returns a copy with the
// defaults filled in (a send's expires).
func compileActions(do []ActionConfig, fail func(string, ...any)) []ActionConfig {
	if len(do) == 0 {
		fail("do: no actions")
	}
	if len(do) > ActionsPerRuleMax {
		fail("do: %d actions, more than %d", len(do), ActionsPerRuleMax)
	}
	out := make([]ActionConfig, len(do))
	for j, a := range do {
		if n := a.count(); n != 1 {
			fail("do[%d]: an action sets exactly one of route, send, workflow, offer_callback, tag, stage, open_case, next_best_action (%d set)", j, n)
			continue
		}
		if msg := checkAction(&a); msg != "" {
			fail("do[%d] %s: %s", j, a.Kind(), msg)
		}
		out[j] = a
	}
	return out
}

// checkAction validates one action, copying its pointed-to part so that the
// compiled rule does not share memory with the configuration, and fills in
// defaults. It returns the problem, or "".
func checkAction(a *ActionConfig) string {
	switch {
	case a.Route != nil:
		route := *a.Route
		a.Route = &route
		if route.Queue == "" {
			return "queue is required"
		}
	case a.Send != nil:
		send := *a.Send
		a.Send = &send
		switch {
		case strings.TrimSpace(send.Text) == "":
			return "text is required"
		case len(send.Text) > SendTextMaxBytes:
			return fmt.Sprintf("text is longer than %d bytes", SendTextMaxBytes)
		case send.Channel != "" && !isWord(send.Channel, ChannelMaxChars):
			return fmt.Sprintf("channel %q is not a lowercase word", send.Channel)
		case send.Expires < 0 || send.Expires > SendExpiresMax:
			return fmt.Sprintf("expires %v is outside 0 to %v", send.Expires, SendExpiresMax)
		case send.Expires == 0:
			a.Send.Expires = SendExpiresDefault
		}
	case a.Tag != "":
		if !validName(a.Tag, RuleNameMaxChars) {
			return fmt.Sprintf("%q must match ^[a-z0-9]+([._-][a-z0-9]+)*$, at most %d characters", a.Tag, RuleNameMaxChars)
		}
	case a.Stage != "":
		if !validName(a.Stage, RuleNameMaxChars) {
			return fmt.Sprintf("%q must match ^[a-z0-9]+([._-][a-z0-9]+)*$, at most %d characters", a.Stage, RuleNameMaxChars)
		}
	case a.OpenCase != nil:
		c := *a.OpenCase
		a.OpenCase = &c
		if len(c.Subject) > CaseSubjectMax {
			return fmt.Sprintf("subject is longer than %d bytes", CaseSubjectMax)
		}
	case a.NextBestAction != nil:
		nba := *a.NextBestAction
		a.NextBestAction = &nba
		switch {
		case nba.Expires < 0 || nba.Expires > SendExpiresMax:
			return fmt.Sprintf("expires %v is outside 0 to %v", nba.Expires, SendExpiresMax)
		case nba.Expires == 0:
			a.NextBestAction.Expires = SendExpiresDefault
		}
	}
	return ""
}

// validName reports whether s matches ^[a-z0-9]+([._-][a-z0-9]+)*$ and has at
// most max characters.
func validName(s string, max int) bool {
	return len(s) <= max && ValidateType(s) == nil
}

// sortedKeys returns the keys of a set, sorted.
func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// List returns the rules in configuration order. The slice is shared: do not
// modify it.
func (r *Rules) List() []*Rule { return r.rules }

// Queues returns the queue names the rules route to, sorted, so that the
// caller can check them against the configured queues.
func (r *Rules) Queues() []string { return r.queues }

// Workflows returns the workflow names the rules start, sorted, so that the
// caller can check them against the configured workflows.
func (r *Rules) Workflows() []string { return r.workflows }

// MaxWindow returns the longest window any rule passes to customer.count, so
// that the caller keeps enough derived data to answer it: the longest literal
// duration('...'), or CountWindowMax when some call's window is not a literal.
// It is 0 when no rule counts.
func (r *Rules) MaxWindow() time.Duration { return r.maxWindow }

// Triggers reports whether e can trigger the rule at all: events caused by a
// rule (actor "rule:...") never do; a rule with on: is triggered by exactly
// those types, whatever the actor; a rule without by the customer's own events.
func (r *Rule) Triggers(e *Event) bool {
	if strings.HasPrefix(e.Actor, "rule:") {
		return false
	}
	if len(r.On) == 0 {
		return e.Actor == ActorCustomer
	}
	return slices.Contains(r.On, e.Type)
}

// RuleError is the failure of one rule's expression on one event: a missing
// key, a type mismatch, the cost limit. The rule counts as not matching; the
// caller records the error (it is the operator's to fix, not the customer's).
type RuleError struct {
	Rule *Rule
	Err  error
}

// Error names the rule and says what failed.
func (e *RuleError) Error() string { return fmt.Sprintf("rule %s: %v", e.Rule.ID, e.Err) }

// Unwrap returns the evaluation error.
func (e *RuleError) Unwrap() error { return e.Err }

// Match evaluates, in order, the when of every rule that e Triggers, and
// returns the rules whose when holds. A rule whose evaluation fails does not
// match; its error is returned in errs, in rule order, so that nothing is
// lost. Rules with After arm a timer rather than act now: the caller tells
// them apart by After.
func (r *Rules) Match(e *Event, c RuleCustomer) (matched []*Rule, errs []*RuleError) {
	var vars *ruleVars // made for the first rule the event can trigger
	for _, rule := range r.rules {
		if !rule.Triggers(e) {
			continue
		}
		if vars == nil {
			vars = newRuleVars(e, nil, c)
		}
		ok, err := rule.when.eval(vars)
		if err != nil {
			errs = append(errs, &RuleError{Rule: rule, Err: fmt.Errorf("when: %w", err)})
			continue
		}
		if ok {
			matched = append(matched, rule)
		}
	}
	return matched, errs
}

// Unless evaluates the rule's unless with later as event and armed (the event
// that armed the timer) as trigger. It is false, with no error, for a rule
// without unless. It applies no actor filter: which events may cancel a timer
// (every stored event after the trigger, in PROTOCOL section 6) is the caller's.
func (r *Rule) Unless(later, armed *Event, c RuleCustomer) (bool, error) {
	if r.unless.prog == nil {
		return false, nil
	}
	ok, err := r.unless.eval(newRuleVars(later, armed, c))
	if err != nil {
		return false, &RuleError{Rule: r, Err: fmt.Errorf("unless: %w", err)}
	}
	return ok, nil
}

// RuleAction is one action to carry out, with the rule it comes from (events
// it causes have actor "rule:" + Rule.ID).
type RuleAction struct {
	Rule   *Rule
	Action ActionConfig
}

// EffectiveActions flattens the actions of rules firing together (those of
// one event that act at once, or one timer's), in order, keeping only the
// first route: only the first route of an event takes effect.
func EffectiveActions(fired []*Rule) []RuleAction {
	var out []RuleAction
	routed := false
	for _, r := range fired {
		for _, a := range r.Do {
			if a.Route != nil {
				if routed {
					continue
				}
				routed = true
			}
			out = append(out, RuleAction{Rule: r, Action: a})
		}
	}
	return out
}

// UnmarshalYAML decodes a rule and names it in any error, since yaml.v3 gives
// no line for errors of custom decoders. It takes yaml.v3's function form so
// that journey does not import the YAML package.
func (c *RuleConfig) UnmarshalYAML(unmarshal func(any) error) error {
	type plain RuleConfig // without this method
	if err := unmarshal((*plain)(c)); err != nil {
		var peek map[string]any
		_ = unmarshal(&peek) // best effort, for the message only
		if id, ok := peek["id"].(string); ok && id != "" {
			return fmt.Errorf("rule %s: %w", id, err)
		}
		return fmt.Errorf("rule: %w", err)
	}
	return nil
}

// actionFields are the keys each action's map form accepts.
var actionFields = map[string][]string{
	ActionRoute:         {"queue", "priority", "bypass_bot"},
	ActionSend:          {"text", "channel", "expires"},
	ActionWorkflow:      {"name"},
	ActionOfferCallback: {},
	ActionTag:           {"name"},
	ActionStage:         {"name"},
	ActionOpenCase:      {"subject"},
	ActionNextBest:      {"expires"},
}

// UnmarshalYAML decodes an action: a map of exactly one key, the action's
// name. Besides the map forms (route: {queue, priority, bypass_bot}, send:
// {text, channel, expires}, workflow: {name}, offer_callback: {}, tag: {name},
// stage: {name}, open_case: {subject}, next_best_action: {expires}) it accepts the short forms workflow:
// NAME, offer_callback: true, tag: NAME, stage: NAME, open_case: SUBJECT.
// Unknown action names, unknown fields and maps of 0 or 2+ keys are refused.
func (a *ActionConfig) UnmarshalYAML(unmarshal func(any) error) error {
	const form = "an action is a map of one key, its name (one of route, send, workflow, offer_callback, tag, stage, open_case, next_best_action), like {route: {queue: vip}}"
	var m map[string]any
	if err := unmarshal(&m); err != nil {
		return fmt.Errorf("%s: %w", form, err)
	}
	if len(m) != 1 {
		return fmt.Errorf("%s; got %d keys %v", form, len(m), sortedKeys(mapKeys(m)))
	}
	var kind string
	var value any
	for kind, value = range m {
	}
	fields, known := actionFields[kind]
	if !known {
		return fmt.Errorf("unknown action %q (want one of route, send, workflow, offer_callback, tag, stage, open_case, next_best_action)", kind)
	}
	if inner, isMap := value.(map[string]any); isMap {
		for k := range inner {
			if !slices.Contains(fields, k) {
				return fmt.Errorf("action %s: unknown field %q (want %s)", kind, k, strings.Join(fields, ", "))
			}
		}
	}
	if err := a.decode(kind, value, unmarshal); err != nil {
		return fmt.Errorf("action %s: %w", kind, err)
	}
	return nil
}

// decode fills the field of kind from value, the decoded YAML under the key,
// re-decoding through unmarshal where types matter (durations, ints).
func (a *ActionConfig) decode(kind string, value any, unmarshal func(any) error) error {
	_, isMap := value.(map[string]any)
	s, isString := value.(string)
	switch kind {
	case ActionRoute, ActionSend:
		if !isMap {
			return errors.New("must be a map")
		}
		var w struct {
			Route *RouteAction `yaml:"route"`
			Send  *SendAction  `yaml:"send"`
		}
		if err := unmarshal(&w); err != nil {
			return err
		}
		a.Route, a.Send = w.Route, w.Send
	case ActionOfferCallback:
		b, isBool := value.(bool)
		switch {
		case value == nil || isMap || isBool && b:
			a.OfferCallback = true
		default:
			return errors.New("must be true or {}")
		}
	case ActionNextBest:
		switch {
		case value == nil:
			a.NextBestAction = &NextBestActionAction{}
		case isMap:
			var w struct {
				NextBest *NextBestActionAction `yaml:"next_best_action"`
			}
			if err := unmarshal(&w); err != nil {
				return err
			}
			a.NextBestAction = w.NextBest
		default:
			return errors.New("must be {} or {expires}")
		}
	case ActionOpenCase:
		switch {
		case value == nil:
			a.OpenCase = &OpenCaseAction{}
		case isString:
			a.OpenCase = &OpenCaseAction{Subject: s}
		case isMap:
			var w struct {
				OpenCase *OpenCaseAction `yaml:"open_case"`
			}
			if err := unmarshal(&w); err != nil {
				return err
			}
			a.OpenCase = w.OpenCase
		default:
			return errors.New("must be a subject or {subject}")
		}
	default: // workflow, tag, stage: a name or {name}
		name := s
		if isMap {
			var w map[string]struct {
				Name string `yaml:"name"`
			}
			if err := unmarshal(&w); err != nil {
				return err
			}
			name = w[kind].Name
		}
		if name == "" {
			return errors.New("must be a name or {name: NAME}")
		}
		switch kind {
		case ActionWorkflow:
			a.Workflow = name
		case ActionTag:
			a.Tag = name
		case ActionStage:
			a.Stage = name
		}
	}
	return nil
}

// mapKeys returns the set of a map's keys.
func mapKeys(m map[string]any) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
