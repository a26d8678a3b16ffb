package node

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/throughline/throughline/ai"
	"github.com/throughline/throughline/journey"
	"gopkg.in/yaml.v3"
)

// The built-in demo's bot: its knowledge base and intents.
//
//go:embed demo/kb/*.md demo/intents.yaml
var demoFS embed.FS

// demoRules and demoGovernance are the built-in demo's journey rules
// (PROTOCOL section 6's examples, with a short nudge delay so a demo shows
// it) and its governance.
const demoRules = `
- id: vip-fast-track
  when: "event.type == 'login.failed' && has(customer.profile.tier) && customer.profile.tier == 'vip'"
  do: [{route: {queue: vip, priority: 100, bypass_bot: true}}]
- id: repeated-login-failures
  when: "event.type == 'login.failed' && customer.count('login.failed', duration('10m')) >= 3"
  do: [{route: {queue: general, priority: 50, bypass_bot: true}}, {tag: login-trouble}]
- id: cart-nudge
  when: "event.type == 'cart.abandoned'"
  after: 2m
  unless: "event.type == 'checkout.completed'"
  do: [{send: {text: "Still thinking it over? Your cart is saved."}}]
`

// demoWorkflowRules start the demo's workflow (bench journey leaves them
// out: a verification would take its customers away from the bot).
const demoWorkflowRules = `
- id: verify-address-change
  on: [ai.replied]
  when: "event.data.intent == 'update_address'"
  do: [{workflow: verify-identity}]
`

const demoWorkflows = `
- name: verify-identity
  steps:
    - send_code: {digits: 6, attempts: 3, expires: 10m}
  then: {route: {queue: billing, priority: 10}}
`

// demoOffers and demoOfferRules are the demo's next best action: a
// payment plan for a customer whose payment failed, a gold upgrade for VIPs
// (the more they bought lately, the better), paperless billing for the
// rest; the rule proposes the best one when the customer opens the billing
// page.
const demoOffers = `
- id: payment-plan
  when: "customer.count('payment.failed', duration('24h')) > 0"
  text: "Your last payment did not go through. Would you like to split it into three monthly payments? Reply YES."
  priority: 50
  cap: {max: 1, per: 24h}
- id: gold-upgrade
  when: "has(customer.profile.tier) && customer.profile.tier == 'vip'"
  text: "As a VIP you can move to Gold: free express delivery and a dedicated line. Interested?"
  priority: 30
  score: "customer.count('purchase.completed', duration('720h')) * 5"
  cap: {max: 1, per: 168h}
- id: paperless
  when: "!has(customer.profile.paperless) || customer.profile.paperless != true"
  text: "Go paperless: get your bills by email and save a tree."
  priority: 10
  channels: [email, sms]
  cap: {max: 1, per: 720h}
`

const demoOfferRules = `
- id: billing-page-offer
  when: "event.type == 'page.viewed' && has(event.data.page) && event.data.page == 'billing'"
  do: [{next_best_action: {}}]
`

const demoGovernance = `
frequency_cap: {max: 2, per: 24h}
quiet_hours: {from: "21:00", to: "08:00"}
require_consent: false
`

// withDemoJourney adds the demo bot, rules, governance and queues to a
// configuration (Default only).
func (c *Config) withDemoJourney() {
	intents, err := fs.ReadFile(demoFS, "demo/intents.yaml")
	if err != nil {
		panic("demo intents: " + err.Error())
	}
	c.AI = &AIConfig{EscalateBelow: 0.55, DefaultQueue: "general"}
	c.AI.Brain.Kind = ai.KindBuiltin
	mustYAML(intents, &c.AI.Intents)
	mustYAML([]byte(demoRules+demoWorkflowRules+demoOfferRules), &c.Rules)
	mustYAML([]byte(demoOffers), &c.Offers)
	mustYAML([]byte(demoWorkflows), &c.Workflows)
	c.Governance = &journey.Governance{}
	mustYAML([]byte(demoGovernance), c.Governance)
	c.Queues = []QueueConfig{
		{Name: "general", OfferTimeout: 20 * time.Second, CallbackAfter: 2 * time.Minute},
		{Name: "billing", Skills: []string{"billing"}, OfferTimeout: 20 * time.Second},
		{Name: "vip", Skills: []string{"vip"}, OfferTimeout: 10 * time.Second, StickyWait: 30 * time.Second},
	}
	c.Agents = []AgentConfig{{ID: "alice", Skills: []string{"billing", "vip"}, Capacity: journey.Capacity{Total: 2}}}
	sub, err := fs.Sub(demoFS, "demo/kb")
	if err != nil {
		panic("demo knowledge: " + err.Error())
	}
	c.demoKnowledge = sub
}

func mustYAML(data []byte, v any) {
	if err := yaml.Unmarshal(data, v); err != nil {
		panic("demo config: " + err.Error())
	}
}

