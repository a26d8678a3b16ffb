package journey

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
)

// Offers (PROTOCOL section 5, "Next best action"): configured decisions of
// what to propose to a customer. Each has a `when` (CEL over customer, as
// rules see it), a text, a priority, an optional `score` (CEL, a number
// added to the priority), optional channels and an optional per-customer
// cap. This file holds the configuration, its validation and the compiled
// catalog; offers_rank.go ranks them for one customer, and the customer's
// state keeps what the caps need (offers_state.go).

// OfferConfig is one offer as written in the configuration (`offers:`).
type OfferConfig struct {
	ID       string    `yaml:"id"`
	When     string    `yaml:"when"`     // CEL, boolean; sees customer
	Text     string    `yaml:"text"`     // what the customer is told
	Priority float64   `yaml:"priority"` // the base of the score
	Score    string    `yaml:"score"`    // CEL, a number added to priority; optional
	Channels []string  `yaml:"channels"` // the channels it may go on; empty: any
	Cap      *OfferCap `yaml:"cap"`      // per customer; nil: none
}

// OfferCap allows an offer at most Max times per customer in any rolling
// window of Per (sent or held, on recorded_at); an accepted or declined
// offer is not proposed again for Per.
type OfferCap struct {
	Max int           `yaml:"max"` // 1 to OfferCapMaxMax
	Per time.Duration `yaml:"per"` // above 0, at most OfferCapPerMax
}

// CatalogOffer is one compiled offer, read-only and shared by every customer.
type CatalogOffer struct {
	ID        string
	Index     int // its position in the configuration: ties rank in this order
	WhenExpr  string
	ScoreExpr string // "" when none
	Text      string
	Priority  float64
	Channels  []string
	Cap       *OfferCap

	when  ruleProgram
	score ruleProgram // zero when ScoreExpr is ""
}

// Offers is the compiled catalog: immutable and safe for concurrent use. A
// nil *Offers has no offers.
type Offers struct {
	list []*CatalogOffer
}

// CompileOffers validates and compiles every offer, once, at start. The
// error lists every problem (errors.Join), each naming its offer by id, or
// by index when the id is missing or invalid.
func CompileOffers(cfgs []OfferConfig) (*Offers, error) {
	env, err := cel.NewEnv(customerEnvOptions()...)
	if err != nil {
		panic(fmt.Sprintf("journey: the CEL environment of offers does not build: %v", err)) // a bug
	}
	var errs []error
	if len(cfgs) > OffersMax {
		errs = append(errs, fmt.Errorf("offers: %d offers, more than %d", len(cfgs), OffersMax))
		cfgs = cfgs[:OffersMax]
	}
	o := &Offers{list: make([]*CatalogOffer, 0, len(cfgs))}
	seen := make(map[string]int, len(cfgs))
	for i, cfg := range cfgs {
		name := offerName(i, cfg.ID)
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
		}
		if first, dup := seen[cfg.ID]; dup && cfg.ID != "" {
			fail("duplicate id (also offer #%d)", first)
		} else {
			seen[cfg.ID] = i
		}
		o.list = append(o.list, compileOffer(env, i, cfg, fail))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return o, nil
}

// offerName names an offer in errors: by its id when valid, else by index.
func offerName(i int, id string) string {
	switch {
	case id == "":
		return fmt.Sprintf("offer #%d (no id)", i)
	case !validName(id, OfferIDMaxChars):
		return fmt.Sprintf("offer #%d (id %q)", i, id)
	}
	return "offer " + id
}

// compileOffer checks and compiles one offer, reporting every problem.
func compileOffer(env *cel.Env, i int, cfg OfferConfig, fail func(string, ...any)) *CatalogOffer {
	o := &CatalogOffer{ID: cfg.ID, Index: i, WhenExpr: cfg.When, ScoreExpr: cfg.Score, Text: cfg.Text,
		Priority: cfg.Priority, Channels: slices.Clone(cfg.Channels)}
	if cfg.ID == "" {
		fail("id is required")
	} else if !validName(cfg.ID, OfferIDMaxChars) {
		fail("id must match ^[a-z0-9]+([._-][a-z0-9]+)*$, at most %d characters", OfferIDMaxChars)
	}
	if strings.TrimSpace(cfg.When) == "" {
		fail("when is required")
	} else if p, _, err := compileExpr(env, cfg.When, "bool", cel.BoolType); err != nil {
		fail("when: %v", err)
	} else {
		o.when = p
	}
	if cfg.Score != "" {
		if p, _, err := compileExpr(env, cfg.Score, "a number", cel.DoubleType, cel.IntType, cel.UintType); err != nil {
			fail("score: %v", err)
		} else {
			o.score = p
		}
	}
	switch {
	case strings.TrimSpace(cfg.Text) == "":
		fail("text is required")
	case len(cfg.Text) > OfferTextMaxBytes:
		fail("text is longer than %d bytes", OfferTextMaxBytes)
	}
	if math.IsNaN(cfg.Priority) || math.Abs(cfg.Priority) > OfferPriorityMax {
		fail("priority %v is outside -%g to %g", cfg.Priority, OfferPriorityMax, OfferPriorityMax)
	}
	if len(cfg.Channels) > OfferChannelsMax {
		fail("channels: %d, more than %d", len(cfg.Channels), OfferChannelsMax)
	}
	for _, ch := range cfg.Channels {
		if !isWord(ch, ChannelMaxChars) {
			fail("channels: %q is not a lowercase word", ch)
		}
	}
	if c := cfg.Cap; c != nil {
		cp := *c
		o.Cap = &cp
		if c.Max < 1 || c.Max > OfferCapMaxMax {
			fail("cap.max %d is outside 1 to %d", c.Max, OfferCapMaxMax)
		}
		if c.Per <= 0 || c.Per > OfferCapPerMax {
			fail("cap.per %v is outside 0 (excluded) to %v", c.Per, OfferCapPerMax)
		}
	}
	return o
}

// List returns the offers in configuration order. The slice is shared: do
// not modify it.
func (o *Offers) List() []*CatalogOffer {
	if o == nil {
		return nil
	}
	return o.list
}

// Offer is the offer with the id, nil when none.
func (o *Offers) Offer(id string) *CatalogOffer {
	for _, x := range o.List() {
		if x.ID == id {
			return x
		}
	}
	return nil
}

// OfferLabelOther is the metric label of an offer id that is not configured:
// labels stay bounded by the configuration.
const OfferLabelOther = "other"

// Label is id when it is a configured offer, else OfferLabelOther.
func (o *Offers) Label(id string) string {
	if o.Offer(id) != nil {
		return id
	}
	return OfferLabelOther
}

// responseWindow is how long an accepted or declined offer is not
// proposed again: its cap's window, else OfferResponseWindowDefault.
func (x *CatalogOffer) responseWindow() time.Duration {
	if x.Cap != nil {
		return x.Cap.Per
	}
	return OfferResponseWindowDefault
}

// evalScore runs a score program; its result must be a finite number.
func (p ruleProgram) evalScore(vars *ruleVars) (float64, error) {
	out, _, err := p.prog.Eval(vars)
	if err != nil {
		return 0, err
	}
	var f float64
	switch v := out.(type) {
	case types.Double:
		f = float64(v)
	case types.Int:
		f = float64(v)
	case types.Uint:
		f = float64(v)
	default:
		return 0, fmt.Errorf("result is %s, not a number", out.Type().TypeName())
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("result %v is not a finite number", f)
	}
	return f, nil
}
