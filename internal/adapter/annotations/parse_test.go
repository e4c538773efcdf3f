package annotations

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// summary is the comparable part of a MetricConfig.
type summary struct {
	Key            string
	Namespace      string
	Collector      string
	Config         map[string]string
	Interval       time.Duration
	PerReplica     bool
	MinPodReadyAge time.Duration
	Selector       string
	MetricLabels   map[string]string
}

func summarize(cs []MetricConfig) []summary {
	var out []summary
	for _, c := range cs {
		out = append(out, summary{
			Key: c.Key.String(), Namespace: c.Namespace, Collector: c.CollectorType, Config: c.Config,
			Interval: c.Interval, PerReplica: c.PerReplica, MinPodReadyAge: c.MinPodReadyAge,
			Selector: c.Selector.String(), MetricLabels: c.MetricLabels,
		})
	}
	return out
}

func loadHPA(t testing.TB, file string) *autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var hpa autoscalingv2.HorizontalPodAutoscaler
	if err := yaml.UnmarshalStrict(b, &hpa); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &hpa
}

const promQuery = `scalar(sum(rate(event-service_events_count{application="event-service",processed="true"}[1m])))` + "\n"

// TestParseREADME parses every example HPA of the README (testdata/readme-*.yaml).
func TestParseREADME(t *testing.T) {
	tests := []struct {
		file string
		want []summary
	}{
		{"readme-pods-intro.yaml", []summary{{
			Key: "Pods/requests-per-second", Namespace: "default", Collector: "json-path",
			Config: map[string]string{"json-key": "$.http_server.rps", "path": "/metrics", "port": "9090"},
		}}},
		{"readme-pods.yaml", []summary{{
			Key: "Pods/requests-per-second", Namespace: "default", Collector: "json-path",
			Config: map[string]string{
				"json-key": "$.http_server.rps", "path": "/metrics", "port": "9090",
				"scheme": "https", "aggregator": "max",
			},
			Interval: time.Minute, MinPodReadyAge: 30 * time.Second,
		}}},
		{"readme-pods-raw-query.yaml", []summary{{
			Key: "Pods/requests-per-second", Namespace: "default", Collector: "json-path",
			Config: map[string]string{
				"json-key": "$.http_server.rps", "path": "/metrics", "port": "9090",
				"raw-query": "foo=bar&baz=bop", "request-timeout": "2s", "connect-timeout": "500ms",
			},
		}}},
		{"readme-prometheus-external.yaml", []summary{{
			Key: "External/processed-events-per-second {type=prometheus}", Namespace: "default", Collector: "prometheus",
			Config: map[string]string{
				"type": "prometheus", "prometheus-server": "http://prometheus.my-namespace.svc", "query": promQuery,
			},
			Interval: time.Minute, Selector: "type=prometheus", MetricLabels: map[string]string{"type": "prometheus"},
		}}},
		{"readme-prometheus-object.yaml", []summary{{
			Key: "Object/processed-events-per-second of Pod/dummy-pod", Namespace: "default", Collector: "prometheus",
			Config: map[string]string{"query": promQuery}, PerReplica: true,
		}}},
		{"readme-skipper.yaml", []summary{{
			Key: "Object/requests-per-second of Ingress/myapp", Namespace: "default", Config: map[string]string{},
		}}},
		{"readme-skipper-backend.yaml", []summary{{
			Key: "Object/requests-per-second,backend1 of Ingress/myapp", Namespace: "default", Config: map[string]string{},
		}}},
		{"readme-influxdb.yaml", []summary{{
			Key: "External/queue-depth {type=influxdb}", Namespace: "default", Collector: "influxdb",
			Config: map[string]string{
				"type": "influxdb", "address": "http://influxdbv2.my-namespace.svc", "token": "secret-token", "org": "deadbeef",
				"query": `from(bucket: "apps")
  |> range(start: -30s)
  |> filter(fn: (r) => r._measurement == "queue_depth")
  |> group()
  |> max()
  // Rename "_value" to "metricvalue" for letting the metrics server properly unmarshal the result.
  |> rename(columns: {_value: "metricvalue"})
  |> keep(columns: ["metricvalue"])
`,
			},
			Interval: time.Minute, Selector: "type=influxdb", MetricLabels: map[string]string{"type": "influxdb"},
		}}},
		{"readme-sqs.yaml", []summary{{
			Key: "External/my-sqs {queue-name=foobar,region=eu-central-1,type=sqs-queue-length}", Namespace: "default",
			Collector:    "sqs-queue-length",
			Config:       map[string]string{"type": "sqs-queue-length", "queue-name": "foobar", "region": "eu-central-1"},
			Selector:     "queue-name=foobar,region=eu-central-1,type=sqs-queue-length",
			MetricLabels: map[string]string{"type": "sqs-queue-length", "queue-name": "foobar", "region": "eu-central-1"},
		}}},
		{"readme-zmon.yaml", []summary{{
			Key:       "External/my-zmon-check {aggregators=avg,check-id=1234,duration=5m,key=custom.value,tag-application=my-custom-app,type=zmon}",
			Namespace: "default", Collector: "zmon",
			// The annotations win over the labels of the same name.
			Config: map[string]string{
				"type": "zmon", "check-id": "1234", "key": "custom.*", "tag-application": "my-custom-app-*",
				"aggregators": "avg", "duration": "5m",
			},
			Interval: time.Minute,
			Selector: "aggregators=avg,check-id=1234,duration=5m,key=custom.value,tag-application=my-custom-app,type=zmon",
			MetricLabels: map[string]string{
				"type": "zmon", "check-id": "1234", "key": "custom.value", "tag-application": "my-custom-app",
				"aggregators": "avg", "duration": "5m",
			},
		}}},
		{"readme-http.yaml", []summary{{
			Key: "External/unique-metric-name {type=json-path}", Namespace: "default", Collector: "json-path",
			Config: map[string]string{
				"type": "json-path", "json-key": "$.some-metric.value",
				"endpoint": "http://metric-source.app-namespace:8080/metrics", "aggregator": "max",
			},
			Interval: time.Minute, Selector: "type=json-path", MetricLabels: map[string]string{"type": "json-path"},
		}}},
		{"readme-scaling-schedule.yaml", []summary{{
			Key: "Object/scheduling-event of ClusterScalingSchedule/scheduling-event", Namespace: "default", Config: map[string]string{},
		}}},
	}
	files, _ := filepath.Glob("testdata/readme-*.yaml")
	if len(files) != len(tests) {
		t.Errorf("%d README examples in testdata, %d tested", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Parse(loadHPA(t, tt.file))
			if err != nil {
				t.Fatalf("unexpected problems: %v", err)
			}
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("configs (-want +got):\n%s", diff)
			}
			checkWellFormed(t, loadHPA(t, tt.file), got, nil)
		})
	}
}

