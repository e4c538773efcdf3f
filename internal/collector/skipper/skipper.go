// Package skipper is the Skipper collector: the requests per second an Ingress or a
// RouteGroup receives through the Skipper ingress controller, read from the Prometheus
// series skipper_serve_host_duration_seconds_count of the object's hosts, as an Object
// metric. The adapter routes Object metrics whose describedObject is an Ingress
// (networking.k8s.io, or the older extensions group) or a RouteGroup (zalando.org) here
// when --skipper-ingress-metrics or --skipper-routegroup-metrics is set.
//
// The metric name is "requests-per-second", or the legacy "requests-per-second,<backend>".
//
// Keys:
//
//	backend  the backend whose share of the traffic is wanted (a selector label or an
//	         annotation); the legacy name suffix says the same
//
// Every collection reads the object again and runs
//
//	scalar(sum(rate(skipper_serve_host_duration_seconds_count{host=~"<hosts>"}[1m])) * <weight>)
//
// where <hosts> are the Ingress's spec.rules[].host or the RouteGroup's spec.hosts, each
// with "." replaced by "_" and regexp-quoted, joined by "|", and <weight> (4 decimals) is
// the backend's share:
//   - Ingress: each annotation named by --skipper-backends-annotation that is present
//     holds JSON {"<backend>": <percent>, ...}; the weight is the largest percent of the
//     backend across them, /100; 0 when no annotation lists the backend. With none of the
//     annotations present the weight is 1. With one present, a backend is required.
//   - RouteGroup: with at most one spec.defaultBackends entry the weight is 1; otherwise a
//     backend is required and the weight is its defaultBackends entry's weight /100 (0
//     when the backend is not there or has no weight). Weights on spec.routes[].backends
//     are not considered, as in the original.
//
// The query text is the original's, so Prometheus recording rules and dashboards built
// on it keep matching; only the string literal is now escaped properly (a host with a
// quote or backslash cannot end it early, and a wildcard host no longer makes the query
// invalid).
//
// With per-replica (which the adapter sets when the HPA's target type is Value, as the
// original divided then) the value is divided by the scale target's replicas; fewer than
// 1 is an error.
//
// Differences from the original: the metric name must be exactly one of the two forms
// (the original accepted any name starting with requests-per-second); a backend given
// both as key and as name suffix must agree; a malformed backends annotation, a weight
// outside 0–100 and a wrongly typed host are errors instead of a silent 0 or skip; the
// query must yield exactly one finite number (see the prometheus package).
package skipper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector"
	"github.com/custompodautoscaler/cpa/internal/collector/prometheus"
)

// Type is the collector type of this package.
const Type = "skipper"

// MetricName is the one metric the collector serves.
const MetricName = "requests-per-second"

// KeyBackend is the key naming the backend.
const KeyBackend = "backend"

// Keys are the configuration keys the collector reads.
var Keys = []string{KeyBackend}

// The kinds served, and their API groups.
const (
	KindIngress    = "Ingress"
	KindRouteGroup = "RouteGroup"
)

var groups = map[string][]string{
	KindIngress:    {"networking.k8s.io", "extensions"},
	KindRouteGroup: {"zalando.org"},
}

// Querier runs one PromQL query yielding one number (a *prometheus.Server).
type Querier interface {
	QueryValue(ctx context.Context, query string) (float64, time.Time, error)
}

// ObjectGetter reads an object of the cluster.
type ObjectGetter interface {
	Get(ctx context.Context, ref collector.ObjectRef) (*unstructured.Unstructured, error)
}

// Replicas tells the current replicas of a scale target, for per-replica values.
type Replicas interface {
	Replicas(ctx context.Context, target collector.ObjectRef) (int32, error)
}

// Options are what the collectors of one process share.
type Options struct {
	// Prometheus runs the queries (the --prometheus-server).
	Prometheus Querier
	// Objects reads the Ingresses and RouteGroups.
	Objects ObjectGetter
	// Replicas serves per-replica metrics; nil makes per-replica an error.
	Replicas Replicas
	// BackendAnnotations are the Ingress annotations holding backend weights
	// (--skipper-backends-annotation).
	BackendAnnotations []string
	// Clock stamps values the querier gives no time for; nil means the real clock.
	Clock clock.PassiveClock
}

// Collector collects the requests per second of one Ingress or RouteGroup.
type Collector struct {
	object     collector.ObjectRef // the values' object, as configured
	read       collector.ObjectRef // what is read: object in the metric's namespace
	backend    string
	perReplica bool
	target     collector.ObjectRef
	opts       Options
}

var _ collector.Collector = (*Collector)(nil)

// Factory returns a collector.Factory building collectors with opts.
func Factory(opts Options) collector.Factory {
	return func(cfg collector.Config) (collector.Collector, error) { return New(cfg, opts) }
}

