//go:build e2e

package bench

// TestAdapterScenario measures kube-metrics-adapter (./cmd/kube-metrics-adapter) on the
// local cluster, run as a ServiceAccount with the Helm chart's RBAC and queried directly
// on its secure port (never through the aggregator: the e2e tests own the metrics
// APIServices, and this benchmark neither creates nor changes APIService objects).
//
//   - external: N HPAs (default 1000), one External json-path metric each, all pointing
//     at one local HTTP server answering {"v": 7}. The adapter starts after the HPAs exist
//     (--default-collection-interval 30s); the bench measures the time until its
//     external metrics API lists all N metrics, then queries it for a while with 4
//     concurrent clients (keep-alive connections, a ServiceAccount token the cluster
//     authorizes, requests spread over the N metrics) and reports the latency
//     percentiles, the throughput, and the adapter's RSS (VmRSS and VmHWM) after it.
//   - pods: H HPAs (default 100) of one json-path Pods metric each, on H Deployments of P
//     kwok pods (default 50): every pod's endpoint is served here on the pod's own
//     loopback IP, one HTTP server per IP, recording when each pod was asked. With
//     --default-collection-interval 10s the bench reports, over several intervals, the
//     requests each pod got per interval, the spacing between consecutive requests to
//     one pod beside the interval, the collection durations the adapter's
//     kube_metrics_adapter_collection_duration_seconds reports, and the adapter's RSS.
//
//	go test -tags e2e -count=1 -timeout 40m -run TestAdapterScenario -v ./test/bench/
//
// Environment:
//
//	CPA_BENCH_KMA_HPAS          N, the external scenario's HPAs (default 1000)
//	CPA_BENCH_KMA_SECONDS       how long the clients query (default 20)
//	CPA_BENCH_KMA_CLIENTS       concurrent clients (default 4)
//	CPA_BENCH_KMA_POD_HPAS      H, the pods scenario's HPAs and Deployments (default 100)
//	CPA_BENCH_KMA_PODS          P, pods per Deployment (default 50)
//	CPA_BENCH_KMA_INTERVALS     collection intervals measured in the pods scenario (default 6)
//	CPA_BENCH_KMA_ONLY          "external" or "pods": run one scenario only
//	CPA_BENCH_KMA_BIN           an adapter binary to measure instead of this tree's (e.g. one
//	                            built from an experimental change)
//	CPA_BENCH_KMA_ARGS          extra adapter flags, space-separated (e.g. --kube-client-qps 50)
//	CPA_BENCH_KMA_PPROF         a directory: the adapter serves pprof on a unix socket
//	                            (--debug-socket-path), and the bench saves its CPU profile
//	                            over the measured load and its heap profiles there
//	CPA_HELM                    the helm binary rendering the chart's RBAC (default: helm on
//	                            PATH, then the Makefile's pinned one in the tools cache)
//
// GOGC, GOMEMLIMIT and the like are passed on to the adapter.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

const (
	kmaPackage = "./cmd/kube-metrics-adapter"
	// kmaExternalInterval and kmaPodsInterval are the scenarios' --default-collection-interval.
	kmaExternalInterval = 30 * time.Second
	kmaPodsInterval     = 10 * time.Second
	// kmaValue is what every endpoint answers.
	kmaValue = 7
	// Targets.
	kmaTargetP99     = 2500 * time.Microsecond
	kmaTargetRPS     = 4500
	kmaTargetPeakRSS = 100 << 20
)

func TestAdapterScenario(t *testing.T) {
	only := os.Getenv("CPA_BENCH_KMA_ONLY")
	if only != "" && only != "external" && only != "pods" {
		t.Fatalf("CPA_BENCH_KMA_ONLY=%q: want external or pods", only)
	}
	framework.Ensure(t)
	bin := os.Getenv("CPA_BENCH_KMA_BIN")
	if bin == "" {
		bin = framework.BuildBinary(t, kmaPackage)
	}
	helm := helmBinary(t)
	var ext *kmaExternalResult
	var pods *kmaPodsResult
	if only != "pods" {
		t.Run("external", func(t *testing.T) { ext = kmaExternalScenario(t, bin, helm) })
	}
	if only != "external" {
		t.Run("pods", func(t *testing.T) { pods = kmaPodsScenario(t, bin, helm) })
	}
	fmt.Print(kmaTables(ext, pods))
}

// helmBinary finds helm: CPA_HELM, then PATH, then the Makefile's pinned one.
func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("CPA_HELM"); h != "" {
		return h
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h
	}
	cache := os.Getenv("CPA_CACHE_DIR")
	if cache == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(d, "custom-pod-autoscaler")
		}
	}
	if found, _ := filepath.Glob(filepath.Join(cache, "tools", "helm-*")); len(found) > 0 {
		return found[len(found)-1]
	}
	t.Fatal("no helm: set CPA_HELM to a helm binary (make e2e installs the pinned one)")
	return ""
}

