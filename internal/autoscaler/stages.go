package autoscaler

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/internal/execute"
)

// StagesFromConfig builds the runners for the config's metric and evaluate stages and
// its configured hooks, following config.Config.Methods (the one list of them). HTTP
// runners get a connection pool as large as the per-pod concurrency.
func StagesFromConfig(cfg *config.Config, opts execute.Options) (Stages, error) {
	if opts.MaxConnsPerHost == 0 {
		opts.MaxConnsPerHost = max(execute.DefaultMaxConnsPerHost, PerPodConcurrency(cfg))
	}
	var st Stages
	for _, m := range cfg.Methods() {
		if m.Method == nil {
			continue
		}
		r, err := execute.New(m.Method, opts)
		if err != nil {
			return Stages{}, fmt.Errorf("%s: %w", m.Key, err)
		}
		*st.field(m.Key) = r
	}
	return st, nil
}

// field is the Stages field for a config key: "preMetric" is PreMetric. A key with no
// field is a programming error, caught by TestStagesCoverConfigMethods.
func (s *Stages) field(key string) *execute.Runner {
	f := reflect.ValueOf(s).Elem().FieldByName(strings.ToUpper(key[:1]) + key[1:])
	if !f.IsValid() {
		panic("autoscaler.Stages has no field for config key " + key)
	}
	return f.Addr().Interface().(*execute.Runner)
}
