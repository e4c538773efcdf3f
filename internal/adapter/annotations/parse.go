package annotations

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const prefix = "metric-config."

// The generic config keys, parsed into typed fields and never left in Config.
const (
	KeyInterval       = "interval"
	KeyPerReplica     = "per-replica"
	KeyMinPodReadyAge = "min-pod-ready-age"
)

// Other option names the parser itself reads.
const (
	// LabelType is the External metric selector label that names the collector.
	LabelType    = "type"
	KeyQuery     = "query"
	KeyQueryName = "query-name"
)

// legacyExternal maps the External metric names the original accepted in place of a
// "type" label to the collector they stand for.
var legacyExternal = map[string]string{
	"prometheus-query": "prometheus",
	"http":             "json-path",
	"flux-query":       "influxdb",
	"zmon-check":       "zmon",
	"sqs-queue-length": "sqs-queue-length",
}

// MetricKey identifies one metric of one HPA, so the adapter can start, update and stop
// its collector. It is comparable and can key a map.
type MetricKey struct {
	Type autoscalingv2.MetricSourceType
	Name string
	// Selector is the metric selector in a canonical form ("" when it has none).
	Selector string
	// Object is the described object of an Object metric, zero otherwise: two Object
	// metrics of the same name about different objects are different metrics.
	Object autoscalingv2.CrossVersionObjectReference
}

func (k MetricKey) String() string {
	s := string(k.Type) + "/" + k.Name
	if k.Object != (autoscalingv2.CrossVersionObjectReference{}) {
		s += " of " + k.Object.Kind + "/" + k.Object.Name
	}
	if k.Selector != "" {
		s += " {" + k.Selector + "}"
	}
	return s
}

// MetricConfig is what one collector needs to know about one HPA metric.
type MetricConfig struct {
	Key MetricKey
	// Namespace is the HPA's namespace (also that of an Object metric's object).
	Namespace string
	// CollectorType names the collector: the annotations' collectorType for Pods and
	// Object metrics ("" when the metric has no annotations), the resolved collector for
	// External metrics (see the package documentation).
	CollectorType string
	// Config holds the collector options: for Object and External metrics the selector's
	// matchLabels, overridden by the annotations' config keys; for Pods metrics the
	// annotations' config keys. Never nil; the generic keys are not in it.
	Config map[string]string
	// Interval is the metric's collection interval; 0 means the adapter's default.
	Interval time.Duration
	// PerReplica asks an Object metric's collector to divide by the target's replicas.
	PerReplica bool
	// MinPodReadyAge is how long a pod must have been Ready before a Pods metric's
	// collector reads it.
	MinPodReadyAge time.Duration
	// Selector is the metric's selector, labels.Everything() when it has none.
	Selector labels.Selector
	// MetricLabels is the selector's matchLabels (nil when none): the labels an External
	// metric's values carry.
	MetricLabels map[string]string
	// Spec is the HPA's metric spec this config came from (shared, do not modify).
	Spec autoscalingv2.MetricSpec
}

// Equal reports whether two configs would run the same collector: when a changed HPA
// yields an Equal config, its collector can keep running.
func (c MetricConfig) Equal(o MetricConfig) bool {
	return c.Key == o.Key && c.Namespace == o.Namespace && c.CollectorType == o.CollectorType &&
		maps.Equal(c.Config, o.Config) && c.Interval == o.Interval && c.PerReplica == o.PerReplica &&
		c.MinPodReadyAge == o.MinPodReadyAge
}

// annotation is one metric-config annotation, split.
type annotation struct {
	key, value    string
	collectorType string
	configKey     string
}

// group is every annotation of one metric type and name.
type group struct {
	metric         string // "<Type>/<name>"
	annotations    []annotation
	collectorType  string
	config         map[string]string
	interval       time.Duration
	perReplica     bool
	minPodReadyAge time.Duration
	bad            bool // a problem was reported: its metrics yield no config
	used           bool
}

type groupKey struct {
	typ  autoscalingv2.MetricSourceType
	name string
}

