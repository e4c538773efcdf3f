package annotations

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// examplesDir holds the example HPAs of the kube-metrics-adapter documentation.
const examplesDir = "../../../examples/kube-metrics-adapter"

// exampleMetric is what Parse must make of one metric of an example HPA.
type exampleMetric struct {
	key       string // MetricKey.String()
	collector string // MetricConfig.CollectorType
}

// documentedExamples are the example HPAs the docs (docs/collectors/*.md) show, by file
// and HPA name, with the metrics each must yield. Every other HPA in the directory must
// parse without problems and yield at least one metric.
var documentedExamples = map[string]map[string][]exampleMetric{
	"pod-json-path.yaml": {"web": {
		{"Pods/requests-per-second", "json-path"},
	}},
	"http-json-path.yaml": {"worker": {
		{"External/queue-depth {type=json-path}", "json-path"},
	}},
	"prometheus-external.yaml": {"event-consumer": {
		{"External/processed-events-per-second {type=prometheus}", "prometheus"},
	}},
	"prometheus-object.yaml": {"event-consumer-object": {
		{"Object/processed-events-per-second of Deployment/event-consumer", "prometheus"},
	}},
	// Skipper metrics need no annotations: the adapter sends every Object metric about
	// an Ingress or RouteGroup to the skipper collector when it is enabled.
	"skipper-ingress.yaml": {"myapp": {
		{"Object/requests-per-second of Ingress/myapp", ""},
	}},
	"skipper-routegroup.yaml": {"myapp-v2": {
		{"Object/requests-per-second of RouteGroup/myapp {backend=myapp-v2}", ""},
	}},
	"sqs.yaml": {"order-worker": {
		{"External/orders-queue-length {queue-name=orders,region=eu-central-1,type=sqs-queue-length}", "sqs-queue-length"},
	}},
	"zmon.yaml": {"my-custom-app": {
		{"External/my-zmon-check {check-id=1234,type=zmon}", "zmon"},
	}},
	"influxdb.yaml": {"queryd": {
		{"External/queue-depth {type=influxdb}", "influxdb"},
	}},
	// The ClusterScalingSchedule in the file is skipped (not an HPA). Like Skipper's, a
	// schedule metric needs no annotations: the adapter routes Object metrics about
	// ScalingSchedules and ClusterScalingSchedules to the schedule collector by kind.
	"scaling-schedule.yaml": {"myapp-hpa": {
		{"Object/scheduling-event of ClusterScalingSchedule/scheduling-event", ""},
	}},
}

// exampleHPAs reads the HorizontalPodAutoscalers of a (multi-document) YAML file,
// strictly: a misspelt field fails the test. Other kinds are skipped.
func exampleHPAs(t *testing.T, path string) []*autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*autoscalingv2.HorizontalPodAutoscaler
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		if head.Kind != "HorizontalPodAutoscaler" {
			continue
		}
		if head.APIVersion != "autoscaling/v2" {
			t.Errorf("%s: document %d: apiVersion %q, want autoscaling/v2", path, i, head.APIVersion)
		}
		var hpa autoscalingv2.HorizontalPodAutoscaler
		if err := yaml.UnmarshalStrict(doc, &hpa); err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		out = append(out, &hpa)
	}
	return out
}

// TestExamples parses every example HPA of examples/kube-metrics-adapter: none may have
// a problem, and the documented ones must yield the metrics their pages describe.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		file := filepath.Base(path)
		seen[file] = true
		t.Run(file, func(t *testing.T) {
			want, documented := documentedExamples[file]
			hpas := exampleHPAs(t, path)
			if documented && len(hpas) != len(want) {
				t.Errorf("%d HPAs, want %d", len(hpas), len(want))
			}
			for _, hpa := range hpas {
				configs, err := Parse(hpa)
				if err != nil {
					t.Errorf("HPA %s: %v", hpa.Name, err)
				}
				if !documented {
					if len(configs) == 0 {
						t.Errorf("HPA %s: no metric for the adapter", hpa.Name)
					}
					continue
				}
				wantMetrics, ok := want[hpa.Name]
				if !ok {
					t.Errorf("HPA %s: not expected in %s", hpa.Name, file)
					continue
				}
				var got []exampleMetric
				for _, c := range configs {
					got = append(got, exampleMetric{c.Key.String(), c.CollectorType})
				}
				if !slices.Equal(got, wantMetrics) {
					t.Errorf("HPA %s: metrics %v, want %v", hpa.Name, got, wantMetrics)
				}
			}
		})
	}
	for file := range documentedExamples {
		if !seen[file] {
			t.Errorf("%s is missing from %s", file, examplesDir)
		}
	}
}
