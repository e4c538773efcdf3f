//go:build unix

package autoscaler_test

// BenchmarkPerPodCycle measures one full per-pod cycle (Snapshot, Pods, the metric stage
// for every pod, the evaluate stage, the decision; no scale) with the real shell and
// http runners that StagesFromConfig builds, against an in-memory target of N Running
// pods. Each sub-benchmark reports its figure beside its limit:
//
//	ms/cycle           wall time of one cycle
//	limit-ms           shell, python: pods × run-cpu-ms ÷ runtime.NumCPU(), i.e. the
//	                   cycle if the cores did nothing but run the commands;
//	                   http: pods × 50 ms ÷ 10, a tenth of the original's sequential calls
//	ratio              ms/cycle ÷ limit-ms; targets: ≤ 1.3 (shell, python), ≤ 1 (http)
//	practical-limit-ms shell, python: the same runs of the metric command (one per pod,
//	                   with its pod's input) by a bare parallel process runner (os/exec,
//	                   inputs prepared beforehand, nothing else), best of a few
//	                   concurrencies, plus one evaluate run: what the machine can do;
//	                   one bare run after each timed cycle (timer stopped), the mean
//	ratio-vs-practical ms/cycle ÷ practical-limit-ms; target ≤ 1.1
//	practical-concurrency the concurrency of the bare runner's best time
//	run-cpu-ms         shell, python: CPU time (user+sys, the command and its children)
//	                   of ONE run, from k sequential runs before and k after the timed
//	                   cycles (the mean)
//	ratio-vs-cycle-cpu ms/cycle ÷ (child-cpu-ms/cycle ÷ cores): the ratio against the
//	                   commands' CPU time within the cycles, a check on run-cpu-ms
//	child-cpu-ms/cycle CPU time of the commands a cycle ran (metric and evaluate)
//	self-cpu-ms/cycle  CPU time of this process per cycle: the runtime (and, for http,
//	                   the test server)
//	busy-%             (self + child CPU time) ÷ (wall time × cores): how much of the
//	                   machine the cycle kept busy; below 100 the cores sat idle
//	others-cpu-%       share of the machine's CPU time that other processes used during
//	                   the timed cycles (Linux): well above 0 means the figures are inflated
//
// See docs/benchmarks.md. Run with, e.g.
//
//	go test -run '^$' -bench PerPodCycle -benchtime 3x ./internal/autoscaler/
//
// CPA_BENCH_PER_POD_CONCURRENCY=n sets perPodConcurrency (default: 0, the runtime's
// default for the method) to compare other values.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/custompodautoscaler/cpa/internal/autoscaler"
	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/internal/execute"
	"github.com/custompodautoscaler/cpa/internal/target"
	"github.com/custompodautoscaler/cpa/pkg/metric"
)

const (
	// benchShellCommand is metric (a): read the input, print a number.
	benchShellCommand = "cat >/dev/null; echo 1"
	// benchHTTPDelay is how long the metric (c) server takes to answer.
	benchHTTPDelay = 50 * time.Millisecond
	// benchHTTPSpeedup is the (c) target: at most a tenth of the sequential calls.
	benchHTTPSpeedup = 10
	// benchCalibrationRuns is how many sequential runs measure one run's CPU time.
	benchCalibrationRuns = 50
	// benchCalibrationRunsPython is that for the (slower) Python metric.
	benchCalibrationRunsPython = 20
	// benchPodTemplateHash is the ReplicaSet hash in the fake pods' names and labels.
	benchPodTemplateHash = "7d9c5b8f4"
)

// benchMetricPy is metric (b): the getting-started guide's metric.py, reading a label
// of the pod it is given.
const benchMetricPy = `import json
import sys

def main():
    # Parse spec into a dict
    spec = json.loads(sys.stdin.read())
    metric(spec)

def metric(spec):
    # Get labels from the metadata of the resource (here: one pod)
    labels = spec["resource"]["metadata"]["labels"]
    if "numPods" in labels:
        # Output the value of the numPods label back to the autoscaler
        sys.stdout.write(labels["numPods"])
    else:
        sys.stderr.write("No 'numPods' label on resource being managed")
        exit(1)

if __name__ == "__main__":
    main()
`

func BenchmarkPerPodCycle(b *testing.B) {
	for _, kind := range []string{"shell", "python", "http"} {
		for _, pods := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/pods=%d", kind, pods), func(b *testing.B) { benchPerPodCycle(b, kind, pods) })
		}
	}
}

