package journey

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// What rules see, in CEL:
//
//	event, trigger  {id, customer, type, channel, text, data, seq, actor, recorded_at}
//	                data is the decoded JSON object ({} when none), seq an int,
//	                recorded_at a timestamp; trigger only in unless
//	customer        {id, profile, identities, conversation, cases, tags, stage}
//	customer.count(type, window)  the customer's events of that type recorded
//	                in (now - window, now], an int
//
// All three are declared map(string, dyn), so customer.profile.tier and
// event.data.cart type-check; a key that is missing at run time is an
// evaluation error (has(customer.profile.tier) tests for it). Numbers of
// event.data are JSON numbers (doubles); comparing them with ints works.
//
// Evaluation is deterministic and bounded by RuleCostMax in CEL's cost model:
// proved at compile time from the size of what rules see (sizeBound), or else
// counted at run time. There is no wall-clock interrupt: journey has no clock, and a
// rule must decide the same way when an event is replayed; the cost limit
// already bounds the work of one evaluation.

// Limits of rule evaluation.
const (
	RuleCostMax    = 10_000              // CEL cost units one when or unless may spend on one event (a plain rule costs under 20)
	CountWindowMax = 30 * 24 * time.Hour // the longest window customer.count accepts
)

// RuleCustomer is what rules see of a customer. The maps are read, never
// modified. Count is computed by the caller from bounded derived data (never
// from the in-memory timeline); rules call it only with 0 <= window <=
// CountWindowMax, and a nil Count makes customer.count an evaluation error.
type RuleCustomer struct {
	ID           string
	Profile      map[string]any
	Identities   map[string][]string // kind to values
	Conversation map[string]any      // id, state, channel, queue, agent; nil when none
	Cases        []map[string]any    // id, status, subject
	Tags         []string
	Stage        string
	Count        func(typ string, window time.Duration) int
}

// ruleEnv holds the CEL environments of when (event, customer) and unless
// (event, trigger, customer).
type ruleEnv struct {
	when, unless *cel.Env
}

// ruleMapType is the declared type of event, trigger and customer.
var ruleMapType = cel.MapType(cel.StringType, cel.DynType)

const countOverload = "customer_count_string_duration"

// newRuleEnv builds the CEL environments; an error is a bug of this file.
func newRuleEnv() (*ruleEnv, error) {
	when, err := cel.NewEnv(append(customerEnvOptions(), cel.Variable("event", ruleMapType))...)
	if err != nil {
		return nil, err
	}
	unless, err := when.Extend(cel.Variable("trigger", ruleMapType))
	if err != nil {
		return nil, err
	}
	return &ruleEnv{when: when, unless: unless}, nil
}

// customerEnvOptions declare what every expression over a customer sees:
// customer and customer.count (offers see only these; rules add event).
func customerEnvOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Variable("customer", ruleMapType),
		cel.Function("count", cel.MemberOverload(countOverload,
			[]*cel.Type{ruleMapType, cel.StringType, cel.DurationType}, cel.IntType,
			cel.FunctionBinding(customerCount))),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(RuleExprMaxChars),
	}
}

// ruleProgram is one compiled expression.
type ruleProgram struct {
	prog cel.Program
}

// compile parses and checks src (with trigger when isUnless), and returns its
// program and the longest count() window it uses.
func (env *ruleEnv) compile(src string, isUnless bool) (ruleProgram, time.Duration, error) {
	e := env.when
	if isUnless {
		e = env.unless
	}
	return compileExpr(e, src, "bool", cel.BoolType)
}

