//go:build e2e

package e2e

// End-to-end tests of the custom-pod-autoscaler runtime scaling real workloads on the
// local cluster: the getting-started guide, per-pod mode, scaling to and from zero,
// disabled autoscaling, downscale stabilization, StatefulSets and custom resources.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

// testEnv is a test's cluster, namespace and deadline.
type testEnv struct {
	c   *framework.Cluster
	ns  string
	ctx context.Context
}

func newTestEnv(t *testing.T, timeout time.Duration) *testEnv {
	t.Helper()
	c := framework.Ensure(t)
	ns := framework.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return &testEnv{c: c, ns: ns, ctx: ctx}
}

// deployment creates Deployment name (labels app=name) with n replicas and returns its
// spec.replicas reader.
func (e *testEnv) deployment(t *testing.T, name string, n int32) replicasFunc {
	t.Helper()
	if _, err := e.c.Client.AppsV1().Deployments(e.ns).Create(e.ctx, framework.NewDeployment(name, n), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Deployment %s: %v", name, err)
	}
	return deploymentReplicas(e.ns, name)
}

// podNames returns the sorted names of pods.
func podNames(e *testEnv, t *testing.T, selector string, n int) []string {
	t.Helper()
	pods := framework.WaitForPodsRunning(e.ctx, t, e.ns, selector, n)
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return names
}

// The getting-started guide for real: its hello-kubernetes Deployment (1 replica, label
// numPods "3"), its config.yaml and Python scripts, the runtime started as the operator
// starts it (scaleTargetRef, namespace and interval in the environment). The replicas
// follow the label: 1 -> 3 -> 5 -> 2.
func TestRuntimeGuideExample(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 3*time.Minute)
	name := createGuideDeployment(t, e)
	cfg, env := guideConfig(t, e)
	env["interval"] = "1000" // the guide's cpa.yaml says 10000
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef(name), Config: cfg, Env: env})
	get := deploymentReplicas(e.ns, name)
	p.waitReplicas(e.ctx, 30*time.Second, get, 3)
	framework.WaitForReplicas(e.ctx, t, e.ns, name, 3)
	scaled := p.waitMsg(5*time.Second, 1, "scaled")[0]
	if scaled.num("evaluated") != 3 || scaled.num("current") != 1 || scaled.num("replicas") != 3 || scaled.str("runType") != "scaler" {
		t.Errorf("first scaling log line: %v; want evaluated 3, current 1, replicas 3, runType scaler", scaled)
	}

	for _, n := range []int32{5, 2} {
		patch := fmt.Sprintf(`{"metadata":{"labels":{"numPods":"%d"}}}`, n)
		if _, err := e.c.Client.AppsV1().Deployments(e.ns).Patch(e.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		p.waitReplicas(e.ctx, 30*time.Second, get, n)
		framework.WaitForReplicas(e.ctx, t, e.ns, name, n)
	}
	if errs := p.logsWithMsg("cycle failed; target not scaled"); len(errs) > 0 {
		t.Errorf("%d cycles failed, the first: %v", len(errs), errs[0])
	}
}

// cycle is one per-pod cycle: the metric calls and the evaluate call that followed them.
type cycle struct {
	metrics  []call
	evaluate call
}

// groupCycles splits calls (metric and evaluate, oldest first) into cycles; metric calls
// after the last evaluate call (a cycle in progress) are dropped. A cycle whose metric
// stage failed never reached evaluate: its calls end where a pod's second call starts
// the next cycle, and they are dropped and counted in abandoned (the caller checks that
// as many cycles failed).
func groupCycles(calls []call) (out []cycle, abandoned int) {
	var cur []call
	seen := map[string]bool{}
	for _, c := range calls {
		switch c.Stage {
		case "metric":
			pod := jstr(c.JSON, "resource", "metadata", "name")
			if seen[pod] {
				abandoned++
				cur, seen = nil, map[string]bool{}
			}
			seen[pod] = true
			cur = append(cur, c)
		case "evaluate":
			out = append(out, cycle{metrics: cur, evaluate: c})
			cur, seen = nil, map[string]bool{}
		}
	}
	return out, abandoned
}