// kmaEnv is one scenario's namespace, clients and credentials.
type kmaEnv struct {
	c      *framework.Cluster
	cs     kubernetes.Interface // admin, no client-side rate limit to speak of
	ctx    context.Context
	ns     string
	pki    string
	pool   *x509.CertPool // the cluster CA, which signed the adapter's serving certificate
	runDir string
	// kubeconfig authenticates as the adapter's ServiceAccount (the chart's RBAC).
	kubeconfig string
	// token is a client's allowed to read both metrics APIs in ns.
	token string
}

func newKMAEnv(t *testing.T, helm string, timeout time.Duration) *kmaEnv {
	t.Helper()
	c := framework.Ensure(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the namespace, so it runs after the framework deletes it: the
	// next scenario must not share the machine with this one's garbage collection.
	var ns string
	t.Cleanup(func() { waitNamespaceGone(t, cs, ns) })
	ns = framework.NewNamespace(t)
	e := &kmaEnv{c: c, cs: cs, ctx: ctx, ns: ns, pki: filepath.Join(filepath.Dir(c.Kubeconfig), "pki"),
		runDir: filepath.Join(filepath.Dir(c.Kubeconfig), "run")}
	caPEM, err := os.ReadFile(filepath.Join(e.pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	e.pool = x509.NewCertPool()
	if !e.pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no certificate in the cluster's ca.crt")
	}
	e.kubeconfig = e.adapterRBAC(t, helm)
	e.token = e.metricsReader(t)
	return e
}

// adapterRBAC applies the Helm chart's RBAC for a ServiceAccount of the namespace (under
// a name of its own, removed at cleanup) and returns a kubeconfig of that ServiceAccount.
func (e *kmaEnv) adapterRBAC(t *testing.T, helm string) string {
	t.Helper()
	name := "kma-bench-" + e.ns[len(e.ns)-6:]
	chart := filepath.Join(e.c.RepoRoot, "deploy", "helm", "kube-metrics-adapter")
	rendered, err := exec.Command(helm, "template", "kma", chart, "--namespace", e.ns,
		"--set", "nameOverride="+name, "--set", "hpaController.bindMetricsReaders=false",
		"--show-only", "templates/rbac.yaml").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("helm template: %v\n%s", err, stderr)
	}
	kubectl := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(filepath.Dir(e.c.Kubeconfig), "bin", "kubectl"), append([]string{"--kubeconfig", e.c.Kubeconfig}, args...)...)
		cmd.Stdin = bytes.NewReader(rendered)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = kubectl("delete", "--ignore-not-found", "-f", "-") })
	framework.Eventually(t, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
		out, err := kubectl("apply", "-f", "-")
		return err == nil, fmt.Sprintf("kubectl apply of the chart's RBAC: %v\n%s", err, out)
	})
	if _, err := e.cs.CoreV1().ServiceAccounts(e.ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := e.saToken(t, name)
	admin, err := clientcmd.LoadFromFile(e.c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: name, Namespace: e.ns}
	cfg.CurrentContext = "sa"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func (e *kmaEnv) saToken(t *testing.T, sa string) string {
	t.Helper()
	tr, err := e.cs.CoreV1().ServiceAccounts(e.ns).CreateToken(e.ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for ServiceAccount %s: %v", sa, err)
	}
	return tr.Status.Token
}

// metricsReader makes a ServiceAccount allowed to get and list both metrics APIs in the
// namespace (a Role and RoleBinding, gone with the namespace) and returns its token.
func (e *kmaEnv) metricsReader(t *testing.T) string {
	t.Helper()
	const name = "bench-metrics-reader"
	if _, err := e.cs.CoreV1().ServiceAccounts(e.ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.RbacV1().Roles(e.ns).Create(e.ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"custom.metrics.k8s.io", "external.metrics.k8s.io"},
			Resources: []string{"*"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.RbacV1().RoleBindings(e.ns).Create(e.ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: e.ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return e.saToken(t, name)
}

// kmaProcess is a running adapter; its output is read as the operator's is (the Go heap
// from GODEBUG=gctrace=1, the rest kept for failures).
type kmaProcess struct {
	*operatorProcess
	base        string // https://127.0.0.1:PORT
	metricsAddr string
	client      *http.Client
	pool        *x509.CertPool
	token       string
	started     time.Time
	ready       time.Duration // from start to /readyz answering 200
	// pprofDir and debug (a client of --debug-socket-path) are set with CPA_BENCH_KMA_PPROF.
	pprofDir string
	debug    *http.Client
}

// startKMA starts the adapter with the given collection interval and waits until its
// API server is ready; it is stopped (SIGTERM, then SIGKILL after 15 s) at cleanup.
func startKMA(t *testing.T, e *kmaEnv, bin string, interval time.Duration) *kmaProcess {
	t.Helper()
	port := freePort(t)
	k := &kmaProcess{
		operatorProcess: &operatorProcess{done: make(chan struct{})},
		base:            fmt.Sprintf("https://127.0.0.1:%d", port),
		metricsAddr:     fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		client:          tlsClient(e.pool),
		pool:            e.pool,
		token:           e.token,
	}
	args := []string{
		"--kubeconfig", e.kubeconfig,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port),
		"--tls-cert-file", filepath.Join(e.pki, "aggregated-serving.crt"),
		"--tls-private-key-file", filepath.Join(e.pki, "aggregated-serving.key"),
		"--authentication-kubeconfig", e.kubeconfig,
		"--authorization-kubeconfig", e.kubeconfig,
		"--metrics-address", k.metricsAddr,
		"--default-collection-interval", interval.String(),
	}
	if dir := os.Getenv("CPA_BENCH_KMA_PPROF"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// A unix socket's path is short: the socket goes in a temporary directory.
		sock := filepath.Join(t.TempDir(), "debug.sock")
		if len(sock) > 100 {
			sock = filepath.Join(os.TempDir(), fmt.Sprintf("kma-bench-%d.sock", port))
			t.Cleanup(func() { _ = os.Remove(sock) })
		}
		args = append(args, "--debug-socket-path", sock)
		k.pprofDir = dir
		k.debug = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	}
	args = append(args, strings.Fields(os.Getenv("CPA_BENCH_KMA_ARGS"))...)
	k.cmd = exec.Command(bin, args...)
	k.cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	stdout, err := k.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	k.cmd.Stderr = k.cmd.Stdout
	k.started = time.Now()
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { k.read(stdout); _ = k.cmd.Wait(); close(k.done) }()
	t.Cleanup(func() {
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.done:
		case <-time.After(15 * time.Second):
			t.Errorf("the adapter did not stop within 15 s of SIGTERM")
			_ = k.cmd.Process.Kill()
			<-k.done
		}
		if t.Failed() {
			out := k.output()
			if len(out) > 20000 {
				out = out[len(out)-20000:]
			}
			t.Logf("adapter output (end):\n%s", out)
		}
	})
	framework.EventuallyCtx(e.ctx, t, 2*time.Minute, 50*time.Millisecond, func() (bool, string) {
		k.checkRunning(t)
		_, status, err := k.get(e.ctx, "/readyz")
		if err != nil {
			return false, err.Error()
		}
		return status == http.StatusOK, fmt.Sprintf("/readyz: %d", status)
	})
	k.ready = time.Since(k.started)
	t.Logf("adapter (pid %d) ready after %s: %s", k.cmd.Process.Pid, k.ready.Round(time.Millisecond), strings.Join(args, " "))
	return k
}

func (k *kmaProcess) pid() int { return k.cmd.Process.Pid }

// profile saves the adapter's /debug/pprof/<what> as file in the pprof directory, if
// profiling was asked for.
func (k *kmaProcess) profile(t *testing.T, what, file string) {
	t.Helper()
	if k.debug == nil {
		return
	}
	resp, err := k.debug.Get("http://adapter/debug/pprof/" + what)
	if err != nil {
		t.Errorf("pprof %s: %v", what, err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("pprof %s: %d %v %.300s", what, resp.StatusCode, err, b)
		return
	}
	path := filepath.Join(k.pprofDir, file)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("saved %s", path)
}

// profileDuring runs the adapter's CPU profile for d in the background; wait for it.
func (k *kmaProcess) profileDuring(t *testing.T, d time.Duration, file string) (wait func()) {
	if k.debug == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.profile(t, fmt.Sprintf("profile?seconds=%d", max(1, int(d.Seconds()))), file)
	}()
	return func() { <-done }
}

func (k *kmaProcess) checkRunning(t *testing.T) {
	t.Helper()
	select {
	case <-k.done:
		t.Fatalf("the adapter exited:\n%s", k.output())
	default:
	}
}

// get GETs path from the adapter's secure port with the reader's token.
func (k *kmaProcess) get(ctx context.Context, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+k.token)
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return b, resp.StatusCode, err
}

// selfMetrics scrapes the adapter's metrics endpoint and sums each family's samples
// whose line starts with one of names (a name followed by "{" or " ").
func (k *kmaProcess) selfMetrics(ctx context.Context, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+k.metricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			rest, ok := strings.CutPrefix(line, n)
			if !ok || (rest == "" || (rest[0] != '{' && rest[0] != ' ')) {
				continue
			}
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return nil, fmt.Errorf("metric line %q: %w", line, err)
			}
			out[n] += v
		}
	}
	return out, sc.Err()
}