func benchPerPodCycle(b *testing.B, kind string, pods int) {
	cfg := benchConfig(pods)
	var want string // the metric value every pod must yield
	switch kind {
	case "shell":
		cfg.Metric = benchShell("/bin/sh", "-c", benchShellCommand)
		want = "1\n"
	case "python":
		// The interpreter itself, not a wrapper such as a pyenv shim (a shell script
		// that would add its own start-up to every run).
		out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
		if err != nil {
			if os.Getenv("CI") == "true" {
				b.Fatalf("python3 not found, and CI must run every benchmark: %v", err)
			}
			b.Skipf("python3 not found: %v", err)
		}
		python := strings.TrimSpace(string(out))
		script := filepath.Join(b.TempDir(), "metric.py")
		if err := os.WriteFile(script, []byte(benchMetricPy), 0o644); err != nil {
			b.Fatal(err)
		}
		cfg.Metric = benchShell(python, script)
		want = "1"
	case "http":
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			time.Sleep(benchHTTPDelay)
			_, _ = io.WriteString(w, "1")
		}))
		b.Cleanup(srv.Close)
		cfg.Metric = &config.Method{Type: config.MethodHTTP, Timeout: 5000, HTTP: &config.HTTP{URL: srv.URL + "/metric"}}
		cfg.Metric.SetDefaults()
		want = "1"
	default:
		b.Fatalf("unknown kind %q", kind)
	}
	if s := os.Getenv("CPA_BENCH_PER_POD_CONCURRENCY"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("CPA_BENCH_PER_POD_CONCURRENCY=%q: want a positive integer", s)
		}
		cfg.PerPodConcurrency = n
	}

	stages, err := autoscaler.StagesFromConfig(cfg, execute.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if h, ok := stages.Metric.(*execute.HTTP); ok {
		b.Cleanup(h.CloseIdleConnections)
	}
	tgt := newBenchTarget(pods)
	a, err := autoscaler.New(cfg, autoscaler.Options{Target: tgt, Stages: stages})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	// One run's CPU time is measured before and after the timed cycles, and the mean
	// taken: the speed of a (virtual) machine's cores drifts.
	runs := benchCalibrationRuns
	if kind == "python" {
		runs = benchCalibrationRunsPython
	}
	var runCPUBefore time.Duration
	var bare *bareRunner
	if kind != "http" {
		runCPUBefore = calibrate(b, stages.Metric, tgt.pods[0], want, runs)
		bare = newBareRunner(b, cfg, tgt.pods, want)
	}

	if kind == "http" {
		// One untimed cycle fills the connection pool, as in a steady state. (For the
		// commands, calibrate has warmed the page cache.)
		checkCycle(b, a, ctx, pods, want)
	}

	// Each cycle is followed by one bare run (timer stopped), so that the cycle and its
	// practical limit see the same machine: on shared vCPUs, other work comes and goes.
	// The bare runs' own time and CPU are left out of every cycle figure.
	selfBefore, childBefore := rusage(b, syscall.RUSAGE_SELF), rusage(b, syscall.RUSAGE_CHILDREN)
	busyBefore, busyOK := machineBusy()
	var cycleWall, bareWall, bareSelf, bareChild, bareBusy time.Duration
	cycles := 0
	for b.Loop() {
		t0 := time.Now()
		checkCycle(b, a, ctx, pods, want)
		cycleWall += time.Since(t0)
		cycles++
		if bare != nil {
			b.StopTimer()
			s0, c0 := rusage(b, syscall.RUSAGE_SELF), rusage(b, syscall.RUSAGE_CHILDREN)
			m0, _ := machineBusy()
			bareWall += bare.run()
			m1, _ := machineBusy()
			bareSelf += rusage(b, syscall.RUSAGE_SELF) - s0
			bareChild += rusage(b, syscall.RUSAGE_CHILDREN) - c0
			bareBusy += m1 - m0
			b.StartTimer()
		}
	}
	n := time.Duration(cycles)
	wall := cycleWall / n
	self := (rusage(b, syscall.RUSAGE_SELF) - selfBefore - bareSelf) / n
	child := (rusage(b, syscall.RUSAGE_CHILDREN) - childBefore - bareChild) / n
	busyAfter, busyOK2 := machineBusy()
	busyAfter -= bareBusy
	practical := bareWall / n

	var limit, runCPU time.Duration
	if kind == "http" {
		limit = time.Duration(pods) * benchHTTPDelay / benchHTTPSpeedup
	} else {
		runCPUAfter := calibrate(b, stages.Metric, tgt.pods[0], want, runs)
		runCPU = (runCPUBefore + runCPUAfter) / 2
		limit = time.Duration(pods) * runCPU / time.Duration(runtime.NumCPU())
		if d := float64(runCPUAfter-runCPUBefore) / float64(runCPU); d > 0.15 || d < -0.15 {
			b.Logf("one run's CPU time drifted from %.2f ms before the cycles to %.2f ms after: the machine's speed changed", ms(runCPUBefore), ms(runCPUAfter))
		}
	}

	ratio := float64(wall) / float64(limit)
	b.ReportMetric(ms(wall), "ms/cycle")
	b.ReportMetric(ms(limit), "limit-ms")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(ms(self), "self-cpu-ms/cycle")
	// How busy the cycle kept the machine. (self+child) ÷ cores is the shortest cycle
	// the CPU time it used allows, so ratio ≈ (self+child) ÷ (pods × run-cpu) ÷ busy.
	b.ReportMetric(100*float64(self+child)/float64(wall*time.Duration(runtime.NumCPU())), "busy-%")
	if kind != "http" {
		b.ReportMetric(ms(practical), "practical-limit-ms")
		b.ReportMetric(float64(wall)/float64(practical), "ratio-vs-practical")
		b.ReportMetric(float64(bare.conc), "practical-concurrency")
		b.ReportMetric(ms(runCPU), "run-cpu-ms")
		b.ReportMetric(ms(child), "child-cpu-ms/cycle")
		// The same ratio against the commands' CPU time in the cycles themselves
		// (including the evaluate run): a check on the calibration.
		b.ReportMetric(float64(wall)*float64(runtime.NumCPU())/float64(child), "ratio-vs-cycle-cpu")
	}
	others := ""
	if busyOK && busyOK2 {
		// CPU time the rest of the machine used meanwhile, as a share of its capacity:
		// anything well above 0 means other work competed for the cores.
		other := (busyAfter-busyBefore)/n - self - child
		share := max(0, 100*float64(other)/float64(wall*time.Duration(runtime.NumCPU())))
		b.ReportMetric(share, "others-cpu-%")
		others = fmt.Sprintf("; other processes used %.0f%% of the CPUs meanwhile", share)
	}
	goal := 1.3
	if kind == "http" {
		goal = 1
	}
	verdict := "meets"
	if ratio > goal {
		verdict = "MISSES"
	}
	b.Logf("%s, %d pods, perPodConcurrency %d, %d CPUs: %.1f ms/cycle, sequential-CPU limit %.1f ms, ratio %.2f (%s the target ≤ %.1f)%s",
		kind, pods, autoscaler.PerPodConcurrency(cfg), runtime.NumCPU(), ms(wall), ms(limit), ratio, verdict, goal, others)
	if kind != "http" {
		pr := float64(wall) / float64(practical)
		verdict := "meets"
		if pr > practicalGoal {
			verdict = "MISSES"
		}
		b.Logf("%s, %d pods: practical limit %.1f ms (bare runner, concurrency %d), ratio %.2f (%s the target ≤ %.2f)",
			kind, pods, ms(practical), bare.conc, pr, verdict, practicalGoal)
	}
}

