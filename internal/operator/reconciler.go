package operator

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	cpav1 "github.com/custompodautoscaler/cpa/api/v1"
)

// Condition types and reasons of the status.
const (
	ConditionReady  = "Ready"
	ConditionPaused = "Paused"

	ReasonProvisioned   = "Provisioned"
	ReasonInvalidSpec   = "InvalidSpec"
	ReasonUnknownTarget = "UnknownTarget"
	ReasonProvisionFail = "ProvisioningFailed"
	ReasonPaused        = "Paused"
	ReasonRunning       = "Running"
)

// Reconciler provisions CustomPodAutoscalers.
type Reconciler struct {
	Client client.Client
	Scheme *runtime.Scheme
	// Mapper maps the target's kind to its resource, for the Role and the pause.
	Mapper   meta.RESTMapper
	Recorder events.EventRecorder
}

// The operator's own permissions (make generate writes them to deploy/rbac/role.yaml).
// It may grant in a Role only what it holds itself, unless it may escalate and bind:
// an autoscaler's Role names its target's resource, which can be any kind with /scale.
//
// +kubebuilder:rbac:groups=custompodautoscaler.com,resources=custompodautoscalers,verbs=get;list;watch
// +kubebuilder:rbac:groups=custompodautoscaler.com,resources=custompodautoscalers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles,verbs=escalate;bind
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=*,resources=*/scale,verbs=get;patch;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update

// Reconcile brings one CustomPodAutoscaler's objects to what it says.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	cpa := &cpav1.CustomPodAutoscaler{}
	if err := r.Client.Get(ctx, req.NamespacedName, cpa); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// Being deleted (foreground or not): garbage collection removes what it owns;
	// re-creating anything now would loop.
	if cpa.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}

	status := cpa.Status.DeepCopy()
	status.ObservedGeneration = cpa.Generation
	res, err := r.reconcile(ctx, cpa, status)
	if !equality.Semantic.DeepEqual(status, &cpa.Status) {
		patched := cpa.DeepCopy()
		patched.Status = *status
		if perr := r.Client.Status().Patch(ctx, patched, client.MergeFrom(cpa)); perr != nil && !apierrors.IsNotFound(perr) {
			err = errors.Join(err, fmt.Errorf("updating the status: %w", perr))
		}
	}
	if err != nil {
		logger.Error(err, "reconcile failed")
	}
	return res, err
}

// specError is a problem of the resource itself: retrying does not help until it changes.
type specError struct {
	reason string
	err    error
}

func (e *specError) Error() string { return e.err.Error() }

func (r *Reconciler) reconcile(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, status *cpav1.CustomPodAutoscalerStatus) (ctrl.Result, error) {
	err := r.provision(ctx, cpa)
	var se *specError
	switch {
	case errors.As(err, &se):
		r.setCondition(cpa, status, ConditionReady, metav1.ConditionFalse, se.reason, se.Error())
		r.event(cpa, corev1.EventTypeWarning, se.reason, "Provision", se.Error())
		return ctrl.Result{}, nil // wait for the resource to change
	case err != nil:
		r.setCondition(cpa, status, ConditionReady, metav1.ConditionFalse, ReasonProvisionFail, err.Error())
		return ctrl.Result{}, err
	}
	paused, n, perr := pausedReplicas(cpa)
	if perr != nil {
		r.setCondition(cpa, status, ConditionPaused, metav1.ConditionFalse, ReasonInvalidSpec, perr.Error())
	} else if paused {
		r.setCondition(cpa, status, ConditionPaused, metav1.ConditionTrue, ReasonPaused, fmt.Sprintf("target held at %d replicas; the autoscaler is stopped", n))
	} else {
		r.setCondition(cpa, status, ConditionPaused, metav1.ConditionFalse, ReasonRunning, "not paused")
	}
	r.setCondition(cpa, status, ConditionReady, metav1.ConditionTrue, ReasonProvisioned, "the autoscaler's objects are provisioned")
	return ctrl.Result{}, nil
}

// pausedReplicas reads the pause annotation.
func pausedReplicas(cpa *cpav1.CustomPodAutoscaler) (bool, int32, error) {
	v, ok := cpa.Annotations[cpav1.PausedReplicasAnnotation]
	if !ok {
		return false, 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return false, 0, fmt.Errorf("annotation %s=%q: want a replica count of 0 or more", cpav1.PausedReplicasAnnotation, v)
	}
	return true, int32(n), nil
}

