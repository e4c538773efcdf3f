package operator

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cpav1 "github.com/custompodautoscaler/cpa/api/custompodautoscaler/v1"
)

// provisioned is where a reconcile left the autoscaler: its Ready condition, and what it
// changed (one event lists them).
type provisioned struct {
	ready   metav1.ConditionStatus
	reason  string
	message string
	changes []string
}

func (p *provisioned) waiting(reason, format string, args ...any) {
	p.ready, p.reason, p.message = metav1.ConditionFalse, reason, fmt.Sprintf(format, args...)
}

// provision brings the autoscaler's objects to what the resource says. The Role comes
// first: it is where the API server checks that the operator may grant what the
// autoscaler needs, so a target the operator may not grant leaves nothing behind.
func (r *Reconciler) provision(ctx context.Context, cpa *cpav1.CustomPodAutoscaler) (provisioned, error) {
	var p provisioned
	tpl, err := podTemplate(cpa)
	if err != nil {
		return p, &specError{reason: ReasonInvalidSpec, err: err}
	}
	paused, pausedN, err := pausedReplicas(cpa)
	if err != nil {
		return p, &specError{reason: ReasonInvalidSpec, err: err}
	}
	target, err := r.targetResource(ctx, cpa)
	if err != nil {
		return p, err
	}

	role := desiredRole(cpa, target.GroupResource)
	if err := r.apply(ctx, cpa, &p, enabled(cpa.Spec.ProvisionRole, true), role, func(live, want client.Object) {
		live.SetLabels(withLabels(live.GetLabels(), want.GetLabels()))
		live.(*rbacv1.Role).Rules = want.(*rbacv1.Role).Rules
	}); err != nil {
		return p, notGranted(err, cpa, target)
	}
	if err := r.apply(ctx, cpa, &p, enabled(cpa.Spec.ProvisionServiceAccount, true), desiredServiceAccount(cpa), func(live, want client.Object) {
		// Keep what the token controller adds (secrets): only labels are ours.
		live.SetLabels(withLabels(live.GetLabels(), want.GetLabels()))
	}); err != nil {
		return p, err
	}
	if err := r.apply(ctx, cpa, &p, enabled(cpa.Spec.ProvisionRoleBinding, true), desiredRoleBinding(cpa, serviceAccountName(cpa, tpl)), func(live, want client.Object) {
		l, w := live.(*rbacv1.RoleBinding), want.(*rbacv1.RoleBinding)
		l.SetLabels(withLabels(l.GetLabels(), w.GetLabels()))
		l.Subjects = w.Subjects
		// roleRef cannot change; it never does, the Role is named after the resource.
	}); err != nil {
		return p, err
	}

	if !enabled(cpa.Spec.ProvisionPod, true) {
		// The user runs the autoscaler: the operator can only hold the target.
		if _, err := r.removeStale(ctx, cpa, &p, ""); err != nil {
			return p, err
		}
		if paused {
			if err := r.scaleTarget(ctx, cpa, &p, target, pausedN); err != nil {
				return p, err
			}
		}
		p.ready, p.reason, p.message = metav1.ConditionTrue, ReasonProvisioned, "provisionPod is false: the operator runs no autoscaler; its other objects are in place"
		return p, nil
	}
	return p, r.provisionWorkload(ctx, cpa, &p, tpl, target, paused, pausedN)
}

// provisionWorkload keeps the autoscaler's Deployment, in an order that never lets two
// autoscalers act on the target at once: a renamed autoscaler's old Deployment is gone
// before the new one is made, and a pause stops the autoscaler before the target is held.
func (r *Reconciler) provisionWorkload(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, p *provisioned, tpl *template, target targetInfo, paused bool, pausedN int32) error {
	want, err := desiredDeployment(cpa, tpl, paused)
	if err != nil {
		return &specError{reason: ReasonInvalidSpec, err: err}
	}
	stale, err := r.removeStale(ctx, cpa, p, want.GetName())
	if err != nil {
		return err
	}
	if len(stale) > 0 {
		p.waiting(ReasonReplacing, "waiting for the old Deployment %s to be gone before the autoscaler starts as %s", stale[0], want.GetName())
		return nil
	}
	live, err := r.applyDeployment(ctx, cpa, p, want)
	if err != nil {
		return err
	}
	if paused {
		if !stopped(live) {
			p.waiting(ReasonPausing, "waiting for the autoscaler's pods to stop before holding the target at %d replicas", pausedN)
			return nil
		}
		if err := r.scaleTarget(ctx, cpa, p, target, pausedN); err != nil {
			return err
		}
		p.waiting(ReasonPaused, "paused: the autoscaler is stopped and the target held at %d replicas", pausedN)
		return nil
	}
	if !available(live) {
		p.waiting(ReasonStarting, "waiting for the autoscaler's Deployment %s to be available", want.GetName())
		return nil
	}
	p.ready, p.reason, p.message = metav1.ConditionTrue, ReasonAvailable, fmt.Sprintf("the autoscaler's Deployment %s is available", want.GetName())
	return nil
}