// Per-pod mode over a Deployment's 4 pods: the metric stage gets every pod (as a v1 Pod)
// exactly once per cycle, the evaluate stage gets one metric per pod in pod-name order
// named after the pod, and the sum of the values (2 per pod, capped by maxReplicas 8)
// is applied.
func TestRuntimePerPod(t *testing.T) {
	t.Parallel()
	requirePython3(t)
	e := newTestEnv(t, 3*time.Minute)
	get := e.deployment(t, "web", 4)
	initial := podNames(e, t, "app=web", 4)

	r := newRecorder(t)
	metric := r.script("metric", `exec python3 -c 'import json,sys; p=json.load(sys.stdin)["resource"]; sys.stdout.write("2:"+p["metadata"]["name"])' <"$in"`)
	evaluate := r.script("evaluate", `exec python3 -c 'import json,sys; d=json.load(sys.stdin); sys.stdout.write(json.dumps({"targetReplicas": sum(int(m["value"].split(":")[0]) for m in d["metrics"])}))' <"$in"`)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), Config: jsonConfig(t, map[string]any{
		"runMode":     "per-pod",
		"interval":    1000,
		"maxReplicas": 8,
		"metric":      shellMethod(metric, 5000),
		"evaluate":    shellMethod(evaluate, 5000),
	})})

	p.waitReplicas(e.ctx, 30*time.Second, get, 8)
	scaled := p.waitMsg(5*time.Second, 1, "scaled")[0]
	if scaled.num("evaluated") != 8 || scaled.num("current") != 4 || scaled.num("replicas") != 8 || scaled.num("metrics") != 4 {
		t.Errorf("scaling log line: %v; want metrics 4, evaluated 8, current 4, replicas 8", scaled)
	}
	final := podNames(e, t, "app=web", 8)
	// Wait for a cycle that saw exactly the 8 running pods: evaluated 16, capped to 8.
	p.eventually(30*time.Second, func() (bool, string) {
		cs, _ := groupCycles(r.calls("metric", "evaluate"))
		if len(cs) == 0 {
			return false, "no cycle recorded"
		}
		last := cs[len(cs)-1]
		var got []string
		for _, m := range metricsOf(last.evaluate.JSON) {
			got = append(got, m[0])
		}
		return reflect.DeepEqual(got, final), fmt.Sprintf("last cycle's metrics are for %v, want the running pods %v", got, final)
	})
	p.stop()

	cycles, abandoned := groupCycles(r.calls("metric", "evaluate"))
	// A loaded machine may time a call out; such a cycle fails and is logged as failed.
	if failed := len(p.logsWithMsg("cycle failed; target not scaled")); abandoned > failed {
		t.Errorf("%d cycles stopped before evaluate but only %d failed: a pod got the metric stage twice in a cycle", abandoned, failed)
	}
	if len(cycles) < 2 {
		t.Fatalf("recorded %d cycles, want at least 2", len(cycles))
	}
	for i, cy := range cycles {
		var names []string
		for _, m := range cy.metrics {
			in := m.JSON
			res, _ := in["resource"].(map[string]any)
			if got := keysOf(in); !reflect.DeepEqual(got, []string{"resource", "runType"}) {
				t.Errorf("cycle %d: metric input has keys %v, want [resource runType]", i, got)
			}
			if jstr(in, "runType") != "scaler" || jstr(res, "apiVersion") != "v1" || jstr(res, "kind") != "Pod" {
				t.Errorf("cycle %d: metric input runType %q, resource apiVersion %q kind %q; want scaler, v1, Pod",
					i, jstr(in, "runType"), jstr(res, "apiVersion"), jstr(res, "kind"))
			}
			if jstr(res, "metadata", "namespace") != e.ns || jstr(res, "metadata", "labels", "app") != "web" || jstr(res, "spec", "containers", 0, "image") != framework.FakeImage {
				t.Errorf("cycle %d: metric input is not a whole pod of the Deployment: %.300s", i, m.Raw)
			}
			if jpath(res, "metadata", "managedFields") != nil {
				t.Errorf("cycle %d: pod %s still has managedFields", i, jstr(res, "metadata", "name"))
			}
			names = append(names, jstr(res, "metadata", "name"))
		}
		sort.Strings(names)
		if len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Errorf("cycle %d: a pod got the metric stage more than once: %v", i, names)
		}
		ev := cy.evaluate.JSON
		ms := metricsOf(ev)
		var resources []string
		for _, m := range ms {
			resources = append(resources, m[0])
			if want := "2:" + m[0]; m[1] != want {
				t.Errorf("cycle %d: metric of %s has value %q, want %q (the value its metric call returned)", i, m[0], m[1], want)
			}
		}
		if !sort.StringsAreSorted(resources) {
			t.Errorf("cycle %d: evaluate input's metrics are not in pod-name order: %v", i, resources)
		}
		if !reflect.DeepEqual(resources, names) {
			t.Errorf("cycle %d: metric stage ran for pods %v, evaluate input has metrics for %v", i, names, resources)
		}
		if jstr(ev, "runType") != "scaler" || jstr(ev, "resource", "kind") != "Deployment" || jstr(ev, "resource", "metadata", "name") != "web" {
			t.Errorf("cycle %d: evaluate input runType %q resource %s/%s; want scaler, the Deployment web",
				i, jstr(ev, "runType"), jstr(ev, "resource", "kind"), jstr(ev, "resource", "metadata", "name"))
		}
		if i == 0 && !reflect.DeepEqual(names, initial) {
			t.Errorf("first cycle: metric stage ran for %v, want the 4 pods %v", names, initial)
		}
	}
}

