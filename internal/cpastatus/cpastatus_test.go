package cpastatus

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/scaling"
)

// fakeResource serves one object and records the status patches.
type fakeResource struct {
	obj     map[string]any
	patches []map[string]any
	opts    []metav1.PatchOptions
}

func (f *fakeResource) Get(_ context.Context, name string, _ metav1.GetOptions, _ ...string) (*unstructured.Unstructured, error) {
	return &unstructured.Unstructured{Object: f.obj}, nil
}

func (f *fakeResource) Patch(_ context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (*unstructured.Unstructured, error) {
	if pt != types.ApplyPatchType || len(sub) != 1 || sub[0] != "status" {
		return nil, errors.New("want a server-side apply of the status subresource")
	}
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, err
	}
	f.patches = append(f.patches, body)
	f.opts = append(f.opts, opts)
	return nil, nil
}

func TestReportWritesOnlyChanges(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	res := &fakeResource{}
	r := New(res, "app", clk)
	ctx := context.Background()
	cycle := func(current, evaluated, target int32, scaled bool) Cycle {
		return Cycle{Metrics: 3, Decision: &scaling.Decision{Current: current, Evaluated: evaluated, Target: target}, Scaled: scaled}
	}
	if wrote, err := r.Report(ctx, cycle(1, 3, 3, true)); err != nil || !wrote {
		t.Fatalf("first cycle: wrote %t, %v", wrote, err)
	}
	p := res.patches[0]
	if p["kind"] != "CustomPodAutoscaler" || p["apiVersion"] != "custompodautoscaler.com/v1" || res.opts[0].FieldManager != FieldManager {
		t.Errorf("apply body %v, options %+v", p, res.opts[0])
	}
	st, _ := p["status"].(map[string]any)
	if st["currentReplicas"] != float64(1) || st["desiredReplicas"] != float64(3) || st["lastScaleTime"] != "2026-11-25T08:00:00Z" {
		t.Errorf("status %v", st)
	}
	if c := cond(st, ConditionScalingActive); c["status"] != "True" || c["reason"] != "CycleSucceeded" {
		t.Errorf("conditions %v", st["conditions"])
	}

	// The next cycles find the target at 3: one write for the new current count, then none.
	clk.Step(time.Second)
	if wrote, _ := r.Report(ctx, cycle(3, 3, 3, false)); !wrote {
		t.Error("current replicas changed but nothing was written")
	}
	clk.Step(time.Second)
	if wrote, _ := r.Report(ctx, cycle(3, 3, 3, false)); wrote {
		t.Error("a steady cycle wrote the status")
	}

	// A failure, and an evaluation above maxReplicas.
	if wrote, _ := r.Report(ctx, Cycle{Err: errors.New("metric stage: exit status 1")}); !wrote {
		t.Fatal("a failed cycle was not reported")
	}
	last := res.patches[len(res.patches)-1]["status"].(map[string]any)
	if c := cond(last, ConditionScalingActive); c["status"] != "False" || c["reason"] != "CycleFailed" || c["message"] != "metric stage: exit status 1" ||
		c["lastTransitionTime"] != "2026-11-25T08:00:02Z" || last["currentReplicas"] != float64(3) {
		t.Errorf("failed cycle status %v", last)
	}
	c := cycle(3, 20, 10, true)
	c.Limited = true
	r.Report(ctx, c)
	last = res.patches[len(res.patches)-1]["status"].(map[string]any)
	if c := cond(last, ConditionScalingLimited); c["status"] != "True" || c["message"] != "evaluated 20 replicas, limited to 10" {
		t.Errorf("clamped cycle conditions %v", last["conditions"])
	}
	// The active condition kept its transition time: it did not change status.
	if c := cond(last, ConditionScalingActive); c["lastTransitionTime"] != "2026-11-25T08:00:02Z" {
		t.Errorf("ScalingActive moved its transition time: %v", c)
	}
}

func TestStabilizationHistoryRoundTrip(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	res := &fakeResource{}
	r := New(res, "app", clk)
	history := []scaling.Record{{Time: clk.Now().Add(-30 * time.Second), Replicas: 5}, {Time: clk.Now(), Replicas: 2}}
	c := Cycle{Decision: &scaling.Decision{Current: 5, Evaluated: 2, Target: 5}, History: history, KeepTrail: true}
	if _, err := r.Report(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	// A new runtime reads back what the last one wrote.
	res.obj = map[string]any{"status": res.patches[0]["status"]}
	got, err := New(res, "app", clk).Restore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Replicas != 5 || !got[0].Time.Equal(history[0].Time) || got[1].Replicas != 2 {
		t.Errorf("restored %+v, want %+v", got, history)
	}
	// No status yet: nothing to restore, no error.
	res.obj = map[string]any{}
	if got, err := New(res, "app", clk).Restore(context.Background()); err != nil || len(got) != 0 {
		t.Errorf("empty status: %v, %v", got, err)
	}
	res.obj = map[string]any{"status": map[string]any{"recommendations": "bad"}}
	if _, err := New(res, "app", clk).Restore(context.Background()); err == nil || !strings.Contains(err.Error(), "status") {
		t.Errorf("bad status: %v", err)
	}
}

// cond finds a condition in a decoded status.
func cond(status map[string]any, typ string) map[string]any {
	list, _ := status["conditions"].([]any)
	for _, c := range list {
		if m, _ := c.(map[string]any); m["type"] == typ {
			return m
		}
	}
	return nil
}

func TestEventFor(t *testing.T) {
	scaled := Cycle{Scaled: true, Decision: &scaling.Decision{Current: 1, Evaluated: 3, Target: 3}}
	if ev, ok := EventFor(scaled, "Deployment/web", ""); !ok || ev.Type != "Normal" || ev.Note != "scaled Deployment/web from 1 to 3 replicas (evaluated 3)" {
		t.Errorf("scaled: %+v %t", ev, ok)
	}
	if _, ok := EventFor(Cycle{Decision: &scaling.Decision{Current: 3, Evaluated: 3, Target: 3}}, "Deployment/web", ""); ok {
		t.Error("a steady cycle made an event")
	}
	failed := Cycle{Err: errors.New("metric stage: timed out")}
	if ev, ok := EventFor(failed, "Deployment/web", ""); !ok || ev.Type != "Warning" || ev.Reason != "CycleFailed" {
		t.Errorf("first failure: %+v %t", ev, ok)
	}
	if _, ok := EventFor(failed, "Deployment/web", "metric stage: timed out"); ok {
		t.Error("the same failure again made another event")
	}
}
