//go:build e2e

package e2e

// The harness of the runtime's end-to-end tests (runtime_test.go): it starts the real
// custom-pod-autoscaler binary against the local cluster, as the operator would (config
// file plus scaleTargetRef and namespace in the environment), captures its JSON log, and
// provides recording shell scripts as user logic.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

const cpaPackage = "./cmd/custom-pod-autoscaler"

// stopTimeout bounds how long the runtime may take to exit after SIGTERM: generous for a
// busy machine, and still far below what a runtime that waits for its stages (tests run
// them for minutes) or for the REST API's 10 s grace on a hung request would take.
const stopTimeout = 20 * time.Second

// configKeys are the runtime's top-level configuration keys (and configPath): an
// environment variable of that name is a configuration override, so the harness never
// lets one through from the test's own environment by accident.
var configKeys = map[string]bool{
	"scaleTargetRef": true, "namespace": true, "metric": true, "evaluate": true,
	"preMetric": true, "postMetric": true, "preEvaluate": true, "postEvaluate": true,
	"preScale": true, "postScale": true, "interval": true, "startTime": true,
	"minReplicas": true, "maxReplicas": true, "runMode": true, "perPodConcurrency": true,
	"downscaleStabilization": true, "logVerbosity": true, "apiConfig": true,
	"kubernetesMetricSpecs": true, "requireKubernetesMetrics": true,
	"initialReadinessDelay": true, "cpuInitializationPeriod": true, "configPath": true,
}

// targetRef is a scaleTargetRef.
type targetRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
}

func deploymentRef(name string) targetRef {
	return targetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name}
}

// cpaSpec says how to start the runtime.
type cpaSpec struct {
	Namespace string
	Target    targetRef
	// Config is the configuration file's content (YAML or JSON); see jsonConfig.
	Config string
	// Env holds more environment overrides (interval=500, ...).
	Env map[string]string
	// API serves the REST API on a free loopback port; otherwise it is disabled.
	API bool
	// Args are more command-line arguments.
	Args []string
}

// cpa is one running custom-pod-autoscaler process.
type cpa struct {
	t      testing.TB
	cmd    *exec.Cmd
	out    *syncBuffer
	apiURL string // http://127.0.0.1:port/api/v1, or "" when the API is off

	done    chan struct{}
	waitErr error

	stopOnce sync.Once
	exitCode int
	stopTook time.Duration
}

// runtimeEnv is the environment of a runtime process: the test's, without any variable
// named like a configuration key, plus KUBECONFIG and the overrides, sorted for the log.
func runtimeEnv(kubeconfig string, overrides map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if configKeys[k] || k == "KUBECONFIG" {
			continue
		}
		env = append(env, kv)
	}
	if kubeconfig != "" {
		env = append(env, "KUBECONFIG="+kubeconfig)
	}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+overrides[k])
	}
	return env
}

// runtimeBinary builds the runtime (once per test process) and returns its path. With
// CPA_E2E_RACE set it is built with the race detector, and a test fails if its runtime
// reports a data race.
func runtimeBinary(t testing.TB) string {
	t.Helper()
	if os.Getenv(framework.RaceEnv) != "" {
		return framework.BuildBinaryWithFlags(t, cpaPackage, "-race")
	}
	return framework.BuildBinary(t, cpaPackage)
}

// raceReport is how the race detector starts its reports.
const raceReport = "WARNING: DATA RACE"