// minReplicas 0 allows scaling to zero and back: evaluate says 0, the Deployment goes
// to 0 (and the evaluate stage then gets an empty metrics list); evaluate says 2, it
// comes back to 2.
func TestRuntimeScaleToAndFromZero(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 3*time.Minute)
	get := e.deployment(t, "web", 2)
	podNames(e, t, "app=web", 2)

	r := newRecorder(t)
	r.set("evaluation", `{"targetReplicas": 0}`)
	metric := r.script("metric", `printf 1`)
	evaluate := r.script("evaluate", `cat `+shQuote(r.file("evaluation")))
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), Config: jsonConfig(t, map[string]any{
		"runMode":     "per-pod",
		"interval":    500,
		"minReplicas": 0,
		"metric":      shellMethod(metric, 0),
		"evaluate":    shellMethod(evaluate, 0),
	})})

	p.waitReplicas(e.ctx, 30*time.Second, get, 0)
	framework.WaitForReplicas(e.ctx, t, e.ns, "web", 0)
	// At zero, cycles go on (no "disabled") with no pods: metrics is an empty list.
	p.eventually(15*time.Second, func() (bool, string) {
		evs := r.calls("evaluate")
		if len(evs) == 0 {
			return false, "evaluate never ran"
		}
		last := evs[len(evs)-1]
		return strings.Contains(string(last.Raw), `"metrics":[]`), fmt.Sprintf("last evaluate input: %.200s", last.Raw)
	})
	if d := p.logsWithMsg("autoscaling disabled"); len(d) > 0 {
		t.Errorf("with minReplicas 0, a target at 0 replicas is still autoscaled; got %v", d[0])
	}

	r.set("evaluation", `{"targetReplicas": 2}`)
	p.waitReplicas(e.ctx, 30*time.Second, get, 2)
	framework.WaitForReplicas(e.ctx, t, e.ns, "web", 2)
	up := p.waitLog(5*time.Second, 1, "scaled from 0", func(l logEntry) bool {
		return l.str("msg") == "scaled" && l.num("current") == 0
	})[0]
	if up.num("replicas") != 2 || up.num("metrics") != 0 {
		t.Errorf("scale-from-zero log line: %v; want replicas 2, metrics 0", up)
	}
}

