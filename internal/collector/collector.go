// Package collector is what every metric source of the adapter (and, later, of the
// runtime) implements: built from one metric's configuration, it returns that metric's
// values when asked. It knows nothing of HPAs or of the API server the values feed.
package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
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
	// Object is the described object of an Object metric; zero otherwise.
	Object ObjectRef
	// ScaleTarget is the resource the metric scales (the HPA's scaleTargetRef, in
	// Namespace): the pods of its selector are a Pods metric's, its replicas divide a
	// per-replica value.
	ScaleTarget ObjectRef
	// PerReplica asks for the value divided by the scale target's current replicas.
	PerReplica bool
	// MinPodReadyAge skips pods Ready for less than this (Pods metrics).
	MinPodReadyAge time.Duration
}

// Collector gathers one metric's values. Collect honours ctx, and returns an error, never
// a silent zero, when it cannot produce a value (an empty result, a missing field).
//
// Values returned together with an error are a partial result: what could be collected
// (for example the pods that answered) while the error says what could not. A caller
// may serve them and must still report the error.
type Collector interface {
	Collect(ctx context.Context) ([]Value, error)
}

// Factory builds a collector from its configuration; an error names the key and the
// value at fault.
type Factory func(cfg Config) (Collector, error)

// Registry maps a kind of metric and a collector type to a factory: "json-path" is the
// pod collector for Pods metrics and the HTTP collector for External ones. It is safe for
// concurrent use.
type Registry struct {
	mu        sync.RWMutex
	factories map[registryKey]Factory
	keys      map[registryKey]map[string]bool
}

type registryKey struct {
	kind Kind
	typ  string
}

// NotFoundError is returned by New when no collector of the asked type serves the asked
// kind of metric (the collector is not enabled, or the type is misspelt).
type NotFoundError struct {
	Kind  Kind
	Type  string
	Known []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no collector of type %q for %s metrics (known: %v)", e.Type, e.Kind, e.Known)
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[registryKey]Factory{}, keys: map[registryKey]map[string]bool{}}
}

// Register adds the factory of a collector type for one kind of metric, replacing any
// earlier one. keys are the configuration keys the collector reads, so that a misspelt
// one can be reported (see KnownKeys); a key ending in "*" stands for every key with
// that prefix (ZMON's "tag-*"); none: not known.
func (r *Registry) Register(kind Kind, typ string, f Factory, keys ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := registryKey{kind, typ}
	r.factories[k] = f
	delete(r.keys, k)
	if len(keys) > 0 {
		r.keys[k] = map[string]bool{}
		for _, key := range keys {
			r.keys[k][key] = true
		}
	}
}

// KnownKeys returns the configuration keys of a collector type for kind, sorted, and
// whether they were registered.
func (r *Registry) KnownKeys(kind Kind, typ string) ([]string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	set, ok := r.keys[registryKey{kind, typ}]
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, true
}

// Types lists the collector types registered for kind, sorted.
func (r *Registry) Types(kind Kind) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for k := range r.factories {
		if k.kind == kind {
			out = append(out, k.typ)
		}
	}
	sort.Strings(out)
	return out
}

// New builds the collector cfg names. With no such collector the error wraps a
// *NotFoundError.
func (r *Registry) New(cfg Config) (Collector, error) {
	r.mu.RLock()
	f, ok := r.factories[registryKey{cfg.Kind, cfg.Type}]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("metric %q: %w", cfg.Name, &NotFoundError{Kind: cfg.Kind, Type: cfg.Type, Known: r.Types(cfg.Kind)})
	}
	c, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("metric %q, collector %s: %w", cfg.Name, cfg.Type, err)
	}
	return c, nil
}

// MilliQuantity is v as a Quantity at milli precision, rounded, the one conversion every
// collector uses; an error when v is not finite or beyond what a Quantity's int64
// milli-units hold (the original truncated, and wrapped around on overflow).
func MilliQuantity(v float64) (resource.Quantity, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return resource.Quantity{}, fmt.Errorf("the value %v is not a finite number", v)
	}
	milli := math.Round(v * 1000)
	// 2^63 is the first float64 past int64's range (both ways, to keep it simple).
	if math.Abs(milli) >= 1<<63 {
		return resource.Quantity{}, fmt.Errorf("the value %g is out of range", v)
	}
	return *resource.NewMilliQuantity(int64(milli), resource.DecimalSI), nil
}

// PositiveDuration reads keys[key] as a Go duration above zero; def when the key is
// absent. The error says what is wrong with the value, for the caller to name the key.
func PositiveDuration(keys map[string]string, key string, def time.Duration) (time.Duration, error) {
	s, ok := keys[key]
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return def, errors.New("not a duration (e.g. 2s, 500ms)")
	case d <= 0:
		return def, errors.New("must be positive")
	}
	return d, nil
}

// CheckPerReplica returns what keeps cfg's per-replica division from working: a
// collector that cannot read replicas, a metric without a scale target. None when
// cfg.PerReplica is false.
func CheckPerReplica(cfg Config, canReadReplicas bool) []error {
	if !cfg.PerReplica {
		return nil
	}
	var errs []error
	if !canReadReplicas {
		errs = append(errs, errors.New("per-replica: this collector has no way to read replicas"))
	}
	if cfg.ScaleTarget.Name == "" || cfg.ScaleTarget.Kind == "" {
		errs = append(errs, errors.New("per-replica: the metric has no scale target"))
	}
	return errs
}

// NewTransport returns a transport like http.DefaultTransport's (proxy from the
// environment, HTTP/2, idle limits) whose connections are given up after connectTimeout;
// the collectors that ask one server share one per process.
func NewTransport(connectTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext
	return t
}
