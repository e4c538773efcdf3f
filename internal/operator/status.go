package operator

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cpav1 "github.com/custompodautoscaler/cpa/api/custompodautoscaler/v1"
)

// statusUpdate collects the operator's part of the status: its conditions and the
// generation it acted on.
type statusUpdate struct {
	cpa   *cpav1.CustomPodAutoscaler
	conds []metav1.Condition
}

// set records a condition, keeping its last transition time while its status holds.
func (s *statusUpdate) set(typ string, st metav1.ConditionStatus, reason, msg string) {
	c := metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: s.cpa.Generation, LastTransitionTime: metav1.Now()}
	if old := meta.FindStatusCondition(s.cpa.Status.Conditions, typ); old != nil && old.Status == st {
		c.LastTransitionTime = old.LastTransitionTime
	}
	s.conds = append(s.conds, c)
}

// unchanged tells whether the live status already says all of it.
func (s *statusUpdate) unchanged() bool {
	if s.cpa.Status.ObservedGeneration != s.cpa.Generation {
		return false
	}
	for _, c := range s.conds {
		old := meta.FindStatusCondition(s.cpa.Status.Conditions, c.Type)
		if old == nil || old.Status != c.Status || old.Reason != c.Reason || old.Message != c.Message || old.ObservedGeneration != c.ObservedGeneration {
			return false
		}
	}
	return true
}

// applyStatus writes the operator's part of the status with server-side apply, as field
// manager FieldManager: the runtime's conditions and figures, applied under its own
// manager, are left alone. Nothing is sent when nothing changed.
func (r *Reconciler) applyStatus(ctx context.Context, s *statusUpdate) error {
	if s.unchanged() {
		return nil
	}
	conds := make([]any, 0, len(s.conds))
	for i := range s.conds {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&s.conds[i])
		if err != nil {
			return err
		}
		conds = append(conds, m)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": cpav1.GroupVersion.String(),
		"kind":       "CustomPodAutoscaler",
		"metadata":   map[string]any{"name": s.cpa.Name, "namespace": s.cpa.Namespace},
		"status": map[string]any{
			"observedGeneration": s.cpa.Generation,
			"conditions":         conds,
		},
	}}
	err := r.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership)
	return client.IgnoreNotFound(err)
}
