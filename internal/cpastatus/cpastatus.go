// Package cpastatus writes the runtime's part of its CustomPodAutoscaler's status: the
// replicas of the last cycle, when it last scaled, the ScalingActive and ScalingLimited
// conditions, and the downscale-stabilization history, which it reads back at start so
// that a restart does not forget it.
//
// It writes with server-side apply as field manager "custom-pod-autoscaler", so the
// operator's conditions (Ready, Paused) are left alone, and only when something other
// than a timestamp changed: a steady cycle sends nothing.
package cpastatus

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	cpav1 "github.com/custompodautoscaler/cpa/api/custompodautoscaler/v1"
	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/scaling"
)

// FieldManager is the runtime's name in the status's managed fields.
const FieldManager = "custom-pod-autoscaler"

// Condition types the runtime owns.
const (
	ConditionScalingActive  = "ScalingActive"
	ConditionScalingLimited = "ScalingLimited"
)

// requestTimeout bounds each request: an API server that does not answer must not hold
// up the start or the cycles.
const requestTimeout = 30 * time.Second

// Resource is the CustomPodAutoscaler's API: get it, and patch its status.
type Resource interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions, subresources ...string) (*unstructured.Unstructured, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*unstructured.Unstructured, error)
}

// Cycle is what the reporter needs of one cycle.
type Cycle struct {
	Err       error
	Metrics   int
	Decision  *scaling.Decision
	Scaled    bool
	Limited   bool
	History   []scaling.Record
	KeepTrail bool // persist History (downscale stabilization is on)
}

// Reporter writes one CustomPodAutoscaler's status.
type Reporter struct {
	res   Resource
	name  string
	clock clock.PassiveClock

	last       *cpav1.CustomPodAutoscalerStatus // as last written, times included
	lastScaled *metav1.Time
	obj        *unstructured.Unstructured // the resource as read at start
}

// Object is the CustomPodAutoscaler as Restore read it (nil before), the object events
// are about.
func (r *Reporter) Object() *unstructured.Unstructured { return r.obj }

// New returns a Reporter for CustomPodAutoscaler name.
func New(res Resource, name string, clk clock.PassiveClock) *Reporter {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Reporter{res: res, name: name, clock: clk}
}

// Restore reads the stabilization history the status holds.
func (r *Reporter) Restore(ctx context.Context) ([]scaling.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	u, err := r.res.Get(ctx, r.name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading CustomPodAutoscaler %s: %w", r.name, err)
	}
	r.obj = u
	raw, err := json.Marshal(u.Object["status"])
	if err != nil {
		return nil, err
	}
	var st cpav1.CustomPodAutoscalerStatus
	if string(raw) != "null" {
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("CustomPodAutoscaler %s: status: %w", r.name, err)
		}
	}
	if st.LastScaleTime != nil {
		r.lastScaled = st.LastScaleTime
	}
	out := make([]scaling.Record, 0, len(st.Recommendations))
	for _, rec := range st.Recommendations {
		out = append(out, scaling.Record{Time: rec.Time.Time, Replicas: rec.Replicas})
	}
	return out, nil
}

// Report writes the status for a finished cycle if it differs from the last one written
// in more than its timestamps. It returns whether it wrote.
func (r *Reporter) Report(ctx context.Context, c Cycle) (bool, error) {
	now := metav1.NewTime(r.clock.Now().UTC().Truncate(time.Second))
	st := r.status(c, now)
	if r.last != nil && sameIgnoringTimes(r.last, st) {
		return false, nil
	}
	body := map[string]any{
		"apiVersion": cpav1.GroupVersion.String(),
		"kind":       "CustomPodAutoscaler",
		"metadata":   map[string]any{"name": r.name},
		"status":     st,
	}
	data, err := json.Marshal(body)
	if err != nil {
		return false, err
	}
	force := true
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := r.res.Patch(ctx, r.name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: &force}, "status"); err != nil {
		return false, fmt.Errorf("writing the status of CustomPodAutoscaler %s: %w", r.name, err)
	}
	r.last = st
	return true, nil
}

