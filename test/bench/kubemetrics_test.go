//go:build e2e

package bench

// TestKubeMetricsScenario measures the Kubernetes-metrics step of a cycle: the program
// with two kubernetesMetricSpecs (Resource cpu Utilization and Resource memory
// AverageValue) against a Deployment of n kwok pods whose usage the cluster's
// metrics-server scrapes. It reports how long the step took (the cycle summary's
// kubernetesMetricsDuration), the cycle, the API requests per steady cycle (target: one
// LIST of pod metrics; pods from the watch cache) and the program's peak memory.
//
//	go test -tags e2e -count=1 -run TestKubeMetricsScenario -v ./test/bench/
//
// CPA_BENCH_KM_PODS sets the pod counts (default 100,1000); CPA_BENCH_CYCLES the steady
// cycles (default 5).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

type kmResult struct {
	pods        int
	metricsWait time.Duration // from all pods Ready to metrics-server having a sample of each
	steady      []cycle
	inputBytes  int
	peakRSS     int64
}

func TestKubeMetricsScenario(t *testing.T) {
	counts := envCounts(t, "CPA_BENCH_KM_PODS", []int{100, 1000}, 1)
	steadyCycles := steadyCyclesFromEnv(t)
	bin := framework.BuildBinary(t, "./cmd/custom-pod-autoscaler")
	var results []kmResult
	for _, n := range counts {
		t.Run(fmt.Sprintf("pods=%d", n), func(t *testing.T) {
			results = append(results, kmScenario(t, bin, n, steadyCycles))
		})
	}
	if len(results) > 0 {
		fmt.Print(kmTable(results))
	}
}

var podMetricsGVR = schema.GroupVersionResource{Group: "metrics.k8s.io", Version: "v1beta1", Resource: "pods"}