// practicalGoal is the target of ms/cycle ÷ the practical limit.
const practicalGoal = 1.1

// bareRunner measures the practical limit of a cycle: the metric command run once per
// pod, with that pod's input, by a bare parallel runner (os/exec; inputs prepared
// beforehand; no process groups, caps or JSON), at the concurrency that is fastest among
// a few (chosen once, on up to 100 runs), plus one evaluate run. On shared vCPUs,
// processes side by side each cost more CPU than one alone, so the sequential-CPU limit
// cannot be reached; this one can.
type bareRunner struct {
	b                *testing.B
	metric, evaluate []string
	inputs           [][]byte
	evalInput        []byte
	want             string
	conc             int
}

func newBareRunner(b *testing.B, cfg *config.Config, pods []*corev1.Pod, want string) *bareRunner {
	r := &bareRunner{b: b, metric: bareCommand(b, cfg.Metric), evaluate: bareCommand(b, cfg.Evaluate), want: want}
	r.inputs = make([][]byte, len(pods))
	metrics := make([]*metric.ResourceMetric, len(pods))
	for i, pod := range pods {
		p := *pod
		p.APIVersion, p.Kind = "v1", "Pod"
		res, err := json.Marshal(&p)
		if err != nil {
			b.Fatal(err)
		}
		if r.inputs[i], err = json.Marshal(metric.Info{Resource: res, RunType: config.RunTypeScaler}); err != nil {
			b.Fatal(err)
		}
		metrics[i] = &metric.ResourceMetric{Resource: pod.Name, Value: want}
	}
	var err error
	if r.evalInput, err = json.Marshal(map[string]any{"metrics": metrics, "runType": config.RunTypeScaler}); err != nil {
		b.Fatal(err)
	}
	sample := r.inputs[:min(len(r.inputs), 100)]
	var best time.Duration
	n := runtime.NumCPU()
	for _, c := range []int{n, 2 * n, 4 * n} {
		if d := bareRun(b, r.metric, sample, c, want); r.conc == 0 || d < best {
			best, r.conc = d, c
		}
	}
	return r
}

