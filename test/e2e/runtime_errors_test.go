//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

// A configuration with mistakes stops the runtime at once, before it touches the
// cluster, with every problem named (and typos given their right key); --check-config
// says the same, or that the configuration is valid.
func TestRuntimeConfigErrors(t *testing.T) {
	t.Parallel()
	const valid = `
runMode: per-resource
interval: 500
metric:
  type: shell
  shell:
    entrypoint: /bin/echo
evaluate:
  type: shell
  shell:
    entrypoint: /bin/echo
`
	ref := `{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}`
	env := map[string]string{"scaleTargetRef": ref, "namespace": "default", "apiConfig": `{"enabled":false}`}

	typo := strings.Replace(valid, "interval: 500", "intervall: 500", 1) + "minReplicas: 5\nmaxReplicas: 2\n"
	wantProblems := []string{
		`intervall: unknown field "intervall" (did you mean "interval"?)`,
		`minReplicas = 5: must not be more than maxReplicas (2)`,
		`invalid configuration (2 problems)`,
	}
	for _, args := range [][]string{nil, {"--check-config"}} {
		cfgPath, run := runCPAToEnd(t, typo, env, 10*time.Second, args...)
		what := fmt.Sprintf("the runtime with %v and a bad config", args)
		// "At once": an invalid configuration never reaches the cluster; the bound is only
		// generous for a busy machine.
		if run.Code != 2 || run.Took > 20*time.Second {
			t.Errorf("%s exited with status %d after %s, want 2 (invalid configuration) at once", what, run.Code, run.Took.Round(time.Millisecond))
		}
		for _, want := range append(wantProblems, "config file "+cfgPath) {
			if !strings.Contains(run.Stderr, want) {
				t.Errorf("%s: stderr does not say %q:\n%s", what, want, run.Stderr)
			}
		}
		if strings.Contains(run.Stderr, "starting custom-pod-autoscaler") || strings.Contains(run.Stdout, "is valid") {
			t.Errorf("%s started or said the config is valid:\n%s%s", what, run.Stdout, run.Stderr)
		}
	}

	// A typo inside an environment override is named with the variable.
	badEnv := map[string]string{"scaleTargetRef": ref, "namespace": "default", "apiConfig": `{"prot":5000}`}
	_, run := runCPAToEnd(t, valid, badEnv, 10*time.Second, "--check-config")
	if want := `apiConfig.prot: unknown field "prot" (did you mean "port"?) (from environment variable apiConfig)`; run.Code != 2 || !strings.Contains(run.Stderr, want) {
		t.Errorf("apiConfig={\"prot\":5000}: exit status %d, stderr %q; want 2 and %q", run.Code, run.Stderr, want)
	}

	cfgPath, run := runCPAToEnd(t, valid, env, 10*time.Second, "--check-config")
	if want := cfgPath + ": configuration is valid\n"; run.Code != 0 || run.Stdout != want {
		t.Errorf("--check-config of a valid config: exit status %d, stdout %q, stderr %q; want 0 and %q", run.Code, run.Stdout, run.Stderr, want)
	}
}

// Problems found when the runtime starts (a kind the API server does not serve, an API
// port in use) make it exit at once with status 1 and an error that says which.
func TestRuntimeStartupErrors(t *testing.T) {
	t.Parallel()
	ns := framework.NewNamespace(t)
	const cfg = `{"runMode":"per-resource","interval":500,"metric":{"type":"shell","shell":{"entrypoint":"/bin/echo"}},"evaluate":{"type":"shell","shell":{"entrypoint":"/bin/echo"}}}`
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()
	_, busyPort, _ := net.SplitHostPort(busyAddr)
	for _, tc := range []struct {
		name, ref, api, want string
	}{
		{"unknown-kind", `{"apiVersion":"apps/v1","kind":"Deploymnet","name":"web"}`, `{"enabled":false}`,
			`scaleTargetRef: the API server does not serve kind \"Deploymnet\" in \"apps/v1\"`},
		{"unknown-group", `{"apiVersion":"nope.e2e.cpa.test/v1","kind":"Widget","name":"web"}`, `{"enabled":false}`,
			`scaleTargetRef: the API server does not serve kind \"Widget\" in \"nope.e2e.cpa.test/v1\"`},
		{"api-port-in-use", `{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}`, `{"port":` + busyPort + `}`,
			`REST API: listening on ` + busyAddr + `: listen tcp ` + busyAddr + `: bind: address already in use`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The bound is generous for a busy machine and below the minute the runtime may
			// wait for the target's first list: these errors must not wait for it.
			_, run := runCPAToEnd(t, cfg, map[string]string{"scaleTargetRef": tc.ref, "namespace": ns, "apiConfig": tc.api}, 50*time.Second)
			if run.Code != 1 || run.Took > 45*time.Second || !strings.Contains(run.Stderr, `"msg":"exiting"`) || !strings.Contains(run.Stderr, tc.want) {
				t.Errorf("exit status %d after %s, stderr:\n%s\nwant status 1 at once and the error %s", run.Code, run.Took.Round(time.Millisecond), run.Stderr, tc.want)
			}
		})
	}
}