// cpuSnap is the CPU time used so far by the adapter, this test process (the clients and
// the endpoints), the local cluster's processes and the whole machine.
type cpuSnap struct {
	at                               time.Time
	adapter, bench, cluster, machine time.Duration
}

func snapCPU(pid int, runDir string) cpuSnap {
	a, _ := readCPUTimes(pid)
	b, _ := readCPUTimes(os.Getpid())
	return cpuSnap{at: time.Now(), adapter: a.self, bench: b.self, cluster: clusterCPU(runDir), machine: a.machine}
}

// cpuShares are the shares of all the CPUs each used between two snaps, %; others is
// everything but the adapter, this process and the cluster (other engineers' builds and
// tests, whose cluster requests show in cluster instead).
type cpuShares struct{ adapter, bench, cluster, others float64 }

func sharesBetween(a, b cpuSnap) cpuShares {
	wall := b.at.Sub(a.at)
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(wall) / float64(runtime.NumCPU()) }
	s := cpuShares{adapter: pct(b.adapter - a.adapter), bench: pct(b.bench - a.bench), cluster: pct(b.cluster - a.cluster)}
	s.others = max(0, pct(b.machine-a.machine)-s.adapter-s.bench-s.cluster)
	return s
}

// memory is the adapter's memory at one moment: resident (all, anonymous, file-backed:
// the binary's pages), peak, the largest heap left live after a collection so far, and
// from its Go metrics the goroutines, their stacks and the heap in use.
type memory struct {
	rss, anon, file, hwm, liveMax int64
	goroutines, stacks, heapInuse int64
}

