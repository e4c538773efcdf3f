//go:build e2e

package e2e

// End-to-end tests of kubernetesMetricSpecs: resource metrics from the cluster's real
// metrics-server (scraping kwok's kubelet-style endpoints), custom and external metrics
// from a real aggregated API server (test/metricsadapter, built on
// sigs.k8s.io/custom-metrics-apiserver), the HPA's pod rules, and
// requireKubernetesMetrics with a metrics API down.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

// kwok reports every container's use from these pod annotations.
const (
	usageCPU    = "kwok.x-k8s.io/usage-cpu"
	usageMemory = "kwok.x-k8s.io/usage-memory"
)

// metricsWait bounds the wait for metrics-server's first samples of new pods: two
// scrapes 10 s apart, plus the time the pods take to run.
const metricsWait = 90 * time.Second

// The k8s-metrics-cpu example: CPU utilisation from metrics-server drives the replica
// count. At 75% of the request (target 50%) it scales up to maxReplicas; at 5% back
// down to 1.
func TestKubeMetricsCPUExample(t *testing.T) {
	t.Parallel()
	requirePython3(t)
	e := newTestEnv(t, 5*time.Minute)
	example := filepath.Join(e.c.RepoRoot, "examples", "k8s-metrics-cpu")

	raw, err := os.ReadFile(filepath.Join(example, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		t.Fatalf("examples/k8s-metrics-cpu/deployment.yaml: %v", err)
	}
	d.Spec.Template.Annotations[usageCPU] = "150m" // 75% of the 200m request
	if _, err := e.c.Client.AppsV1().Deployments(e.ns).Create(e.ctx, &d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(example, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	config := strings.NewReplacer("- /metric.py", "- "+filepath.Join(example, "metric.py"), "- /evaluate.py", "- "+filepath.Join(example, "evaluate.py")).Replace(string(cfg))
	if config == string(cfg) {
		t.Fatal("examples/k8s-metrics-cpu/config.yaml no longer names /metric.py and /evaluate.py")
	}
	p := startCPA(t, cpaSpec{
		Namespace: e.ns, Target: deploymentRef(d.Name), Config: config,
		Env: map[string]string{"interval": "2000", "maxReplicas": "4", "downscaleStabilization": "0"},
	})
	get := deploymentReplicas(e.ns, d.Name)
	p.waitReplicas(e.ctx, 3*metricsWait, get, 4)

	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:"10m"}}}}}`, usageCPU) // 5%
	if _, err := e.c.Client.AppsV1().Deployments(e.ns).Patch(e.ctx, d.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	p.waitReplicas(e.ctx, 2*metricsWait, get, 1)
	// Cycles may fail before metrics-server has a sample, a loaded CI machine may time a
	// stage out, and the patch above rolls the Deployment: for a moment every old pod is
	// terminating and no new one is seen yet, so no pod matches (the HPA fails then too).
	// The next cycle retries each. Anything else is a defect.
	for _, l := range p.logsWithMsg("cycle failed; target not scaled") {
		if msg := l.str("error"); !strings.Contains(msg, "no cpu usage") && !strings.Contains(msg, "timed out after") &&
			!strings.Contains(msg, "no pods match the target's selector") {
			t.Errorf("unexpected failed cycle: %s", l.str("error"))
		}
	}
}

// Resource and ContainerResource metrics from metrics-server with the HPA's pod rules:
// a Pending pod is ignored, an unready pod is ignored for CPU only, a pod without the
// measured container is missing for that container's metric.
func TestKubeMetricsResourceRules(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 4*time.Minute)
	name := "web"
	container := func(n, cpu string) corev1.Container {
		return corev1.Container{Name: n, Image: framework.FakeImage, Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("64Mi")},
		}}
	}
	annotations := map[string]string{usageCPU: "100m", usageMemory: "32Mi"}
	d := framework.NewDeployment(name, 2)
	d.Spec.Template.Annotations = annotations
	d.Spec.Template.Spec.Containers = []corev1.Container{container("app", "200m"), container("sidecar", "100m")}
	if _, err := e.c.Client.AppsV1().Deployments(e.ns).Create(e.ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bare := func(podName string, pending bool, cs ...corev1.Container) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: podName, Labels: map[string]string{"app": name, "bare": podName}, Annotations: annotations},
			Spec:       corev1.PodSpec{Containers: cs},
		}
		if pending {
			pod.Spec.NodeSelector = map[string]string{"no-such-node": "true"}
		}
		if _, err := e.c.Client.CoreV1().Pods(e.ns).Create(e.ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bare("solo", false, container("app", "200m"))
	bare("pending", true, container("app", "200m"), container("sidecar", "100m"))
	deployed := podNames(e, t, "app="+name+",pod-template-hash", 2)
	framework.WaitForPodsRunning(e.ctx, t, e.ns, "bare=solo", 1)
	ready, unready := deployed[0], deployed[1]
	// kwok made every pod Ready; mark one not ready, as a failing readiness probe would.
	status := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":"False","lastTransitionTime":%q}]}}`, time.Now().UTC().Format(time.RFC3339))
	if _, err := e.c.Client.CoreV1().Pods(e.ns).Patch(e.ctx, unready, types.StrategicMergePatchType, []byte(status), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}

	r := newRecorder(t)
	metric := r.script("metric", `echo 1`)
	evaluate := r.script("evaluate", `echo '{"targetReplicas": 2}'`)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef(name), Config: jsonConfig(t, map[string]any{
		"runMode":  "per-resource",
		"metric":   shellMethod(metric, 5000),
		"evaluate": shellMethod(evaluate, 5000),
		"kubernetesMetricSpecs": []any{
			map[string]any{"type": "Resource", "resource": map[string]any{"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": 50}}},
			map[string]any{"type": "Resource", "resource": map[string]any{"name": "memory", "target": map[string]any{"type": "AverageValue"}}},
			map[string]any{"type": "ContainerResource", "containerResource": map[string]any{"name": "cpu", "container": "sidecar", "target": map[string]any{"type": "Utilization"}}},
		},
		"requireKubernetesMetrics": true,
	}), Env: map[string]string{"interval": "1000"}})

	// Wait for a cycle that saw the samples of every running pod.
	var km []any
	p.eventually(metricsWait, func() (bool, string) {
		calls := r.calls("metric")
		if len(calls) == 0 {
			return false, "no metric call yet"
		}
		km, _ = calls[len(calls)-1].JSON["kubernetesMetrics"].([]any)
		if len(km) != 3 {
			return false, fmt.Sprintf("last kubernetesMetrics has %d elements, want 3", len(km))
		}
		mem := jpath(km[1], "resource", "pod_metrics_info")
		n := 0
		if m, ok := mem.(map[string]any); ok {
			n = len(m)
		}
		return n == 3, fmt.Sprintf("memory samples of %d pods, want 3 (%s, %s, solo)", n, ready, unready)
	})

	want := func(path string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s = %s, want %s", path, g, w)
		}
	}
	set := func(names ...string) map[string]any {
		m := map[string]any{}
		for _, n := range names {
			m[n] = map[string]any{}
		}
		return m
	}
	values := func(v any) map[string]int64 {
		out := map[string]int64{}
		m, _ := v.(map[string]any)
		for pod := range m {
			out[pod] = jnum(m, pod, "Value")
		}
		return out
	}
	// CPU use is a rate metrics-server computes from kwok's cumulative counter between
	// two scrapes, so it lands near the annotation's value, not on it: round to 10m.
	rounded := func(v map[string]int64) map[string]int64 {
		out := map[string]int64{}
		for k, x := range v {
			out[k] = (x + 5) / 10 * 10
		}
		return out
	}
	cpu, mem, side := km[0], km[1], km[2]
	want("cpu current_replicas", jpath(cpu, "current_replicas"), 2)
	want("cpu spec.resource.name", jpath(cpu, "spec", "resource", "name"), "cpu")
	want("cpu samples (rounded to 10m)", rounded(values(jpath(cpu, "resource", "pod_metrics_info"))), map[string]int64{ready: 200, "solo": 100})
	want("cpu ready_pod_count", jpath(cpu, "resource", "ready_pod_count"), 2)
	want("cpu ignored_pods", jpath(cpu, "resource", "ignored_pods"), set(unready, "pending"))
	want("cpu missing_pods", jpath(cpu, "resource", "missing_pods"), set())
	want("cpu total_pods", jpath(cpu, "resource", "total_pods"), 4)
	want("cpu requests", jpath(cpu, "resource", "requests"), map[string]int64{ready: 300, unready: 300, "solo": 200, "pending": 300})
	if w := jnum(cpu, "resource", "pod_metrics_info", ready, "Window"); w < int64(time.Second) {
		t.Errorf("cpu sample window = %d ns, want metrics-server's (about 10 s)", w)
	}

	want("memory samples", values(jpath(mem, "resource", "pod_metrics_info")), map[string]int64{ready: 64 << 20 * 1000, unready: 64 << 20 * 1000, "solo": 32 << 20 * 1000})
	want("memory ready_pod_count", jpath(mem, "resource", "ready_pod_count"), 3)
	want("memory ignored_pods", jpath(mem, "resource", "ignored_pods"), set("pending"))
	want("memory requests", jpath(mem, "resource", "requests"), nil)

	want("container_resource samples (rounded to 10m)", rounded(values(jpath(side, "container_resource", "pod_metrics_info"))), map[string]int64{ready: 100})
	want("container_resource ready_pod_count", jpath(side, "container_resource", "ready_pod_count"), 1)
	want("container_resource ignored_pods", jpath(side, "container_resource", "ignored_pods"), set(unready, "pending"))
	want("container_resource missing_pods", jpath(side, "container_resource", "missing_pods"), set("solo"))
	want("container_resource requests", jpath(side, "container_resource", "requests"), map[string]int64{ready: 100, unready: 100, "pending": 100})
	if jpath(side, "resource") != nil {
		t.Errorf("the ContainerResource element has a resource key: %v", side)
	}
	// One LIST of pod metrics serves all three specs; pods come from the watch cache. (A
	// cycle also reads /scale again when the Deployment's status moved.)
	fewest := int64(-1)
	for i, l := range p.waitMsg(60*time.Second, 4, "no change") {
		if n := l.num("apiRequests"); i > 0 && (fewest < 0 || n < fewest) {
			fewest = n
		}
	}
	if fewest != 1 {
		t.Errorf("the quietest steady cycle made %d API requests, want 1 (the pod metrics list)", fewest)
	}
}

