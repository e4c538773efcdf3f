package autoscaler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/internal/target"
	"github.com/custompodautoscaler/cpa/pkg/metric"
)

// fakeTarget is an in-memory scale target.
type fakeTarget struct {
	mu       sync.Mutex
	replicas int32
	pods     []*corev1.Pod
	scaledTo []int32
	err      error
}

func (f *fakeTarget) Snapshot(context.Context) (*target.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "app", "namespace": "ns", "labels": map[string]any{"numPods": "3"}},
		"spec":     map[string]any{"replicas": int64(f.replicas)},
	}}
	return &target.Snapshot{Object: obj, Replicas: f.replicas, Selector: "app=app"}, nil
}

func (f *fakeTarget) Pods(context.Context, string) ([]*corev1.Pod, error) {
	return target.Active(f.pods), nil
}

func (f *fakeTarget) SetReplicas(_ context.Context, n int32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replicas = n
	f.scaledTo = append(f.scaledTo, n)
	return nil
}

// funcRunner runs a Go function as user logic and records its inputs.
type funcRunner struct {
	mu     sync.Mutex
	inputs [][]byte
	fn     func(input []byte) ([]byte, error)
}

func (r *funcRunner) Run(_ context.Context, input []byte) ([]byte, error) {
	r.mu.Lock()
	r.inputs = append(r.inputs, input)
	r.mu.Unlock()
	return r.fn(input)
}

func constant(out string) *funcRunner {
	return &funcRunner{fn: func([]byte) ([]byte, error) { return []byte(out), nil }}
}

func testConfig(mode string) *config.Config {
	c := config.Default()
	c.RunMode = mode
	c.ScaleTargetRef = &autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"}
	c.Namespace = "ns"
	c.Metric = &config.Method{Type: config.MethodShell, Timeout: 1000}
	c.Evaluate = &config.Method{Type: config.MethodShell, Timeout: 1000}
	return c
}

func newTest(t *testing.T, cfg *config.Config, tgt *fakeTarget, st Stages) *Autoscaler {
	t.Helper()
	a, err := New(cfg, Options{Target: tgt, Stages: st, Clock: clocktesting.NewFakeClock(time.Unix(1000, 0))})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func pod(name string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Status: corev1.PodStatus{Phase: phase}}
}

func TestPerResourceCycle(t *testing.T) {
	tgt := &fakeTarget{replicas: 1}
	metric := &funcRunner{fn: func(in []byte) ([]byte, error) {
		var info struct {
			Resource struct {
				Metadata struct{ Labels map[string]string }
			}
			RunType string
		}
		if err := json.Unmarshal(in, &info); err != nil {
			return nil, err
		}
		return []byte(info.Resource.Metadata.Labels["numPods"]), nil
	}}
	evaluate := &funcRunner{fn: func(in []byte) ([]byte, error) {
		var info struct {
			Metrics []struct{ Resource, Value string }
		}
		if err := json.Unmarshal(in, &info); err != nil {
			return nil, err
		}
		return []byte(`{"targetReplicas": ` + info.Metrics[0].Value + `}`), nil
	}}
	a := newTest(t, testConfig(config.RunModePerResource), tgt, Stages{Metric: metric, Evaluate: evaluate})
	res, err := a.RunCycle(context.Background(), config.RunTypeScaler)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Scaled || tgt.replicas != 3 {
		t.Fatalf("want scaled to 3, got %+v replicas %d", res, tgt.replicas)
	}
	var in map[string]any
	if err := json.Unmarshal(metric.inputs[0], &in); err != nil {
		t.Fatal(err)
	}
	if in["runType"] != "scaler" || in["resource"].(map[string]any)["kind"] != "Deployment" {
		t.Errorf("metric input = %s", metric.inputs[0])
	}
	if _, ok := in["metrics"]; ok {
		t.Errorf("metric input must not carry metrics: %s", metric.inputs[0])
	}
	want := `{"metrics":[{"resource":"app","value":"3"}],"resource":`
	if !strings.HasPrefix(string(evaluate.inputs[0]), want) || !strings.HasSuffix(string(evaluate.inputs[0]), `"runType":"scaler"}`) {
		t.Errorf("evaluate input = %s", evaluate.inputs[0])
	}

	// A second cycle with the same result changes nothing.
	res, err = a.RunCycle(context.Background(), config.RunTypeScaler)
	if err != nil || res.Scaled || len(tgt.scaledTo) != 1 {
		t.Fatalf("second cycle: %+v, %v, scaled %v", res, err, tgt.scaledTo)
	}
}