// Parse returns a config for every Pods, Object and External metric of hpa that is
// configured correctly, sorted by key, and, as a Problems error, everything that is not.
func Parse(hpa *autoscalingv2.HorizontalPodAutoscaler) ([]MetricConfig, error) {
	var ps Problems
	groups := parseAnnotations(hpa.Annotations, &ps)

	var configs []MetricConfig
	seen := map[MetricKey]string{}
	for i, m := range hpa.Spec.Metrics {
		c, field, ok := metricConfig(hpa.Namespace, i, m, groups, &ps)
		if !ok {
			continue
		}
		if first, dup := seen[c.Key]; dup {
			ps = append(ps, Problem{Field: field, Metric: metricName(c.Key.Type, c.Key.Name),
				Message: fmt.Sprintf("the same metric as %s; only the first is collected", first)})
			continue
		}
		seen[c.Key] = field
		configs = append(configs, c)
	}

	for _, g := range groups {
		if g.used {
			continue
		}
		for _, a := range g.annotations {
			ps = append(ps, Problem{Field: a.key, Value: a.value, Metric: g.metric,
				Message: fmt.Sprintf("spec.metrics has no %s metric named %q", typeOf(g.metric), nameOf(g.metric))})
		}
	}

	sort.SliceStable(configs, func(i, j int) bool { return configs[i].Key.String() < configs[j].Key.String() })
	if len(ps) == 0 {
		return configs, nil
	}
	ps.sort()
	return configs, ps
}

func metricName(t autoscalingv2.MetricSourceType, name string) string { return string(t) + "/" + name }
func typeOf(metric string) string                                     { t, _, _ := strings.Cut(metric, "/"); return t }
func nameOf(metric string) string                                     { _, n, _ := strings.Cut(metric, "/"); return n }

// splitKey splits a metric-config annotation key (without its prefix checked) into its
// four parts, or says what is wrong with it.
func splitKey(key string) (metricType, name, collectorType, configKey, problem string) {
	const want = "want metric-config.<metricType>.<metricName>.<collectorType>/<configKey>"
	left, configKey, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
	if !ok {
		return "", "", "", "", "no '/<configKey>': " + want
	}
	if configKey == "" || strings.Contains(configKey, "/") {
		return "", "", "", "", "the config key after '/' must be one non-empty word: " + want
	}
	first, last := strings.IndexByte(left, '.'), strings.LastIndexByte(left, '.')
	if first <= 0 || last <= first+1 || last == len(left)-1 {
		return "", "", "", "", "a metric type, a metric name and a collector type are needed: " + want
	}
	return left[:first], left[first+1 : last], left[last+1:], configKey, ""
}

var metricTypes = map[string]autoscalingv2.MetricSourceType{
	"pods":     autoscalingv2.PodsMetricSourceType,
	"object":   autoscalingv2.ObjectMetricSourceType,
	"external": autoscalingv2.ExternalMetricSourceType,
}

func parseAnnotations(annos map[string]string, ps *Problems) map[groupKey]*group {
	groups := map[groupKey]*group{}
	for _, key := range slices.Sorted(maps.Keys(annos)) {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		value := annos[key]
		mt, name, ct, ck, problem := splitKey(key)
		if problem != "" {
			*ps = append(*ps, Problem{Field: key, Value: value, Message: problem})
			continue
		}
		typ, ok := metricTypes[mt]
		if !ok {
			*ps = append(*ps, Problem{Field: key, Value: value,
				Message: fmt.Sprintf("unknown metric type %q: want pods, object or external", mt)})
			continue
		}
		gk := groupKey{typ, name}
		g := groups[gk]
		if g == nil {
			g = &group{metric: metricName(typ, name), config: map[string]string{}}
			groups[gk] = g
		}
		g.annotations = append(g.annotations, annotation{key: key, value: value, collectorType: ct, configKey: ck})
	}

	for gk, g := range groups {
		g.collectorType = g.annotations[0].collectorType
		var types []string
		for _, a := range g.annotations {
			if !slices.Contains(types, a.collectorType) {
				types = append(types, a.collectorType)
			}
		}
		if len(types) > 1 {
			slices.Sort(types)
			for _, a := range g.annotations {
				*ps = append(*ps, Problem{Field: a.key, Value: a.value, Metric: g.metric,
					Message: fmt.Sprintf("the annotations of %s name different collector types (%s); use one", g.metric, strings.Join(types, ", "))})
			}
			g.bad = true
			continue
		}
		for _, a := range g.annotations {
			if msg, ignored := g.set(gk.typ, a); msg != "" {
				*ps = append(*ps, Problem{Field: a.key, Value: a.value, Metric: g.metric, Message: msg, Ignored: ignored})
				g.bad = g.bad || !ignored
			}
		}
	}
	return groups
}