// metricsAdapter is the test custom and external metrics API server, registered as the
// cluster's custom.metrics.k8s.io and external.metrics.k8s.io APIServices.
type metricsAdapter struct {
	t      *testing.T
	values string
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
}

// apiServiceVersion is one group version of an APIService.
type apiServiceVersion struct{ group, version string }

var adapterAPIServices = []apiServiceVersion{
	{"custom.metrics.k8s.io", "v1beta2"},
	{"external.metrics.k8s.io", "v1beta1"},
}

const adapterService = "cpa-e2e-metrics-adapter"

func apiServiceGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
}

// metricsAPIs serialises the tests that register the cluster's custom and external
// metrics APIServices: there is one of each per cluster.
var metricsAPIs sync.Mutex

// lockMetricsAPIs holds the metrics APIServices for the rest of the test. Call it first,
// before the test's deadlines start: another test may hold them for minutes.
func lockMetricsAPIs(t *testing.T) {
	t.Helper()
	metricsAPIs.Lock()
	t.Cleanup(metricsAPIs.Unlock) // registered first: runs after every later cleanup
}

// startMetricsAdapter builds and starts the adapter on a free port, registers it and
// waits until both APIServices are Available. Cleanup stops it and removes them. The
// caller holds lockMetricsAPIs.
func startMetricsAdapter(t *testing.T, ctx context.Context) *metricsAdapter {
	t.Helper()
	c := framework.Ensure(t)
	pki := filepath.Join(filepath.Dir(c.Kubeconfig), "pki")
	if _, err := os.Stat(filepath.Join(pki, "aggregated-serving.crt")); err != nil {
		skipUnlessCI(t, "no aggregated-serving certificate of the local cluster (%v); custom metrics need the local cluster", err)
	}
	bin := framework.BuildBinary(t, "./test/metricsadapter")
	a := &metricsAdapter{t: t, values: filepath.Join(t.TempDir(), "values.json"), out: &syncBuffer{}, done: make(chan struct{})}
	a.set(`{}`)
	port := freePort(t)
	a.cmd = exec.Command(bin,
		"--values", a.values,
		"--bind-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(port),
		"--tls-cert-file", filepath.Join(pki, "aggregated-serving.crt"),
		"--tls-private-key-file", filepath.Join(pki, "aggregated-serving.key"),
		"--lister-kubeconfig", c.Kubeconfig,
		"--authentication-kubeconfig", c.Kubeconfig,
		"--authorization-kubeconfig", c.Kubeconfig,
	)
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			t.Logf("metrics adapter output:\n%s", a.out.String())
		}
	})
	registerMetricsAPIs(t, ctx, adapterService, port, adapterAPIServices, a.done, a.out.String)
	return a
}