func TestPerPodRunsConcurrentlyInNameOrder(t *testing.T) {
	tgt := &fakeTarget{replicas: 2}
	for i := 20; i > 0; i-- {
		tgt.pods = append(tgt.pods, pod(fmt.Sprintf("pod-%02d", i), corev1.PodRunning))
	}
	tgt.pods = append(tgt.pods, pod("zz-done", corev1.PodSucceeded), pod("zz-failed", corev1.PodFailed))
	gone := pod("zz-terminating", corev1.PodRunning)
	gone.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	tgt.pods = append(tgt.pods, gone)

	var running, peak atomic.Int32
	metric := &funcRunner{fn: func(in []byte) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		var p struct {
			APIVersion, Kind string
			Metadata         struct{ Name string }
		}
		if err := json.Unmarshal(in, &struct{ Resource any }{&p}); err != nil {
			return nil, err
		}
		if p.APIVersion != "v1" || p.Kind != "Pod" {
			return nil, fmt.Errorf("pod JSON lacks apiVersion/kind: %s", in)
		}
		return []byte("value-" + p.Metadata.Name), nil
	}}
	cfg := testConfig(config.RunModePerPod)
	cfg.PerPodConcurrency = 4
	a := newTest(t, cfg, tgt, Stages{Metric: metric, Evaluate: constant(`{"targetReplicas": 5}`)})
	got, err := a.Metrics(context.Background(), config.RunTypeAPI)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 {
		t.Fatalf("got %d metrics, want 20 (finished and terminating pods skipped)", len(got))
	}
	for i, m := range got {
		name := fmt.Sprintf("pod-%02d", i+1)
		if m.Resource != name || m.Value != "value-"+name {
			t.Fatalf("metric %d = %+v, want %s", i, m, name)
		}
	}
	if p := peak.Load(); p < 2 || p > 4 {
		t.Errorf("peak concurrency %d, want 2..4", p)
	}
}

func TestPerPodFailureFailsCycle(t *testing.T) {
	tgt := &fakeTarget{replicas: 2, pods: []*corev1.Pod{pod("a", corev1.PodRunning), pod("b", corev1.PodRunning)}}
	metric := &funcRunner{fn: func(in []byte) ([]byte, error) {
		if strings.Contains(string(in), `"name":"b"`) {
			return nil, errors.New("boom")
		}
		return []byte("1"), nil
	}}
	a := newTest(t, testConfig(config.RunModePerPod), tgt, Stages{Metric: metric, Evaluate: constant(`{"targetReplicas": 5}`)})
	_, err := a.RunCycle(context.Background(), config.RunTypeScaler)
	if err == nil || !strings.Contains(err.Error(), "pod b") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("error = %v, want one naming pod b", err)
	}
	if len(tgt.scaledTo) != 0 {
		t.Fatalf("scaled on a failed cycle: %v", tgt.scaledTo)
	}
}

func TestBadEvaluationNeverScales(t *testing.T) {
	for _, out := range []string{"garbage", `{"targetReplicas": "x"}`, `{}`, `{"targetReplicas": -2}`} {
		tgt := &fakeTarget{replicas: 2}
		a := newTest(t, testConfig(config.RunModePerResource), tgt, Stages{Metric: constant("1"), Evaluate: constant(out)})
		if _, err := a.RunCycle(context.Background(), config.RunTypeScaler); err == nil || !strings.Contains(err.Error(), "evaluate stage") {
			t.Fatalf("%q: error = %v", out, err)
		}
		if len(tgt.scaledTo) != 0 {
			t.Fatalf("%q: scaled to %v", out, tgt.scaledTo)
		}
	}
}

func TestHooksPayloadsAndOrder(t *testing.T) {
	tgt := &fakeTarget{replicas: 1}
	var order []string
	var mu sync.Mutex
	payloads := map[string]map[string]any{}
	hook := func(name string) *funcRunner {
		return &funcRunner{fn: func(in []byte) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, name)
			var m map[string]any
			if err := json.Unmarshal(in, &m); err != nil {
				return nil, err
			}
			payloads[name] = m
			return []byte("ok"), nil
		}}
	}
	cfg := testConfig(config.RunModePerResource)
	cfg.MaxReplicas = 4
	st := Stages{
		Metric: constant("9"), Evaluate: constant(`{"targetReplicas": 9}`),
		PreMetric: hook("preMetric"), PostMetric: hook("postMetric"),
		PreEvaluate: hook("preEvaluate"), PostEvaluate: hook("postEvaluate"),
		PreScale: hook("preScale"), PostScale: hook("postScale"),
	}
	a := newTest(t, cfg, tgt, st)
	if _, err := a.RunCycle(context.Background(), config.RunTypeScaler); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "preMetric,postMetric,preEvaluate,postEvaluate,preScale,postScale" {
		t.Fatalf("hook order %s", got)
	}
	if _, ok := payloads["preMetric"]["metrics"]; ok {
		t.Errorf("preMetric has metrics: %v", payloads["preMetric"])
	}
	if payloads["postMetric"]["metrics"] == nil || payloads["postEvaluate"]["evaluation"] == nil {
		t.Errorf("post hooks lack results: %v %v", payloads["postMetric"], payloads["postEvaluate"])
	}
	ps := payloads["preScale"]
	if ps["targetReplicas"] != float64(9) || ps["evaluation"].(map[string]any)["targetReplicas"] != float64(4) ||
		ps["currentReplicas"] != float64(1) || ps["minReplicas"] != float64(1) || ps["maxReplicas"] != float64(4) ||
		ps["namespace"] != "ns" || ps["runType"] != "scaler" || ps["scaleTargetRef"].(map[string]any)["name"] != "app" {
		t.Errorf("preScale payload %v", ps)
	}
	if tgt.replicas != 4 {
		t.Errorf("replicas %d, want clamped 4", tgt.replicas)
	}
}

