package replay

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Report is what a replay found. Its JSON is the `--json` output of
// `throughline replay`.
type Report struct {
	// Since is the start of the replayed window; absent: the whole journal.
	Since *time.Time `json:"since,omitempty"`
	// Customers replayed; Truncated: the customer limit stopped the replay
	// before the last customer of the data dir.
	Customers int  `json:"customers"`
	Truncated bool `json:"truncated,omitempty"`
	// Inputs is how many recorded inputs (customers' events, profile
	// patches, bot turns) were stepped under both configs; Changed, how many
	// of them decided differently.
	Inputs  int `json:"inputs"`
	Changed int `json:"changed"`
	// Mismatched counts the inputs whose decision under the old config is
	// not what is stored: the old config is not the one the journal was
	// recorded under, and the changes are measured against a guess.
	Mismatched      int      `json:"mismatched"`
	MismatchSamples []Sample `json:"mismatch_samples,omitempty"`
	// Changes are the differences, by kind then most inputs first.
	Changes []Change `json:"changes"`
	// ChangesDropped counts inputs' changes not listed (past the limit of
	// distinct changes).
	ChangesDropped int `json:"changes_dropped,omitempty"`
}

// Change is one kind of difference and where it happens.
type Change struct {
	Kind string `json:"kind"` // one of the Kind constants
	What string `json:"what"` // the rule, "old → new" queue or outcome, or hand-over reason → queue
	// Inputs that change this way, and the distinct customers they are of.
	Inputs    int      `json:"inputs"`
	Customers int      `json:"customers"`
	Samples   []Sample `json:"samples"` // the first few, at most Options.SamplesMax
}

// Sample names one input: the customer, the seq of its first stored event
// (GET /v1/customers/{id}/timeline shows it) and when it was recorded.
type Sample struct {
	Customer string    `json:"customer"`
	Seq      uint64    `json:"seq"`
	At       time.Time `json:"at"`
}

// add counts one input's change; newCustomer: the first of this customer.
func (r *Replayer) add(ch change, at Sample, newCustomer bool) {
	rep := &r.report
	i, ok := r.index[ch]
	if !ok {
		if len(rep.Changes) >= r.opts.ChangesMax {
			rep.ChangesDropped++
			return
		}
		i = len(rep.Changes)
		r.index[ch] = i
		rep.Changes = append(rep.Changes, Change{Kind: ch.kind, What: ch.what, Samples: []Sample{}})
	}
	c := &rep.Changes[i]
	c.Inputs++
	if newCustomer {
		c.Customers++
		if len(c.Samples) < r.opts.SamplesMax {
			c.Samples = append(c.Samples, at)
		}
	}
}

func (rep *Report) addMismatch(at Sample, samplesMax int) {
	rep.Mismatched++
	if len(rep.MismatchSamples) < samplesMax {
		rep.MismatchSamples = append(rep.MismatchSamples, at)
	}
}

// sort orders the changes by kind, then most inputs first, then name; the
// index of the Replayer follows.
func (rep *Report) sort() {
	rank := func(kind string) int { return slices.Index(kindOrder, kind) }
	slices.SortStableFunc(rep.Changes, func(a, b Change) int {
		return cmp.Or(cmp.Compare(rank(a.Kind), rank(b.Kind)), cmp.Compare(b.Inputs, a.Inputs), strings.Compare(a.What, b.What))
	})
}

// kindTitles head the Markdown sections.
var kindTitles = map[string]string{
	KindRuleFires:       "Rules that would fire",
	KindRuleStops:       "Rules that would stop firing",
	KindRoute:           "Routes to other queues",
	KindHandoverGained:  "Hand-overs gained",
	KindHandoverLost:    "Hand-overs lost",
	KindHandoverChanged: "Hand-overs changed",
	KindProactive:       "Proactive messages",
}

// WriteMarkdown writes the report for a person.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# What-if replay\n\n")
	window := "the whole journal"
	if rep.Since != nil {
		window = "since " + rep.Since.Format(time.RFC3339)
	}
	fmt.Fprintf(&b, "Replayed %d customers (%s): %d inputs, %d would be decided differently.\n",
		rep.Customers, window, rep.Inputs, rep.Changed)
	if rep.Truncated {
		b.WriteString("\nThe customer limit stopped the replay: more customers are stored (raise --customers).\n")
	}
	if rep.Mismatched > 0 {
		fmt.Fprintf(&b, "\n**Warning**: under the old config %d inputs are not decided as stored (e.g. %s): "+
			"the old config differs from the one the journal was recorded under; pass it with --old-config.\n",
			rep.Mismatched, samples(rep.MismatchSamples))
	}
	if len(rep.Changes) == 0 {
		b.WriteString("\nNo changes.\n")
	}
	kind := ""
	for _, c := range rep.Changes {
		if c.Kind != kind {
			kind = c.Kind
			fmt.Fprintf(&b, "\n## %s\n\n| change | inputs | customers | sample |\n|---|---:|---:|---|\n", kindTitles[kind])
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", cell(c.What), c.Inputs, c.Customers, samples(c.Samples))
	}
	if rep.ChangesDropped > 0 {
		fmt.Fprintf(&b, "\n%d more changes not listed (past the limit of distinct changes).\n", rep.ChangesDropped)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func samples(s []Sample) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = fmt.Sprintf("%s@%d", cell(x.Customer), x.Seq)
	}
	return strings.Join(parts, ", ")
}

// cell keeps a value from breaking its Markdown table.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
