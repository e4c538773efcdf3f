//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// hookOrder is the order of one cycle's calls with every hook configured.
var hookOrder = []string{"preMetric", "metric", "postMetric", "preEvaluate", "evaluate", "postEvaluate", "preScale", "postScale"}

// Every hook runs, in order, with the payload of the reference (§B.5): the metric hooks
// get the target (postMetric also the metrics), the evaluate hooks the evaluate input
// (postEvaluate also the raw evaluation), the scale hooks the decision: final
// evaluation.targetReplicas (clamped to maxReplicas), raw targetReplicas, currentReplicas,
// bounds, namespace, scaleTargetRef and runType. postScale runs also when nothing changes.
func TestRuntimeHooks(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	get := e.deployment(t, "web", 1)

	r := newRecorder(t)
	// startTime 1000: the first cycle starts on a whole second.
	cfg := map[string]any{"runMode": "per-resource", "interval": 500, "startTime": 1000, "minReplicas": 1, "maxReplicas": 4}
	for _, stage := range hookOrder {
		body := `echo "` + stage + ` hook done"`
		switch stage {
		case "metric":
			body = `printf 6`
		case "evaluate":
			body = `printf '{"targetReplicas": 6}'`
		}
		cfg[stage] = shellMethod(r.script(stage, body), 0)
	}
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), Config: jsonConfig(t, cfg)})

	p.waitReplicas(e.ctx, 15*time.Second, get, 4)
	p.eventually(15*time.Second, func() (bool, string) {
		n := len(r.calls("postScale"))
		return n >= 2, fmt.Sprintf("postScale ran %d times, want 2 cycles", n)
	})
	calls := r.calls()[:2*len(hookOrder)]
	var stages []string
	for _, c := range calls {
		stages = append(stages, c.Stage)
	}
	if want := append(append([]string(nil), hookOrder...), hookOrder...); !reflect.DeepEqual(stages, want) {
		t.Fatalf("the first two cycles called %v, want %v twice", stages, hookOrder)
	}

	// What the schedule is, not how punctually a busy machine keeps it: the first cycle
	// is the next whole second after the start (not an interval later, as the original
	// had it), no call comes before its cycle's time, and the second cycle waits for the
	// next interval.
	started := p.waitMsg(15*time.Second, 1, "autoscaler started")[0]
	firstCycle, err := time.Parse(time.RFC3339Nano, started.str("firstCycle"))
	if err != nil || firstCycle.UnixMilli()%1000 != 0 {
		t.Errorf("first cycle at %q (%v), want a whole second (startTime 1000)", started.str("firstCycle"), err)
	}
	if at, err := time.Parse(time.RFC3339Nano, started.str("time")); err != nil || firstCycle.Sub(at) > time.Second {
		t.Errorf("first cycle at %s, logged at %s (%v): want the next whole second, not later", firstCycle.Format(time.RFC3339Nano), started.str("time"), err)
	}
	if first := time.Unix(0, calls[0].TS); first.Before(firstCycle) {
		t.Errorf("the first call started at %s, before the aligned first cycle %s", first.Format(time.RFC3339Nano), firstCycle.Format(time.RFC3339Nano))
	}
	if second := time.Unix(0, calls[len(hookOrder)].TS); second.Before(firstCycle.Add(500 * time.Millisecond)) {
		t.Errorf("the second cycle started at %s, before the next interval %s", second.Format(time.RFC3339Nano), firstCycle.Add(500*time.Millisecond).Format(time.RFC3339Nano))
	}

	for i, current := range []int64{1, 4} {
		cy := map[string]call{}
		for _, c := range calls[i*len(hookOrder) : (i+1)*len(hookOrder)] {
			cy[c.Stage] = c
		}
		errorf := func(format string, args ...any) { t.Errorf("cycle %d: "+format, append([]any{i + 1}, args...)...) }
		wantKeys := map[string][]string{
			"preMetric":    {"resource", "runType"},
			"metric":       {"resource", "runType"},
			"postMetric":   {"metrics", "resource", "runType"},
			"preEvaluate":  {"metrics", "resource", "runType"},
			"evaluate":     {"metrics", "resource", "runType"},
			"postEvaluate": {"evaluation", "metrics", "resource", "runType"},
			"preScale":     {"currentReplicas", "evaluation", "maxReplicas", "minReplicas", "namespace", "resource", "runType", "scaleTargetRef", "targetReplicas"},
			"postScale":    {"currentReplicas", "evaluation", "maxReplicas", "minReplicas", "namespace", "resource", "runType", "scaleTargetRef", "targetReplicas"},
		}
		for stage, keys := range wantKeys {
			in := cy[stage].JSON
			if got := keysOf(in); !reflect.DeepEqual(got, keys) {
				errorf("%s input has keys %v, want %v", stage, got, keys)
			}
			if jstr(in, "runType") != "scaler" {
				errorf("%s input has runType %q, want scaler", stage, jstr(in, "runType"))
			}
			res := in["resource"]
			if jstr(res, "kind") != "Deployment" || jstr(res, "metadata", "name") != "web" || jstr(res, "metadata", "namespace") != e.ns {
				errorf("%s input's resource is %s %s/%s, want Deployment %s/web", stage, jstr(res, "kind"), jstr(res, "metadata", "namespace"), jstr(res, "metadata", "name"), e.ns)
			}
			if jnum(res, "spec", "replicas") != current {
				errorf("%s input's resource has spec.replicas %d, want %d", stage, jnum(res, "spec", "replicas"), current)
			}
		}
		// What is documented as the same payload is byte for byte the same.
		for _, same := range [][2]string{{"preMetric", "metric"}, {"preEvaluate", "evaluate"}, {"preScale", "postScale"}} {
			if !bytes.Equal(cy[same[0]].Raw, cy[same[1]].Raw) {
				errorf("%s and %s inputs differ:\n%s\n%s", same[0], same[1], cy[same[0]].Raw, cy[same[1]].Raw)
			}
		}
		wantMetrics := [][2]string{{"web", "6"}}
		for _, stage := range []string{"postMetric", "preEvaluate", "postEvaluate"} {
			if got := metricsOf(cy[stage].JSON); !reflect.DeepEqual(got, wantMetrics) {
				errorf("%s input's metrics %v, want %v", stage, got, wantMetrics)
			}
		}
		if !reflect.DeepEqual(cy["postMetric"].JSON["resource"], cy["preMetric"].JSON["resource"]) {
			errorf("postMetric's resource differs from preMetric's")
		}
		if got := jnum(cy["postEvaluate"].JSON, "evaluation", "targetReplicas"); got != 6 {
			errorf("postEvaluate's evaluation.targetReplicas is %d, want the raw 6", got)
		}
		s := cy["preScale"].JSON
		got := map[string]any{
			"evaluation.targetReplicas": jnum(s, "evaluation", "targetReplicas"),
			"targetReplicas":            jnum(s, "targetReplicas"),
			"currentReplicas":           jnum(s, "currentReplicas"),
			"minReplicas":               jnum(s, "minReplicas"),
			"maxReplicas":               jnum(s, "maxReplicas"),
			"namespace":                 jstr(s, "namespace"),
			"scaleTargetRef":            s["scaleTargetRef"],
		}
		want := map[string]any{
			"evaluation.targetReplicas": int64(4), // final: clamped to maxReplicas
			"targetReplicas":            int64(6), // raw
			"currentReplicas":           current,
			"minReplicas":               int64(1),
			"maxReplicas":               int64(4),
			"namespace":                 e.ns,
			"scaleTargetRef":            map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
		}
		if !reflect.DeepEqual(got, want) {
			errorf("preScale input fields %v, want %v", got, want)
		}
	}
	if errs := p.logsWithMsg("cycle failed; target not scaled"); len(errs) > 0 {
		t.Errorf("%d cycles failed, the first: %v", len(errs), errs[0])
	}
}

