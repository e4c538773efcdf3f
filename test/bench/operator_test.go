//go:build e2e

package bench

// TestOperatorScenario measures the operator: N CustomPodAutoscalers (default 500) created
// at once in one namespace, beside U unrelated Deployments (default 0) made before the
// operator starts, and reports
//
//   - provisioned: the time until every resource has its ServiceAccount, Role,
//     RoleBinding and Deployment and status.observedGeneration equal to its generation;
//   - Ready: the time until every resource's Ready condition is True; and available,
//     until every autoscaler Deployment has an available replica (kwok's pods);
//   - the operator's memory (RSS when started, at each of those moments, 10 s later, and
//     its peak; the Go heap left after collections, from GODEBUG=gctrace=1), its CPU,
//     and its requests to the API server by method (scraped from its metrics endpoint
//     with a ServiceAccount token allowed to get /metrics).
//
// Times are measured from the first create and after the last one; the bench follows
// the objects through watches.
//
//	go test -tags e2e -count=1 -run TestOperatorScenario -v -timeout 30m ./test/bench/
//
// Environment:
//
//	CPA_BENCH_CPAS            N (default 500)
//	CPA_BENCH_UNRELATED       U (default 0): Deployments of 0 replicas with other labels in
//	                          the same namespace (the operator watches only it), which the
//	                          operator must not keep in memory
//	CPA_BENCH_OPERATOR        an operator binary to measure instead of this tree's (e.g. one
//	                          built from an earlier commit)
//	CPA_BENCH_OPERATOR_ARGS   extra flags for it, space-separated
//
// GOGC, GOMEMLIMIT and the like are passed on to the operator.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

var cpaGVR = schema.GroupVersionResource{Group: "custompodautoscaler.com", Version: "v1", Resource: "custompodautoscalers"}

