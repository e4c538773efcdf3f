package autoscaler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/internal/kubemetrics"
	"github.com/custompodautoscaler/cpa/pkg/k8smetric"
	"github.com/custompodautoscaler/cpa/pkg/metric"
)

// fakeKubeMetrics returns fixed metrics and error, and reads the pods as a gatherer does.
type fakeKubeMetrics struct {
	metrics []k8smetric.Metric
	err     error
	calls   atomic.Int32
	got     kubemetrics.Target
	pods    int
}

func (f *fakeKubeMetrics) Gather(ctx context.Context, t kubemetrics.Target) ([]k8smetric.Metric, error) {
	f.calls.Add(1)
	f.got = t
	pods, err := t.Pods(ctx)
	if err != nil {
		return nil, err
	}
	f.pods = len(pods)
	return f.metrics, f.err
}

// countingTarget counts the pod reads of a fakeTarget.
type countingTarget struct {
	*fakeTarget
	podReads atomic.Int32
}

func (c *countingTarget) Pods(ctx context.Context, sel string) ([]*corev1.Pod, error) {
	c.podReads.Add(1)
	return c.fakeTarget.Pods(ctx, sel)
}

func cpuMetric(replicas int32) k8smetric.Metric {
	v := int64(250)
	return k8smetric.Metric{
		CurrentReplicas: replicas,
		Spec:            autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "queue"}}},
		External:        &k8smetric.ExternalMetric{Current: k8smetric.MetricValue{AverageValue: &v}, Timestamp: time.Unix(100, 0).UTC()},
	}
}

func kubeMetricsConfig(mode string, require bool) *config.Config {
	cfg := testConfig(mode)
	cfg.KubernetesMetricSpecs = []autoscalingv2.MetricSpec{cpuMetric(0).Spec}
	cfg.RequireKubernetesMetrics = require
	return cfg
}

func TestKubernetesMetricsReachEveryMetricInput(t *testing.T) {
	for _, mode := range []string{config.RunModePerPod, config.RunModePerResource} {
		t.Run(mode, func(t *testing.T) {
			tgt := &countingTarget{fakeTarget: &fakeTarget{replicas: 2, pods: []*corev1.Pod{pod("a", corev1.PodRunning), pod("b", corev1.PodRunning)}}}
			km := &fakeKubeMetrics{metrics: []k8smetric.Metric{cpuMetric(2)}}
			metricStage := constant("1")
			pre, post := constant(""), constant("")
			a, err := New(kubeMetricsConfig(mode, true), Options{
				Target:      tgt,
				Stages:      Stages{Metric: metricStage, Evaluate: constant(`{"targetReplicas":2}`), PreMetric: pre, PostMetric: post},
				Clock:       clocktesting.NewFakeClock(time.Unix(1000, 0)),
				KubeMetrics: km,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.RunCycle(context.Background(), config.RunTypeScaler); err != nil {
				t.Fatal(err)
			}
			if km.calls.Load() != 1 || km.got.Replicas != 2 || km.got.Selector != "app=app" || km.pods != 2 {
				t.Errorf("gather calls %d with %+v (%d pods), want 1 with replicas 2, selector app=app, 2 pods", km.calls.Load(), km.got, km.pods)
			}
			if n := tgt.podReads.Load(); n != 1 {
				t.Errorf("pods read %d times in one cycle, want 1", n)
			}
			want, _ := json.Marshal([]k8smetric.Metric{cpuMetric(2)})
			inputs := append(append(append([][]byte{}, pre.inputs...), metricStage.inputs...), post.inputs...)
			wantInputs := 3 // preMetric, metric, postMetric
			if mode == config.RunModePerPod {
				wantInputs = 4
			}
			if len(inputs) != wantInputs {
				t.Fatalf("%d metric inputs, want %d", len(inputs), wantInputs)
			}
			for _, in := range inputs {
				var info metric.Info
				if err := json.Unmarshal(in, &info); err != nil {
					t.Fatal(err)
				}
				if string(info.KubernetesMetrics) != string(want) {
					t.Errorf("kubernetesMetrics = %s, want %s", info.KubernetesMetrics, want)
				}
			}
		})
	}
}

func TestRequiredKubernetesMetricsFailTheCycle(t *testing.T) {
	tgt := &fakeTarget{replicas: 2, pods: []*corev1.Pod{pod("a", corev1.PodRunning)}}
	partial := &kubemetrics.Error{Total: 2, Failed: []kubemetrics.SpecError{{Index: 1, Spec: "Resource cpu", Err: errors.New("the metrics.k8s.io API is unavailable")}}}
	km := &fakeKubeMetrics{metrics: []k8smetric.Metric{cpuMetric(2)}, err: partial}
	metricStage := constant("1")
	a, err := New(kubeMetricsConfig(config.RunModePerResource, true), Options{
		Target: tgt, Stages: Stages{Metric: metricStage, Evaluate: constant(`{"targetReplicas":5}`)}, KubeMetrics: km,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.RunCycle(context.Background(), config.RunTypeScaler)
	if err == nil || !strings.Contains(err.Error(), "kubernetesMetricSpecs[1] (Resource cpu)") || !strings.Contains(err.Error(), "requireKubernetesMetrics") {
		t.Fatalf("err = %v, want the failed spec named", err)
	}
	if len(metricStage.inputs) != 0 || len(tgt.scaledTo) != 0 {
		t.Errorf("metric stage ran %d times, scaled to %v; want neither", len(metricStage.inputs), tgt.scaledTo)
	}
}

func TestOptionalKubernetesMetricsLogAndGoOn(t *testing.T) {
	tgt := &fakeTarget{replicas: 2, pods: []*corev1.Pod{pod("a", corev1.PodRunning)}}
	partial := &kubemetrics.Error{Total: 2, Failed: []kubemetrics.SpecError{{Index: 1, Spec: "Resource cpu", Err: errors.New("the metrics.k8s.io API is unavailable")}}}
	km := &fakeKubeMetrics{metrics: []k8smetric.Metric{cpuMetric(2)}, err: partial}
	metricStage := constant("1")
	var logs bytes.Buffer
	a, err := New(kubeMetricsConfig(config.RunModePerResource, false), Options{
		Target: tgt, Stages: Stages{Metric: metricStage, Evaluate: constant(`{"targetReplicas":5}`)}, KubeMetrics: km,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RunCycle(context.Background(), config.RunTypeScaler); err != nil {
		t.Fatal(err)
	}
	if len(tgt.scaledTo) != 1 || tgt.scaledTo[0] != 5 {
		t.Errorf("scaled to %v, want [5]", tgt.scaledTo)
	}
	var info metric.Info
	if err := json.Unmarshal(metricStage.inputs[0], &info); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal([]k8smetric.Metric{cpuMetric(2)})
	if string(info.KubernetesMetrics) != string(want) {
		t.Errorf("kubernetesMetrics = %s, want the gathered part %s", info.KubernetesMetrics, want)
	}
	if !strings.Contains(logs.String(), "kubernetesMetricSpecs[1]") || !strings.Contains(logs.String(), "metrics.k8s.io API is unavailable") {
		t.Errorf("log does not name the failed spec:\n%s", logs.String())
	}

	// Nothing gathered at all: the field is left out.
	km.metrics = nil
	metricStage.inputs = nil
	if _, err := a.RunCycle(context.Background(), config.RunTypeScaler); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(metricStage.inputs[0]), "kubernetesMetrics") {
		t.Errorf("input %s has kubernetesMetrics although none was gathered", metricStage.inputs[0])
	}
}