func (k *kmaProcess) memory() memory {
	var m memory
	m.rss, _ = procStatus(k.pid(), "VmRSS")
	m.anon, _ = procStatus(k.pid(), "RssAnon")
	m.file, _ = procStatus(k.pid(), "RssFile")
	m.hwm, _ = procStatus(k.pid(), "VmHWM")
	_, m.liveMax, _ = k.heap()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if g, err := k.selfMetrics(ctx, "go_goroutines", "go_memstats_stack_inuse_bytes", "go_memstats_heap_inuse_bytes"); err == nil {
		m.goroutines, m.stacks, m.heapInuse = int64(g["go_goroutines"]), int64(g["go_memstats_stack_inuse_bytes"]), int64(g["go_memstats_heap_inuse_bytes"])
	}
	return m
}

func (m memory) String() string {
	return fmt.Sprintf("VmRSS %s (anon %s, file %s), VmHWM %s; %d goroutines, stacks %s, heap in use %s, live heap max %s",
		mib(m.rss), mib(m.anon), mib(m.file), mib(m.hwm), m.goroutines, mib(m.stacks), mib(m.heapInuse), mib(m.liveMax))
}

// countingServer answers {"v": kmaValue} and counts requests.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"v": %d}`, kmaValue)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func kmaHPA(name string, target autoscalingv2.CrossVersionObjectReference, min, max int32, annotations map[string]string, metric autoscalingv2.MetricSpec) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: target, MinReplicas: &min, MaxReplicas: max,
			Metrics: []autoscalingv2.MetricSpec{metric},
		},
	}
}

func kmaAverage(v string) autoscalingv2.MetricTarget {
	q := resource.MustParse(v)
	return autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q}
}

// ---------------------------------------------------------------------------------------
// External: N HPAs, one External metric each.

type kmaExternalResult struct {
	hpas       int
	created    time.Duration // creating the N HPAs
	ready      time.Duration // adapter start to /readyz
	served     time.Duration // adapter start to all N metrics listed
	endpointRq int64         // requests the endpoint had got then
	servedMem  memory
	load       loadResult
	cpu        cpuShares
	after      memory
}