// startCPA writes the config file and starts the runtime with --log-format json. Its
// standard output and error are kept (dumped if the test fails); t.Cleanup stops it
// with SIGTERM and fails the test unless it exits with status 0 within stopTimeout.
func startCPA(t testing.TB, spec cpaSpec) *cpa {
	t.Helper()
	c := framework.Ensure(t)
	bin := runtimeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(spec.Config), 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := json.Marshal(spec.Target)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"scaleTargetRef": string(ref),
		"namespace":      spec.Namespace,
		"apiConfig":      `{"enabled":false}`,
	}
	p := &cpa{t: t, out: &syncBuffer{}, done: make(chan struct{}), exitCode: -1}
	if spec.API {
		port := freePort(t)
		env["apiConfig"] = fmt.Sprintf(`{"enabled":true,"host":"127.0.0.1","port":%d}`, port)
		p.apiURL = fmt.Sprintf("http://127.0.0.1:%d/api/v1", port)
	}
	for k, v := range spec.Env {
		env[k] = v
	}
	args := append([]string{"--config", cfgPath, "--log-format", "json"}, spec.Args...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = runtimeEnv(c.Kubeconfig, env)
	p.cmd.Dir = dir
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if p.exitCode != 0 {
			t.Errorf("the autoscaler exited with status %d (%v) after SIGTERM, want 0", p.exitCode, p.waitErr)
		}
		if strings.Contains(p.out.String(), raceReport) {
			t.Errorf("the autoscaler (built with -race) reported a data race")
		}
		// With --log-format json, everything the runtime writes is a JSON log line.
		for _, line := range strings.Split(p.out.String(), "\n") {
			var e logEntry
			if line != "" && json.Unmarshal([]byte(line), &e) != nil {
				t.Errorf("the autoscaler wrote a line that is not JSON: %q", line)
				break
			}
		}
		if t.Failed() {
			t.Logf("autoscaler output (%s):\n%s", strings.Join(p.cmd.Args, " "), p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM (once) and waits for the exit; it records the exit code and how
// long the exit took, and kills the process if it takes longer than stopTimeout.
func (p *cpa) stop() {
	p.stopOnce.Do(func() {
		start := time.Now()
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(stopTimeout):
				p.t.Errorf("the autoscaler did not exit within %s of SIGTERM; killing it", stopTimeout)
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		p.stopTook = time.Since(start)
		p.exitCode = p.cmd.ProcessState.ExitCode()
	})
}

// exited reports whether the process has ended.
func (p *cpa) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logEntry is one line of the JSON log.
type logEntry map[string]any

func (e logEntry) str(key string) string {
	switch v := e[key].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// num returns a numeric field (JSON numbers decode as float64), or -1 if absent.
func (e logEntry) num(key string) int64 {
	if f, ok := e[key].(float64); ok {
		return int64(f)
	}
	return -1
}

// logs returns the JSON log lines so far (other lines are skipped).
func (p *cpa) logs() []logEntry {
	var out []logEntry
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e logEntry
		if json.Unmarshal(line, &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// logsWithMsg returns the log lines whose msg is msg.
func (p *cpa) logsWithMsg(msg string) []logEntry {
	var out []logEntry
	for _, e := range p.logs() {
		if e.str("msg") == msg {
			out = append(out, e)
		}
	}
	return out
}

// lastLines renders the last n lines of output for failure messages.
func (p *cpa) lastLines(n int) string {
	lines := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// eventually polls cond until it holds; it fails the test at once if the autoscaler
// exits meanwhile, or after timeout.
func (p *cpa) eventually(timeout time.Duration, cond func() (bool, string)) {
	p.t.Helper()
	start := time.Now()
	for {
		ok, status := cond()
		if ok {
			return
		}
		if p.exited() {
			p.t.Fatalf("the autoscaler exited (%v) while waiting; last status: %s", p.waitErr, status)
		}
		if time.Since(start) > timeout {
			p.t.Fatalf("gave up after %s: %s\nlast log lines:\n%s", timeout, status, p.lastLines(8))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// consistently checks cond every 200 ms for d; it fails at the first false, or if the
// autoscaler exits.
func (p *cpa) consistently(d time.Duration, cond func() (bool, string)) {
	p.t.Helper()
	start := time.Now()
	for {
		ok, status := cond()
		if !ok {
			p.t.Fatalf("condition stopped holding after %s: %s\nlast log lines:\n%s", time.Since(start).Round(time.Millisecond), status, p.lastLines(8))
		}
		if p.exited() {
			p.t.Fatalf("the autoscaler exited (%v)", p.waitErr)
		}
		if time.Since(start) > d {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitLog waits until at least n log lines satisfy match and returns them.
func (p *cpa) waitLog(timeout time.Duration, n int, desc string, match func(logEntry) bool) []logEntry {
	p.t.Helper()
	var found []logEntry
	p.eventually(timeout, func() (bool, string) {
		found = found[:0]
		for _, e := range p.logs() {
			if match(e) {
				found = append(found, e)
			}
		}
		return len(found) >= n, fmt.Sprintf("want %d log lines with %s, have %d", n, desc, len(found))
	})
	return found
}

// waitMsg waits for n log lines with message msg.
func (p *cpa) waitMsg(timeout time.Duration, n int, msg string) []logEntry {
	p.t.Helper()
	return p.waitLog(timeout, n, fmt.Sprintf("msg %q", msg), func(e logEntry) bool { return e.str("msg") == msg })
}

// replicasFunc reads a target's spec.replicas.
type replicasFunc func(ctx context.Context) (int32, error)

func deploymentReplicas(ns, name string) replicasFunc {
	return func(ctx context.Context) (int32, error) {
		c, err := framework.Setup()
		if err != nil {
			return 0, err
		}
		s, err := c.Client.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		return s.Spec.Replicas, nil
	}
}

func statefulSetReplicas(ns, name string) replicasFunc {
	return func(ctx context.Context) (int32, error) {
		c, err := framework.Setup()
		if err != nil {
			return 0, err
		}
		s, err := c.Client.AppsV1().StatefulSets(ns).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		return s.Spec.Replicas, nil
	}
}

// customReplicas reads spec.replicas of a custom resource.
func customReplicas(gvr schema.GroupVersionResource, ns, name string) replicasFunc {
	return func(ctx context.Context) (int32, error) {
		c, err := framework.Setup()
		if err != nil {
			return 0, err
		}
		u, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		n, found, err := unstructured.NestedInt64(u.Object, "spec", "replicas")
		if err != nil || !found {
			return 0, fmt.Errorf("spec.replicas of %s %s/%s: found=%t %v", gvr.Resource, ns, name, found, err)
		}
		return int32(n), nil
	}
}

func replicasStatus(ctx context.Context, get replicasFunc, want int32) (bool, string) {
	n, err := get(ctx)
	if err != nil {
		return false, fmt.Sprintf("reading replicas: %v", err)
	}
	return n == want, fmt.Sprintf("spec.replicas=%d, want %d", n, want)
}

// waitReplicas waits until the target's spec.replicas is want.
func (p *cpa) waitReplicas(ctx context.Context, timeout time.Duration, get replicasFunc, want int32) {
	p.t.Helper()
	p.eventually(timeout, func() (bool, string) { return replicasStatus(ctx, get, want) })
}

// keepReplicas checks that the target's spec.replicas stays want for d.
func (p *cpa) keepReplicas(ctx context.Context, d time.Duration, get replicasFunc, want int32) {
	p.t.Helper()
	p.consistently(d, func() (bool, string) { return replicasStatus(ctx, get, want) })
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---- configuration ----

// jsonConfig renders a configuration as JSON (which is YAML too).
func jsonConfig(t testing.TB, cfg map[string]any) string {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shellMethod is a shell method running the executable script directly.
func shellMethod(script string, timeoutMillis int) map[string]any {
	m := map[string]any{"type": "shell", "shell": map[string]any{"entrypoint": script}}
	if timeoutMillis > 0 {
		m["timeout"] = timeoutMillis
	}
	return m
}

// ---- recording scripts ----

// recorder makes shell scripts that record each call's standard input as one file,
// named by the start time in nanoseconds, the PID and the stage, so that the calls of
// all stages can be put back in order.
type recorder struct {
	t   testing.TB
	dir string // where the scripts and helper files live
	rec string // where the calls are recorded
}

func newRecorder(t testing.TB) *recorder {
	t.Helper()
	dir := t.TempDir()
	rec := filepath.Join(dir, "calls")
	if err := os.Mkdir(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	return &recorder{t: t, dir: dir, rec: rec}
}

// script writes an executable /bin/sh script for stage that first records its input
// (then in the file "$in") and then runs body, which decides the output and exit
// status. It returns the script's path.
func (r *recorder) script(stage, body string) string {
	r.t.Helper()
	path := filepath.Join(r.dir, stage+".sh")
	text := fmt.Sprintf(`#!/bin/sh
ts=$(date +%%s%%N)
in=%[1]s/$ts-$$-%[2]s.json
cat >%[1]s/.$$.tmp && mv %[1]s/.$$.tmp "$in"
%[3]s
`, shQuote(r.rec), stage, body)
	r.writeFile(path, text, 0o755)
	return path
}

// file returns the path of a helper file in the recorder's directory.
func (r *recorder) file(name string) string { return filepath.Join(r.dir, name) }

// writeFile writes a file atomically (rename), so scripts never read half of it.
func (r *recorder) writeFile(path, content string, mode os.FileMode) {
	r.t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		r.t.Fatal(err)
	}
}

// set writes the helper file name with content.
func (r *recorder) set(name, content string) { r.t.Helper(); r.writeFile(r.file(name), content, 0o644) }

// call is one recorded call.
type call struct {
	TS    int64
	PID   int
	Stage string
	Raw   []byte
	JSON  map[string]any
}

// calls returns the recorded calls of the given stages (all if none), oldest first.
func (r *recorder) calls(stages ...string) []call {
	r.t.Helper()
	want := map[string]bool{}
	for _, s := range stages {
		want[s] = true
	}
	entries, err := os.ReadDir(r.rec)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []call
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		parts := strings.SplitN(strings.TrimSuffix(name, ".json"), "-", 3)
		if len(parts) != 3 {
			continue
		}
		if len(want) > 0 && !want[parts[2]] {
			continue
		}
		ts, err1 := strconv.ParseInt(parts[0], 10, 64)
		pid, err2 := strconv.Atoi(parts[1])
		if err := errors.Join(err1, err2); err != nil {
			r.t.Fatalf("recorded call %s: %v", name, err)
		}
		raw, err := os.ReadFile(filepath.Join(r.rec, name))
		if err != nil {
			r.t.Fatal(err)
		}
		c := call{TS: ts, PID: pid, Stage: parts[2], Raw: raw}
		if err := json.Unmarshal(raw, &c.JSON); err != nil {
			r.t.Errorf("the %s stage got input that is not a JSON object: %v: %.300q", c.Stage, err, raw)
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].TS != out[j].TS {
			return out[i].TS < out[j].TS
		}
		return out[i].PID < out[j].PID
	})
	return out
}

// requirePython3 skips a test whose scripts run python3 where there is none.
func requirePython3(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		skipUnlessCI(t, "the test's scripts need python3: %v", err)
	}
}

// skipUnlessCI skips a test that needs a missing tool, except in CI (CI=true), where
// every tool must be there: a skipped test there would hide what it covers.
func skipUnlessCI(t testing.TB, format string, args ...any) {
	t.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ---- JSON helpers ----

// jpath walks a decoded JSON value along keys (object keys, or list indexes as ints).
func jpath(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// jstr is jpath as a string ("" if absent or not a string).
func jstr(v any, keys ...any) string {
	s, _ := jpath(v, keys...).(string)
	return s
}

// jnum is jpath as a number (-1 if absent or not a number).
func jnum(v any, keys ...any) int64 {
	if f, ok := jpath(v, keys...).(float64); ok {
		return int64(f)
	}
	return -1
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// metricsOf returns the "metrics" list of a stage input as resource/value pairs.
func metricsOf(in map[string]any) [][2]string {
	l, _ := in["metrics"].([]any)
	out := make([][2]string, 0, len(l))
	for _, m := range l {
		out = append(out, [2]string{jstr(m, "resource"), jstr(m, "value")})
	}
	return out
}

// ---- processes ----

// processesWith returns "pid: cmdline" of the live processes whose command line
// contains marker (zombies have an empty cmdline and are skipped).
func processesWith(marker string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		line := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if strings.Contains(line, marker) {
			out = append(out, filepath.Base(d)+": "+line)
		}
	}
	return out
}

// cpaRun is a runtime process that ran to its end.
type cpaRun struct {
	Code           int
	Stdout, Stderr string
	Took           time.Duration
}

// runCPAWithin runs the runtime binary with a config and environment overrides (and no
// scaleTargetRef or namespace unless given), from any goroutine, and returns the config
// file's path (removed by then), what the run did, and an error if it did not exit
// within timeout (it is killed then).
func runCPAWithin(bin string, env map[string]string, config string, timeout time.Duration, args ...string) (string, cpaRun, error) {
	c, err := framework.Setup()
	if err != nil {
		return "", cpaRun{}, err
	}
	dir, err := os.MkdirTemp("", "cpa-e2e-run-")
	if err != nil {
		return "", cpaRun{}, err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		return "", cpaRun{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--config", cfgPath, "--log-format", "json"}, args...)...)
	cmd.Env = runtimeEnv(c.Kubeconfig, env)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	if cmd.ProcessState == nil {
		return "", cpaRun{}, fmt.Errorf("running %s: %w", bin, err)
	}
	run := cpaRun{Code: cmd.ProcessState.ExitCode(), Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	if ctx.Err() != nil {
		return cfgPath, run, fmt.Errorf("did not exit within %s (%v); stdout:\n%s\nstderr:\n%s", timeout, err, run.Stdout, run.Stderr)
	}
	if strings.Contains(run.Stderr, raceReport) {
		return cfgPath, run, fmt.Errorf("the runtime (built with -race) reported a data race:\n%s", run.Stderr)
	}
	return cfgPath, run, nil
}

// runCPAToEnd is runCPAWithin for the test's goroutine: it fails the test if the runtime
// does not exit within timeout.
func runCPAToEnd(t testing.TB, config string, env map[string]string, timeout time.Duration, args ...string) (string, cpaRun) {
	t.Helper()
	cfgPath, run, err := runCPAWithin(runtimeBinary(t), env, config, timeout, args...)
	if err != nil {
		t.Fatal(err)
	}
	return cfgPath, run
}