// registerMetricsAPIs registers the APIServices of versions, served by the process
// listening on 127.0.0.1:port (through an ExternalName Service named service in
// kube-system, with the local cluster's CA as caBundle), and waits until they are
// Available; closing exited (the process died) fails the wait at once with its output.
// Cleanup removes them. The caller holds lockMetricsAPIs.
func registerMetricsAPIs(t *testing.T, ctx context.Context, service string, port int, versions []apiServiceVersion, exited <-chan struct{}, output func() string) {
	t.Helper()
	c := framework.Ensure(t)
	pki := filepath.Join(filepath.Dir(c.Kubeconfig), "pki")
	t.Cleanup(func() {
		for _, s := range versions {
			_ = c.Dynamic.Resource(apiServiceGVR()).Delete(context.Background(), s.version+"."+s.group, metav1.DeleteOptions{})
		}
		_ = c.Client.CoreV1().Services("kube-system").Delete(context.Background(), service, metav1.DeleteOptions{})
	})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: "kube-system"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port), Protocol: corev1.ProtocolTCP}}},
	}
	_ = c.Client.CoreV1().Services("kube-system").Delete(ctx, service, metav1.DeleteOptions{})
	if _, err := c.Client.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range versions {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
			"metadata": map[string]any{"name": s.version + "." + s.group},
			"spec": map[string]any{
				"group": s.group, "version": s.version,
				"service":              map[string]any{"name": service, "namespace": "kube-system", "port": int64(port)},
				"caBundle":             ca,
				"groupPriorityMinimum": int64(100), "versionPriority": int64(100),
			},
		}}
		raw, err := json.Marshal(obj.Object)
		if err != nil {
			t.Fatal(err)
		}
		force := true
		if _, err := c.Dynamic.Resource(apiServiceGVR()).Patch(ctx, obj.GetName(), types.ApplyPatchType, raw, metav1.PatchOptions{FieldManager: "cpa-e2e", Force: &force}); err != nil {
			t.Fatal(err)
		}
	}
	framework.Eventually(t, 60*time.Second, 250*time.Millisecond, func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("the metrics API server exited:\n%s", output())
		default:
		}
		for _, s := range versions {
			u, err := c.Dynamic.Resource(apiServiceGVR()).Get(ctx, s.version+"."+s.group, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			available := false
			for _, cond := range conds {
				m, _ := cond.(map[string]any)
				if m["type"] == "Available" && m["status"] == "True" {
					available = true
				}
			}
			if !available {
				return false, fmt.Sprintf("APIService %s.%s not Available: %v", s.version, s.group, conds)
			}
		}
		return true, ""
	})
}