// New validates cfg, reporting every problem at once.
func New(cfg collector.Config, opts Options) (collector.Collector, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	var errs []error
	if cfg.Kind != collector.Object {
		errs = append(errs, fmt.Errorf("the skipper collector serves Object metrics, not %q", cfg.Kind))
	}
	if opts.Prometheus == nil {
		errs = append(errs, errors.New("no Prometheus server to query (--prometheus-server)"))
	}
	if opts.Objects == nil {
		errs = append(errs, errors.New("no way to read Ingresses and RouteGroups"))
	}

	var backend string
	name, suffix, hasSuffix := strings.Cut(cfg.Name, ",")
	switch {
	case name != MetricName:
		errs = append(errs, fmt.Errorf("metric %q is not supported by the skipper collector (want %s)", clip.String(cfg.Name, 200), MetricName))
	case hasSuffix && strings.TrimSpace(suffix) == "":
		errs = append(errs, fmt.Errorf("metric %q: no backend after the comma (want %s or %s,<backend>)", cfg.Name, MetricName, MetricName))
	default:
		backend = suffix
	}
	if key, ok := cfg.Keys[KeyBackend]; ok {
		switch {
		case strings.TrimSpace(key) == "":
			errs = append(errs, fmt.Errorf("key %q: is empty", KeyBackend))
		case hasSuffix && backend != "" && key != backend:
			errs = append(errs, fmt.Errorf("key %q: %q: the metric name %q names backend %q", KeyBackend, clip.String(key, 200), clip.String(cfg.Name, 200), clip.String(backend, 200)))
		default:
			backend = key
		}
	}

	obj := cfg.Object
	if want, ok := groups[obj.Kind]; !ok {
		errs = append(errs, fmt.Errorf("described object %s %s: the skipper collector serves %s and %s", obj.Kind, obj.Name, KindIngress, KindRouteGroup))
	} else if g := group(obj.APIVersion); !contains(want, g) {
		errs = append(errs, fmt.Errorf("described object %s %s: apiVersion %q: want the group %s", obj.Kind, obj.Name, obj.APIVersion, strings.Join(want, " or ")))
	}
	if obj.Name == "" {
		errs = append(errs, errors.New("the described object has no name"))
	}

	errs = append(errs, collector.CheckPerReplica(cfg, opts.Replicas != nil)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	read := obj
	if read.Namespace == "" {
		read.Namespace = cfg.Namespace // the HPA's, where a describedObject lives
	}
	return &Collector{object: obj, read: read, backend: backend, perReplica: cfg.PerReplica, target: cfg.ScaleTarget, opts: opts}, nil
}

func group(apiVersion string) string {
	g, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return ""
	}
	return g
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// Collect reads the object, queries its traffic and returns one value.
func (c *Collector) Collect(ctx context.Context) ([]collector.Value, error) {
	ref := fmt.Sprintf("%s %s/%s", c.read.Kind, c.read.Namespace, c.read.Name)
	u, err := c.opts.Objects.Get(ctx, c.read)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	if u == nil {
		return nil, fmt.Errorf("reading %s: no object", ref)
	}
	var (
		hosts  []string
		weight float64
	)
	switch c.read.Kind {
	case KindIngress:
		hosts, err = ingressHosts(u)
		if err == nil {
			weight, err = ingressWeight(u.GetAnnotations(), c.opts.BackendAnnotations, c.backend)
		}
	case KindRouteGroup:
		hosts, err = routeGroupHosts(u)
		if err == nil {
			weight, err = routeGroupWeight(u, c.backend)
		}
	default:
		err = fmt.Errorf("unsupported kind %q", c.read.Kind) // New rules it out
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%s: no hosts defined, so no traffic to measure", ref)
	}

	v, ts, err := c.opts.Prometheus.QueryValue(ctx, Query(hosts, weight))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if c.perReplica {
		if v, err = prometheus.PerReplica(ctx, c.opts.Replicas, c.target, v); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
	}
	q, err := collector.MilliQuantity(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if ts.IsZero() {
		ts = c.opts.Clock.Now()
	}
	return []collector.Value{{Object: c.object, Value: q, Timestamp: ts}}, nil
}

// Query is the PromQL query for the requests per second to hosts, times weight. Each
// host has "." replaced by "_" (Skipper's label values) and is regexp-quoted (invalid
// UTF-8 becomes U+FFFD); the
// alternation is then quoted as a PromQL string (Go syntax, which PromQL shares), so no
// host can end the literal.
func Query(hosts []string, weight float64) string {
	re := make([]string, len(hosts))
	for i, h := range hosts {
		// Prometheus rejects a regexp of invalid UTF-8 (the API server never serves one).
		re[i] = regexp.QuoteMeta(strings.ReplaceAll(strings.ToValidUTF8(h, "\uFFFD"), ".", "_"))
	}
	return fmt.Sprintf(`scalar(sum(rate(skipper_serve_host_duration_seconds_count{host=~%s}[1m])) * %.4f)`,
		strconv.Quote(strings.Join(re, "|")), weight)
}

// ingressHosts are the non-empty spec.rules[].host, without duplicates, in order.
func ingressHosts(u *unstructured.Unstructured) ([]string, error) {
	rules, _, err := unstructured.NestedSlice(u.Object, "spec", "rules")
	if err != nil {
		return nil, fmt.Errorf("spec.rules: %w", err)
	}
	var hosts []string
	for i, r := range rules {
		rule, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("spec.rules[%d]: is %T, not an object", i, r)
		}
		h, ok := rule["host"]
		if !ok || h == nil {
			continue
		}
		s, ok := h.(string)
		if !ok {
			return nil, fmt.Errorf("spec.rules[%d].host: is %T, not a string", i, h)
		}
		hosts = appendHost(hosts, s)
	}
	return hosts, nil
}

// routeGroupHosts are the non-empty spec.hosts, without duplicates, in order.
func routeGroupHosts(u *unstructured.Unstructured) ([]string, error) {
	list, _, err := unstructured.NestedSlice(u.Object, "spec", "hosts")
	if err != nil {
		return nil, fmt.Errorf("spec.hosts: %w", err)
	}
	var hosts []string
	for i, h := range list {
		s, ok := h.(string)
		if !ok {
			return nil, fmt.Errorf("spec.hosts[%d]: is %T, not a string", i, h)
		}
		hosts = appendHost(hosts, s)
	}
	return hosts, nil
}

func appendHost(hosts []string, h string) []string {
	if h == "" || contains(hosts, h) {
		return hosts
	}
	return append(hosts, h)
}

var errNoBackend = errors.New("backend name must be specified for requests-per-second when traffic switching is used (the key \"backend\" or the metric name requests-per-second,<backend>)")

// ingressWeight is the backend's share by the backends annotations.
func ingressWeight(annotations map[string]string, names []string, backend string) (float64, error) {
	present := false
	weight := 0.0
	for _, name := range names {
		raw, ok := annotations[name]
		if !ok {
			continue
		}
		present = true
		var percents map[string]float64
		if err := json.Unmarshal([]byte(raw), &percents); err != nil {
			return 0, fmt.Errorf("annotation %s: %q: not a JSON object of backend percentages: %w", name, clip.String(raw, 200), err)
		}
		for b, p := range percents {
			if p < 0 || p > 100 || math.IsNaN(p) {
				return 0, fmt.Errorf("annotation %s: backend %q: weight %v is not a percentage (0 to 100)", name, clip.String(b, 200), p)
			}
		}
		if p, ok := percents[backend]; ok {
			weight = math.Max(weight, p/100)
		}
	}
	if !present {
		return 1, nil
	}
	if backend == "" {
		return 0, errNoBackend
	}
	return weight, nil
}

// routeGroupWeight is the backend's share by spec.defaultBackends.
func routeGroupWeight(u *unstructured.Unstructured, backend string) (float64, error) {
	defaults, _, err := unstructured.NestedSlice(u.Object, "spec", "defaultBackends")
	if err != nil {
		return 0, fmt.Errorf("spec.defaultBackends: %w", err)
	}
	if len(defaults) <= 1 {
		return 1, nil
	}
	if backend == "" {
		return 0, errNoBackend
	}
	for i, d := range defaults {
		entry, ok := d.(map[string]any)
		if !ok {
			return 0, fmt.Errorf("spec.defaultBackends[%d]: is %T, not an object", i, d)
		}
		if name, _ := entry["backendName"].(string); name != backend {
			continue
		}
		w, err := number(entry["weight"])
		if err != nil {
			return 0, fmt.Errorf("spec.defaultBackends[%d].weight: %w", i, err)
		}
		return w / 100, nil
	}
	return 0, nil
}

// number reads a JSON number as unstructured holds it; absent is 0 (no weight).
func number(v any) (float64, error) {
	var f float64
	switch n := v.(type) {
	case nil:
		return 0, nil
	case int64:
		f = float64(n)
	case int:
		f = float64(n)
	case int32:
		f = float64(n)
	case float64:
		f = n
	case float32:
		f = float64(n)
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return 0, fmt.Errorf("%q is not a number", n)
		}
	default:
		return 0, fmt.Errorf("is %T, not a number", v)
	}
	if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%v is not a weight (0 or more)", f)
	}
	return f, nil
}