// When the REST API cannot listen, the runtime stops everything and exits 1 with the
// error; it does not go on autoscaling without its API. Whether the loop saw the
// cancellation depended on goroutine scheduling (a data race on the context in
// cmd/custom-pod-autoscaler/main.go), so the start is repeated, several at once.
func TestRuntimeAPIListenFailureExits(t *testing.T) {
	t.Parallel()
	ns := framework.NewNamespace(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, port, _ := net.SplitHostPort(busy.Addr().String())
	const cfg = `{"runMode":"per-resource","interval":200,"metric":{"type":"shell","shell":{"entrypoint":"/bin/echo"}},"evaluate":{"type":"shell","shell":{"entrypoint":"/bin/echo"}}}`
	env := map[string]string{
		"scaleTargetRef": `{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}`,
		"namespace":      ns,
		"apiConfig":      `{"port":` + port + `}`,
		"GOMAXPROCS":     "4",
	}
	bin := runtimeBinary(t)
	const runs, workers = 40, 5
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				// A runtime that keeps running (the bug) never exits; one that exits does so
				// in well under a second, but five start at once on a busy machine.
				_, run, err := runCPAWithin(bin, env, cfg, 30*time.Second)
				if err == nil && (run.Code != 1 || !strings.Contains(run.Stderr, "address already in use")) {
					err = fmt.Errorf("exit status %d, stderr:\n%s", run.Code, run.Stderr)
				}
				if err != nil {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("start %d: %v", i, err))
					mu.Unlock()
				}
			}
		})
	}
	for i := range runs {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d starts with the API port in use did not exit 1 at once; the first:\n%s", len(bad), runs, bad[0])
	}
}

// nonce returns a random decimal string to mark processes.
func nonce(t testing.TB) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e9))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%09d", n.Int64()+1)
}