// hpa builds an HPA in namespace "ns" from annotations and metrics.
func hpa(annos map[string]string, metrics ...autoscalingv2.MetricSpec) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "h", Namespace: "ns", Annotations: annos},
		Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: metrics},
	}
}

func podsMetric(name string) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType,
		Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: name}}}
}

func externalMetric(name string, matchLabels map[string]string) autoscalingv2.MetricSpec {
	id := autoscalingv2.MetricIdentifier{Name: name}
	if matchLabels != nil {
		id.Selector = &metav1.LabelSelector{MatchLabels: matchLabels}
	}
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{Metric: id}}
}

func objectMetric(name, kind, object string) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType,
		Object: &autoscalingv2.ObjectMetricSource{
			Metric:          autoscalingv2.MetricIdentifier{Name: name},
			DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: kind, Name: object},
		}}
}

// good is a valid metric every error case carries beside its fault, to show it survives.
var (
	goodAnnotations = map[string]string{
		"metric-config.pods.good.json-path/json-key": "$.v",
		"metric-config.pods.good.json-path/path":     "/m",
		"metric-config.pods.good.json-path/port":     "80",
	}
	goodMetric  = podsMetric("good")
	goodSummary = summary{Key: "Pods/good", Namespace: "ns", Collector: "json-path",
		Config: map[string]string{"json-key": "$.v", "path": "/m", "port": "80"}}
)

