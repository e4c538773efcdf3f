package annotations

import (
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The fuzz input encodes an HPA in two strings: annotations as records "key\x1fvalue",
// and metrics as records "type\x1fname\x1fmatchLabels\x1fkind\x1fobject", where
// matchLabels is "k=v" pairs joined by "\x1d". Records are separated by "\x1e".
const (
	recordSep = "\x1e"
	unitSep   = "\x1f"
	labelSep  = "\x1d"
)

func encodeHPA(h *autoscalingv2.HorizontalPodAutoscaler) (annos, metrics string) {
	var as []string
	for _, k := range slices.Sorted(maps.Keys(h.Annotations)) {
		as = append(as, k+unitSep+h.Annotations[k])
	}
	var ms []string
	for _, m := range h.Spec.Metrics {
		var id autoscalingv2.MetricIdentifier
		var obj autoscalingv2.CrossVersionObjectReference
		switch {
		case m.Pods != nil:
			id = m.Pods.Metric
		case m.Object != nil:
			id, obj = m.Object.Metric, m.Object.DescribedObject
		case m.External != nil:
			id = m.External.Metric
		}
		var ls []string
		if id.Selector != nil {
			for _, k := range slices.Sorted(maps.Keys(id.Selector.MatchLabels)) {
				ls = append(ls, k+"="+id.Selector.MatchLabels[k])
			}
		}
		ms = append(ms, strings.Join([]string{string(m.Type), id.Name, strings.Join(ls, labelSep), obj.Kind, obj.Name}, unitSep))
	}
	return strings.Join(as, recordSep), strings.Join(ms, recordSep)
}

func decodeHPA(annos, metrics string) *autoscalingv2.HorizontalPodAutoscaler {
	h := hpa(map[string]string{})
	for _, r := range strings.Split(annos, recordSep) {
		k, v, _ := strings.Cut(r, unitSep)
		h.Annotations[k] = v
	}
	for _, r := range strings.Split(metrics, recordSep) {
		f := strings.SplitN(r, unitSep, 5)
		for len(f) < 5 {
			f = append(f, "")
		}
		id := autoscalingv2.MetricIdentifier{Name: f[1]}
		if f[2] != "" {
			id.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{}}
			for _, l := range strings.Split(f[2], labelSep) {
				k, v, _ := strings.Cut(l, "=")
				id.Selector.MatchLabels[k] = v
			}
		}
		m := autoscalingv2.MetricSpec{Type: autoscalingv2.MetricSourceType(f[0])}
		switch m.Type {
		case autoscalingv2.PodsMetricSourceType:
			m.Pods = &autoscalingv2.PodsMetricSource{Metric: id}
		case autoscalingv2.ObjectMetricSourceType:
			m.Object = &autoscalingv2.ObjectMetricSource{Metric: id,
				DescribedObject: autoscalingv2.CrossVersionObjectReference{Kind: f[3], Name: f[4]}}
		case autoscalingv2.ExternalMetricSourceType:
			m.External = &autoscalingv2.ExternalMetricSource{Metric: id}
		}
		h.Spec.Metrics = append(h.Spec.Metrics, m)
	}
	return h
}

// FuzzParse checks that Parse never panics, that every config it returns is well-formed,
// that no metric-config annotation passes silently, and that it is deterministic.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/readme-*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no README examples: %v", err)
	}
	for _, file := range files {
		a, m := encodeHPA(loadHPA(f, filepath.Base(file)))
		f.Add(a, m)
	}
	a, m := encodeHPA(hpa(map[string]string{
		"metric-config.external.prometheus-query.prometheus/processed-events": "sum(x)",
		"metric-config.external.queue.depth.prometheus/interval":              "30s",
		"metric-config.object.o.prometheus/per-replica":                       "false",
		"metric-config.pods.p.json-path/min-pod-ready-age":                    "-1s",
		"metric-config.extrenal.e.prometheus/query":                           "up",
		"metric-config.external.e.influxdb/query-name":                        "q",
	},
		externalMetric("prometheus-query", map[string]string{"query-name": "processed-events"}),
		externalMetric("queue.depth", nil),
		externalMetric("e", map[string]string{"type": "influxdb"}),
		objectMetric("o", "Pod", "dummy-pod"),
		podsMetric("p"),
	))
	f.Add(a, m)

	f.Fuzz(func(t *testing.T, annos, metrics string) {
		h := decodeHPA(annos, metrics)
		cs, err := Parse(h)
		var ps Problems
		if err != nil {
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty Problems: %#v", err)
			}
		}
		checkWellFormed(t, h, cs, ps)

		cs2, err2 := Parse(h)
		if diff := cmp.Diff(summarize(cs), summarize(cs2)); diff != "" {
			t.Errorf("not deterministic (-first +second):\n%s", diff)
		}
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Errorf("problems not deterministic:\n%v\n%v", err, err2)
		}
	})
}