func TestOperatorScenario(t *testing.T) {
	n := envCounts(t, "CPA_BENCH_CPAS", []int{500}, 1)[0]
	unrelated := envCounts(t, "CPA_BENCH_UNRELATED", []int{0}, 0)[0]
	c := framework.Ensure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the namespace, so it runs after the framework deletes it: the
	// next run must not share the machine with this one's garbage collection.
	var ns string
	t.Cleanup(func() { waitNamespaceGone(t, cs, ns) })
	ns = framework.NewNamespace(t)

	kubectl := filepath.Join(filepath.Dir(c.Kubeconfig), "bin", "kubectl")
	if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "apply", "-f", filepath.Join(c.RepoRoot, "deploy", "crd")).CombinedOutput(); err != nil {
		t.Fatalf("installing the CRD: %v\n%s", err, out)
	}
	if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "wait", "--for", "condition=Established", "--timeout", "30s", "crd/custompodautoscalers.custompodautoscaler.com").CombinedOutput(); err != nil {
		t.Fatalf("waiting for the CRD: %v\n%s", err, out)
	}
	if unrelated > 0 {
		createUnrelated(ctx, t, cs, ns, unrelated)
	}

	p := startOperatorProcess(ctx, t, c.Kubeconfig, ns)
	pid := p.cmd.Process.Pid
	startRSS, _ := procStatus(pid, "VmRSS")
	token := ""
	if p.scheme == "https" {
		token = metricsScraper(ctx, t, cs, ns)
	}

	tr := newTracker(n, pid)
	tr.start(ctx, t, cs, dc, ns)
	runDir := filepath.Join(filepath.Dir(c.Kubeconfig), "run")
	cpu0, _ := readCPUTimes(pid)
	cluster0 := clusterCPU(runDir)
	start := time.Now()
	createAll(t, n, "CustomPodAutoscalers", func(i int) error {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "custompodautoscaler.com/v1", "kind": "CustomPodAutoscaler",
			"metadata": map[string]any{"name": fmt.Sprintf("cpa-%04d", i)},
			"spec": map[string]any{
				"template":       map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "cpa", "image": "custompodautoscaler/python:latest"}}}},
				"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": fmt.Sprintf("app-%04d", i)},
				"config":         []any{map[string]any{"name": "interval", "value": "15000"}},
			},
		}}
		_, err := dc.Resource(cpaGVR).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
		return err
	})
	lastCreate := time.Now()
	t.Logf("%d CustomPodAutoscalers created in %s", n, lastCreate.Sub(start).Round(time.Millisecond))

	waitCtx, waitCancel := context.WithTimeout(ctx, 10*time.Minute)
	defer waitCancel()
	tr.wait(waitCtx, t, "all provisioned", &tr.provisioned)
	tr.wait(waitCtx, t, "all Ready", &tr.ready)
	tr.wait(waitCtx, t, "all Deployments available", &tr.available)
	cpu1, _ := readCPUTimes(pid)
	cluster1 := clusterCPU(runDir)
	end := time.Now()
	time.Sleep(10 * time.Second)
	settledRSS, _ := procStatus(pid, "VmRSS")
	peakRSS, _ := procStatus(pid, "VmHWM")
	gcs, liveMax, liveLast := p.heap()

	requests, rerr := p.requestCounts(ctx, token)
	if rerr != nil {
		t.Errorf("scraping the operator's metrics: %v", rerr)
	}
	events := operatorEvents(ctx, t, dc, ns)

	since := func(m *milestone) string {
		if m.at.IsZero() {
			return "not reached"
		}
		return fmt.Sprintf("%s (%s after the last create), RSS then %s", m.at.Sub(start).Round(100*time.Millisecond), m.at.Sub(lastCreate).Round(100*time.Millisecond), mib(m.rss))
	}
	wall := end.Sub(start)
	opCPU := cpu1.self - cpu0.self
	clusterUsed := cluster1 - cluster0
	share := func(d time.Duration) float64 { return 100 * float64(d) / float64(wall) / float64(runtime.NumCPU()) }
	writes := requests["POST"] + requests["PUT"] + requests["PATCH"] + requests["DELETE"]
	fmt.Printf("\noperator scenario: %d CustomPodAutoscalers created at once in %s beside %d unrelated Deployments\n", n, lastCreate.Sub(start).Round(time.Millisecond), unrelated)
	fmt.Printf("  operator:        %s %s\n", filepath.Base(p.cmd.Path), strings.Join(p.cmd.Args[1:], " "))
	fmt.Printf("  all provisioned: %s\n", since(&tr.provisioned))
	fmt.Printf("  all Ready:       %s\n", since(&tr.ready))
	fmt.Printf("  all available:   %s\n", since(&tr.available))
	fmt.Printf("  RSS:             %s when started (caches synced), %s 10 s after, peak %s\n", mib(startRSS), mib(settledRSS), mib(peakRSS))
	fmt.Printf("  Go heap:         %d collections; live after a collection: max %s, last %s\n", gcs, mib(liveMax), mib(liveLast))
	fmt.Printf("  CPU:             over %s, of the %d CPUs: operator %.0f %% (%s), the cluster's processes %.0f %%, everything else %.0f %%\n",
		wall.Round(100*time.Millisecond), runtime.NumCPU(), share(opCPU), opCPU, share(clusterUsed), share(cpu1.machine-cpu0.machine-opCPU-clusterUsed))
	fmt.Printf("  requests:        %v; writes %d (%.1f per resource), of which %d events recorded on the resources\n", requests, writes, float64(writes)/float64(n), events)
	if t.Failed() {
		t.Logf("operator output:\n%s", p.output())
	}
}