func withGood(annos map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range goodAnnotations {
		out[k] = v
	}
	for k, v := range annos {
		out[k] = v
	}
	return out
}

func TestParseForms(t *testing.T) {
	tests := []struct {
		name    string
		annos   map[string]string
		metrics []autoscalingv2.MetricSpec
		want    []summary
	}{
		{
			name: "the README's scrape interval on any metric type",
			annos: map[string]string{
				"metric-config.external.q.prometheus/query":    "up",
				"metric-config.external.q.prometheus/interval": "30s",
			},
			metrics: []autoscalingv2.MetricSpec{externalMetric("q", map[string]string{"type": "prometheus"})},
			want: []summary{{Key: "External/q {type=prometheus}", Namespace: "ns", Collector: "prometheus",
				Config: map[string]string{"type": "prometheus", "query": "up"}, Interval: 30 * time.Second,
				Selector: "type=prometheus", MetricLabels: map[string]string{"type": "prometheus"}}},
		},
		{
			name: "legacy prometheus-query metric with query-name",
			annos: map[string]string{
				"metric-config.external.prometheus-query.prometheus/processed-events": "sum(x)",
				"metric-config.external.prometheus-query.prometheus/other":            "sum(y)",
			},
			metrics: []autoscalingv2.MetricSpec{
				externalMetric("prometheus-query", map[string]string{"query-name": "processed-events"}),
				externalMetric("prometheus-query", map[string]string{"query-name": "other"}),
			},
			want: []summary{
				{Key: "External/prometheus-query {query-name=other}", Namespace: "ns", Collector: "prometheus",
					Config:   map[string]string{"query-name": "other", "processed-events": "sum(x)", "other": "sum(y)", "query": "sum(y)"},
					Selector: "query-name=other", MetricLabels: map[string]string{"query-name": "other"}},
				{Key: "External/prometheus-query {query-name=processed-events}", Namespace: "ns", Collector: "prometheus",
					Config:   map[string]string{"query-name": "processed-events", "processed-events": "sum(x)", "other": "sum(y)", "query": "sum(x)"},
					Selector: "query-name=processed-events", MetricLabels: map[string]string{"query-name": "processed-events"}},
			},
		},
		{
			name:  "influxdb query-name given by annotation",
			annos: map[string]string{"metric-config.external.depth.influxdb/query-name": "q1", "metric-config.external.depth.influxdb/q1": "from()"},
			metrics: []autoscalingv2.MetricSpec{
				externalMetric("depth", map[string]string{"type": "influxdb"}),
			},
			want: []summary{{Key: "External/depth {type=influxdb}", Namespace: "ns", Collector: "influxdb",
				Config:   map[string]string{"type": "influxdb", "query-name": "q1", "q1": "from()", "query": "from()"},
				Selector: "type=influxdb", MetricLabels: map[string]string{"type": "influxdb"}}},
		},
		{
			name:    "legacy http metric name without a type label",
			annos:   map[string]string{"metric-config.external.http.json-path/endpoint": "http://x/", "metric-config.external.http.json-path/json-key": "$.a"},
			metrics: []autoscalingv2.MetricSpec{externalMetric("http", nil)},
			want: []summary{{Key: "External/http", Namespace: "ns", Collector: "json-path",
				Config: map[string]string{"endpoint": "http://x/", "json-key": "$.a"}}},
		},
		{
			name:    "external metric named only by its annotations",
			annos:   map[string]string{"metric-config.external.rps.prometheus/query": "up"},
			metrics: []autoscalingv2.MetricSpec{externalMetric("rps", nil)},
			want: []summary{{Key: "External/rps", Namespace: "ns", Collector: "prometheus",
				Config: map[string]string{"query": "up"}}},
		},
		{
			name:    "external metric with no type, no annotation: its name is the collector, as in the original",
			metrics: []autoscalingv2.MetricSpec{externalMetric("nakadi", map[string]string{"metric-type": "unconsumed-events"})},
			want: []summary{{Key: "External/nakadi {metric-type=unconsumed-events}", Namespace: "ns", Collector: "nakadi",
				Config:   map[string]string{"metric-type": "unconsumed-events"},
				Selector: "metric-type=unconsumed-events", MetricLabels: map[string]string{"metric-type": "unconsumed-events"}}},
		},
		{
			name: "metric names with dots",
			annos: map[string]string{
				"metric-config.external.queue.depth.v2.prometheus/query": "up",
				"metric-config.pods.http.rps.json-path/json-key":         "$.rps",
			},
			metrics: []autoscalingv2.MetricSpec{externalMetric("queue.depth.v2", nil), podsMetric("http.rps")},
			want: []summary{
				{Key: "External/queue.depth.v2", Namespace: "ns", Collector: "prometheus", Config: map[string]string{"query": "up"}},
				{Key: "Pods/http.rps", Namespace: "ns", Collector: "json-path", Config: map[string]string{"json-key": "$.rps"}},
			},
		},
		{
			name:    "per-replica false means false",
			annos:   map[string]string{"metric-config.object.o.prometheus/query": "up", "metric-config.object.o.prometheus/per-replica": "false"},
			metrics: []autoscalingv2.MetricSpec{objectMetric("o", "Pod", "dummy-pod")},
			want: []summary{{Key: "Object/o of Pod/dummy-pod", Namespace: "ns", Collector: "prometheus",
				Config: map[string]string{"query": "up"}}},
		},
		{
			name:  "one object metric name about two objects is two metrics",
			annos: map[string]string{"metric-config.object.rps.prometheus/query": "up"},
			metrics: []autoscalingv2.MetricSpec{
				objectMetric("rps", "Ingress", "b"), objectMetric("rps", "Ingress", "a"),
			},
			want: []summary{
				{Key: "Object/rps of Ingress/a", Namespace: "ns", Collector: "prometheus", Config: map[string]string{"query": "up"}},
				{Key: "Object/rps of Ingress/b", Namespace: "ns", Collector: "prometheus", Config: map[string]string{"query": "up"}},
			},
		},
		{
			name: "matchExpressions are kept in the selector, not in the config",
			metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ExternalMetricSourceType,
				External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "m",
					Selector: &metav1.LabelSelector{
						MatchLabels:      map[string]string{"type": "zmon", "check-id": "1"},
						MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"b", "a"}}},
					}}}}},
			want: []summary{{Key: "External/m {check-id=1,env in (a,b),type=zmon}", Namespace: "ns", Collector: "zmon",
				Config:       map[string]string{"type": "zmon", "check-id": "1"},
				Selector:     "check-id=1,env in (a,b),type=zmon",
				MetricLabels: map[string]string{"type": "zmon", "check-id": "1"}}},
		},
		{
			name:  "resource metrics and other annotations are not the adapter's",
			annos: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}", "metric-config": "x", "metric-configs.a.b.c/d": "x"},
			metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu"}},
				{Type: autoscalingv2.ContainerResourceMetricSourceType},
			},
		},
		{
			name:    "pods metric without annotations is left to the collector registry",
			metrics: []autoscalingv2.MetricSpec{podsMetric("p")},
			want:    []summary{{Key: "Pods/p", Namespace: "ns", Config: map[string]string{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hpa(tt.annos, tt.metrics...)
			got, err := Parse(h)
			if err != nil {
				t.Fatalf("unexpected problems: %v", err)
			}
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("configs (-want +got):\n%s", diff)
			}
			checkWellFormed(t, h, got, nil)
		})
	}
}