// compileExpr parses and checks src in e, refusing a result type other than
// dyn or one of want (named wantName in the error), and returns its program
// and the longest count() window it uses.
func compileExpr(e *cel.Env, src, wantName string, want ...*cel.Type) (ruleProgram, time.Duration, error) {
	if len(src) > RuleExprMaxChars {
		return ruleProgram{}, 0, fmt.Errorf("longer than %d characters", RuleExprMaxChars)
	}
	checked, iss := e.Compile(src)
	if iss.Err() != nil {
		return ruleProgram{}, 0, iss.Err()
	}
	if t := checked.OutputType(); !t.IsExactType(cel.DynType) && !slices.ContainsFunc(want, t.IsExactType) {
		return ruleProgram{}, 0, fmt.Errorf("is of type %s, not %s", t, wantName)
	}
	window, err := countWindow(checked.NativeRep())
	if err != nil {
		return ruleProgram{}, 0, err
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if est, err := e.EstimateCost(checked, sizeBound{}); err != nil || est.Max > RuleCostMax {
		opts = append(opts, cel.CostLimit(RuleCostMax)) // not provably cheap: count at run time
	}
	prog, err := e.Program(checked, opts...)
	if err != nil {
		return ruleProgram{}, 0, err
	}
	return ruleProgram{prog: prog}, window, nil
}

// ruleValueSizeMax bounds the size (characters, elements, keys) of any value
// a rule sees: an event is at most EventMaxBytes, a profile ProfileMaxBytes.
const ruleValueSizeMax = max(EventMaxBytes, ProfileMaxBytes)

// sizeBound is the cost estimator of rules: every value is at most
// ruleValueSizeMax. An expression whose estimated worst case is within
// RuleCostMax (most rules: comparisons of fields) runs without CEL's run-time
// cost tracking, which would triple its time; any other runs with it.
type sizeBound struct{}

// EstimateSize implements cost.Estimator.
func (sizeBound) EstimateSize(cost.AstNode) *cost.SizeEstimate {
	return &cost.SizeEstimate{Min: 0, Max: ruleValueSizeMax}
}

// EstimateCallCost implements cost.Estimator: CEL's own model (count() costs 1).
func (sizeBound) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// countWindow walks a checked expression for its count() calls: each must be
// called on customer; it returns the longest literal window, or
// CountWindowMax when a window is not a literal duration('...').
func countWindow(a *ast.AST) (time.Duration, error) {
	var longest time.Duration
	for _, call := range ast.MatchDescendants(ast.NavigateAST(a), ast.FunctionMatcher("count")) {
		c := call.AsCall()
		if t := c.Target(); t == nil || t.Kind() != ast.IdentKind || t.AsIdent() != "customer" {
			return 0, errors.New("count() is defined on customer only: customer.count(type, window)")
		}
		w, literal, err := literalDuration(c.Args()[1])
		if err != nil {
			return 0, err
		}
		if !literal {
			w = CountWindowMax
		}
		longest = max(longest, w)
	}
	return longest, nil
}

// literalDuration returns the value of e when it is duration('...') with a
// string literal.
func literalDuration(e ast.Expr) (d time.Duration, literal bool, err error) {
	if e.Kind() != ast.CallKind || e.AsCall().FunctionName() != "duration" || len(e.AsCall().Args()) != 1 {
		return 0, false, nil
	}
	arg := e.AsCall().Args()[0]
	if arg.Kind() != ast.LiteralKind {
		return 0, false, nil
	}
	s, isString := arg.AsLiteral().(types.String)
	if !isString {
		return 0, false, nil
	}
	d, err = time.ParseDuration(string(s))
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("count window: %w", err)
	case d < 0 || d > CountWindowMax:
		return 0, false, fmt.Errorf("count window %v is outside 0 to %v", d, CountWindowMax)
	}
	return d, true, nil
}

// customerCount implements customer.count(type, window).
func customerCount(args ...ref.Val) ref.Val {
	m, isRuleMap := args[0].(*ruleMap)
	typ, isString := args[1].(types.String)
	window, isDuration := args[2].(types.Duration)
	switch {
	case !isRuleMap || m.customer == nil:
		return types.NewErr("count() is defined on customer only")
	case !isString || !isDuration:
		return types.NewErr("count(type string, window duration)")
	case window.Duration < 0 || window.Duration > CountWindowMax:
		return types.NewErr("count window %v is outside 0 to %v", window.Duration, CountWindowMax)
	case m.customer.Count == nil:
		return types.NewErr("count() is not available for this customer")
	}
	return types.Int(m.customer.Count(string(typ), window.Duration))
}

