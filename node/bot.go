package node

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/ai"
	"github.com/throughline/throughline/journey"
)

// botFunc runs the bot's turns on a brain, timing the brain's own work in
// throughline_bot_brain_seconds (bench journey reads it).
func botFunc(brain ai.Brain, reg prometheus.Registerer) actors.BotFunc {
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "throughline_bot_brain_seconds",
		Help:    "Time a bot brain took for one turn.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 1.25, 48),
	}, []string{"brain"})
	reg.MustRegister(seconds)
	return func(ctx context.Context, req journey.BotRequest) journey.BotResult {
		history := make([]ai.Turn, len(req.History))
		for i, t := range req.History {
			history[i] = ai.Turn{Role: t.Role, Text: t.Text}
		}
		start := time.Now()
		r, err := brain.Reply(ctx, ai.Request{
			Customer: req.Customer, Conversation: req.Conversation, Text: req.Text,
			History: history, Profile: req.Profile,
		})
		if err != nil {
			seconds.WithLabelValues("failed").Observe(time.Since(start).Seconds())
			return journey.BotResult{Err: err.Error()}
		}
		seconds.WithLabelValues(r.Brain).Observe(time.Since(start).Seconds())
		return journey.BotResult{
			Text: r.Text, Intent: r.Intent, Confidence: r.Confidence, Sentiment: r.Sentiment,
			Query: r.Query, Articles: r.Articles, Brain: r.Brain, Fallback: r.Fallback,
		}
	}
}