// wantProblem matches a Problem: Field and Value exactly, Message by substring.
type wantProblem struct {
	Field, Value, Message string
}

func TestParseProblems(t *testing.T) {
	longQuery := strings.Repeat("x", 1000)
	const tooFew = "a metric type, a metric name and a collector type are needed"
	tests := []struct {
		// kept names metrics with an ignored problem that are still collected.
		kept    []string
		name    string
		annos   map[string]string
		metrics []autoscalingv2.MetricSpec
		want    []wantProblem
	}{
		{
			name:  "no config key",
			annos: map[string]string{"metric-config.external.e.prometheus": "up"},
			want:  []wantProblem{{"metric-config.external.e.prometheus", "up", "no '/<configKey>'"}},
		},
		{
			name:  "empty config key",
			annos: map[string]string{"metric-config.external.e.prometheus/": "up"},
			want:  []wantProblem{{"metric-config.external.e.prometheus/", "up", "config key after '/' must be one non-empty word"}},
		},
		{
			name:  "two slashes",
			annos: map[string]string{"metric-config.external.e.prometheus/a/b": "up"},
			want:  []wantProblem{{"metric-config.external.e.prometheus/a/b", "up", "one non-empty word"}},
		},
		{
			name: "too few parts",
			annos: map[string]string{
				"metric-config.external.prometheus/query": "up",
				"metric-config.external/query":            "up",
				"metric-config./query":                    "up",
				"metric-config.external..prometheus/q":    "up",
				"metric-config.external.e./q":             "up",
				"metric-config..e.prometheus/q":           "up",
			},
			want: []wantProblem{
				{"metric-config..e.prometheus/q", "up", tooFew},
				{"metric-config./query", "up", tooFew},
				{"metric-config.external..prometheus/q", "up", tooFew},
				{"metric-config.external.e./q", "up", tooFew},
				{"metric-config.external.prometheus/query", "up", tooFew},
				{"metric-config.external/query", "up", tooFew},
			},
		},
		{
			name:  "unknown metric type",
			annos: map[string]string{"metric-config.extrenal.e.prometheus/query": "up"},
			want:  []wantProblem{{"metric-config.extrenal.e.prometheus/query", "up", `unknown metric type "extrenal"`}},
		},
		{
			name:    "bad intervals",
			annos:   map[string]string{"metric-config.external.e.prometheus/interval": "soon", "metric-config.pods.p.json-path/interval": "0s", "metric-config.object.o.prometheus/interval": "-1m"},
			metrics: []autoscalingv2.MetricSpec{externalMetric("e", nil), podsMetric("p"), objectMetric("o", "Pod", "x")},
			want: []wantProblem{
				{"metric-config.external.e.prometheus/interval", "soon", "interval must be a positive duration"},
				{"metric-config.object.o.prometheus/interval", "-1m", "interval must be a positive duration"},
				{"metric-config.pods.p.json-path/interval", "0s", "interval must be a positive duration"},
			},
		},
		{
			name:    "per-replica not a boolean",
			annos:   map[string]string{"metric-config.object.o.prometheus/per-replica": "yes please", "metric-config.object.o.prometheus/query": "up"},
			metrics: []autoscalingv2.MetricSpec{objectMetric("o", "Pod", "x")},
			want:    []wantProblem{{"metric-config.object.o.prometheus/per-replica", "yes please", "per-replica must be true or false"}},
		},
		{
			name:    "per-replica on an external metric",
			annos:   map[string]string{"metric-config.external.e.prometheus/per-replica": "true", "metric-config.external.e.prometheus/query": "up"},
			metrics: []autoscalingv2.MetricSpec{externalMetric("e", nil)},
			want:    []wantProblem{{"metric-config.external.e.prometheus/per-replica", "true", "per-replica applies to object metrics only; ignored"}},
			kept:    []string{"External/e"},
		},
		{
			name:    "bad min-pod-ready-age",
			annos:   map[string]string{"metric-config.pods.p.json-path/min-pod-ready-age": "-5s", "metric-config.pods.q.json-path/min-pod-ready-age": "half a minute"},
			metrics: []autoscalingv2.MetricSpec{podsMetric("p"), podsMetric("q")},
			want: []wantProblem{
				{"metric-config.pods.p.json-path/min-pod-ready-age", "-5s", "min-pod-ready-age must be a duration of 0 or more"},
				{"metric-config.pods.q.json-path/min-pod-ready-age", "half a minute", "min-pod-ready-age must be a duration of 0 or more"},
			},
		},
		{
			name:    "min-pod-ready-age on an external metric",
			annos:   map[string]string{"metric-config.external.e.json-path/min-pod-ready-age": "30s"},
			metrics: []autoscalingv2.MetricSpec{externalMetric("e", nil)},
			want:    []wantProblem{{"metric-config.external.e.json-path/min-pod-ready-age", "30s", "applies to pods metrics only; ignored"}},
			kept:    []string{"External/e"},
		},
		{
			name:    "two collector types for one metric",
			annos:   map[string]string{"metric-config.external.e.prometheus/query": "up", "metric-config.external.e.influxdb/query": "from()"},
			metrics: []autoscalingv2.MetricSpec{externalMetric("e", nil)},
			want: []wantProblem{
				{"metric-config.external.e.influxdb/query", "from()", "different collector types (influxdb, prometheus)"},
				{"metric-config.external.e.prometheus/query", "up", "different collector types (influxdb, prometheus)"},
			},
		},
		{
			name:  "annotation for a metric the HPA does not have",
			annos: map[string]string{"metric-config.external.missing.prometheus/query": "up", "metric-config.object.good.json-path/x": "y"},
			want: []wantProblem{
				{"metric-config.external.missing.prometheus/query", "up", `spec.metrics has no External metric named "missing"`},
				{"metric-config.object.good.json-path/x", "y", `spec.metrics has no Object metric named "good"`},
			},
		},
		{
			name:    "annotation collector type against the type label",
			annos:   map[string]string{"metric-config.external.e.prometheus/query": "up"},
			metrics: []autoscalingv2.MetricSpec{externalMetric("e", map[string]string{"type": "json-path"})},
			want:    []wantProblem{{"metric-config.external.e.prometheus/query", "up", `collector type "prometheus" differs from "json-path" given by the selector's type label`}},
		},
		{
			name:    "annotation collector type against the legacy metric name",
			annos:   map[string]string{"metric-config.external.zmon-check.prometheus/query": "up"},
			metrics: []autoscalingv2.MetricSpec{externalMetric("zmon-check", nil)},
			want:    []wantProblem{{"metric-config.external.zmon-check.prometheus/query", "up", `differs from "zmon" given by the legacy metric name`}},
		},
		{
			name:    "query-name label naming no annotation",
			annos:   map[string]string{"metric-config.external.prometheus-query.prometheus/other": "up"},
			metrics: []autoscalingv2.MetricSpec{externalMetric("prometheus-query", map[string]string{"query-name": "mine"})},
			want: []wantProblem{{"spec.metrics[1].external.metric.selector.matchLabels[query-name]", "mine",
				"no annotation metric-config.external.prometheus-query.prometheus/mine holds the query"}},
		},
		{
			name:    "query-name annotation naming no annotation",
			annos:   map[string]string{"metric-config.external.d.influxdb/query-name": "q"},
			metrics: []autoscalingv2.MetricSpec{externalMetric("d", map[string]string{"type": "influxdb"})},
			want:    []wantProblem{{"metric-config.external.d.influxdb/query-name", "q", "no annotation metric-config.external.d.influxdb/q holds the query"}},
		},
		{
			name:    "invalid selector label value",
			metrics: []autoscalingv2.MetricSpec{externalMetric("z", map[string]string{"type": "zmon", "key": "custom.*"})},
			want:    []wantProblem{{"spec.metrics[1].external.metric.selector.matchLabels[key]", "custom.*", "a valid label must be"}},
		},
		{
			name: "invalid selector operator",
			metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ExternalMetricSourceType,
				External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "m",
					Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}}}}},
			want: []wantProblem{{"spec.metrics[1].external.metric.selector.matchExpressions", "", `"Near" is not a valid label selector operator`}},
		},
		{
			name:    "object metric without a described object",
			metrics: []autoscalingv2.MetricSpec{objectMetric("o", "", "")},
			want:    []wantProblem{{"spec.metrics[1].object.describedObject", "", "kind and name are required"}},
		},
		{
			name: "metric sources missing",
			metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.PodsMetricSourceType}, {Type: autoscalingv2.ObjectMetricSourceType}, {Type: autoscalingv2.ExternalMetricSourceType},
			},
			want: []wantProblem{
				{"spec.metrics[1].pods", "", "missing for a metric of type Pods"},
				{"spec.metrics[2].object", "", "missing for a metric of type Object"},
				{"spec.metrics[3].external", "", "missing for a metric of type External"},
			},
		},
		{
			name:    "unknown metric source type",
			metrics: []autoscalingv2.MetricSpec{{Type: "Custom"}},
			want:    []wantProblem{{"spec.metrics[1].type", "Custom", "unknown metric source type"}},
		},
		{
			name:    "metric without a name",
			metrics: []autoscalingv2.MetricSpec{podsMetric("")},
			want:    []wantProblem{{"spec.metrics[1].pods.metric.name", "", "the metric has no name"}},
		},
		{
			name:    "the same metric twice",
			metrics: []autoscalingv2.MetricSpec{goodMetric},
			want:    []wantProblem{{"spec.metrics[1].pods", "", "the same metric as spec.metrics[0].pods"}},
		},
		{
			name:    "a long value is cut in the message but kept whole",
			annos:   map[string]string{"metric-config.external.e.prometheus/interval": longQuery},
			metrics: []autoscalingv2.MetricSpec{externalMetric("e", nil)},
			want:    []wantProblem{{"metric-config.external.e.prometheus/interval", longQuery, "interval must be"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hpa(withGood(tt.annos), append([]autoscalingv2.MetricSpec{goodMetric}, tt.metrics...)...)
			got, err := Parse(h)
			var kept []string
			for _, c := range got {
				if c.Key.String() != goodSummary.Key {
					kept = append(kept, c.Key.String())
				}
			}
			if diff := cmp.Diff(tt.kept, kept); diff != "" {
				t.Errorf("metrics kept besides the good one (-want +got):\n%s", diff)
			}
			found := false
			for _, sm := range summarize(got) {
				found = found || cmp.Equal(sm, goodSummary)
			}
			if !found {
				t.Errorf("the good metric must survive unchanged: %+v", summarize(got))
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("want Problems, got %v", err)
			}
			if len(ps) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(tt.want), err)
			}
			for i, w := range tt.want {
				p := ps[i]
				if p.Field != w.Field || p.Value != w.Value || !strings.Contains(p.Message, w.Message) || p.Ignored != (len(tt.kept) > 0) {
					t.Errorf("problem %d = %+v\nwant field %q value %q message containing %q", i, p, w.Field, w.Value, w.Message)
				}
				msg := p.Error()
				if !strings.Contains(msg, w.Field) || len(msg) > len(w.Field)+len(p.Message)+maxValueInMessage*4+32 {
					t.Errorf("problem %d message %q must name the field and stay short", i, msg)
				}
			}
			checkWellFormed(t, h, got, ps)
			// The same HPA gives the same message, so the adapter can event once per change.
			_, again := Parse(h)
			if again.Error() != err.Error() {
				t.Errorf("not deterministic:\n%v\n%v", err, again)
			}
		})
	}
}