// stopped tells whether the Deployment, as last seen, runs no pod of the autoscaler.
func stopped(d *appsv1.Deployment) bool {
	if d == nil || d.Spec.Replicas == nil || *d.Spec.Replicas != 0 || d.Status.ObservedGeneration < d.Generation {
		return false
	}
	return d.Status.Replicas == 0 && (d.Status.TerminatingReplicas == nil || *d.Status.TerminatingReplicas == 0)
}

// available tells whether the Deployment, as last seen, has its autoscaler running.
func available(d *appsv1.Deployment) bool {
	if d == nil || d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas < 1 {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// notOwned is the refusal to take over an object the operator did not create: it would
// change (or, for a Role, grant through) something a user made.
func notOwned(kind, name string, owner *metav1.OwnerReference) error {
	by := "was not created by the operator for this resource"
	if owner != nil {
		by = fmt.Sprintf("is controlled by %s %s", owner.Kind, owner.Name)
	}
	return &specError{reason: ReasonNotOwned, err: fmt.Errorf("%s %s exists and %s; the operator never takes over an object it did not create: rename or remove it, or set the matching provision* field to false", kind, name, by)}
}

// apply creates want if it is missing, or brings the live object to it through mutate;
// an update is sent only when something changed. With provision false the operator
// leaves an object it does not control alone, and deletes one it created earlier.
func (r *Reconciler) apply(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, p *provisioned, provision bool, want client.Object, mutate func(live, want client.Object)) error {
	kind := kindName(want)
	live := want.DeepCopyObject().(client.Object)
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), live)
	switch {
	case apierrors.IsNotFound(err):
		if !provision {
			return nil
		}
		if err := controllerutil.SetControllerReference(cpa, want, r.Scheme); err != nil {
			return err
		}
		if err := r.Client.Create(ctx, want); err != nil {
			return r.createError(ctx, cpa, want, err)
		}
		p.changes = append(p.changes, fmt.Sprintf("created %s %s", kind, want.GetName()))
		return nil
	case err != nil:
		return fmt.Errorf("reading %s %s: %w", kind, want.GetName(), err)
	}
	owned := metav1.IsControlledBy(live, cpa)
	if !provision {
		if owned {
			if err := r.Client.Delete(ctx, live); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("deleting %s %s (no longer provisioned): %w", kind, live.GetName(), err)
			}
			p.changes = append(p.changes, fmt.Sprintf("deleted %s %s (no longer provisioned)", kind, live.GetName()))
		}
		return nil
	}
	if !owned {
		return notOwned(kind, live.GetName(), metav1.GetControllerOf(live))
	}
	before := live.DeepCopyObject()
	mutate(live, want)
	if equality.Semantic.DeepEqual(before, live) {
		return nil
	}
	if err := r.Client.Update(ctx, live); err != nil {
		return writeError("updating", kind, live.GetName(), err)
	}
	p.changes = append(p.changes, fmt.Sprintf("updated %s %s", kind, live.GetName()))
	return nil
}

// createError names a failed create. An object that already exists was not in the
// operator's cache, which holds only what it labelled: it is someone else's, or the
// operator's own, made so recently that the cache has not seen it yet (its watch event
// will bring another reconcile), which an uncached read tells apart.
func (r *Reconciler) createError(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, want client.Object, err error) error {
	kind := kindName(want)
	if !apierrors.IsAlreadyExists(err) {
		return writeError("creating", kind, want.GetName(), err)
	}
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	live := want.DeepCopyObject().(client.Object)
	if gerr := reader.Get(ctx, client.ObjectKeyFromObject(want), live); gerr != nil {
		return fmt.Errorf("creating %s %s: %w; reading it: %w", kind, want.GetName(), err, gerr)
	}
	if metav1.IsControlledBy(live, cpa) {
		return nil
	}
	return notOwned(kind, want.GetName(), metav1.GetControllerOf(live))
}

// writeError names a failed create or update; an invalid object is a specError.
func writeError(verb, kind, name string, err error) error {
	switch {
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return &specError{reason: ReasonInvalidSpec, err: fmt.Errorf("%s %s %s: %w", verb, kind, name, err)}
	}
	return fmt.Errorf("%s %s %s: %w", verb, kind, name, err)
}

