//go:build e2e

// Package bench is the cluster half of `make bench`: the real program against the local
// cluster (hack/cluster/cluster.sh), a Deployment of many kwok pods, a per-pod shell
// metric, and what the program reports and costs: cycle durations, API-server requests
// per cycle, its peak memory. See docs/benchmarks.md.
//
//	go test -tags e2e -count=1 -run TestScenario -v ./test/bench/
//
// Environment:
//
//	CPA_BENCH_PODS    pod counts, comma-separated (default 1000), one scenario each
//	CPA_BENCH_CYCLES  steady-state cycles measured after the first (default 5)
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

const (
	// interval between the program's cycles, milliseconds.
	interval = 3000
	// metricCommand is the per-pod metric: read the input, print a number.
	metricCommand = "cat >/dev/null; echo 1"
	// stopGrace is how long the program gets to exit after SIGTERM.
	stopGrace = 10 * time.Second
)

func TestMain(m *testing.M) { framework.Main(m) }

// result is one scenario's figures.
type result struct {
	pods           int
	podsReady      time.Duration // from creating the Deployment to all pods Running and Ready
	first          cycle         // the first cycle: starts the pod watch, may read /scale
	steady         []cycle       // the cycles after it, no scale
	scaled         cycle         // the cycle that scaled to pods-1
	afterScale     cycle         // the cycle after it
	peakRSS        int64         // VmHWM, bytes
	steadyCPU      time.Duration // the program's own CPU time per steady interval
	steadyChildCPU time.Duration // its children's (the commands') CPU time per steady interval
	othersCPU      float64       // share of the CPUs other processes (the cluster) used meanwhile, %
}

// envCounts reads a comma-separated list of counts of at least minimum from the
// environment variable name, or returns def.
func envCounts(t *testing.T, name string, def []int, minimum int) []int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var counts []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < minimum {
			t.Fatalf("%s=%q: want counts of at least %d, comma-separated", name, s, minimum)
		}
		counts = append(counts, n)
	}
	return counts
}

// steadyCyclesFromEnv is CPA_BENCH_CYCLES, default 5.
func steadyCyclesFromEnv(t *testing.T) int {
	t.Helper()
	return envCounts(t, "CPA_BENCH_CYCLES", []int{5}, 1)[0]
}

func TestScenario(t *testing.T) {
	counts := envCounts(t, "CPA_BENCH_PODS", []int{1000}, 2)
	steadyCycles := steadyCyclesFromEnv(t)
	bin := framework.BuildBinary(t, "./cmd/custom-pod-autoscaler")

	var results []result
	for _, n := range counts {
		t.Run(fmt.Sprintf("pods=%d", n), func(t *testing.T) {
			results = append(results, scenario(t, bin, n, steadyCycles))
		})
	}
	if len(results) > 0 {
		fmt.Print(table(results))
	}
}