func TestProblemError(t *testing.T) {
	p := Problem{Field: "metric-config.external.e.prometheus/interval", Value: "soon", Message: "interval must be a positive duration such as 30s or 1m"}
	want := `annotation "metric-config.external.e.prometheus/interval" (value "soon"): interval must be a positive duration such as 30s or 1m`
	if got := p.Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	p = Problem{Field: "spec.metrics[0].pods", Message: "missing for a metric of type Pods"}
	if got, want := p.Error(), "spec.metrics[0].pods: missing for a metric of type Pods"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	ps := Problems{p, p}
	if got, want := ps.Error(), p.Error()+"; "+p.Error(); got != want {
		t.Errorf("got %s", got)
	}
}

func TestMetricConfigEqual(t *testing.T) {
	h := loadHPA(t, "readme-pods.yaml")
	a, _ := Parse(h)
	b, _ := Parse(h.DeepCopy())
	if !a[0].Equal(b[0]) {
		t.Error("the same HPA parsed twice must give Equal configs")
	}
	h.Annotations["metric-config.pods.requests-per-second.json-path/port"] = "9091"
	c, _ := Parse(h)
	if a[0].Equal(c[0]) {
		t.Error("a changed option must make configs differ")
	}
	if a[0].Key != c[0].Key {
		t.Error("a changed option must keep the key, so the collector is updated, not duplicated")
	}
}