// applyDeployment creates or updates the autoscaler's Deployment and returns it as last
// seen (nil when this reconcile created or changed it: its status is not yet known).
// The Deployment is written unstructured, so that template fields this operator's API
// version does not know reach the API server, which validates them strictly.
func (r *Reconciler) applyDeployment(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, p *provisioned, want *unstructured.Unstructured) (*appsv1.Deployment, error) {
	live := &appsv1.Deployment{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), live)
	switch {
	case apierrors.IsNotFound(err):
		if err := controllerutil.SetControllerReference(cpa, want, r.Scheme); err != nil {
			return nil, err
		}
		if err := r.Client.Create(ctx, want, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
			return nil, r.createError(ctx, cpa, want, err)
		}
		p.changes = append(p.changes, "created Deployment "+want.GetName())
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading Deployment %s: %w", want.GetName(), err)
	}
	if !metav1.IsControlledBy(live, cpa) {
		return nil, notOwned("Deployment", live.GetName(), metav1.GetControllerOf(live))
	}
	if deploymentUpToDate(live, want) {
		return live, nil
	}
	// The update starts from the live object as the API server has it, unstructured, so
	// that no field (the template's included) is lost in a typed round trip.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), u); err != nil {
		return nil, fmt.Errorf("reading Deployment %s: %w", want.GetName(), err)
	}
	u.SetLabels(withLabels(u.GetLabels(), want.GetLabels()))
	u.SetAnnotations(withLabels(u.GetAnnotations(), want.GetAnnotations()))
	for _, f := range []string{"replicas", "strategy", "revisionHistoryLimit", "template"} {
		if live.Annotations[TemplateHashAnnotation] == want.GetAnnotations()[TemplateHashAnnotation] && f == "template" {
			continue // only a changed template rolls the autoscaler
		}
		v, _, _ := unstructured.NestedFieldNoCopy(want.Object, "spec", f)
		if err := unstructured.SetNestedField(u.Object, v, "spec", f); err != nil {
			return nil, err
		}
	}
	if err := r.Client.Update(ctx, u, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
		return nil, writeError("updating", "Deployment", want.GetName(), err)
	}
	p.changes = append(p.changes, "updated Deployment "+want.GetName())
	return nil, nil
}

// deploymentUpToDate compares what the operator sets; the template by its hash, since the
// live one carries the API server's defaults.
func deploymentUpToDate(live *appsv1.Deployment, want *unstructured.Unstructured) bool {
	if live.Annotations[TemplateHashAnnotation] != want.GetAnnotations()[TemplateHashAnnotation] {
		return false
	}
	for k, v := range want.GetLabels() {
		if live.Labels[k] != v {
			return false
		}
	}
	replicas, _, _ := unstructured.NestedInt64(want.Object, "spec", "replicas")
	history, _, _ := unstructured.NestedInt64(want.Object, "spec", "revisionHistoryLimit")
	strategy, _, _ := unstructured.NestedString(want.Object, "spec", "strategy", "type")
	return live.Spec.Replicas != nil && int64(*live.Spec.Replicas) == replicas &&
		live.Spec.RevisionHistoryLimit != nil && int64(*live.Spec.RevisionHistoryLimit) == history &&
		string(live.Spec.Strategy.Type) == strategy
}

func kindName(o client.Object) string {
	switch o.(type) {
	case *corev1.ServiceAccount:
		return "ServiceAccount"
	case *rbacv1.Role:
		return "Role"
	case *rbacv1.RoleBinding:
		return "RoleBinding"
	case *appsv1.Deployment:
		return "Deployment"
	}
	if k := o.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	return fmt.Sprintf("%T", o)
}

// removeStale deletes the autoscaler's Deployments other than keep (all of them when keep
// is empty): the template was renamed, or the workload is no longer provisioned. The
// deletion is in the foreground, so a Deployment stays listed until its pods are gone; it
// returns the names still there.
func (r *Reconciler) removeStale(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, p *provisioned, keep string) ([]string, error) {
	var list appsv1.DeploymentList
	if err := r.Client.List(ctx, &list, client.InNamespace(cpa.Namespace), client.MatchingLabels{OwnedByLabel: cpa.Name}); err != nil {
		return nil, fmt.Errorf("listing the autoscaler's Deployments: %w", err)
	}
	var left []string
	for i := range list.Items {
		d := &list.Items[i]
		if d.Name == keep || !metav1.IsControlledBy(d, cpa) {
			continue
		}
		left = append(left, d.Name)
		if d.DeletionTimestamp != nil {
			continue
		}
		if err := r.Client.Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("deleting the old Deployment %s: %w", d.Name, err)
		}
		p.changes = append(p.changes, "deleted the old Deployment "+d.Name)
	}
	return left, nil
}