// run returns the wall time of one practical cycle.
func (r *bareRunner) run() time.Duration {
	return bareRun(r.b, r.metric, r.inputs, r.conc, r.want) + bareRun(r.b, r.evaluate, [][]byte{r.evalInput}, 1, "")
}

// bareCommand is a shell method's entrypoint, resolved, and its arguments.
func bareCommand(b *testing.B, m *config.Method) []string {
	path, err := exec.LookPath(m.Shell.Entrypoint)
	if err != nil {
		b.Fatal(err)
	}
	return append([]string{path}, m.Shell.Command...)
}

// bareRun runs argv once per input, conc at a time, and returns the wall time. Each
// output must be want (unless want is "").
func bareRun(b *testing.B, argv []string, inputs [][]byte, conc int, want string) time.Duration {
	sem := make(chan struct{}, conc)
	errs := make(chan error, len(inputs))
	start := time.Now()
	for _, in := range inputs {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdin = bytes.NewReader(in)
			out, err := cmd.Output()
			if err == nil && want != "" && string(out) != want {
				err = fmt.Errorf("output %q, want %q", out, want)
			}
			errs <- err
		}()
	}
	for range conc {
		sem <- struct{}{}
	}
	d := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatalf("bare runner: %v", err)
		}
	}
	return d
}

// checkCycle runs one full cycle and fails the benchmark unless every pod yielded want
// and nothing was scaled.
func checkCycle(b *testing.B, a *autoscaler.Autoscaler, ctx context.Context, pods int, want string) {
	res, err := a.RunCycle(ctx, config.RunTypeScaler)
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Metrics) != pods || res.Scaled {
		b.Fatalf("cycle: %d metrics (want %d), scaled %t", len(res.Metrics), pods, res.Scaled)
	}
	for _, m := range res.Metrics {
		if m.Value != want {
			b.Fatalf("metric of pod %s = %q, want %q", m.Resource, m.Value, want)
		}
	}
}

// calibrate returns the CPU time (user+sys of the command and of every process it
// waited for) of one run of the metric command, averaged over sequential runs with a
// pod's input, as the metric stage gives it.
func calibrate(b *testing.B, r execute.Runner, pod *corev1.Pod, want string, runs int) time.Duration {
	p := *pod
	p.APIVersion, p.Kind = "v1", "Pod"
	res, err := json.Marshal(&p)
	if err != nil {
		b.Fatal(err)
	}
	input, err := json.Marshal(metric.Info{Resource: res, RunType: config.RunTypeScaler})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Run(ctx, input); err != nil { // warm the page cache
		b.Fatal(err)
	}
	before := rusage(b, syscall.RUSAGE_CHILDREN)
	for range runs {
		out, err := r.Run(ctx, input)
		if err != nil {
			b.Fatal(err)
		}
		if string(out) != want {
			b.Fatalf("metric output %q, want %q", out, want)
		}
	}
	return (rusage(b, syscall.RUSAGE_CHILDREN) - before) / time.Duration(runs)
}