// checkWellFormed asserts what every Parse result must hold. ps is nil when none are
// expected.
func checkWellFormed(t testing.TB, h *autoscalingv2.HorizontalPodAutoscaler, cs []MetricConfig, ps Problems) {
	t.Helper()
	keys := map[MetricKey]bool{}
	metrics := map[string]bool{} // "<Type>/<name>" of configs and problems
	for i, c := range cs {
		switch c.Key.Type {
		case autoscalingv2.PodsMetricSourceType, autoscalingv2.ExternalMetricSourceType:
			if c.Key.Object != (autoscalingv2.CrossVersionObjectReference{}) {
				t.Errorf("config %d: object on a %s metric", i, c.Key.Type)
			}
		case autoscalingv2.ObjectMetricSourceType:
			if c.Key.Object.Kind == "" || c.Key.Object.Name == "" {
				t.Errorf("config %d: object metric without kind and name", i)
			}
		default:
			t.Errorf("config %d: type %q", i, c.Key.Type)
		}
		if c.Key.Name == "" || c.Config == nil || c.Selector == nil || c.Interval < 0 || c.MinPodReadyAge < 0 {
			t.Errorf("config %d malformed: %+v", i, c)
		}
		if c.PerReplica && c.Key.Type != autoscalingv2.ObjectMetricSourceType {
			t.Errorf("config %d: per-replica on %s", i, c.Key.Type)
		}
		if c.MinPodReadyAge != 0 && c.Key.Type != autoscalingv2.PodsMetricSourceType {
			t.Errorf("config %d: min-pod-ready-age on %s", i, c.Key.Type)
		}
		if c.Key.Type == autoscalingv2.ExternalMetricSourceType && c.CollectorType == "" {
			t.Errorf("config %d: external metric without a collector", i)
		}
		for _, k := range []string{KeyInterval, KeyPerReplica, KeyMinPodReadyAge} {
			if _, ok := c.Config[k]; ok {
				t.Errorf("config %d: generic key %q left in Config", i, k)
			}
		}
		if c.Namespace != h.Namespace {
			t.Errorf("config %d: namespace %q", i, c.Namespace)
		}
		if ls := specSelector(c.Spec); (ls == nil || len(ls.MatchExpressions) == 0) && !c.Selector.Matches(labels.Set(c.MetricLabels)) {
			t.Errorf("config %d: selector %q does not match its own labels %v", i, c.Selector, c.MetricLabels)
		}
		if keys[c.Key] {
			t.Errorf("config %d: duplicate key %v", i, c.Key)
		}
		keys[c.Key] = true
		metrics[string(c.Key.Type)+"/"+c.Key.Name] = true
		if i > 0 && cs[i-1].Key.String() > c.Key.String() {
			t.Errorf("configs not sorted")
		}
	}
	fields := map[string]bool{}
	for i, p := range ps {
		if p.Field == "" || p.Message == "" {
			t.Errorf("problem %d malformed: %+v", i, p)
		}
		fields[p.Field] = true
		if p.Metric != "" {
			metrics[p.Metric] = true
		}
	}
	// Nothing passes silently: every metric-config annotation is used by a config or
	// named by a problem (its own, or its metric's).
	for k := range h.Annotations {
		if !strings.HasPrefix(k, prefix) || fields[k] {
			continue
		}
		mt, name, _, _, problem := splitKey(k)
		typ, ok := metricTypes[mt]
		if problem != "" || !ok || !metrics[string(typ)+"/"+name] {
			t.Errorf("annotation %q neither used nor reported", k)
		}
	}
}

func specSelector(m autoscalingv2.MetricSpec) *metav1.LabelSelector {
	switch {
	case m.Pods != nil:
		return m.Pods.Metric.Selector
	case m.Object != nil:
		return m.Object.Metric.Selector
	case m.External != nil:
		return m.External.Metric.Selector
	}
	return nil
}