// minReplicas 1 and a target at 0 replicas: autoscaling is disabled. Evaluate says 3,
// the replicas stay 0, the log says so and the scale hooks do not run.
func TestRuntimeDisabledAtZero(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	get := e.deployment(t, "web", 0)

	r := newRecorder(t)
	metric := r.script("metric", `printf 3`)
	evaluate := r.script("evaluate", `printf '{"targetReplicas": 3}'`)
	preScale := r.script("preScale", `:`)
	postScale := r.script("postScale", `:`)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), Config: jsonConfig(t, map[string]any{
		"runMode":     "per-resource",
		"interval":    500,
		"minReplicas": 1,
		"metric":      shellMethod(metric, 0),
		"evaluate":    shellMethod(evaluate, 0),
		"preScale":    shellMethod(preScale, 0),
		"postScale":   shellMethod(postScale, 0),
	})})

	p.waitMsg(15*time.Second, 2, "autoscaling disabled")
	p.keepReplicas(e.ctx, 3*time.Second, get, 0)
	lines := p.logsWithMsg("autoscaling disabled")
	if len(lines) < 5 {
		t.Errorf("%d \"autoscaling disabled\" lines in 3.5 s of 500 ms cycles, want at least 5", len(lines))
	}
	for _, l := range lines {
		if l.num("evaluated") != 3 || l.num("current") != 0 || l.num("replicas") != 0 || !strings.Contains(l.str("reason"), "autoscaling disabled") {
			t.Errorf("log line %v: want evaluated 3, current 0, replicas 0, reason \"autoscaling disabled...\"", l)
			break
		}
	}
	for _, msg := range []string{"scaled", "cycle failed; target not scaled"} {
		if l := p.logsWithMsg(msg); len(l) > 0 {
			t.Errorf("unexpected %q: %v", msg, l[0])
		}
	}
	if n := len(r.calls("evaluate")); n < 5 {
		t.Errorf("evaluate ran %d times, want at least 5", n)
	}
	if c := r.calls("preScale", "postScale"); len(c) > 0 {
		t.Errorf("the scale hooks ran %d times while autoscaling is disabled, want none; first: %s %.200s", len(c), c[0].Stage, c[0].Raw)
	}
}

// downscaleStabilization 8 s: 1 -> 5 at once; when the evaluation drops to 2 the
// replicas stay 5 for the window, then go to 2.
func TestRuntimeDownscaleStabilization(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	get := e.deployment(t, "web", 1)

	r := newRecorder(t)
	r.set("evaluation", `{"targetReplicas": 5}`)
	metric := r.script("metric", `printf x`)
	evaluate := r.script("evaluate", `cat `+shQuote(r.file("evaluation")))
	// Long enough that a busy machine still runs cycles inside it.
	const window = 8 * time.Second
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), Config: jsonConfig(t, map[string]any{
		"runMode":                "per-resource",
		"interval":               500,
		"downscaleStabilization": int(window / time.Second),
		"metric":                 shellMethod(metric, 0),
		"evaluate":               shellMethod(evaluate, 0),
	})})

	p.waitReplicas(e.ctx, 15*time.Second, get, 5)
	if up := p.waitMsg(5*time.Second, 1, "scaled")[0]; up.num("current") != 1 || up.num("replicas") != 5 {
		t.Errorf("scale-up log line %v: want current 1, replicas 5 in one step", up)
	}
	p.waitLog(10*time.Second, 2, "no change at 5", func(l logEntry) bool { return l.str("msg") == "no change" && l.num("current") == 5 })

	r.set("evaluation", `{"targetReplicas": 2}`)
	// The replicas stay 5 for (most of) the window, then drop.
	p.keepReplicas(e.ctx, window/4, get, 5)
	p.waitReplicas(e.ctx, 30*time.Second, get, 2)
	// The cycle's summary is logged once the patch is done.
	p.waitLog(20*time.Second, 1, "the scale-down", func(l logEntry) bool { return l.str("msg") == "scaled" && l.num("evaluated") == 2 })

	// Measured on the runtime's own clock, with bounds that hold however late the cycles
	// run: a cycle decides between its start (its log time minus its duration) and its
	// log line. So the scale-down was decided at least a window after the last
	// recommendation of 5, and every cycle that held 5 decided less than a window after it.
	type cycle struct{ start, logged time.Time }
	var last5 cycle
	var held []cycle
	var down *cycle
	var downs int
	for _, l := range p.logs() {
		at, _ := time.Parse(time.RFC3339Nano, l.str("time"))
		took, _ := time.ParseDuration(l.str("duration"))
		c := cycle{start: at.Add(-took - time.Millisecond), logged: at} // duration is rounded to 1 ms
		switch {
		case l.num("evaluated") == 5:
			last5 = c
		case l.str("msg") == "no change" && l.num("evaluated") == 2:
			if l.num("replicas") != 5 || !strings.Contains(l.str("reason"), "downscale stabilized") {
				t.Errorf("log line while stabilizing: %v; want replicas 5, reason \"downscale stabilized...\"", l)
			}
			held = append(held, c)
		case l.str("msg") == "scaled" && l.num("evaluated") == 2:
			if l.num("current") != 5 || l.num("replicas") != 2 {
				t.Errorf("scale-down log line %v: want current 5, replicas 2", l)
			}
			down = &c
			downs++
		}
	}
	if downs != 1 || len(held) == 0 {
		t.Fatalf("%d stabilized cycles and %d scale-downs, want at least 1 and exactly 1", len(held), downs)
	}
	t.Logf("the scale-down was logged %s after the last evaluation of 5", down.logged.Sub(last5.logged).Round(time.Millisecond))
	if down.logged.Sub(last5.start) < window {
		t.Errorf("the scale-down was logged %s after the cycle that last evaluated 5 started, before the %s window ended", down.logged.Sub(last5.start).Round(time.Millisecond), window)
	}
	for _, c := range held {
		if c.start.Sub(last5.logged) >= window {
			t.Errorf("a cycle started %s after the last evaluation of 5 still held the replicas at 5; the %s window had ended", c.start.Sub(last5.logged).Round(time.Millisecond), window)
		}
	}
}