// User logic that fails, hangs or answers nonsense: every cycle fails with an error that
// says why, and the target keeps its replicas.
func TestRuntimeBadUserLogic(t *testing.T) {
	t.Parallel()
	// setup starts the runtime (per-resource, 500 ms) on a Deployment of 1 replica.
	setup := func(t *testing.T, metric, evaluate map[string]any) (*testEnv, *cpa, replicasFunc) {
		e := newTestEnv(t, 2*time.Minute)
		get := e.deployment(t, "web", 1)
		p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), Config: jsonConfig(t, map[string]any{
			"runMode":  "per-resource",
			"interval": 500,
			"metric":   metric,
			"evaluate": evaluate,
		})})
		return e, p, get
	}
	// failures waits for n failed cycles and checks each error contains want.
	failures := func(t *testing.T, p *cpa, n int, want ...string) {
		t.Helper()
		lines := p.waitLog(20*time.Second, n, "a failed cycle", func(l logEntry) bool {
			return l.str("msg") == "cycle failed; target not scaled" && strings.Contains(l.str("error"), want[0])
		})
		for _, l := range lines {
			for _, w := range want[1:] {
				if !strings.Contains(l.str("error"), w) {
					t.Errorf("logged error %q does not contain %q", l.str("error"), w)
				}
			}
			if l.str("level") != "ERROR" {
				t.Errorf("failed cycle logged at level %q, want ERROR", l.str("level"))
			}
		}
	}
	noScaling := func(t *testing.T, p *cpa) {
		t.Helper()
		for _, msg := range []string{"scaled", "no change"} {
			if l := p.logsWithMsg(msg); len(l) > 0 {
				t.Errorf("a cycle succeeded: %v", l[0])
			}
		}
	}

	t.Run("failing-metric", func(t *testing.T) {
		t.Parallel()
		r := newRecorder(t)
		metric := r.script("metric", `echo "no metrics today: backend 42 down" >&2; exit 1`)
		evaluate := r.script("evaluate", `printf '{"targetReplicas": 3}'`)
		e, p, get := setup(t, shellMethod(metric, 0), shellMethod(evaluate, 0))
		failures(t, p, 3, fmt.Sprintf(`metric stage: shell command %q exited with status 1: no metrics today: backend 42 down`, metric))
		p.keepReplicas(e.ctx, 2*time.Second, get, 1)
		noScaling(t, p)
		if c := r.calls("evaluate"); len(c) > 0 {
			t.Errorf("evaluate ran %d times after the metric stage failed", len(c))
		}
	})

	t.Run("failing-pod", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, 2*time.Minute)
		get := e.deployment(t, "web", 3)
		pods := podNames(e, t, "app=web", 3)
		bad := pods[1]
		r := newRecorder(t)
		// The middle pod's call fails at once; the others take a while, so the failure
		// cancels calls in flight.
		metric := r.script("metric", fmt.Sprintf(`if grep -q '"name":"%s"' "$in"; then echo "pod is sick" >&2; exit 4; fi; sleep 0.3; printf 1`, bad))
		evaluate := r.script("evaluate", `printf '{"targetReplicas": 5}'`)
		p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), Config: jsonConfig(t, map[string]any{
			"runMode":  "per-pod",
			"interval": 500,
			"metric":   map[string]any{"type": "shell", "shell": map[string]any{"entrypoint": metric, "logStderr": true}},
			"evaluate": shellMethod(evaluate, 0),
		})})
		failures(t, p, 3, fmt.Sprintf(`metric stage for pod %s: shell command %q exited with status 4: pod is sick`, bad, metric))
		p.keepReplicas(e.ctx, 1500*time.Millisecond, get, 3)
		noScaling(t, p)
		if c := r.calls("evaluate"); len(c) > 0 {
			t.Errorf("evaluate ran %d times although a pod's metric failed", len(c))
		}
		// logStderr: the failed call's standard error is logged too.
		p.waitLog(5*time.Second, 1, "the sick pod's stderr", func(l logEntry) bool {
			return l.str("msg") == "shell command stderr" && l["failed"] == true && l.str("stderr") == "pod is sick\n"
		})
	})

	t.Run("missing-entrypoint", func(t *testing.T) {
		t.Parallel()
		r := newRecorder(t)
		evaluate := r.script("evaluate", `printf '{"targetReplicas": 3}'`)
		missing := r.file("no-such-metric")
		e, p, get := setup(t, shellMethod(missing, 0), shellMethod(evaluate, 0))
		failures(t, p, 2, fmt.Sprintf(`metric stage: shell command %q: cannot start entrypoint %q: no such file or directory`, missing, missing))
		p.keepReplicas(e.ctx, 1500*time.Millisecond, get, 1)
		noScaling(t, p)
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		mark := nonce(t)
		r := newRecorder(t)
		// A background and a foreground sleep; "sleep 30 0.<mark>" sleeps 30.<mark> s
		// and carries the mark in its command line.
		metric := r.script("metric", fmt.Sprintf(`echo "slow backend" >&2; sleep 30 0.%[1]s & sleep 30 0.%[1]s; printf 1`, mark))
		evaluate := r.script("evaluate", `printf '{"targetReplicas": 3}'`)
		e, p, get := setup(t, shellMethod(metric, 1000), shellMethod(evaluate, 0))
		failures(t, p, 2, fmt.Sprintf(`metric stage: shell command %q timed out after 1s (process group killed): slow backend`, metric))
		// Each call's group is killed: never more than one call's two sleeps at a time.
		p.consistently(3*time.Second, func() (bool, string) {
			procs := processesWith("0." + mark)
			return len(procs) <= 2, fmt.Sprintf("processes of timed-out calls pile up: %v", procs)
		})
		p.keepReplicas(e.ctx, time.Second, get, 1)
		noScaling(t, p)
		p.stop()
		// Killed processes are gone at once, but /proc may show them a while on a busy
		// machine; the sleeps would last 30 s.
		framework.Eventually(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
			procs := processesWith("0." + mark)
			return len(procs) == 0, fmt.Sprintf("processes left after the autoscaler stopped: %v", procs)
		})
	})

	t.Run("garbage-evaluation", func(t *testing.T) {
		t.Parallel()
		r := newRecorder(t)
		r.set("evaluation", "lots of replicas")
		metric := r.script("metric", `printf 3`)
		mark := nonce(t)
		// With the file "endless" present, the evaluate stage prints forever.
		evaluate := r.script("evaluate", `if [ -e `+shQuote(r.file("endless"))+` ]; then exec yes `+mark+`; fi; cat `+shQuote(r.file("evaluation")))
		e, p, get := setup(t, shellMethod(metric, 0), shellMethod(evaluate, 0))
		for _, tc := range []struct{ output, want string }{
			{"lots of replicas", `evaluate stage: invalid evaluation "lots of replicas": not a JSON object`},
			{`{"targetReplicas": -2}`, `evaluate stage: invalid evaluation "{\"targetReplicas\": -2}": targetReplicas must be between 0 and 2147483647, got -2`},
			{`{"targetReplicas": "3"}`, `evaluate stage: invalid evaluation "{\"targetReplicas\": \"3\"}": targetReplicas must be a number, got "3"`},
			{`{"replicas": 3}`, `no "targetReplicas" field`},
		} {
			r.set("evaluation", tc.output)
			failures(t, p, 2, tc.want, `want a JSON object like {"targetReplicas": 3}`)
		}
		r.set("endless", "")
		failures(t, p, 2, fmt.Sprintf(`evaluate stage: shell command %q: output exceeds 1048576 bytes (process group killed)`, evaluate))
		if procs := processesWith("yes " + mark); len(procs) > 1 {
			t.Errorf("endless evaluate commands pile up: %v", procs)
		}
		p.keepReplicas(e.ctx, time.Second, get, 1)
		noScaling(t, p)
	})
}