// set applies one annotation to its group, or returns what is wrong with it. ignored
// means the annotation has no effect but the metric is still collected: the original
// silently ignored per-replica and min-pod-ready-age on metrics they do not apply to, so
// HPAs written for it keep working here, with the problem reported.
func (g *group) set(typ autoscalingv2.MetricSourceType, a annotation) (msg string, ignored bool) {
	switch a.configKey {
	case KeyInterval:
		d, err := time.ParseDuration(strings.TrimSpace(a.value))
		if err != nil || d <= 0 {
			return "interval must be a positive duration such as 30s or 1m", false
		}
		g.interval = d
	case KeyPerReplica:
		if typ != autoscalingv2.ObjectMetricSourceType {
			return "per-replica applies to object metrics only; ignored", true
		}
		b, err := strconv.ParseBool(strings.TrimSpace(a.value))
		if err != nil {
			return "per-replica must be true or false", false
		}
		g.perReplica = b
	case KeyMinPodReadyAge:
		if typ != autoscalingv2.PodsMetricSourceType {
			return "min-pod-ready-age applies to pods metrics only; ignored", true
		}
		d, err := time.ParseDuration(strings.TrimSpace(a.value))
		if err != nil || d < 0 {
			return "min-pod-ready-age must be a duration of 0 or more such as 30s", false
		}
		g.minPodReadyAge = d
	default:
		g.config[a.configKey] = a.value
	}
	return "", false
}

// metricConfig builds the config of spec.metrics[i]. ok is false for metrics the adapter
// does not serve and for metrics with a problem (added to ps).
func metricConfig(namespace string, i int, m autoscalingv2.MetricSpec, groups map[groupKey]*group, ps *Problems) (c MetricConfig, field string, ok bool) {
	field = fmt.Sprintf("spec.metrics[%d]", i)
	var (
		id  autoscalingv2.MetricIdentifier
		obj autoscalingv2.CrossVersionObjectReference
	)
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
		return c, field, false
	case autoscalingv2.PodsMetricSourceType:
		field += ".pods"
		if m.Pods == nil {
			*ps = append(*ps, Problem{Field: field, Message: "missing for a metric of type Pods"})
			return c, field, false
		}
		id = m.Pods.Metric
	case autoscalingv2.ObjectMetricSourceType:
		field += ".object"
		if m.Object == nil {
			*ps = append(*ps, Problem{Field: field, Message: "missing for a metric of type Object"})
			return c, field, false
		}
		id, obj = m.Object.Metric, m.Object.DescribedObject
	case autoscalingv2.ExternalMetricSourceType:
		field += ".external"
		if m.External == nil {
			*ps = append(*ps, Problem{Field: field, Message: "missing for a metric of type External"})
			return c, field, false
		}
		id = m.External.Metric
	default:
		*ps = append(*ps, Problem{Field: field + ".type", Value: string(m.Type), Message: "unknown metric source type"})
		return c, field, false
	}

	metric := metricName(m.Type, id.Name)
	g := groups[groupKey{m.Type, id.Name}]
	if g != nil {
		g.used = true
	}
	bad := g != nil && g.bad
	if id.Name == "" {
		*ps = append(*ps, Problem{Field: field + ".metric.name", Message: "the metric has no name"})
		bad = true
	}
	if m.Type == autoscalingv2.ObjectMetricSourceType && (obj.Kind == "" || obj.Name == "") {
		*ps = append(*ps, Problem{Field: field + ".describedObject", Metric: metric, Message: "kind and name are required"})
		bad = true
	}
	sel, selKey, selOK := selector(field+".metric.selector", metric, id.Selector, ps)
	if bad || !selOK {
		return c, field, false
	}

	c = MetricConfig{
		Key:       MetricKey{Type: m.Type, Name: id.Name, Selector: selKey, Object: obj},
		Namespace: namespace,
		Config:    map[string]string{},
		Selector:  sel,
		Spec:      m,
	}
	if id.Selector != nil && len(id.Selector.MatchLabels) > 0 {
		c.MetricLabels = maps.Clone(id.Selector.MatchLabels)
		if m.Type != autoscalingv2.PodsMetricSourceType {
			maps.Copy(c.Config, id.Selector.MatchLabels)
		}
	}
	if g != nil {
		maps.Copy(c.Config, g.config)
		c.CollectorType = g.collectorType
		c.Interval, c.PerReplica, c.MinPodReadyAge = g.interval, g.perReplica, g.minPodReadyAge
	}
	if m.Type == autoscalingv2.ExternalMetricSourceType && !resolveExternal(&c, field, g, ps) {
		return c, field, false
	}
	return c, field, true
}