func (r *Reconciler) provision(ctx context.Context, cpa *cpav1.CustomPodAutoscaler) error {
	podMeta, podSpec, err := podTemplate(cpa)
	if err != nil {
		return &specError{reason: ReasonInvalidSpec, err: err}
	}
	target, err := r.targetResource(cpa)
	if err != nil {
		return err
	}
	paused, pausedN, err := pausedReplicas(cpa)
	if err != nil {
		return &specError{reason: ReasonInvalidSpec, err: err}
	}

	if err := r.apply(ctx, cpa, enabled(cpa.Spec.ProvisionServiceAccount, true), desiredServiceAccount(cpa), func(live, want client.Object) {
		// Keep what the token controller adds (secrets): only labels are ours.
		live.SetLabels(merge(live.GetLabels(), want.GetLabels()))
	}); err != nil {
		return err
	}
	if err := r.apply(ctx, cpa, enabled(cpa.Spec.ProvisionRole, true), desiredRole(cpa, target), func(live, want client.Object) {
		live.SetLabels(merge(live.GetLabels(), want.GetLabels()))
		live.(*rbacv1.Role).Rules = want.(*rbacv1.Role).Rules
	}); err != nil {
		return err
	}
	if err := r.apply(ctx, cpa, enabled(cpa.Spec.ProvisionRoleBinding, true), desiredRoleBinding(cpa, serviceAccountName(cpa, &podSpec)), func(live, want client.Object) {
		l, w := live.(*rbacv1.RoleBinding), want.(*rbacv1.RoleBinding)
		l.SetLabels(merge(l.GetLabels(), w.GetLabels()))
		l.Subjects = w.Subjects
		// roleRef cannot change; it never does, the Role is named after the resource.
	}); err != nil {
		return err
	}

	// Pausing: hold the target at the annotation's count before stopping the autoscaler
	// would let it race the change.
	if paused {
		if err := r.scaleTarget(ctx, cpa, target, pausedN); err != nil {
			return err
		}
	}
	deploy, err := desiredDeployment(cpa, podMeta, podSpec, paused)
	if err != nil {
		return err
	}
	if err := r.apply(ctx, cpa, enabled(cpa.Spec.ProvisionPod, true), deploy, func(live, want client.Object) {
		l, w := live.(*appsv1.Deployment), want.(*appsv1.Deployment)
		l.SetLabels(merge(l.GetLabels(), w.GetLabels()))
		l.Spec.Replicas = w.Spec.Replicas
		l.Spec.Strategy = w.Spec.Strategy
		l.Spec.RevisionHistoryLimit = w.Spec.RevisionHistoryLimit
		// Only a changed template rolls the autoscaler. The live template carries the
		// API server's defaults, so the desired one is compared by its hash.
		if l.Annotations[TemplateHashAnnotation] != w.Annotations[TemplateHashAnnotation] {
			l.SetAnnotations(merge(l.GetAnnotations(), map[string]string{TemplateHashAnnotation: w.Annotations[TemplateHashAnnotation]}))
			l.Spec.Template = w.Spec.Template
		}
	}); err != nil {
		return err
	}
	return r.removeStale(ctx, cpa, deploy.Name, enabled(cpa.Spec.ProvisionPod, true))
}

func merge(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// apply creates want if it is missing, or brings the live object to it through mutate;
// an update is sent only when something changed. With provision false the operator
// leaves an object it does not control alone, and deletes one it created earlier.
func (r *Reconciler) apply(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, provision bool, want client.Object, mutate func(live, want client.Object)) error {
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
			if apierrors.IsInvalid(err) {
				return &specError{reason: ReasonInvalidSpec, err: fmt.Errorf("creating %s %s: %w", kind, want.GetName(), err)}
			}
			return fmt.Errorf("creating %s %s: %w", kind, want.GetName(), err)
		}
		r.event(cpa, corev1.EventTypeNormal, "Created", "Provision", fmt.Sprintf("created %s %s", kind, want.GetName()))
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
		}
		return nil
	}
	if !owned {
		if ref := metav1.GetControllerOf(live); ref != nil {
			return &specError{reason: ReasonProvisionFail, err: fmt.Errorf("%s %s exists and is controlled by %s %s; rename or remove it", kind, live.GetName(), ref.Kind, ref.Name)}
		}
		// An object the user made before: adopt it.
		if err := controllerutil.SetControllerReference(cpa, live, r.Scheme); err != nil {
			return err
		}
	}
	before := live.DeepCopyObject()
	mutate(live, want)
	if equality.Semantic.DeepEqual(before, live) {
		return nil
	}
	if err := r.Client.Update(ctx, live); err != nil {
		if apierrors.IsInvalid(err) {
			return &specError{reason: ReasonInvalidSpec, err: fmt.Errorf("updating %s %s: %w", kind, live.GetName(), err)}
		}
		return fmt.Errorf("updating %s %s: %w", kind, live.GetName(), err)
	}
	r.event(cpa, corev1.EventTypeNormal, "Updated", "Provision", fmt.Sprintf("updated %s %s", kind, live.GetName()))
	return nil
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
	return fmt.Sprintf("%T", o)
}