// startOperatorProcess runs the operator for namespace ns and waits until it is ready
// (caches synced); it is stopped with SIGINT when the test ends.
func startOperatorProcess(ctx context.Context, t *testing.T, kubeconfig, ns string) *operatorProcess {
	t.Helper()
	bin := os.Getenv("CPA_BENCH_OPERATOR")
	if bin == "" {
		bin = framework.BuildBinary(t, "./cmd/custom-pod-autoscaler-operator")
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	probeAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := []string{"--kubeconfig", kubeconfig, "--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probeAddr, "--zap-log-level", "error"}
	p := &operatorProcess{done: make(chan struct{}), scheme: "http", httpClient: &http.Client{Timeout: 10 * time.Second}}
	// An operator from before the metrics endpoint was secured serves plain HTTP.
	if supportsFlag(bin, "metrics-cert-dir") {
		dir := t.TempDir()
		p.scheme, p.httpClient = "https", tlsClient(framework.WriteServingCert(t, dir))
		args = append(args, "--metrics-cert-dir", dir)
	}
	p.metricsURL = p.scheme + "://" + metricsAddr + "/metrics"
	args = append(args, strings.Fields(os.Getenv("CPA_BENCH_OPERATOR_ARGS"))...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "WATCH_NAMESPACE="+ns, "GODEBUG=gctrace=1")
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.read(stdout); _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			t.Errorf("the operator did not stop within 15 s of SIGINT")
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})

	started := time.Now()
	framework.EventuallyCtx(ctx, t, 3*time.Minute, 100*time.Millisecond, func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("the operator exited:\n%s", p.output())
		default:
		}
		resp, err := http.Get("http://" + probeAddr + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, "readyz: " + resp.Status
	})
	t.Logf("operator ready (caches synced) after %s", time.Since(started).Round(time.Millisecond))
	return p
}

// createUnrelated creates n Deployments of 0 replicas (no pods) with labels of their own
// in ns, and waits until the controller manager has seen them all, so that its work does
// not overlap the measurement.
func createUnrelated(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, n int) {
	t.Helper()
	start := time.Now()
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		all  = make(chan struct{})
	)
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "bench=unrelated" }))
	note := func(obj any) {
		d, ok := obj.(*appsv1.Deployment)
		if !ok || d.Status.ObservedGeneration < d.Generation {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !seen[d.Name] {
			seen[d.Name] = true
			if len(seen) == n {
				close(all)
			}
		}
	}
	if _, err := f.Apps().V1().Deployments().Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: note, UpdateFunc: func(_, obj any) { note(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	f.Start(stop)

	createAll(t, n, "unrelated Deployments", func(i int) error {
		d := framework.NewDeployment(fmt.Sprintf("unrelated-%05d", i), 0)
		d.Labels["bench"] = "unrelated"
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	created := time.Since(start)
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		t.Fatalf("the controller manager did not observe the %d unrelated Deployments within 10 minutes", n)
	}
	t.Logf("%d unrelated Deployments created in %s, observed by the controller manager after %s", n, created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// operatorEvents counts the events recorded on CustomPodAutoscalers in ns.
func operatorEvents(ctx context.Context, t *testing.T, dc dynamic.Interface, ns string) int {
	t.Helper()
	list, err := dc.Resource(schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"}).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("listing events: %v", err)
		return 0
	}
	count := 0
	for _, e := range list.Items {
		if kind, _, _ := unstructured.NestedString(e.Object, "regarding", "kind"); kind == "CustomPodAutoscaler" {
			count++
		}
	}
	return count
}

// clusterCPU sums the CPU time of the local cluster's processes (their pid files in dir).
func clusterCPU(dir string) time.Duration {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	var sum time.Duration
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		if ct, err := readCPUTimes(pid); err == nil {
			sum += ct.self
		}
	}
	return sum
}

// waitNamespaceGone waits (up to 5 minutes) until a deleted namespace is gone.
func waitNamespaceGone(t *testing.T, cs kubernetes.Interface, ns string) {
	if ns == "" || (t.Failed() && os.Getenv(framework.KeepNamespacesEnv) != "") {
		return
	}
	start := time.Now()
	for time.Since(start) < 5*time.Minute {
		_, err := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			t.Logf("namespace %s gone after %s", ns, time.Since(start).Round(time.Second))
			return
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("namespace %s still there after 5 minutes", ns)
}

// createAll runs create(0..n-1), 32 at a time, and fails the test on the first error.
func createAll(t *testing.T, n int, what string, create func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := create(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("creating %s: %v", what, err)
	}
}