func rusage(b *testing.B, who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy returns the CPU time all processes have used since boot (user, nice,
// system, irq, softirq and steal from /proc/stat); false where there is no /proc/stat.
func machineBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, true
}

// clockTicks is USER_HZ, the unit of /proc/stat; 100 on every Linux architecture Go runs on.
const clockTicks = 100

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func benchShell(entrypoint string, args ...string) *config.Method {
	m := &config.Method{Type: config.MethodShell, Timeout: 5000, Shell: &config.Shell{Entrypoint: entrypoint, Command: args}}
	m.SetDefaults()
	return m
}

// benchConfig is a per-pod config whose evaluate stage (a cheap shell command) keeps
// the target at its pod count, so a cycle never scales.
func benchConfig(pods int) *config.Config {
	c := config.Default()
	c.RunMode = config.RunModePerPod
	c.Namespace = "bench"
	c.ScaleTargetRef = &autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	c.MinReplicas, c.MaxReplicas = 1, int32(pods)
	c.Evaluate = benchShell("/bin/sh", "-c", fmt.Sprintf(`cat >/dev/null; echo '{"targetReplicas": %d}'`, pods))
	c.APIConfig.Enabled = false
	return c
}

// benchTarget is an in-memory Deployment with its Running pods, served as the
// informer-backed target serves them (no copies; Active filters and sorts per call).
type benchTarget struct {
	obj  *unstructured.Unstructured
	pods []*corev1.Pod
}

func newBenchTarget(n int) *benchTarget {
	t := &benchTarget{obj: &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{
			"name": "web", "namespace": "bench", "uid": "4b1e6f0e-0000-4000-8000-000000000001",
			"resourceVersion": "12345", "generation": int64(1), "labels": map[string]any{"app": "web"},
		},
		"spec": map[string]any{
			"replicas": int64(n),
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web", "numPods": "1"}},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "app", "image": "registry.example.com/web:1.4.2",
					"ports": []any{map[string]any{"name": "http", "containerPort": int64(8080), "protocol": "TCP"}},
				}}},
			},
		},
		"status": map[string]any{"replicas": int64(n), "readyReplicas": int64(n), "availableReplicas": int64(n), "updatedReplicas": int64(n), "observedGeneration": int64(1)},
	}}}
	for i := range n {
		t.pods = append(t.pods, benchPod(i))
	}
	return t
}

func (t *benchTarget) Snapshot(context.Context) (*target.Snapshot, error) {
	return &target.Snapshot{Object: t.obj, Replicas: int32(len(t.pods)), Selector: "app=web"}, nil
}

func (t *benchTarget) Pods(context.Context, string) ([]*corev1.Pod, error) {
	return target.Active(t.pods), nil
}

func (t *benchTarget) SetReplicas(context.Context, int32) error {
	return fmt.Errorf("the benchmark never scales")
}

// benchPod is a Running pod of a Deployment as the API server returns it (managedFields
// stripped, as the runtime's informers do): about 3 KB of JSON.
func benchPod(i int) *corev1.Pod {
	created := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	started := metav1.NewTime(created.Add(2 * time.Second))
	ip := fmt.Sprintf("10.244.%d.%d", i/250, i%250+2)
	node := fmt.Sprintf("node-%d", i%10)
	hostIP := fmt.Sprintf("192.168.0.%d", i%10+10)
	trueP, grace := true, int64(30)
	toleration := func(key string) corev1.Toleration {
		secs := int64(300)
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs}
	}
	cond := func(t corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: started}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              fmt.Sprintf("web-%s-%05d", benchPodTemplateHash, i),
			GenerateName:      "web-" + benchPodTemplateHash + "-",
			Namespace:         "bench",
			UID:               types.UID(fmt.Sprintf("6f1c2d3e-4a5b-4c6d-8e7f-%012d", i)),
			ResourceVersion:   strconv.Itoa(20000 + i),
			CreationTimestamp: created,
			Labels:            map[string]string{"app": "web", "pod-template-hash": benchPodTemplateHash, "numPods": "1"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-" + benchPodTemplateHash,
				UID: "9a8b7c6d-0000-4000-8000-000000000002", Controller: &trueP, BlockOwnerDeletion: &trueP,
			}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.example.com/web:1.4.2",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env:   []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}},
					PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
				},
				VolumeMounts:             []corev1.VolumeMount{{Name: "kube-api-access", ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}},
				TerminationMessagePath:   corev1.TerminationMessagePathDefault,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy:          corev1.PullIfNotPresent,
			}},
			Volumes: []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
				},
			}}}},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            "default",
			NodeName:                      node,
			SchedulerName:                 corev1.DefaultSchedulerName,
			Tolerations:                   []corev1.Toleration{toleration("node.kubernetes.io/not-ready"), toleration("node.kubernetes.io/unreachable")},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{
				cond("PodReadyToStartContainers"), cond(corev1.PodInitialized), cond(corev1.PodReady),
				cond(corev1.ContainersReady), cond(corev1.PodScheduled),
			},
			HostIP:    hostIP,
			HostIPs:   []corev1.HostIP{{IP: hostIP}},
			PodIP:     ip,
			PodIPs:    []corev1.PodIP{{IP: ip}},
			StartTime: &started,
			QOSClass:  corev1.PodQOSBurstable,
			ContainerStatuses: []corev1.ContainerStatus{{
				Name:         "app",
				Ready:        true,
				Started:      &trueP,
				Image:        "registry.example.com/web:1.4.2",
				ImageID:      "registry.example.com/web@sha256:" + strings.Repeat("ab", 32),
				ContainerID:  fmt.Sprintf("containerd://%064x", i),
				State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
				RestartCount: 0,
			}},
		},
	}
}