func TestHookFailureStopsCycle(t *testing.T) {
	tgt := &fakeTarget{replicas: 1}
	failing := &funcRunner{fn: func([]byte) ([]byte, error) { return nil, errors.New("hook broke") }}
	evaluate := constant(`{"targetReplicas": 3}`)
	a := newTest(t, testConfig(config.RunModePerResource), tgt, Stages{Metric: constant("3"), Evaluate: evaluate, PreEvaluate: failing})
	_, err := a.RunCycle(context.Background(), config.RunTypeScaler)
	if err == nil || !strings.Contains(err.Error(), "preEvaluate hook: hook broke") {
		t.Fatalf("error = %v", err)
	}
	if len(evaluate.inputs) != 0 || len(tgt.scaledTo) != 0 {
		t.Fatalf("cycle went on after a hook failure")
	}
}

func TestDisabledAndDryRun(t *testing.T) {
	tgt := &fakeTarget{replicas: 0}
	preScale := constant("")
	a := newTest(t, testConfig(config.RunModePerResource), tgt, Stages{Metric: constant("3"), Evaluate: constant(`{"targetReplicas": 3}`), PreScale: preScale})
	res, err := a.RunCycle(context.Background(), config.RunTypeScaler)
	if err != nil || !res.Decision.Disabled || len(tgt.scaledTo) != 0 || len(preScale.inputs) != 0 {
		t.Fatalf("disabled target: %+v %v scaled %v", res, err, tgt.scaledTo)
	}
	tgt.replicas = 1
	ev, err := a.Evaluate(context.Background(), config.RunTypeAPIDryRun, true)
	if err != nil || ev.TargetReplicas != 3 || len(tgt.scaledTo) != 0 {
		t.Fatalf("dry run: %+v %v scaled %v", ev, err, tgt.scaledTo)
	}
	ev, err = a.Evaluate(context.Background(), config.RunTypeAPI, false)
	if err != nil || ev.TargetReplicas != 3 || len(tgt.scaledTo) != 1 {
		t.Fatalf("api run: %+v %v scaled %v", ev, err, tgt.scaledTo)
	}
}

func TestRunAlignsAndNeverOverlaps(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.UnixMilli(1_000_250))
	tgt := &fakeTarget{replicas: 1}
	var calls atomic.Int32
	release := make(chan struct{})
	metric := &funcRunner{fn: func([]byte) ([]byte, error) {
		if calls.Add(1) == 2 {
			<-release // the second cycle overruns
		}
		return []byte("1"), nil
	}}
	cfg := testConfig(config.RunModePerResource)
	cfg.Interval = 1000
	cfg.StartTime = 1000
	a, err := New(cfg, Options{Target: tgt, Stages: Stages{Metric: metric, Evaluate: constant(`{"targetReplicas": 1}`)}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()

	waitTimer := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // generous: a busy machine is slow, a hang is forever
		for !clk.HasWaiters() {
			if time.Now().After(deadline) {
				t.Fatal("loop never waited on the clock")
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitTimer()
	clk.Step(749 * time.Millisecond) // 1_000_999: not yet aligned
	// The fake clock fires due timers within Step: a loop still waiting on its timer has
	// not started a cycle, and cannot start one later without another Step.
	if !clk.HasWaiters() || calls.Load() != 0 {
		t.Fatal("cycle ran before the startTime alignment")
	}
	clk.Step(time.Millisecond) // 1_001_000
	waitTimer()
	if calls.Load() != 1 {
		t.Fatalf("calls = %d after the aligned start, want 1", calls.Load())
	}
	clk.Step(time.Second) // second cycle starts and blocks
	deadline := time.Now().Add(30 * time.Second)
	for calls.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second cycle never started")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Step(3500 * time.Millisecond) // it overruns 3.5 intervals
	close(release)
	waitTimer()
	if calls.Load() != 2 {
		t.Fatalf("missed ticks were replayed: calls = %d", calls.Load())
	}
	clk.Step(500 * time.Millisecond) // next aligned tick
	waitTimer()
	if calls.Load() != 3 {
		t.Fatalf("calls = %d, want 3", calls.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPodInputMatchesMetricInfo(t *testing.T) {
	pod := &corev1.Pod{}
	pod.APIVersion, pod.Kind, pod.Name = "v1", "Pod", `we"ird<name>`
	pod.Labels = map[string]string{"numPods": "3"}
	resource, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	for _, km := range []json.RawMessage{nil, json.RawMessage(`[{"current_replicas":3,"spec":{"type":"Resource"}}]`)} {
		for _, runType := range []string{"scaler", "api_dry_run", `odd"&<>`} {
			want, err := json.Marshal(metric.Info{Resource: resource, RunType: runType, KubernetesMetrics: km})
			if err != nil {
				t.Fatal(err)
			}
			got, err := podInput(pod, runType, km)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("runType %q:\n got %s\nwant %s", runType, got, want)
			}
		}
	}
}