// A StatefulSet target in per-pod mode: its pods (db-0, ...) are listed through the
// /scale subresource's selector, and it is scaled 1 -> 3.
func TestRuntimeStatefulSet(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	if _, err := e.c.Client.AppsV1().StatefulSets(e.ns).Create(e.ctx, framework.NewStatefulSet("db", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podNames(e, t, "app=db", 1)
	get := statefulSetReplicas(e.ns, "db")

	r := newRecorder(t)
	metric := r.script("metric", `printf 1`)
	evaluate := r.script("evaluate", `printf '{"targetReplicas": 3}'`)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: targetRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}, Config: jsonConfig(t, map[string]any{
		"runMode":  "per-pod",
		"interval": 500,
		"metric":   shellMethod(metric, 0),
		"evaluate": shellMethod(evaluate, 0),
	})})
	p.waitReplicas(e.ctx, 15*time.Second, get, 3)
	podNames(e, t, "app=db", 3)
	want := [][2]string{{"db-0", "1"}, {"db-1", "1"}, {"db-2", "1"}}
	p.eventually(20*time.Second, func() (bool, string) {
		evs := r.calls("evaluate")
		if len(evs) == 0 {
			return false, "evaluate never ran"
		}
		got := metricsOf(evs[len(evs)-1].JSON)
		return reflect.DeepEqual(got, want), fmt.Sprintf("last evaluate input's metrics %v, want %v", got, want)
	})
	first := r.calls("evaluate")[0].JSON
	if got := metricsOf(first); !reflect.DeepEqual(got, want[:1]) {
		t.Errorf("first evaluate input's metrics %v, want %v", got, want[:1])
	}
	if jstr(first, "resource", "kind") != "StatefulSet" || jstr(first, "resource", "metadata", "name") != "db" {
		t.Errorf("evaluate input's resource is %s %s, want the StatefulSet db", jstr(first, "resource", "kind"), jstr(first, "resource", "metadata", "name"))
	}
}

