package cpastatus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/scaling"
)

type recordedEvent struct {
	regarding                 string
	typ, reason, action, note string
}

type fakeRecorder struct{ events []recordedEvent }

func (f *fakeRecorder) Eventf(regarding, _ runtime.Object, typ, reason, action, note string, args ...any) {
	name := ""
	if u, ok := regarding.(*unstructured.Unstructured); ok {
		name = u.GetName()
	}
	f.events = append(f.events, recordedEvent{name, typ, reason, action, fmt.Sprintf(note, args...)})
}

func restoredReporter(t *testing.T, res Resource) *Reporter {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	r := New(res, "app", clk)
	if _, err := r.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// A failure repeated every cycle is one event; a different failure, a scale, or the same
// failure after a success is a new one.
func TestObserverEvents(t *testing.T) {
	res := &fakeResource{obj: map[string]any{"apiVersion": "custompodautoscaler.com/v1", "kind": "CustomPodAutoscaler", "metadata": map[string]any{"name": "app"}}}
	rec := &fakeRecorder{}
	ob := NewObserver(ObserverOptions{Reporter: restoredReporter(t, res), Events: rec, Target: "Deployment/web", MinReplicas: 1, MaxReplicas: 5})
	ctx := context.Background()
	errA, errB := errors.New("cannot list pods"), errors.New("metric stage failed")
	scaled := Cycle{Metrics: 1, Decision: &scaling.Decision{Current: 1, Evaluated: 3, Target: 3}, Scaled: true}
	for _, c := range []Cycle{{Err: errA}, {Err: errA}, {Err: errA}, {Err: errB}, scaled, {Err: errA}} {
		ob.Observe(ctx, c)
	}
	var got []string
	for _, e := range rec.events {
		if e.regarding != "app" {
			t.Errorf("event about %q, want the CustomPodAutoscaler app", e.regarding)
		}
		got = append(got, e.typ+" "+e.reason+": "+e.note)
	}
	want := []string{
		"Warning CycleFailed: cannot list pods",
		"Warning CycleFailed: metric stage failed",
		"Normal Scaled: scaled Deployment/web from 1 to 3 replicas (evaluated 3)",
		"Warning CycleFailed: cannot list pods",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Observe fills in ScalingLimited from the config's bounds and keeps the history only
// when stabilization is on.
func TestObserverStatus(t *testing.T) {
	for _, tc := range []struct {
		name        string
		decision    scaling.Decision
		history     bool
		wantLimited string
	}{
		{"within bounds", scaling.Decision{Current: 1, Evaluated: 3, Target: 3}, false, "False"},
		{"above max", scaling.Decision{Current: 1, Evaluated: 9, Target: 5}, true, "True"},
		{"below min", scaling.Decision{Current: 3, Evaluated: 0, Target: 1}, false, "True"},
		{"disabled", scaling.Decision{Current: 0, Evaluated: 9, Target: 0, Disabled: true}, false, "False"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &fakeResource{obj: map[string]any{"metadata": map[string]any{"name": "app"}}}
			opts := ObserverOptions{Reporter: restoredReporter(t, res), MinReplicas: 1, MaxReplicas: 5}
			hist := []scaling.Record{{Time: time.Date(2026, 11, 25, 7, 59, 0, 0, time.UTC), Replicas: 4}}
			if tc.history {
				opts.History = func() []scaling.Record { return hist }
			}
			NewObserver(opts).Observe(context.Background(), Cycle{Metrics: 1, Decision: &tc.decision})
			if len(res.patches) != 1 {
				t.Fatalf("%d status writes, want 1", len(res.patches))
			}
			st, _ := res.patches[0]["status"].(map[string]any)
			conds, _ := st["conditions"].([]any)
			limited := ""
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == ConditionScalingLimited {
					limited, _ = m["status"].(string)
				}
			}
			if limited != tc.wantLimited {
				t.Errorf("ScalingLimited %q, want %q (status %v)", limited, tc.wantLimited, st)
			}
			recs, _ := st["recommendations"].([]any)
			if tc.history != (len(recs) == 1) {
				t.Errorf("recommendations %v with stabilization %t", recs, tc.history)
			}
		})
	}
}

type failingResource struct{ fakeResource }

func (f *failingResource) Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*unstructured.Unstructured, error) {
	return nil, errors.New("forbidden")
}

// A status that cannot be written is a warning; the cycle's event is still recorded.
func TestObserverStatusNotWritten(t *testing.T) {
	res := &failingResource{fakeResource{obj: map[string]any{"metadata": map[string]any{"name": "app"}}}}
	var logs bytes.Buffer
	rec := &fakeRecorder{}
	ob := NewObserver(ObserverOptions{Reporter: restoredReporter(t, res), Events: rec, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ob.Observe(context.Background(), Cycle{Err: errors.New("boom")})
	if !strings.Contains(logs.String(), "level=WARN msg=\"status not written\"") || !strings.Contains(logs.String(), "forbidden") {
		t.Errorf("log:\n%s", logs.String())
	}
	if len(rec.events) != 1 || rec.events[0].reason != "CycleFailed" {
		t.Errorf("events %v", rec.events)
	}
}

func TestLimited(t *testing.T) {
	for _, tc := range []struct {
		d    *scaling.Decision
		want bool
	}{
		{nil, false},
		{&scaling.Decision{Evaluated: 3}, false},
		{&scaling.Decision{Evaluated: 1}, false},
		{&scaling.Decision{Evaluated: 5}, false},
		{&scaling.Decision{Evaluated: 6}, true},
		{&scaling.Decision{Evaluated: 0}, true},
		{&scaling.Decision{Evaluated: 9, Disabled: true}, false},
	} {
		if got := Limited(tc.d, 1, 5); got != tc.want {
			t.Errorf("Limited(%+v, 1, 5) = %t, want %t", tc.d, got, tc.want)
		}
	}
}