// A failing hook stops the cycle: nothing after it runs, the target is not scaled, and
// the logged error names the hook and quotes its standard error.
func TestRuntimeFailingHook(t *testing.T) {
	t.Parallel()
	for _, hook := range []string{"preMetric", "preScale"} {
		t.Run(hook, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, 2*time.Minute)
			get := e.deployment(t, "web", 1)

			r := newRecorder(t)
			cfg := map[string]any{"runMode": "per-resource", "interval": 500}
			for _, stage := range hookOrder {
				body := `:`
				switch stage {
				case hook:
					body = `echo "` + hook + ` refuses: quota exceeded" >&2; exit 1`
				case "metric":
					body = `printf 6`
				case "evaluate":
					body = `printf '{"targetReplicas": 6}'`
				}
				cfg[stage] = shellMethod(r.script(stage, body), 0)
			}
			p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), Config: jsonConfig(t, cfg)})

			failed := p.waitMsg(15*time.Second, 3, "cycle failed; target not scaled")
			p.keepReplicas(e.ctx, 2*time.Second, get, 1)
			wantErr := fmt.Sprintf(`%s hook: shell command %q exited with status 1: %s refuses: quota exceeded`, hook, r.file(hook+".sh"), hook)
			for _, l := range failed {
				if !strings.Contains(l.str("error"), wantErr) {
					t.Errorf("logged error %q, want it to contain %q", l.str("error"), wantErr)
				}
			}
			if l := p.logsWithMsg("scaled"); len(l) > 0 {
				t.Errorf("scaled despite the failing %s hook: %v", hook, l[0])
			}
			// Nothing after the failing hook ran.
			after := hookOrder[indexOf(hookOrder, hook)+1:]
			if c := r.calls(after...); len(c) > 0 {
				t.Errorf("%s ran after the %s hook failed", c[0].Stage, hook)
			}
			if n := len(r.calls(hook)); n < 3 {
				t.Errorf("the %s hook ran %d times, want a call each cycle (at least 3)", hook, n)
			}
		})
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