func kmaExternalScenario(t *testing.T, bin, helm string) *kmaExternalResult {
	n := envCounts(t, "CPA_BENCH_KMA_HPAS", []int{1000}, 1)[0]
	seconds := envCounts(t, "CPA_BENCH_KMA_SECONDS", []int{20}, 1)[0]
	clients := envCounts(t, "CPA_BENCH_KMA_CLIENTS", []int{4}, 1)[0]
	e := newKMAEnv(t, helm, 15*time.Minute)
	res := &kmaExternalResult{hpas: n}
	srv, endpointRequests := countingServer(t)

	// The HPAs' target: a Deployment of 0 replicas, so the cluster's HPA controller
	// reads its /scale, finds scaling disabled and asks no metrics API (it would ask the
	// APIService the e2e tests registered, not this adapter).
	if _, err := e.cs.AppsV1().Deployments(e.ns).Create(e.ctx, framework.NewDeployment("idle", 0), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	target := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "idle"}
	metric := func(i int) string { return fmt.Sprintf("m-%04d", i) }
	start := time.Now()
	createAll(t, n, "HPAs", func(i int) error {
		m := metric(i)
		h := kmaHPA(fmt.Sprintf("hpa-%04d", i), target, 1, 10, map[string]string{
			"metric-config.external." + m + ".json-path/endpoint": srv.URL + "/" + m,
			"metric-config.external." + m + ".json-path/json-key": "$.v",
		}, autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: m, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"type": "json-path"}}},
			Target: kmaAverage("10"),
		}})
		_, err := e.cs.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Create(e.ctx, h, metav1.CreateOptions{})
		return err
	})
	res.created = time.Since(start)
	t.Logf("%d HPAs created in %s", n, res.created.Round(time.Millisecond))

	k := startKMA(t, e, bin, kmaExternalInterval)
	res.ready = k.ready
	framework.EventuallyCtx(e.ctx, t, 5*time.Minute, 100*time.Millisecond, func() (bool, string) {
		k.checkRunning(t)
		body, status, err := k.get(e.ctx, "/apis/external.metrics.k8s.io/v1beta1")
		if err != nil || status != http.StatusOK {
			return false, fmt.Sprintf("discovery: %d %v %.200s", status, err, body)
		}
		var list metav1.APIResourceList
		if err := json.Unmarshal(body, &list); err != nil {
			return false, err.Error()
		}
		return len(list.APIResources) == n, fmt.Sprintf("%d of %d external metrics listed; the endpoint got %d requests", len(list.APIResources), n, endpointRequests.Load())
	})
	res.served = time.Since(k.started)
	res.endpointRq = endpointRequests.Load()
	res.servedMem = k.memory()
	t.Logf("all %d external metrics listed %s after the adapter started (ready after %s); the endpoint got %d requests; %s",
		n, res.served.Round(time.Millisecond), res.ready.Round(time.Millisecond), res.endpointRq, res.servedMem)

	// Every metric has its value, and the clients' connections and the adapter's
	// authentication and authorization caches are warm.
	paths := make([]string, n)
	wants := make([][]byte, n)
	for i := range n {
		paths[i] = fmt.Sprintf("/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/%s?labelSelector=%s", e.ns, metric(i), url.QueryEscape("type=json-path"))
		wants[i] = fmt.Appendf(nil, `"metricName":%q,"metricLabels":{"type":"json-path"}`, metric(i))
	}
	for i := range n {
		body, status, err := k.get(e.ctx, paths[i])
		if err != nil || status != http.StatusOK || !bytes.Contains(body, wants[i]) || !bytes.Contains(body, fmt.Appendf(nil, `"value":"%d"`, kmaValue)) {
			t.Fatalf("GET %s: %d %v\n%s", paths[i], status, err, body)
		}
	}

	k.profile(t, "heap", "external-heap-served.pprof")
	before := snapCPU(k.pid(), e.runDir)
	wait := k.profileDuring(t, time.Duration(seconds-1)*time.Second, "external-cpu.pprof")
	res.load = queryLoad(e.ctx, k, paths, wants, clients, time.Duration(seconds)*time.Second)
	res.cpu = sharesBetween(before, snapCPU(k.pid(), e.runDir))
	res.after = k.memory()
	wait()
	k.profile(t, "heap", "external-heap-after.pprof")
	l := res.load
	t.Logf("%d clients, %s: %d requests (%.0f/s), %d errors (first: %s); latency p50 %s p90 %s p99 %s p99.9 %s max %s; adapter CPU %.0f%%, this process %.0f%%, cluster %.0f%%, others %.0f%%; %s",
		clients, l.wall.Round(time.Millisecond), len(l.lat), l.rps(), l.errors, l.firstErr,
		l.pct(0.50), l.pct(0.90), l.pct(0.99), l.pct(0.999), l.pct(1), res.cpu.adapter, res.cpu.bench, res.cpu.cluster, res.cpu.others, res.after)
	if l.errors > 0 {
		t.Errorf("%d of %d requests failed, the first: %s", l.errors, l.errors+len(l.lat), l.firstErr)
	}
	return res
}

// loadResult is what the clients measured.
type loadResult struct {
	clients  int
	wall     time.Duration
	lat      []time.Duration // successful requests, sorted
	errors   int
	firstErr string
}

func (l loadResult) rps() float64 { return float64(len(l.lat)) / l.wall.Seconds() }

// pct is the p-quantile of the latencies (nearest rank).
func (l loadResult) pct(p float64) time.Duration {
	if len(l.lat) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(l.lat)))) - 1
	return l.lat[min(max(i, 0), len(l.lat)-1)]
}