// scenario runs the program against a Deployment of n pods for steadyCycles cycles
// after the first, then makes it scale to n-1 once.
func scenario(t *testing.T, bin string, n, steadyCycles int) result {
	c := framework.Ensure(t)
	ns := framework.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	res := result{pods: n}

	// The Deployment, all its pods Running (kwok) and Ready.
	start := time.Now()
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, framework.NewDeployment("web", int32(n)), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Deployment: %v", err)
	}
	framework.EventuallyCtx(ctx, t, 2*time.Minute+time.Duration(n)*200*time.Millisecond, 2*time.Second, func() (bool, string) {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s := d.Status
		return s.ReadyReplicas == int32(n) && s.UpdatedReplicas == int32(n) && s.Replicas == int32(n),
			fmt.Sprintf("Deployment %s/web: want %d pods ready, status replicas=%d updated=%d ready=%d", ns, n, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas)
	})
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	running := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running++
		}
	}
	if running != n || len(pods.Items) != n {
		t.Fatalf("%d pods, %d of them Running; want %d Running", len(pods.Items), running, n)
	}
	res.podsReady = time.Since(start)
	t.Logf("%d pods Running and Ready after %s", n, res.podsReady.Round(100*time.Millisecond))

	// The program: per-pod shell metric, an evaluate stage that returns the replica
	// count written in a file (the pod count, so cycles change nothing), no REST API.
	dir := t.TempDir()
	replicasFile := filepath.Join(dir, "replicas")
	writeFile(t, replicasFile, strconv.Itoa(n))
	shell := func(script string) map[string]any {
		return map[string]any{"type": "shell", "timeout": 5000, "shell": map[string]any{"entrypoint": "/bin/sh", "command": []string{"-c", script}}}
	}
	cfg, err := json.MarshalIndent(map[string]any{
		"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
		"namespace":      ns,
		"runMode":        "per-pod",
		"interval":       interval,
		"minReplicas":    1,
		"maxReplicas":    2 * n,
		"apiConfig":      map[string]any{"enabled": false},
		"metric":         shell(metricCommand),
		"evaluate":       shell(fmt.Sprintf(`cat >/dev/null; printf '{"targetReplicas": %%s}' "$(cat '%s')"`, replicasFile)),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config.json")
	writeFile(t, cfgFile, string(cfg))

	p := startProgram(t, bin, cfgFile, c.Kubeconfig)
	next := func(what string) cycle {
		t.Helper()
		// A cycle runs the metric for every pod: allow far more than it should take.
		timeout := 2*time.Minute + time.Duration(n)*20*time.Millisecond
		select {
		case cy, ok := <-p.cycles:
			if !ok {
				t.Fatalf("waiting for the %s: the program exited: %v\n%s", what, p.waitErr(), p.tail())
			}
			if cy.Msg != "no change" && cy.Msg != "scaled" {
				t.Fatalf("the %s: %q: %s\n%s", what, cy.Msg, cy.Error, p.tail())
			}
			t.Logf("%s: %s, %d metrics, %s, %d API requests", what, cy.Msg, cy.Metrics, cy.duration().Round(time.Millisecond), cy.APIRequests)
			return cy
		case <-time.After(timeout):
			t.Fatalf("no cycle summary for %s (the %s)\n%s", timeout, what, p.tail())
		}
		panic("unreachable")
	}

	res.first = next("first cycle")
	for i := range steadyCycles {
		cy := next(fmt.Sprintf("steady cycle %d", i+1))
		if cy.Msg != "no change" || cy.Metrics != n {
			t.Fatalf("steady cycle %d: %s with %d metrics, want no change with %d", i+1, cy.Msg, cy.Metrics, n)
		}
		res.steady = append(res.steady, cy)
	}
	if len(res.steady) > 1 {
		a, b := res.steady[0].cpu, res.steady[len(res.steady)-1].cpu
		k := time.Duration(len(res.steady) - 1)
		res.steadyCPU = (b.self - a.self) / k
		res.steadyChildCPU = (b.children - a.children) / k
		if a.machine > 0 && b.machine > 0 {
			span := res.steady[len(res.steady)-1].at.Sub(res.steady[0].at)
			other := (b.machine - a.machine) - (b.self - a.self) - (b.children - a.children)
			res.othersCPU = max(0, 100*float64(other)/float64(span*time.Duration(runtime.NumCPU())))
		}
	}

	// One scale, to n-1: the PATCH of /scale should be the cycle's only request.
	writeFile(t, replicasFile, strconv.Itoa(n-1))
	for {
		cy := next("scaling cycle")
		if cy.Msg == "scaled" {
			res.scaled = cy
			break
		}
	}
	res.afterScale = next("cycle after scaling")

	res.peakRSS, err = p.peakRSS()
	if err != nil {
		t.Fatalf("reading the program's peak RSS: %v", err)
	}
	return res
}

// cycle is one cycle summary line of the program (--log-format json), and the
// program's CPU times when it was read.
type cycle struct {
	Msg      string          `json:"msg"`
	Duration json.RawMessage `json:"duration"` // nanoseconds (slog's JSON handler) or a Go duration string
	// KubeMetrics is how long gathering kubernetesMetricSpecs took (absent without specs).
	KubeMetrics json.RawMessage `json:"kubernetesMetricsDuration"`
	APIRequests uint64          `json:"apiRequests"`
	Metrics     int             `json:"metrics"`
	Error       string          `json:"error"`
	cpu         cpuTimes        // when the line was read
	at          time.Time       // when the line was read
}

func (c cycle) duration() time.Duration { return parseDuration(c.Duration) }

// parseDuration reads a logged duration; -1 if absent or unreadable.
func parseDuration(raw json.RawMessage) time.Duration {
	var ns int64
	if json.Unmarshal(raw, &ns) == nil {
		return time.Duration(ns)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	return -1
}

// summaryMessages are the msg values of the program's per-cycle summary lines.
var summaryMessages = []string{"no change", "scaled", "autoscaling disabled", "cycle failed; target not scaled"}

// program is the running custom-pod-autoscaler.
type program struct {
	cmd    *exec.Cmd
	cycles chan cycle
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's error, set before done closes

	mu    sync.Mutex
	lines []string // the last lines of its output
}

func startProgram(t *testing.T, bin, cfgFile, kubeconfig string) *program {
	t.Helper()
	cmd := exec.Command(bin, "--config", cfgFile, "--log-format", "json")
	// A minimal environment: every top-level config key can be overridden by an
	// environment variable of its name.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "KUBECONFIG=" + kubeconfig}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr // logs go to stderr; anything on stdout joins them
	p := &program{cmd: cmd, cycles: make(chan cycle, 100), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() { p.stop(t) })
	go p.read(stderr)
	return p
}

func (p *program) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.lines = append(p.lines, line)
		if len(p.lines) > 40 {
			p.lines = p.lines[len(p.lines)-40:]
		}
		p.mu.Unlock()
		var cy cycle
		if json.Unmarshal([]byte(line), &cy) != nil || !slices.Contains(summaryMessages, cy.Msg) {
			continue
		}
		cy.at = time.Now()
		cy.cpu, _ = readCPUTimes(p.cmd.Process.Pid)
		p.cycles <- cy
	}
	p.err = p.cmd.Wait()
	close(p.done)
	close(p.cycles)
}