func (r *Reporter) status(c Cycle, now metav1.Time) *cpav1.CustomPodAutoscalerStatus {
	st := &cpav1.CustomPodAutoscalerStatus{}
	active := metav1.Condition{Type: ConditionScalingActive, Status: metav1.ConditionTrue, Reason: "CycleSucceeded", Message: "the last cycle gathered metrics and evaluated"}
	limited := metav1.Condition{Type: ConditionScalingLimited, Status: metav1.ConditionFalse, Reason: "WithinLimits", Message: "the evaluation was within minReplicas and maxReplicas"}
	if c.Err != nil {
		active.Status, active.Reason, active.Message = metav1.ConditionFalse, "CycleFailed", clip.String(c.Err.Error(), 1024)
	}
	if d := c.Decision; d != nil {
		st.CurrentReplicas, st.DesiredReplicas = ptr.To(d.Current), ptr.To(d.Target)
		st.LastEvaluation = &cpav1.EvaluationSummary{Time: now, Metrics: int32(c.Metrics), EvaluatedReplicas: d.Evaluated}
		if d.Disabled {
			active.Status, active.Reason, active.Message = metav1.ConditionFalse, "AutoscalingDisabled", d.Reason
		}
		if c.Limited {
			limited.Status, limited.Reason = metav1.ConditionTrue, "Clamped"
			limited.Message = fmt.Sprintf("evaluated %d replicas, limited to %d", d.Evaluated, d.Target)
		}
	} else if r.last != nil {
		st.CurrentReplicas, st.DesiredReplicas, st.LastEvaluation = r.last.CurrentReplicas, r.last.DesiredReplicas, r.last.LastEvaluation
	}
	if c.Scaled {
		r.lastScaled = &now
	}
	st.LastScaleTime = r.lastScaled
	for _, cond := range []metav1.Condition{active, limited} {
		cond.LastTransitionTime = now
		if r.last != nil {
			for _, old := range r.last.Conditions {
				if old.Type == cond.Type && old.Status == cond.Status {
					cond.LastTransitionTime = old.LastTransitionTime
				}
			}
		}
		st.Conditions = append(st.Conditions, cond)
	}
	if c.KeepTrail {
		for _, h := range c.History {
			st.Recommendations = append(st.Recommendations, cpav1.Recommendation{Time: metav1.NewTime(h.Time.UTC().Truncate(time.Second)), Replicas: h.Replicas})
		}
	}
	return st
}

// sameIgnoringTimes compares two statuses without the evaluation time and the
// conditions' transition times, which move on every cycle or every write.
func sameIgnoringTimes(a, b *cpav1.CustomPodAutoscalerStatus) bool {
	strip := func(s *cpav1.CustomPodAutoscalerStatus) *cpav1.CustomPodAutoscalerStatus {
		s = s.DeepCopy()
		if s.LastEvaluation != nil {
			s.LastEvaluation.Time = metav1.Time{}
		}
		for i := range s.Conditions {
			s.Conditions[i].LastTransitionTime = metav1.Time{}
		}
		return s
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// Event is an event to record about the CustomPodAutoscaler.
type Event struct {
	Type, Reason, Action, Note string
}

// EventFor says what event, if any, a cycle deserves: every scale, and a failure when its
// message differs from the previous cycle's (a failure repeated every cycle is one event).
// prevErr is the previous cycle's error message ("" if it succeeded).
func EventFor(c Cycle, target, prevErr string) (Event, bool) {
	switch {
	case c.Err != nil && c.Err.Error() != prevErr:
		return Event{Type: "Warning", Reason: "CycleFailed", Action: "Scale", Note: clip.String(c.Err.Error(), 1024)}, true
	case c.Err == nil && c.Scaled && c.Decision != nil:
		d := c.Decision
		return Event{Type: "Normal", Reason: "Scaled", Action: "Scale",
			Note: fmt.Sprintf("scaled %s from %d to %d replicas (evaluated %d)", target, d.Current, d.Target, d.Evaluated)}, true
	}
	return Event{}, false
}