// queryLoad GETs paths for d with clients concurrent clients, each on its own kept-alive
// connection, client c asking paths c, c+clients, c+2×clients, ... round the list. A
// request succeeds with 200 and a body holding its wants entry.
func queryLoad(ctx context.Context, k *kmaProcess, paths []string, wants [][]byte, clients int, d time.Duration) loadResult {
	var (
		mu  sync.Mutex
		res = loadResult{clients: clients}
		wg  sync.WaitGroup
	)
	auth := "Bearer " + k.token
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		wg.Go(func() {
			client := tlsClient(k.pool)
			lat := make([]time.Duration, 0, 1<<16)
			var buf bytes.Buffer
			errs, first := 0, ""
			for i := c; ; i += clients {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				j := i % len(paths)
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.base+paths[j], nil)
				if err != nil {
					panic(err)
				}
				req.Header.Set("Authorization", auth)
				resp, err := client.Do(req)
				if err == nil {
					buf.Reset()
					_, err = buf.ReadFrom(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != http.StatusOK || !bytes.Contains(buf.Bytes(), wants[j])) {
						err = fmt.Errorf("%s: %d %.300s", paths[j], resp.StatusCode, buf.Bytes())
					}
				}
				took := time.Since(t0)
				if err != nil {
					if errs++; first == "" {
						first = err.Error()
					}
					continue
				}
				lat = append(lat, took)
			}
			client.CloseIdleConnections()
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errors += errs
			if res.firstErr == "" {
				res.firstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	slices.Sort(res.lat)
	return res
}

// ---------------------------------------------------------------------------------------
// Pods: H HPAs of one json-path Pods metric on Deployments of P kwok pods each.

type kmaPodsResult struct {
	hpas, perHPA  int
	podsReady     time.Duration // creating the Deployments to all pods Ready
	ready         time.Duration // adapter start to /readyz
	firstAll      time.Duration // adapter start to every pod asked once
	intervals     int
	perWindow     []int           // requests per pod per interval, over pods × intervals
	spacing       []time.Duration // between consecutive requests to one pod, sorted
	collections   float64         // collections counted by the self-metric in the window
	durationMean  time.Duration   // their mean duration
	collectErrors float64
	cpu           cpuShares
	after         memory
}

// podEndpoint is one pod's metrics endpoint; it records when it was asked.
type podEndpoint struct {
	mu    sync.Mutex
	times []time.Time
}

func (p *podEndpoint) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	p.mu.Lock()
	p.times = append(p.times, now)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"v": %d}`, kmaValue)
}

func (p *podEndpoint) snapshot() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.times)
}

// servePodEndpoints serves an endpoint on port of each IP, one HTTP server per IP, until
// the test ends.
func servePodEndpoints(t *testing.T, ips []string, port int) map[string]*podEndpoint {
	t.Helper()
	out := make(map[string]*podEndpoint, len(ips))
	var servers []*http.Server
	t.Cleanup(func() {
		for _, s := range servers {
			_ = s.Close()
		}
	})
	for _, ip := range ips {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("serving pod IP %s: %v", ip, err)
		}
		ep := &podEndpoint{}
		srv := &http.Server{Handler: ep, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
		out[ip] = ep
	}
	return out
}

func kmaPodsScenario(t *testing.T, bin, helm string) *kmaPodsResult {
	hpas := envCounts(t, "CPA_BENCH_KMA_POD_HPAS", []int{100}, 1)[0]
	perHPA := envCounts(t, "CPA_BENCH_KMA_PODS", []int{50}, 1)[0]
	intervals := envCounts(t, "CPA_BENCH_KMA_INTERVALS", []int{6}, 2)[0]
	total := hpas * perHPA
	e := newKMAEnv(t, helm, 35*time.Minute)
	res := &kmaPodsResult{hpas: hpas, perHPA: perHPA, intervals: intervals}

	// The Deployments, and all their pods Running and Ready (kwok).
	name := func(i int) string { return fmt.Sprintf("web-%03d", i) }
	start := time.Now()
	createAll(t, hpas, "Deployments", func(i int) error {
		_, err := e.cs.AppsV1().Deployments(e.ns).Create(e.ctx, framework.NewDeployment(name(i), int32(perHPA)), metav1.CreateOptions{})
		return err
	})
	lastLog := time.Now()
	framework.EventuallyCtx(e.ctx, t, 25*time.Minute, 3*time.Second, func() (bool, string) {
		list, err := e.cs.AppsV1().Deployments(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, d := range list.Items {
			ready += int(d.Status.ReadyReplicas)
		}
		msg := fmt.Sprintf("%d of %d pods Ready after %s", ready, total, time.Since(start).Round(time.Second))
		if time.Since(lastLog) >= 15*time.Second {
			t.Log(msg)
			lastLog = time.Now()
		}
		return ready == total, msg
	})
	res.podsReady = time.Since(start)
	pods, err := e.cs.CoreV1().Pods(e.ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	seen := map[string]bool{}
	for _, p := range pods.Items {
		ip := p.Status.PodIP
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil || ip == "" || seen[ip] {
			t.Fatalf("pod %s: phase %s, IP %q (seen before: %v)", p.Name, p.Status.Phase, ip, seen[ip])
		}
		seen[ip] = true
		ips = append(ips, ip)
	}
	if len(ips) != total {
		t.Fatalf("%d pods, want %d", len(ips), total)
	}
	t.Logf("%d pods Running and Ready after %s", total, res.podsReady.Round(time.Second))
	port := freePort(t)
	endpoints := servePodEndpoints(t, ips, port)

	// The HPAs: minReplicas = maxReplicas, so whatever the cluster's HPA controller reads
	// (it asks the custom metrics APIService of the e2e tests, not this adapter), the
	// pods stay.
	createAll(t, hpas, "HPAs", func(i int) error {
		h := kmaHPA(name(i), autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name(i)},
			int32(perHPA), int32(perHPA), map[string]string{
				"metric-config.pods.queue-length.json-path/json-key": "$.v",
				"metric-config.pods.queue-length.json-path/path":     "/metrics",
				"metric-config.pods.queue-length.json-path/port":     strconv.Itoa(port),
			}, autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "queue-length"},
				Target: kmaAverage("10"),
			}})
		_, err := e.cs.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Create(e.ctx, h, metav1.CreateOptions{})
		return err
	})

	k := startKMA(t, e, bin, kmaPodsInterval)
	res.ready = k.ready
	framework.EventuallyCtx(e.ctx, t, 10*time.Minute, 200*time.Millisecond, func() (bool, string) {
		k.checkRunning(t)
		asked := 0
		for _, ep := range endpoints {
			ep.mu.Lock()
			if len(ep.times) > 0 {
				asked++
			}
			ep.mu.Unlock()
		}
		return asked == total, fmt.Sprintf("%d of %d pods asked since the adapter started %s ago", asked, total, time.Since(k.started).Round(time.Second))
	})
	res.firstAll = time.Since(k.started)
	t.Logf("every pod asked once %s after the adapter started (ready after %s)", res.firstAll.Round(time.Millisecond), res.ready.Round(time.Millisecond))

	// Every HPA's pods are served through the custom metrics API.
	framework.EventuallyCtx(e.ctx, t, 2*time.Minute, time.Second, func() (bool, string) {
		for i := range hpas {
			path := fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta2/namespaces/%s/pods/*/queue-length?labelSelector=%s", e.ns, url.QueryEscape("app="+name(i)))
			body, status, err := k.get(e.ctx, path)
			if err != nil || status != http.StatusOK {
				return false, fmt.Sprintf("GET %s: %d %v %.300s", path, status, err, body)
			}
			var list struct {
				Items []struct{ Value string } `json:"items"`
			}
			if err := json.Unmarshal(body, &list); err != nil {
				return false, err.Error()
			}
			if len(list.Items) != perHPA {
				return false, fmt.Sprintf("GET %s: %d values, want %d", path, len(list.Items), perHPA)
			}
			for _, it := range list.Items {
				if it.Value != strconv.Itoa(kmaValue) {
					return false, fmt.Sprintf("GET %s: value %s, want %d", path, it.Value, kmaValue)
				}
			}
		}
		return true, ""
	})

	// The measured intervals.
	metricNames := []string{"kube_metrics_adapter_collection_duration_seconds_sum", "kube_metrics_adapter_collection_duration_seconds_count", "kube_metrics_adapter_collections_error"}
	m0, err := k.selfMetrics(e.ctx, metricNames...)
	if err != nil {
		t.Fatal(err)
	}
	before := snapCPU(k.pid(), e.runDir)
	t0 := time.Now()
	window := time.Duration(intervals) * kmaPodsInterval
	t.Logf("measuring %d intervals (%s)", intervals, window)
	wait := k.profileDuring(t, window-time.Second, "pods-cpu.pprof")
	time.Sleep(window)
	t1 := t0.Add(window)
	res.cpu = sharesBetween(before, snapCPU(k.pid(), e.runDir))
	m1, err := k.selfMetrics(e.ctx, metricNames...)
	if err != nil {
		t.Fatal(err)
	}
	res.after = k.memory()
	wait()
	k.profile(t, "heap", "pods-heap.pprof")
	res.collections = m1[metricNames[1]] - m0[metricNames[1]]
	if res.collections > 0 {
		res.durationMean = time.Duration(float64(time.Second) * (m1[metricNames[0]] - m0[metricNames[0]]) / res.collections)
	}
	res.collectErrors = m1[metricNames[2]] - m0[metricNames[2]]

	for _, ep := range endpoints {
		times := ep.snapshot()
		counts := make([]int, intervals)
		for j, at := range times {
			if at.Before(t0) || !at.Before(t1) {
				continue
			}
			counts[int(at.Sub(t0)/kmaPodsInterval)]++
			if j > 0 {
				res.spacing = append(res.spacing, at.Sub(times[j-1]))
			}
		}
		res.perWindow = append(res.perWindow, counts...)
	}
	slices.Sort(res.spacing)
	lo, hi, mean := intStats(res.perWindow)
	t.Logf("requests per pod per interval: min %d max %d mean %.3f; spacing %s; %0.f collections (mean %s, %0.f failed); adapter CPU %.0f%%, this process %.0f%%, cluster %.0f%%, others %.0f%%; %s",
		lo, hi, mean, spacingSummary(res.spacing), res.collections, res.durationMean.Round(time.Millisecond), res.collectErrors,
		res.cpu.adapter, res.cpu.bench, res.cpu.cluster, res.cpu.others, res.after)
	return res
}

func intStats(v []int) (lo, hi int, mean float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	lo, hi = v[0], v[0]
	sum := 0
	for _, x := range v {
		lo, hi, sum = min(lo, x), max(hi, x), sum+x
	}
	return lo, hi, float64(sum) / float64(len(v))
}

// countsHistogram renders how many of v are 0, 1, 2, ...: "0: 12, 1: 29988".
func countsHistogram(v []int) string {
	h := map[int]int{}
	for _, x := range v {
		h[x]++
	}
	var parts []string
	for _, x := range slices.Sorted(maps.Keys(h)) {
		parts = append(parts, fmt.Sprintf("%d: %d", x, h[x]))
	}
	return strings.Join(parts, ", ")
}

// spacingSummary renders sorted spacings: mean (min, p50, p99, max).
func spacingSummary(s []time.Duration) string {
	if len(s) == 0 {
		return "none"
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	q := func(p float64) time.Duration {
		return s[min(max(int(math.Ceil(p*float64(len(s))))-1, 0), len(s)-1)]
	}
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("%s (min %s, p50 %s, p99 %s, max %s)", r(sum/time.Duration(len(s))), r(s[0]), r(q(0.5)), r(q(0.99)), r(s[len(s)-1]))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func kmaTables(ext *kmaExternalResult, pods *kmaPodsResult) string {
	var b strings.Builder
	args := os.Getenv("CPA_BENCH_KMA_ARGS")
	if args == "" {
		args = "none"
	}
	fmt.Fprintf(&b, "\nkube-metrics-adapter scenario, %d CPUs, extra adapter flags: %s. CPU shares are of all the CPUs; others-cpu-%% is everything but the adapter, this test process and the cluster's processes.\n", runtime.NumCPU(), args)
	if ext != nil {
		l := ext.load
		fmt.Fprintf(&b, "\nexternal: %d HPAs, one External json-path metric each, --default-collection-interval %s; %d clients on the adapter's secure port for %s\n\n",
			ext.hpas, kmaExternalInterval, l.clients, l.wall.Round(100*time.Millisecond))
		fmt.Fprintln(&b, "| HPAs | created in | adapter ready after | all metrics served after | RSS then | requests/s (target ≥ 4500) | p50 | p99 (target ≤ 2.5 ms) | max | errors | adapter-cpu-% | bench-cpu-% | cluster-cpu-% | others-cpu-% | VmRSS after (anon / file) | VmHWM (target ≤ 100 MiB) | live heap max | goroutines |")
		fmt.Fprintln(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		us := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %.0f (%s) | %s | %s (%s) | %s | %d | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %s (%s / %s) | %s (%s) | %s | %d |\n",
			ext.hpas, ext.created.Round(100*time.Millisecond), ext.ready.Round(10*time.Millisecond), ext.served.Round(10*time.Millisecond), mib(ext.servedMem.rss),
			l.rps(), verdict(l.rps() >= kmaTargetRPS), us(l.pct(0.5)), us(l.pct(0.99)), verdict(l.pct(0.99) <= kmaTargetP99), us(l.pct(1)), l.errors,
			ext.cpu.adapter, ext.cpu.bench, ext.cpu.cluster, ext.cpu.others, mib(ext.after.rss), mib(ext.after.anon), mib(ext.after.file),
			mib(ext.after.hwm), verdict(ext.after.hwm <= kmaTargetPeakRSS), mib(ext.after.liveMax), ext.after.goroutines)
	}
	if pods != nil {
		lo, hi, mean := intStats(pods.perWindow)
		fmt.Fprintf(&b, "\npods: %d HPAs × %d pods, one json-path Pods metric each, --default-collection-interval %s; %d intervals measured\n\n",
			pods.hpas, pods.perHPA, kmaPodsInterval, pods.intervals)
		fmt.Fprintln(&b, "| pods | pods ready after | adapter ready after | every pod asked after | requests per pod per interval, min / max / mean (target 1) | distribution | spacing per pod, mean (min, p50, p99, max) | collections per interval (of HPAs) | collection duration, mean | failed collections | adapter-cpu-% | bench-cpu-% | cluster-cpu-% | others-cpu-% | VmRSS (anon / file) | VmHWM | goroutines |")
		fmt.Fprintln(&b, "|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %d / %d / %.3f | %s | %s | %.1f (%d) | %s | %.0f | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %s (%s / %s) | %s | %d |\n",
			pods.hpas*pods.perHPA, pods.podsReady.Round(time.Second), pods.ready.Round(10*time.Millisecond), pods.firstAll.Round(10*time.Millisecond),
			lo, hi, mean, countsHistogram(pods.perWindow), spacingSummary(pods.spacing), pods.collections/float64(pods.intervals), pods.hpas,
			pods.durationMean.Round(time.Millisecond), pods.collectErrors, pods.cpu.adapter, pods.cpu.bench, pods.cpu.cluster, pods.cpu.others,
			mib(pods.after.rss), mib(pods.after.anon), mib(pods.after.file), mib(pods.after.hwm), pods.after.goroutines)
	}
	return b.String()
}