func (p *program) waitErr() error {
	<-p.done
	return p.err
}

func (p *program) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "the program's last output lines:\n" + strings.Join(p.lines, "\n")
}

// stop ends the program: SIGTERM, then SIGKILL after stopGrace.
func (p *program) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		for range p.cycles { // keep the reader going until the process exits
		}
	}()
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		t.Logf("the program did not stop within %s of SIGTERM; killing it", stopGrace)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// peakRSS reads VmHWM, the peak resident set size, from /proc/<pid>/status.
func (p *program) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("unexpected line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM line")
}

// cpuTimes are a process's CPU times: its own, and those of the children it waited
// for; and the whole machine's busy time (0 if unknown).
type cpuTimes struct{ self, children, machine time.Duration }

// readCPUTimes reads utime, stime, cutime and cstime from /proc/<pid>/stat.
func readCPUTimes(pid int) (cpuTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTimes{}, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return cpuTimes{}, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return cpuTimes{}, errors.New("short stat")
	}
	var ticks [4]int64
	for j := range ticks { // fields 14..17 of stat are f[11..14] here
		if ticks[j], err = strconv.ParseInt(f[11+j], 10, 64); err != nil {
			return cpuTimes{}, err
		}
	}
	ct := cpuTimes{self: time.Duration(ticks[0]+ticks[1]) * userHZ, children: time.Duration(ticks[2]+ticks[3]) * userHZ}
	ct.machine, _ = machineBusy()
	return ct, nil
}

// userHZ is the unit of /proc's CPU times; USER_HZ is 100 on every Linux architecture
// Go runs on.
const userHZ = time.Second / 100

// machineBusy returns the CPU time all processes have used since boot (user, nice,
// system, irq, softirq and steal from /proc/stat).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	return time.Duration(ticks) * userHZ, nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// table renders the results.
func table(rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ncluster scenario: per-pod shell metric %q, interval %d ms, --log-format json, no REST API\n\n", metricCommand, interval)
	fmt.Fprintf(&b, "%d CPUs. limit: the commands' CPU time per cycle ÷ CPUs; CPU times are per interval (%d ms).\n\n", runtime.NumCPU(), interval)
	fmt.Fprintln(&b, "| pods | pods ready after | steady cycles | cycle duration mean (min–max) | limit | API requests per steady cycle (max) | first cycle requests | scaling cycle requests | next cycle requests | runtime CPU | commands' CPU | others' CPU | peak RSS |")
	fmt.Fprintln(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		var sum, lo, hi time.Duration
		var reqs, maxReqs uint64
		for i, cy := range r.steady {
			d := cy.duration()
			sum += d
			if i == 0 || d < lo {
				lo = d
			}
			hi = max(hi, d)
			reqs += cy.APIRequests
			maxReqs = max(maxReqs, cy.APIRequests)
		}
		k := max(1, len(r.steady))
		limit := r.steadyChildCPU / time.Duration(runtime.NumCPU())
		fmt.Fprintf(&b, "| %d | %s | %d | %s (%s–%s) | %s | %.1f (%d) | %d | %d | %d | %s | %s | %.0f%% | %.1f MiB |\n",
			r.pods, r.podsReady.Round(100*time.Millisecond), len(r.steady),
			(sum / time.Duration(k)).Round(time.Millisecond), lo.Round(time.Millisecond), hi.Round(time.Millisecond),
			limit.Round(10*time.Millisecond), float64(reqs)/float64(k), maxReqs,
			r.first.APIRequests, r.scaled.APIRequests, r.afterScale.APIRequests,
			r.steadyCPU.Round(10*time.Millisecond), r.steadyChildCPU.Round(10*time.Millisecond), r.othersCPU, float64(r.peakRSS)/(1<<20))
	}
	return b.String()
}