// set replaces the values the adapter serves.
func (a *metricsAdapter) set(values string) {
	a.t.Helper()
	tmp := a.values + ".tmp"
	if err := os.WriteFile(tmp, []byte(values), 0o644); err != nil {
		a.t.Fatal(err)
	}
	if err := os.Rename(tmp, a.values); err != nil {
		a.t.Fatal(err)
	}
}

// stop kills the adapter; its APIServices stay registered, now unavailable.
func (a *metricsAdapter) stop() {
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Kill()
	<-a.done
}

// Pods, Object and External metrics from a real aggregated API server, in per-pod mode;
// then the adapter goes down: with requireKubernetesMetrics false the autoscaler logs the
// failed specs and goes on (and still scales); with true every cycle fails, naming them,
// and nothing is scaled.
func TestKubeMetricsCustomAndExternal(t *testing.T) {
	t.Parallel()
	lockMetricsAPIs(t)
	e := newTestEnv(t, 4*time.Minute)
	adapter := startMetricsAdapter(t, e.ctx)
	get := e.deployment(t, "api", 2)
	pods := podNames(e, t, "app=api", 2)

	values := map[string]any{
		"custom": []any{
			map[string]any{"resource": "pods", "namespace": e.ns, "name": pods[0], "metric": "requests_per_second", "value": "10"},
			map[string]any{"resource": "pods", "namespace": e.ns, "name": pods[1], "metric": "requests_per_second", "value": "500m", "windowSeconds": 30},
			map[string]any{"resource": "services", "namespace": e.ns, "name": "frontend", "metric": "hits", "value": "2500m"},
		},
		"external": []any{
			map[string]any{"namespace": e.ns, "metric": "queue_messages", "labels": map[string]string{"queue": "jobs"}, "value": "30"},
			map[string]any{"namespace": e.ns, "metric": "queue_messages", "labels": map[string]string{"queue": "jobs", "shard": "2"}, "value": "12"},
			map[string]any{"namespace": e.ns, "metric": "queue_messages", "labels": map[string]string{"queue": "other"}, "value": "1000"},
		},
	}
	raw, _ := json.Marshal(values)
	adapter.set(string(raw))

	specs := []any{
		map[string]any{"type": "Pods", "pods": map[string]any{"metric": map[string]any{"name": "requests_per_second"}, "target": map[string]any{"type": "AverageValue", "averageValue": "5"}}},
		map[string]any{"type": "Object", "object": map[string]any{
			"describedObject": map[string]any{"apiVersion": "v1", "kind": "Service", "name": "frontend"},
			"metric":          map[string]any{"name": "hits"}, "target": map[string]any{"type": "Value", "value": "2"}}},
		map[string]any{"type": "External", "external": map[string]any{
			"metric": map[string]any{"name": "queue_messages", "selector": map[string]any{"matchLabels": map[string]string{"queue": "jobs"}}},
			"target": map[string]any{"type": "AverageValue", "averageValue": "10"}}},
	}
	r := newRecorder(t)
	metric := r.script("metric", `echo 1`)
	config := func(require bool, target int) string {
		return jsonConfig(t, map[string]any{
			"runMode":                  "per-pod",
			"metric":                   shellMethod(metric, 5000),
			"evaluate":                 shellMethod(r.script(fmt.Sprintf("evaluate-%d", target), fmt.Sprintf(`echo '{"targetReplicas": %d}'`, target)), 5000),
			"kubernetesMetricSpecs":    specs,
			"requireKubernetesMetrics": require,
		})
	}

	t.Run("gathered", func(t *testing.T) {
		p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("api"), Config: config(true, 2), Env: map[string]string{"interval": "1000"}})
		p.waitMsg(30*time.Second, 1, "no change")
		p.stop()
		calls := r.calls("metric")
		if len(calls) < 2 {
			t.Fatalf("%d metric calls, want one per pod", len(calls))
		}
		for _, c := range calls[:2] {
			km, _ := c.JSON["kubernetesMetrics"].([]any)
			if len(km) != 3 {
				t.Fatalf("pod %s: kubernetesMetrics = %s", jstr(c.JSON, "resource", "metadata", "name"), c.Raw)
			}
			podsM, obj, ext := km[0], km[1], km[2]
			check := func(what string, got, want any) {
				t.Helper()
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				if string(g) != string(w) {
					t.Errorf("%s = %s, want %s", what, g, w)
				}
			}
			check("pods values", map[string]any{
				pods[0]: []any{jpath(podsM, "pods", "pod_metrics_info", pods[0], "Value"), jpath(podsM, "pods", "pod_metrics_info", pods[0], "Window")},
				pods[1]: []any{jpath(podsM, "pods", "pod_metrics_info", pods[1], "Value"), jpath(podsM, "pods", "pod_metrics_info", pods[1], "Window")},
			}, map[string]any{pods[0]: []any{10000, int64(time.Minute)}, pods[1]: []any{500, int64(30 * time.Second)}})
			check("pods ready_pod_count", jpath(podsM, "pods", "ready_pod_count"), 2)
			check("pods total_pods", jpath(podsM, "pods", "total_pods"), 2)
			check("object current", jpath(obj, "object", "current"), map[string]any{"value": 2500})
			check("object ready_pod_count", jpath(obj, "object", "ready_pod_count"), 2)
			check("external current", jpath(ext, "external", "current"), map[string]any{"average_value": 42000})
			check("external ready_pod_count", jpath(ext, "external", "ready_pod_count"), nil)
			check("current_replicas", jpath(ext, "current_replicas"), 2)
			check("spec", jpath(ext, "spec", "external", "metric", "selector"), map[string]any{"matchLabels": map[string]any{"queue": "jobs"}})
		}
	})

	adapter.stop()

	t.Run("api down, not required", func(t *testing.T) {
		p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("api"), Config: config(false, 3), Env: map[string]string{"interval": "1000"}})
		p.waitReplicas(e.ctx, 30*time.Second, get, 3)
		warned := p.waitMsg(20*time.Second, 3, "Kubernetes metric not gathered; going on without it (requireKubernetesMetrics is false)")
		specsNamed := map[string]bool{}
		for _, l := range warned {
			specsNamed[l.str("spec")] = true
			if !strings.Contains(l.str("error"), "metrics.k8s.io") {
				t.Errorf("warning without the API named: %v", l)
			}
		}
		for i := range specs {
			if !specsNamed[fmt.Sprintf("kubernetesMetricSpecs[%d]", i)] {
				t.Errorf("no warning names kubernetesMetricSpecs[%d]; warnings: %v", i, warned)
			}
		}
		p.stop()
	})

	t.Run("api down, required", func(t *testing.T) {
		p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("api"), Config: config(true, 5), Env: map[string]string{"interval": "1000"}})
		failed := p.waitMsg(30*time.Second, 2, "cycle failed; target not scaled")
		for _, l := range failed {
			msg := l.str("error")
			if !strings.Contains(msg, "requireKubernetesMetrics is true") || !strings.Contains(msg, "failed to gather all Kubernetes metrics (3 of 3)") ||
				!strings.Contains(msg, "kubernetesMetricSpecs[2] (External queue_messages)") {
				t.Errorf("failed cycle's error = %q, want each failed spec named", msg)
			}
		}
		p.keepReplicas(e.ctx, 3*time.Second, get, 3)
	})
}