// selector converts a metric selector, reporting each invalid requirement.
func selector(field, metric string, ls *metav1.LabelSelector, ps *Problems) (labels.Selector, string, bool) {
	if ls == nil {
		return labels.Everything(), "", true
	}
	ok := true
	for _, k := range slices.Sorted(maps.Keys(ls.MatchLabels)) {
		if _, err := labels.NewRequirement(k, "=", []string{ls.MatchLabels[k]}); err != nil {
			*ps = append(*ps, Problem{Field: fmt.Sprintf("%s.matchLabels[%s]", field, k), Value: ls.MatchLabels[k], Metric: metric, Message: err.Error()})
			ok = false
		}
	}
	if !ok {
		return nil, "", false
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		*ps = append(*ps, Problem{Field: field + ".matchExpressions", Metric: metric, Message: err.Error()})
		return nil, "", false
	}
	reqs, _ := sel.Requirements()
	parts := make([]string, len(reqs))
	for i, r := range reqs {
		parts[i] = r.String()
	}
	slices.Sort(parts)
	return sel, strings.Join(parts, ","), true
}

// resolveExternal picks an External metric's collector and resolves a legacy
// query-name. It reports false after adding a problem.
func resolveExternal(c *MetricConfig, field string, g *group, ps *Problems) bool {
	metric := metricName(c.Key.Type, c.Key.Name)
	annotated := c.CollectorType
	resolved, from := c.MetricLabels[LabelType], "the selector's type label"
	if resolved == "" {
		resolved, from = legacyExternal[c.Key.Name], "the legacy metric name"
	}
	if resolved != "" && annotated != "" && resolved != annotated {
		for _, a := range g.annotations {
			*ps = append(*ps, Problem{Field: a.key, Value: a.value, Metric: metric,
				Message: fmt.Sprintf("collector type %q differs from %q given by %s", annotated, resolved, from)})
		}
		return false
	}
	switch {
	case resolved != "":
		c.CollectorType = resolved
	case annotated != "":
		c.CollectorType = annotated
	default:
		c.CollectorType = c.Key.Name
	}

	if c.CollectorType != "prometheus" && c.CollectorType != "influxdb" {
		return true
	}
	qn, ok := c.Config[KeyQueryName]
	if _, hasQuery := c.Config[KeyQuery]; hasQuery || !ok {
		return true
	}
	q, ok := c.Config[qn]
	if !ok || strings.TrimSpace(q) == "" {
		at := field + ".metric.selector.matchLabels[" + KeyQueryName + "]"
		if g != nil {
			if _, ok := g.config[KeyQueryName]; ok {
				at = prefix + "external." + c.Key.Name + "." + g.collectorType + "/" + KeyQueryName
			}
		}
		*ps = append(*ps, Problem{Field: at, Value: qn, Metric: metric,
			Message: fmt.Sprintf("no annotation metric-config.external.%s.%s/%s holds the query it names", c.Key.Name, c.CollectorType, qn)})
		return false
	}
	c.Config[KeyQuery] = q
	return true
}