func kmScenario(t *testing.T, bin string, n, steadyCycles int) kmResult {
	c := framework.Ensure(t)
	ns := framework.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	res := kmResult{pods: n}

	d := framework.NewDeployment("web", int32(n))
	d.Spec.Template.Annotations = map[string]string{"kwok.x-k8s.io/usage-cpu": "100m", "kwok.x-k8s.io/usage-memory": "64Mi"}
	d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.EventuallyCtx(ctx, t, 2*time.Minute+time.Duration(n)*200*time.Millisecond, 2*time.Second, func() (bool, string) {
		got, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return got.Status.ReadyReplicas == int32(n), fmt.Sprintf("%d of %d pods ready", got.Status.ReadyReplicas, n)
	})
	ready := time.Now()
	framework.EventuallyCtx(ctx, t, 3*time.Minute, 2*time.Second, func() (bool, string) {
		list, err := c.Dynamic.Resource(podMetricsGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err.Error()
		}
		return len(list.Items) == n, fmt.Sprintf("metrics-server has samples of %d of %d pods", len(list.Items), n)
	})
	res.metricsWait = time.Since(ready)
	t.Logf("%d pods ready; metrics-server had a sample of each %s later", n, res.metricsWait.Round(100*time.Millisecond))

	dir := t.TempDir()
	inputFile := filepath.Join(dir, "input.json")
	shell := func(script string) map[string]any {
		return map[string]any{"type": "shell", "timeout": 10000, "shell": map[string]any{"entrypoint": "/bin/sh", "command": []string{"-c", script}}}
	}
	cfg, err := json.MarshalIndent(map[string]any{
		"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
		"namespace":      ns,
		"runMode":        "per-resource",
		"interval":       interval,
		"minReplicas":    1,
		"maxReplicas":    2 * n,
		"apiConfig":      map[string]any{"enabled": false},
		"kubernetesMetricSpecs": []any{
			map[string]any{"type": "Resource", "resource": map[string]any{"name": "cpu", "target": map[string]any{"type": "Utilization"}}},
			map[string]any{"type": "Resource", "resource": map[string]any{"name": "memory", "target": map[string]any{"type": "AverageValue"}}},
		},
		"requireKubernetesMetrics": true,
		// The metric keeps the last input, to check what was gathered and its size.
		"metric":   shell(fmt.Sprintf("cat >'%s'; echo 1", inputFile)),
		"evaluate": shell(fmt.Sprintf(`cat >/dev/null; echo '{"targetReplicas": %d}'`, n)),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config.json")
	writeFile(t, cfgFile, string(cfg))
	p := startProgram(t, bin, cfgFile, c.Kubeconfig)
	next := func(what string) cycle {
		t.Helper()
		select {
		case cy, ok := <-p.cycles:
			if !ok {
				t.Fatalf("waiting for the %s: the program exited: %v\n%s", what, p.waitErr(), p.tail())
			}
			if cy.Msg != "no change" {
				t.Fatalf("the %s: %q: %s\n%s", what, cy.Msg, cy.Error, p.tail())
			}
			t.Logf("%s: %s, Kubernetes metrics %s, %d API requests", what, cy.duration().Round(time.Millisecond),
				parseDuration(cy.KubeMetrics).Round(time.Millisecond), cy.APIRequests)
			return cy
		case <-time.After(2 * time.Minute):
			t.Fatalf("no cycle summary for 2m (the %s)\n%s", what, p.tail())
		}
		panic("unreachable")
	}
	next("first cycle")
	for i := range steadyCycles {
		res.steady = append(res.steady, next(fmt.Sprintf("steady cycle %d", i+1)))
	}
	res.peakRSS, err = p.peakRSS()
	if err != nil {
		t.Fatal(err)
	}
	p.stop(t)

	raw, err := os.ReadFile(inputFile)
	if err != nil {
		t.Fatal(err)
	}
	res.inputBytes = len(raw)
	var in struct {
		KubernetesMetrics []struct {
			Resource struct {
				PodMetricsInfo map[string]struct{ Value int64 } `json:"pod_metrics_info"`
				ReadyPodCount  int                              `json:"ready_pod_count"`
			} `json:"resource"`
		} `json:"kubernetesMetrics"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatalf("the metric input: %v", err)
	}
	if len(in.KubernetesMetrics) != 2 {
		t.Fatalf("the metric input has %d Kubernetes metrics, want 2", len(in.KubernetesMetrics))
	}
	for i, m := range in.KubernetesMetrics {
		if m.Resource.ReadyPodCount != n || len(m.Resource.PodMetricsInfo) != n {
			t.Errorf("metric %d: %d ready pods, %d samples; want %d", i, m.Resource.ReadyPodCount, len(m.Resource.PodMetricsInfo), n)
		}
	}
	return res
}

func kmTable(rs []kmResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nKubernetes metrics scenario: per-resource, specs Resource cpu (Utilization) and memory (AverageValue), interval %d ms, %d CPUs\n\n", interval, runtime.NumCPU())
	fmt.Fprintln(&b, "| pods | steady cycles | Kubernetes metrics step, mean (min–max) | cycle, mean | API requests per steady cycle (max) | metric input | peak RSS |")
	fmt.Fprintln(&b, "|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		var step, lo, hi, cyc time.Duration
		var reqs, maxReqs uint64
		for i, cy := range r.steady {
			d := parseDuration(cy.KubeMetrics)
			step += d
			if i == 0 || d < lo {
				lo = d
			}
			hi = max(hi, d)
			cyc += cy.duration()
			reqs += cy.APIRequests
			maxReqs = max(maxReqs, cy.APIRequests)
		}
		k := time.Duration(max(1, len(r.steady)))
		fmt.Fprintf(&b, "| %d | %d | %s (%s–%s) | %s | %.1f (%d) | %d KiB | %.1f MiB |\n",
			r.pods, len(r.steady), (step / k).Round(100*time.Microsecond), lo.Round(100*time.Microsecond), hi.Round(100*time.Microsecond),
			(cyc / k).Round(100*time.Microsecond), float64(reqs)/float64(k), maxReqs, r.inputBytes>>10, float64(r.peakRSS)/(1<<20))
	}
	return b.String()
}