// The target may come and go: the runtime started before its Deployment exists reports
// it missing, then scales it once created; it undoes an external change of the replicas;
// it survives the Deployment's deletion and picks up its re-creation with another pod
// selector (per-pod mode follows the new pods).
func TestRuntimeTargetChanges(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 3*time.Minute)
	get := deploymentReplicas(e.ns, "web")
	deployments := e.c.Client.AppsV1().Deployments(e.ns)

	r := newRecorder(t)
	metric := r.script("metric", `printf 1`)
	evaluate := r.script("evaluate", `printf '{"targetReplicas": 3}'`)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), Config: jsonConfig(t, map[string]any{
		"runMode":  "per-pod",
		"interval": 500,
		"metric":   shellMethod(metric, 0),
		"evaluate": shellMethod(evaluate, 0),
	})})
	notFound := fmt.Sprintf("scale target Deployment %s/web not found", e.ns)
	isNotFound := func(l logEntry) bool {
		return l.str("msg") == "cycle failed; target not scaled" && strings.Contains(l.str("error"), notFound)
	}
	p.waitLog(15*time.Second, 2, "the target missing", isNotFound)

	// Created: scaled 1 -> 3.
	if _, err := deployments.Create(e.ctx, framework.NewDeployment("web", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.waitReplicas(e.ctx, 20*time.Second, get, 3)
	first := podNames(e, t, "app=web", 3)

	// Scaled to 7 by someone else: back to 3.
	if _, err := deployments.Patch(e.ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":7}}`), metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatal(err)
	}
	p.waitLog(20*time.Second, 1, "a scale-down from 7", func(l logEntry) bool {
		return l.str("msg") == "scaled" && l.num("current") == 7 && l.num("replicas") == 3
	})
	p.waitReplicas(e.ctx, 5*time.Second, get, 3)
	// Steady state: the target and its pods come from watch caches, no API request.
	p.waitLog(10*time.Second, 2, "steady cycles without API requests", func(l logEntry) bool {
		return l.str("msg") == "no change" && l.num("current") == 3 && l.num("apiRequests") == 0
	})

	// Deleted: cycles fail again, the runtime keeps running.
	missingBefore := len(p.waitLog(time.Second, 0, "", isNotFound))
	if err := deployments.Delete(e.ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p.waitLog(15*time.Second, missingBefore+2, "the deleted target missing", isNotFound)

	// Re-created with other pod labels: followed.
	d := framework.NewDeployment("web", 1)
	labels := map[string]string{"app": "web-v2"}
	d.Spec.Selector.MatchLabels = labels
	d.Spec.Template.Labels = labels
	if _, err := deployments.Create(e.ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.waitReplicas(e.ctx, 20*time.Second, get, 3)
	second := podNames(e, t, "app=web-v2", 3)
	p.eventually(20*time.Second, func() (bool, string) {
		evs := r.calls("evaluate")
		var got []string
		for _, m := range metricsOf(evs[len(evs)-1].JSON) {
			got = append(got, m[0])
		}
		return reflect.DeepEqual(got, second), fmt.Sprintf("last cycle's metrics are for %v, want the new pods %v (the old ones were %v)", got, second, first)
	})
}

// guideExample is the getting-started guide's example directory.
func guideExample(e *testEnv) string {
	return filepath.Join(e.c.RepoRoot, "examples", "python-custom-autoscaler")
}

// createGuideDeployment creates the guide's hello-kubernetes Deployment (1 replica,
// label numPods "3") and waits for its pod; it returns the Deployment's name.
func createGuideDeployment(t *testing.T, e *testEnv) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(guideExample(e), "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		t.Fatalf("examples/python-custom-autoscaler/deployment.yaml: %v", err)
	}
	name := d.Name
	if name != "hello-kubernetes" || d.Labels["numPods"] != "3" || d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Fatalf("the example Deployment changed: name %q, labels %v, replicas %v; this test follows the guide", name, d.Labels, d.Spec.Replicas)
	}
	if _, err := e.c.Client.AppsV1().Deployments(e.ns).Create(e.ctx, &d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.WaitForReplicas(e.ctx, t, e.ns, name, 1)
	return name
}

// guideConfig returns the guide's config.yaml with its scripts where they are here
// (the guide's image puts them at /, as hack/demo.sh also rewrites), and the environment
// that makes "python" the real interpreter: a version manager's shim (a shell script
// around it) would add its own start-up to every call and, on a loaded machine, push the
// guide's 2.5 s timeout.
func guideConfig(t *testing.T, e *testEnv) (string, map[string]string) {
	t.Helper()
	example := guideExample(e)
	cfgRaw, err := os.ReadFile(filepath.Join(example, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(cfgRaw)
	for _, s := range []string{"metric.py", "evaluate.py"} {
		old := `"/` + s + `"`
		if strings.Count(cfg, old) != 1 {
			t.Fatalf("examples/python-custom-autoscaler/config.yaml no longer runs %s", old)
		}
		cfg = strings.Replace(cfg, old, fmt.Sprintf("%q", filepath.Join(example, s)), 1)
	}
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		skipUnlessCI(t, "the guide's scripts need python3: %v", err)
	}
	bin := t.TempDir()
	if err := os.Symlink(strings.TrimSpace(string(out)), filepath.Join(bin, "python")); err != nil {
		t.Fatal(err)
	}
	return cfg, map[string]string{"PATH": bin + string(os.PathListSeparator) + os.Getenv("PATH")}
}