// validateJourney checks the ai, knowledge, rules, offers, governance and
// queue sections, and that every queue they name exists.
func (c *Config) validateJourney() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	queues := map[string]bool{}
	for i, q := range c.Queues {
		switch {
		case q.Name == "":
			add("queues[%d]: name is required", i)
		case queues[q.Name]:
			add("queues[%d]: queue %q is given twice", i, q.Name)
		}
		queues[q.Name] = true
	}
	checkQueue := func(where, q string) {
		if len(c.Queues) > 0 && !queues[q] {
			add("%s: queue %q is not in queues", where, q)
		}
	}
	if c.AI != nil {
		if err := c.AI.Config.Validate(); err != nil {
			errs = append(errs, prefixed("ai", err))
		}
		if err := c.AI.policy().Validate(); err != nil {
			errs = append(errs, err)
		}
		if c.AI.DefaultQueue != "" {
			checkQueue("ai.default_queue", c.AI.DefaultQueue)
		}
		if c.Knowledge == "" && c.demoKnowledge == nil {
			add("ai: needs knowledge (a directory of markdown articles)")
		}
	}
	if c.Knowledge != "" && c.AI == nil {
		add("knowledge: given without ai")
	}
	rules, err := journey.CompileRules(c.Rules)
	if err != nil {
		errs = append(errs, prefixed("rules", err))
	} else {
		for _, q := range rules.Queues() {
			checkQueue("rules", q)
		}
		for _, w := range rules.Workflows() {
			if !slices.ContainsFunc(c.Workflows, func(x journey.WorkflowConfig) bool { return x.Name == w }) {
				add("rules: workflow %q is not in workflows", w)
			}
		}
		for _, r := range rules.List() {
			if len(c.Offers) == 0 && slices.ContainsFunc(r.Do, func(a journey.ActionConfig) bool { return a.NextBestAction != nil }) {
				add("rules: rule %s: next_best_action needs offers", r.ID)
			}
		}
	}
	if _, err := journey.CompileOffers(c.Offers); err != nil {
		errs = append(errs, prefixed("offers", err))
	}
	workflows, err := journey.CompileWorkflows(c.Workflows)
	if err != nil {
		errs = append(errs, prefixed("workflows", err))
	}
	for name, w := range workflows {
		if w.Then.Route != nil {
			checkQueue("workflows "+name+" then.route", w.Then.Route.Queue)
		}
		if w.FailQueue != "" {
			checkQueue("workflows "+name+" fail_queue", w.FailQueue)
		} else if c.AI == nil || c.AI.DefaultQueue == "" {
			add("workflows %s: fail_queue is required without ai.default_queue (a failed workflow routes there)", name)
		}
	}
	if c.Governance != nil {
		if err := c.Governance.Validate(); err != nil {
			errs = append(errs, prefixed("governance", err))
		}
	}
	if c.Conversations.CloseAfter < 0 {
		add("conversations.close_after: %s is negative", c.Conversations.CloseAfter)
	}
	return errs
}

func prefixed(section string, err error) error {
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, fmt.Errorf("%s: %w", section, e))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s: %w", section, err)
}

// policy is the bot's hand-over policy of the section.
func (a *AIConfig) policy() *journey.BotPolicy {
	return &journey.BotPolicy{
		EscalateBelow: a.EscalateBelow, FrustrationBelow: a.FrustrationBelow,
		DefaultQueue: a.DefaultQueue, DefaultPriority: a.DefaultPriority,
		BlockedTopics: a.BlockedTopics, Handover: a.Handover,
	}
}

// journeyPolicy builds what customers decide by, and the bot's brain (nil
// without ai).
func (c *Config) journeyPolicy() (*journey.Policy, ai.Brain, error) {
	p, err := c.Policy()
	if err != nil || c.AI == nil {
		return p, nil, err
	}
	var kb *ai.Knowledge
	if c.demoKnowledge != nil && c.Knowledge == "" {
		kb, err = ai.LoadKnowledge(c.demoKnowledge)
	} else {
		kb, err = ai.LoadKnowledgeDir(c.Knowledge)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("knowledge: %w", err)
	}
	brain, err := ai.New(c.AI.Config, kb)
	if err != nil {
		return nil, nil, fmt.Errorf("ai: %w", err)
	}
	return p, brain, nil
}

// Policy is the journey policy a node runs with this config: its rules,
// workflows, offers, governance, queues and the bot's hand-over settings
// (not the bot's brain). throughline replay steps stored journeys under
// it. c must be valid (Validate).
func (c *Config) Policy() (*journey.Policy, error) {
	rules, err := journey.CompileRules(c.Rules)
	if err != nil {
		return nil, err
	}
	workflows, err := journey.CompileWorkflows(c.Workflows)
	if err != nil {
		return nil, err
	}
	offers, err := journey.CompileOffers(c.Offers)
	if err != nil {
		return nil, err
	}
	queues, _ := c.routing()
	p := journey.Policy{Rules: rules, Workflows: workflows, Offers: offers, Governance: c.Governance, ConversationIdle: c.Conversations.CloseAfter, Queues: queues}
	if c.AI != nil {
		p.Bot = c.AI.policy()
	}
	p = p.WithDefaults()
	return &p, nil
}

// The demo's parts, for benches that run the demo's bot: its knowledge
// base and intents (demo/kb/*.md, demo/intents.yaml), rules and governance.
var DemoFS = demoFS

// DemoRules and DemoGovernance are the demo's rules and governance, YAML.
const (
	DemoRules      = demoRules
	DemoGovernance = demoGovernance
)

// offerResponses registers throughline_offer_responses_total and returns
// what counts in it: the offer label is a configured offer id or "other"
// (journey.Offers.Label), so the label values stay bounded.
func offerResponses(reg prometheus.Registerer) func(offer, response string) {
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "throughline_offer_responses_total",
		Help: "Customers' offer.accepted and offer.declined events, by offer (a configured id, else other) and response.",
	}, []string{"offer", "response"})
	reg.MustRegister(responses)
	return func(offer, response string) { responses.WithLabelValues(offer, response).Inc() }
}
