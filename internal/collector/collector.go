// Package collector is what every metric source of the adapter (and, later, of the
// runtime) implements: built from one metric's configuration, it returns that metric's
// values when asked. It knows nothing of HPAs or of the API server the values feed.
package collector

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Kind is the kind of HPA metric source a value is for.
type Kind string

// The kinds of metric a collector can produce.
const (
	Pods     Kind = "Pods"     // one value per pod of the scale target
	Object   Kind = "Object"   // one value about one object
	External Kind = "External" // values about nothing in the cluster, told apart by labels
)

// ObjectRef names an object in the cluster.
type ObjectRef struct {
	APIVersion, Kind, Namespace, Name string
}

// Value is one sample of a metric.
type Value struct {
	// Labels tell External series apart (the metric selector's labels).
	Labels map[string]string
	// Object is what the value is about: a pod for Pods metrics, the described object for
	// Object metrics; zero for External metrics.
	Object    ObjectRef
	Value     resource.Quantity
	Timestamp time.Time
}

// Config is one metric's configuration, already parsed from wherever it came from (HPA
// annotations and metric selectors, or a runtime's config).
type Config struct {
	Kind Kind
	// Name is the metric's name.
	Name string
	// Type is the collector type: json-path, prometheus, ...
	Type      string
	Namespace string
	// Keys are the collector's configuration keys (annotation keys and selector labels).
	Keys map[string]string
	// Labels are the metric selector's labels, carried on External values.
	Labels map[string]string
	// Object is the described object of an Object metric, or the scale target of a Pods
	// metric.
	Object         ObjectRef
	PerReplica     bool
	MinPodReadyAge time.Duration
}

// Collector gathers one metric's values. Collect honours ctx, and returns an error, never
// a silent zero, when it cannot produce a value (an empty result, a missing field).
type Collector interface {
	Collect(ctx context.Context) ([]Value, error)
}

// Factory builds a collector from its configuration; an error names the key and the
// value at fault.
type Factory func(cfg Config) (Collector, error)

// Registry maps collector types to their factories. It is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

// Register adds the factory of a collector type, replacing any earlier one.
func (r *Registry) Register(typ string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.factories[typ] = f
}

// Types lists the registered collector types, sorted.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.factories))
	for t := range r.factories {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// New builds the collector cfg names.
func (r *Registry) New(cfg Config) (Collector, error) {
	r.mu.RLock()
	f, ok := r.factories[cfg.Type]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("metric %q: no collector of type %q for %s metrics (known: %v)", cfg.Name, cfg.Type, cfg.Kind, r.Types())
	}
	c, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("metric %q, collector %s: %w", cfg.Name, cfg.Type, err)
	}
	return c, nil
}