// SIGTERM while a slow metric call runs: the runtime kills the call's process group and
// exits at once with status 0.
func TestRuntimeGracefulShutdown(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	get := e.deployment(t, "web", 1)
	mark := nonce(t)
	r := newRecorder(t)
	// The calls sleep 300 s, far longer than any bound below: a runtime that waited for
	// them would fail every one.
	metric := r.script("metric", fmt.Sprintf(`sleep 300 0.%[1]s & sleep 300 0.%[1]s; printf 1`, mark))
	evaluate := r.script("evaluate", `printf '{"targetReplicas": 3}'`)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), API: true, Config: jsonConfig(t, map[string]any{
		"runMode":  "per-resource",
		"interval": 500,
		"metric":   shellMethod(metric, 600000),
		"evaluate": shellMethod(evaluate, 0),
	})})
	p.waitMsg(15*time.Second, 1, "REST API listening")
	// A REST API request runs the same slow metric stage meanwhile.
	type apiResult struct {
		resp apiResponse
		err  error
	}
	inFlight := make(chan apiResult, 1)
	go func() {
		resp, err := p.apiCall(http.MethodGet, "/metrics?dry_run=true")
		inFlight <- apiResult{resp, err}
	}()
	p.eventually(15*time.Second, func() (bool, string) {
		procs := processesWith("0." + mark)
		return len(procs) == 4, fmt.Sprintf("want 2 metric calls (the loop's and the API's) with 2 sleeps each running, have %v", procs)
	})
	p.stop()
	// stop fails the test unless the exit came within stopTimeout, far below the 300 s
	// the calls sleep.
	if p.exitCode != 0 || p.stopTook > stopTimeout {
		t.Errorf("after SIGTERM the autoscaler exited with status %d after %s; want 0, well within the 300 s the call sleeps", p.exitCode, p.stopTook.Round(time.Millisecond))
	}
	// SIGKILLed processes may take a moment to be gone from /proc on a busy machine.
	framework.Eventually(t, 20*time.Second, 20*time.Millisecond, func() (bool, string) {
		procs := processesWith("0." + mark)
		return len(procs) == 0, fmt.Sprintf("the metric call's processes outlived the autoscaler: %v", procs)
	})
	select {
	case res := <-inFlight:
		want := fmt.Sprintf(`metric stage: shell command %q interrupted (process group killed)`, metric)
		var body struct{ Message string }
		_ = json.Unmarshal([]byte(res.resp.Body), &body)
		if res.err != nil || res.resp.Code != 500 || !strings.Contains(body.Message, want) {
			t.Errorf("the API request in flight at SIGTERM got %d %s (%v); want 500 with %q", res.resp.Code, res.resp.Body, res.err, want)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("the API request in flight at SIGTERM did not end")
	}
	if len(p.logsWithMsg("stopped")) != 1 {
		t.Errorf("no \"stopped\" log line")
	}
	// Shutdown abandons the loop's cycle: logged as such with what was interrupted, not as
	// a failure (docs/runtime.md, Logs).
	interrupted := fmt.Sprintf(`metric stage: shell command %q interrupted (process group killed)`, metric)
	if l := p.logsWithMsg("cycle abandoned: its caller went away or the runtime is stopping; target not scaled"); len(l) != 1 || !strings.Contains(l[0].str("reason"), interrupted) {
		t.Errorf("abandoned cycles %v; want one, whose reason contains %q", l, interrupted)
	}
	if l := p.logsWithMsg("cycle failed; target not scaled"); len(l) != 0 {
		t.Errorf("failed cycles %v; shutdown is not a failure", l)
	}
	if ok, status := replicasStatus(e.ctx, get, 1); !ok {
		t.Errorf("the interrupted cycle scaled: %s", status)
	}
}
