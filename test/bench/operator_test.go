//go:build e2e

package bench

// TestOperatorScenario measures the operator: N CustomPodAutoscalers (default 500) created
// at once in one namespace, the time until every one is provisioned (its Ready condition
// True: ServiceAccount, Role, RoleBinding and Deployment created), and the operator's
// memory then.
//
//	go test -tags e2e -count=1 -run TestOperatorScenario -v ./test/bench/
//
// CPA_BENCH_CPAS sets N.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

var cpaGVR = schema.GroupVersionResource{Group: "custompodautoscaler.com", Version: "v1", Resource: "custompodautoscalers"}

func TestOperatorScenario(t *testing.T) {
	n := envCounts(t, "CPA_BENCH_CPAS", []int{500}, 1)[0]
	c := framework.Ensure(t)
	ns := framework.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	kubectl := filepath.Join(filepath.Dir(c.Kubeconfig), "bin", "kubectl")
	if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "apply", "-f", filepath.Join(c.RepoRoot, "deploy", "crd")).CombinedOutput(); err != nil {
		t.Fatalf("installing the CRD: %v\n%s", err, out)
	}
	if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "wait", "--for", "condition=Established", "--timeout", "30s", "crd/custompodautoscalers.custompodautoscaler.com").CombinedOutput(); err != nil {
		t.Fatalf("waiting for the CRD: %v\n%s", err, out)
	}

	bin := framework.BuildBinary(t, "./cmd/custom-pod-autoscaler-operator")
	cmd := exec.Command(bin, "--kubeconfig", c.Kubeconfig, "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "error")
	cmd.Env = append(os.Environ(), "WATCH_NAMESPACE="+ns)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("operator output:\n%s", out.String())
		}
	}()

	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "custompodautoscaler.com/v1", "kind": "CustomPodAutoscaler",
				"metadata": map[string]any{"name": fmt.Sprintf("cpa-%04d", i)},
				"spec": map[string]any{
					"template":       map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "cpa", "image": "custompodautoscaler/python:latest"}}}},
					"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": fmt.Sprintf("app-%04d", i)},
					"config":         []any{map[string]any{"name": "interval", "value": "15000"}},
				},
			}}
			if _, err := dc.Resource(cpaGVR).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("creating CustomPodAutoscalers: %v", err)
	}
	created := time.Since(start)
	t.Logf("%d CustomPodAutoscalers created in %s", n, created.Round(time.Millisecond))

	var provisioned time.Duration
	framework.EventuallyCtx(ctx, t, 10*time.Minute, time.Second, func() (bool, string) {
		list, err := dc.Resource(cpaGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, it := range list.Items {
			conds, _, _ := unstructured.NestedSlice(it.Object, "status", "conditions")
			for _, cnd := range conds {
				m, _ := cnd.(map[string]any)
				if m["type"] == "Ready" && m["status"] == "True" {
					ready++
				}
			}
		}
		provisioned = time.Since(start)
		return ready == n, fmt.Sprintf("%d of %d provisioned after %s", ready, n, provisioned.Round(time.Second))
	})
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var rss, hwm string
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm = strings.TrimSpace(v)
		}
	}
	deploys, err := c.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=custom-pod-autoscaler-operator"})
	if err != nil {
		t.Fatal(err)
	}
	if len(deploys.Items) != n {
		t.Errorf("%d autoscaler Deployments, want %d", len(deploys.Items), n)
	}
	fmt.Printf("\noperator scenario: %d CustomPodAutoscalers created at once (in %s); all provisioned (Ready) %s after the first create; operator RSS then %s, peak %s\n",
		n, created.Round(time.Millisecond), provisioned.Round(100*time.Millisecond), rss, hwm)
}