// eval runs the program; a result that is not a bool is an error.
func (p ruleProgram) eval(vars *ruleVars) (bool, error) {
	out, _, err := p.prog.Eval(vars)
	if err != nil {
		return false, err
	}
	b, isBool := out.(types.Bool)
	if !isBool {
		return false, fmt.Errorf("result is %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

// ruleVars is the activation of one evaluation: event, trigger and customer.
// One is built per event (one allocation) and shared by every rule evaluated
// on it, so that each field, event.data above all, is made at most once.
type ruleVars struct {
	event, trigger, customer ruleMap
	hasTrigger               bool
	c                        RuleCustomer
}

// newRuleVars makes the activation for event e (and trigger, for unless).
func newRuleVars(e, trigger *Event, c RuleCustomer) *ruleVars {
	v := &ruleVars{event: ruleMap{event: e}, c: c}
	v.customer.customer = &v.c
	if trigger != nil {
		v.trigger.event, v.hasTrigger = trigger, true
	}
	return v
}

// ResolveName implements cel's Activation.
func (v *ruleVars) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		if v.event.event != nil { // nil for offers, which see only customer
			return &v.event, true
		}
	case "customer":
		return &v.customer, true
	case "trigger":
		if v.hasTrigger {
			return &v.trigger, true
		}
	}
	return nil, false
}

// Parent implements cel's Activation: there is none.
func (v *ruleVars) Parent() cel.Activation { return nil }

var (
	eventKeys    = []string{"id", "customer", "type", "channel", "text", "data", "seq", "actor", "recorded_at"}
	customerKeys = []string{"id", "profile", "identities", "conversation", "cases", "tags", "stage"}
	emptyObject  = map[string]any{}
)

// ruleMap is the CEL value of an event or a customer: a map with fixed keys
// whose values are made on first access and kept, so that a rule reading
// event.type does not pay for decoding event.data, and ten rules reading it
// pay once. Exactly one of event and customer is set. It is used by one
// evaluation at a time (not safe for concurrent use).
type ruleMap struct {
	event    *Event
	customer *RuleCustomer
	made     uint16 // bit i: vals[i] is made
	vals     [9]any // by index in eventKeys or customerKeys
}

// keys returns the map's keys, in a fixed order.
func (m *ruleMap) keys() []string {
	if m.event != nil {
		return eventKeys
	}
	return customerKeys
}

// FindStringKey returns the value of key, a ref.Val or a Go map or slice;
// CEL's field selection calls it first.
func (m *ruleMap) FindStringKey(key string) (any, bool) {
	i := slices.Index(m.keys(), key)
	if i < 0 {
		return nil, false
	}
	if m.made&(1<<i) == 0 {
		if m.event != nil {
			m.vals[i] = eventField(m.event, key)
		} else {
			m.vals[i] = customerField(m.customer, key)
		}
		m.made |= 1 << i
	}
	return m.vals[i], true
}

// eventField makes the CEL value of one key of an event.
func eventField(e *Event, key string) any {
	switch key {
	case "id":
		return types.String(e.ID)
	case "customer":
		return types.String(e.Customer)
	case "type":
		return types.String(e.Type)
	case "channel":
		return types.String(e.Channel)
	case "text":
		return types.String(e.Text)
	case "data":
		return decodeData(e.Data)
	case "seq":
		return types.Int(e.Seq)
	case "actor":
		return types.String(e.Actor)
	case "recorded_at":
		return types.Timestamp{Time: e.RecordedAt}
	}
	panic("journey: no event field " + key)
}

// decodeData decodes an event's data object, {} when none.
func decodeData(raw json.RawMessage) any {
	if len(raw) == 0 {
		return emptyObject
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		return types.NewErr("event data: %v", err)
	}
	if data == nil { // "null"
		return emptyObject
	}
	return data
}

// customerField makes the CEL value of one key of a customer: Go maps and
// slices stay as they are, and CEL reads into them without copying.
func customerField(c *RuleCustomer, key string) any {
	switch key {
	case "id":
		return types.String(c.ID)
	case "profile":
		return orEmpty(c.Profile)
	case "identities":
		if c.Identities == nil {
			return emptyObject
		}
		return c.Identities
	case "conversation":
		return orEmpty(c.Conversation)
	case "cases":
		if c.Cases == nil {
			return []map[string]any{}
		}
		return c.Cases
	case "tags":
		if c.Tags == nil {
			return []string{}
		}
		return c.Tags
	case "stage":
		return types.String(c.Stage)
	}
	panic("journey: no customer field " + key)
}

// orEmpty returns m, or {} when m is nil.
func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return emptyObject
	}
	return m
}

// The rest makes ruleMap a CEL map (ref.Val and traits.Mapper): lookups by
// key go through FindStringKey; whole-map operations (equality, conversion)
// work on a map made of every key.

// Find implements traits.Mapper.
func (m *ruleMap) Find(key ref.Val) (ref.Val, bool) {
	k, isString := key.(types.String)
	if !isString {
		return nil, false
	}
	v, found := m.FindStringKey(string(k))
	if !found {
		return nil, false
	}
	return types.DefaultTypeAdapter.NativeToValue(v), true
}

// Get implements traits.Indexer.
func (m *ruleMap) Get(key ref.Val) ref.Val {
	if v, found := m.Find(key); found {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

// Contains implements traits.Container.
func (m *ruleMap) Contains(key ref.Val) ref.Val {
	_, found := m.Find(key)
	return types.Bool(found)
}

// Size implements traits.Sizer.
func (m *ruleMap) Size() ref.Val { return types.Int(len(m.keys())) }

// Iterator implements traits.Iterable: over the keys.
func (m *ruleMap) Iterator() traits.Iterator {
	return types.NewStringList(types.DefaultTypeAdapter, m.keys()).(traits.Lister).Iterator()
}

// whole returns the map of every key.
func (m *ruleMap) whole() traits.Mapper {
	all := make(map[string]any, len(m.keys()))
	for _, k := range m.keys() {
		all[k], _ = m.FindStringKey(k)
	}
	return types.DefaultTypeAdapter.NativeToValue(all).(traits.Mapper)
}

// ConvertToNative implements ref.Val.
func (m *ruleMap) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return m.whole().ConvertToNative(typeDesc)
}

// ConvertToType implements ref.Val.
func (m *ruleMap) ConvertToType(typeVal ref.Type) ref.Val {
	switch typeVal {
	case types.MapType:
		return m
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to '%s'", typeVal)
}

// Equal implements ref.Val.
func (m *ruleMap) Equal(other ref.Val) ref.Val { return m.whole().Equal(other) }

// Type implements ref.Val.
func (m *ruleMap) Type() ref.Type { return types.MapType }

// Value implements ref.Val: the map of every key, as CEL values.
func (m *ruleMap) Value() any { return m.whole().Value() }
