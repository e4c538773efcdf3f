package autoscaler

import (
	"fmt"

	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/internal/execute"
)

// StagesFromConfig builds the runners for the config's metric and evaluate stages and
// its configured hooks. HTTP runners get a connection pool as large as the per-pod
// concurrency.
func StagesFromConfig(cfg *config.Config, opts execute.Options) (Stages, error) {
	if opts.MaxConnsPerHost == 0 {
		opts.MaxConnsPerHost = max(execute.DefaultMaxConnsPerHost, PerPodConcurrency(cfg))
	}
	var st Stages
	for _, m := range []struct {
		name   string
		method *config.Method
		runner *Runner
	}{
		{"metric", cfg.Metric, &st.Metric},
		{"evaluate", cfg.Evaluate, &st.Evaluate},
		{"preMetric", cfg.PreMetric, &st.PreMetric},
		{"postMetric", cfg.PostMetric, &st.PostMetric},
		{"preEvaluate", cfg.PreEvaluate, &st.PreEvaluate},
		{"postEvaluate", cfg.PostEvaluate, &st.PostEvaluate},
		{"preScale", cfg.PreScale, &st.PreScale},
		{"postScale", cfg.PostScale, &st.PostScale},
	} {
		if m.method == nil {
			continue
		}
		r, err := execute.New(m.method, opts)
		if err != nil {
			return Stages{}, fmt.Errorf("%s: %w", m.name, err)
		}
		*m.runner = r
	}
	return st, nil
}
