package operator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	cpav1 "github.com/custompodautoscaler/cpa/api/custompodautoscaler/v1"
	"github.com/custompodautoscaler/cpa/internal/clip"
)

// FieldManager is the operator's name in the status's managed fields: it owns the Ready
// and Paused conditions and observedGeneration, the runtime owns the rest.
const FieldManager = "custom-pod-autoscaler-operator"

// Condition types and reasons of the status.
const (
	ConditionReady  = "Ready"
	ConditionPaused = "Paused"

	// Ready=True
	ReasonAvailable   = "Available"   // the autoscaler's Deployment is available
	ReasonProvisioned = "Provisioned" // provisionPod false: the objects the operator makes are in place
	// Ready=False
	ReasonStarting        = "Starting"          // waiting for the autoscaler's Deployment to be available
	ReasonReplacing       = "Replacing"         // waiting for a renamed autoscaler's old Deployment to go
	ReasonPausing         = "Pausing"           // waiting for the autoscaler to stop before holding the target
	ReasonInvalidSpec     = "InvalidSpec"       // the resource itself is wrong
	ReasonUnknownTarget   = "UnknownTarget"     // the API server serves no such kind
	ReasonNotScalable     = "TargetNotScalable" // the target's resource has no /scale subresource
	ReasonNotGranted      = "TargetNotGranted"  // the operator itself may not read or scale the target's kind
	ReasonNotOwned        = "ObjectNotOwned"    // an object of the provisioned name exists and is someone else's
	ReasonProvisionFailed = "ProvisioningFailed"
	// Paused
	ReasonPaused  = "Paused"
	ReasonRunning = "Running"
)

// waitRequeue is how soon a reconcile that waits for the cluster (a Deployment to stop
// or go) looks again if no watch event comes first.
const waitRequeue = 5 * time.Second

// Reconciler provisions CustomPodAutoscalers.
type Reconciler struct {
	Client client.Client
	// APIReader reads past the cache (which holds only what the operator labelled), to
	// tell an object of its own that the cache has not seen yet from someone else's.
	// nil means Client.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	// Mapper maps the target's kind to its resource, for the Role and the pause.
	Mapper meta.RESTMapper
	// Discovery tells whether the target's resource has a /scale subresource.
	Discovery Discovery
	Recorder  events.EventRecorder
	// Clock paces re-reads of discovery; nil means the real clock.
	Clock clock.PassiveClock

	scales scaleCache
}

// The operator's own permissions (make generate writes them to deploy/rbac/role.yaml).
// It holds no escalate or bind: the API server lets it write a Role only with rules it
// holds itself, so an autoscaler can be granted the kinds below (and what an admin adds)
// and nothing else. Each rule is one the runtime's Role hands on, or one the operator
// uses (docs/operator.md lists which).
//
// +kubebuilder:rbac:groups=custompodautoscaler.com,resources=custompodautoscalers,verbs=get;list;watch
// +kubebuilder:rbac:groups=custompodautoscaler.com,resources=custompodautoscalers/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=apps,resources=statefulsets;replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=replicationcontrollers,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments/scale;statefulsets/scale;replicasets/scale,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=replicationcontrollers/scale,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=metrics.k8s.io,resources=pods,verbs=get;list
// +kubebuilder:rbac:groups=custom.metrics.k8s.io,resources=*,verbs=get
// +kubebuilder:rbac:groups=external.metrics.k8s.io,resources=*,verbs=get;list
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

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

	st := &statusUpdate{cpa: cpa}
	res, err := r.reconcile(ctx, cpa, st)
	if serr := r.applyStatus(ctx, st); serr != nil {
		err = errors.Join(err, fmt.Errorf("writing the status: %w", serr))
	}
	if err != nil {
		logger.Error(err, "reconcile failed")
	}
	return res, err
}

// specError is a problem of the resource itself, or of what it asks for: retrying does
// not help until it (or the operator's permissions) changes.
type specError struct {
	reason string
	err    error
}

func (e *specError) Error() string { return e.err.Error() }

func (r *Reconciler) reconcile(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, st *statusUpdate) (ctrl.Result, error) {
	paused, n, perr := pausedReplicas(cpa)
	switch {
	case perr != nil:
		st.set(ConditionPaused, metav1.ConditionFalse, ReasonInvalidSpec, perr.Error())
	case paused:
		st.set(ConditionPaused, metav1.ConditionTrue, ReasonPaused, fmt.Sprintf("target held at %d replicas; the autoscaler is stopped", n))
	default:
		st.set(ConditionPaused, metav1.ConditionFalse, ReasonRunning, "not paused")
	}

	p, err := r.provision(ctx, cpa)
	if len(p.changes) > 0 {
		r.event(cpa, corev1.EventTypeNormal, "Provisioned", "Provision", strings.Join(p.changes, ", "))
	}
	var se *specError
	switch {
	case errors.As(err, &se):
		st.set(ConditionReady, metav1.ConditionFalse, se.reason, se.Error())
		r.event(cpa, corev1.EventTypeWarning, se.reason, "Provision", se.Error())
		return ctrl.Result{}, nil // wait for the resource to change
	case err != nil:
		st.set(ConditionReady, metav1.ConditionFalse, ReasonProvisionFailed, err.Error())
		return ctrl.Result{}, err
	}
	st.set(ConditionReady, p.ready, p.reason, p.message)
	if p.reason == ReasonReplacing || p.reason == ReasonPausing {
		// Waiting on the cluster: the owned Deployment's watch usually wakes us first.
		return ctrl.Result{RequeueAfter: waitRequeue}, nil
	}
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

// maxEventNote is the API server's limit on an event's note.
const maxEventNote = 1024

func (r *Reconciler) event(cpa *cpav1.CustomPodAutoscaler, typ, reason, action, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(cpa, nil, typ, reason, action, "%s", clip.String(note, maxEventNote))
	}
}

// SetupWithManager registers the reconciler: it watches CustomPodAutoscalers and the
// objects they own, so a deleted or changed ServiceAccount, Role, RoleBinding or
// Deployment is put back. Status writes (the runtime's, every time its figures change)
// do not wake it: only changes of spec, labels and annotations do. Concurrency comes
// from the manager's options (--max-concurrent-reconciles).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Discovery == nil {
		d, err := newDiscovery(mgr.GetConfig())
		if err != nil {
			return err
		}
		r.Discovery = d
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&cpav1.CustomPodAutoscaler{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&appsv1.Deployment{}).
		Named("custompodautoscaler").
		Complete(r)
}