// removeStale deletes the autoscaler's Deployments of other names (the template was
// renamed), and its own when the workload is no longer provisioned.
func (r *Reconciler) removeStale(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, keep string, provision bool) error {
	var list appsv1.DeploymentList
	if err := r.Client.List(ctx, &list, client.InNamespace(cpa.Namespace), client.MatchingLabels{OwnedByLabel: cpa.Name}); err != nil {
		return fmt.Errorf("listing the autoscaler's Deployments: %w", err)
	}
	for i := range list.Items {
		d := &list.Items[i]
		if (d.Name == keep && provision) || !metav1.IsControlledBy(d, cpa) {
			continue
		}
		if err := r.Client.Delete(ctx, d); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting the old Deployment %s: %w", d.Name, err)
		}
		r.event(cpa, corev1.EventTypeNormal, "Deleted", "Provision", "deleted the old Deployment "+d.Name)
	}
	return nil
}

// targetResource maps the target's kind to its resource.
func (r *Reconciler) targetResource(cpa *cpav1.CustomPodAutoscaler) (schema.GroupResource, error) {
	ref := cpa.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return schema.GroupResource{}, &specError{reason: ReasonInvalidSpec, err: fmt.Errorf("spec.scaleTargetRef.apiVersion %q: %w", ref.APIVersion, err)}
	}
	m, err := r.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return schema.GroupResource{}, &specError{reason: ReasonUnknownTarget, err: fmt.Errorf("spec.scaleTargetRef: the API server does not serve kind %q in %q", ref.Kind, ref.APIVersion)}
		}
		return schema.GroupResource{}, err
	}
	return m.Resource.GroupResource(), nil
}

// scaleTarget sets the target's replicas through its /scale subresource.
func (r *Reconciler) scaleTarget(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, target schema.GroupResource, n int32) error {
	ref := cpa.Spec.ScaleTargetRef
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion(ref.APIVersion)
	obj.SetKind(ref.Kind)
	obj.SetNamespace(cpa.Namespace)
	obj.SetName(ref.Name)
	// The target may be of any kind, so it and its Scale are unstructured.
	sc := &unstructured.Unstructured{}
	sc.SetAPIVersion("autoscaling/v1")
	sc.SetKind("Scale")
	if err := r.Client.SubResource("scale").Get(ctx, obj, sc); err != nil {
		return fmt.Errorf("pausing: reading the /scale of %s %s: %w", target.String(), ref.Name, err)
	}
	if cur, found, _ := unstructured.NestedInt64(sc.Object, "spec", "replicas"); found && cur == int64(n) {
		return nil
	}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n))
	if err := r.Client.SubResource("scale").Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("pausing: scaling %s %s to %d: %w", target.String(), ref.Name, n, err)
	}
	r.event(cpa, corev1.EventTypeNormal, "Paused", "Scale", fmt.Sprintf("scaled %s %s to %d replicas (paused)", ref.Kind, ref.Name, n))
	return nil
}

func (r *Reconciler) setCondition(cpa *cpav1.CustomPodAutoscaler, status *cpav1.CustomPodAutoscalerStatus, typ string, st metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: cpa.Generation})
}

func (r *Reconciler) event(cpa *cpav1.CustomPodAutoscaler, typ, reason, action, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(cpa, nil, typ, reason, action, "%s", note)
	}
}

// SetupWithManager registers the reconciler: it watches CustomPodAutoscalers and the
// objects they own, so a deleted or changed ServiceAccount, Role, RoleBinding or
// Deployment is put back.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&cpav1.CustomPodAutoscaler{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&appsv1.Deployment{}).
		Named("custompodautoscaler").
		Complete(r)
}
