package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cpav1 "github.com/custompodautoscaler/cpa/api/custompodautoscaler/v1"
)

// Discovery lists the resources the API server serves in a group version.
type Discovery interface {
	ServerResourcesForGroupVersion(groupVersion string) (*metav1.APIResourceList, error)
	// Invalidate forgets what was cached, so that a kind added since is seen.
	Invalidate()
}

// newDiscovery is a discovery client that caches each group version's resources.
func newDiscovery(cfg *rest.Config) (Discovery, error) {
	d, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return memory.NewMemCacheClient(d), nil
}

// rediscoverEvery bounds how often a target without /scale makes discovery read again:
// many resources naming such a kind must not each cost a round of discovery requests.
const rediscoverEvery = 30 * time.Second

// scaleCache paces discovery re-reads.
type scaleCache struct {
	mu   sync.Mutex
	last time.Time
}

// targetInfo is the scale target's resource.
type targetInfo struct {
	schema.GroupResource
	kind string
}

// targetResource maps the target's kind to its resource and checks that it has a /scale
// subresource. A kind without one (a Secret, a ConfigMap) is refused before anything is
// provisioned: the autoscaler could never scale it, and its Role would hand out read
// access to the object.
func (r *Reconciler) targetResource(ctx context.Context, cpa *cpav1.CustomPodAutoscaler) (targetInfo, error) {
	ref := cpa.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return targetInfo{}, &specError{reason: ReasonInvalidSpec, err: fmt.Errorf("spec.scaleTargetRef.apiVersion %q: %w", ref.APIVersion, err)}
	}
	m, err := r.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return targetInfo{}, &specError{reason: ReasonUnknownTarget, err: fmt.Errorf("spec.scaleTargetRef: the API server does not serve kind %q in %q", ref.Kind, ref.APIVersion)}
		}
		return targetInfo{}, err
	}
	t := targetInfo{GroupResource: m.Resource.GroupResource(), kind: ref.Kind}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return t, &specError{reason: ReasonNotScalable, err: fmt.Errorf("spec.scaleTargetRef: kind %q (%s) is not namespaced; a CustomPodAutoscaler scales an object of its own namespace", ref.Kind, t.String())}
	}
	ok, err := r.hasScale(m.Resource)
	if err != nil {
		return t, fmt.Errorf("discovering the subresources of %s: %w", t.String(), err)
	}
	if !ok {
		return t, &specError{reason: ReasonNotScalable, err: fmt.Errorf("spec.scaleTargetRef: kind %q (%s) has no /scale subresource, so it cannot be a scale target", ref.Kind, t.String())}
	}
	return t, nil
}

// hasScale asks discovery whether the resource has a /scale subresource; on a miss it
// reads discovery again (at most every rediscoverEvery) in case the kind just gained one.
func (r *Reconciler) hasScale(gvr schema.GroupVersionResource) (bool, error) {
	find := func() (bool, error) {
		list, err := r.Discovery.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
		if err != nil {
			// Not served, or not in the cache (a group version added since it was filled).
			if apierrors.IsNotFound(err) || errors.Is(err, memory.ErrCacheNotFound) {
				return false, nil
			}
			return false, err
		}
		for _, res := range list.APIResources {
			if res.Name == gvr.Resource+"/scale" {
				return true, nil
			}
		}
		return false, nil
	}
	if ok, err := find(); ok || err != nil {
		return ok, err
	}
	clk := r.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	r.scales.mu.Lock()
	again := clk.Since(r.scales.last) >= rediscoverEvery
	if again {
		r.scales.last = clk.Now()
		r.Discovery.Invalidate()
	}
	r.scales.mu.Unlock()
	if !again {
		return false, nil
	}
	return find()
}

// escalationMessage is how the API server's RBAC refuses a Role with rules its author
// does not hold (and may not escalate).
const escalationMessage = "attempting to grant RBAC permissions not currently held"

// notGranted turns the API server's refusal to let the operator write the Role into the
// condition a cluster admin can act on: the rule the operator's own role lacks.
func notGranted(err error, cpa *cpav1.CustomPodAutoscaler, t targetInfo) error {
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), escalationMessage) {
		return err
	}
	return &specError{reason: ReasonNotGranted, err: fmt.Errorf(
		"the operator may not grant the autoscaler access to %s %q: it grants only what it holds itself. "+
			"A cluster admin who wants %s targets adds to the operator's ClusterRole (or Role) the rules "+
			"{apiGroups: [%q], resources: [%q], verbs: [get, list, watch]} and {apiGroups: [%q], resources: [%q], verbs: [get, patch]} "+
			"(Helm: extraScaleTargets with apiGroup %q, resource %q); the API server said: %v",
		cpa.Spec.ScaleTargetRef.Kind, cpa.Spec.ScaleTargetRef.Name, cpa.Spec.ScaleTargetRef.Kind,
		t.Group, t.Resource, t.Group, t.Resource+"/scale", t.Group, t.Resource, err)}
}

// scaleTarget sets the target's replicas through its /scale subresource.
func (r *Reconciler) scaleTarget(ctx context.Context, cpa *cpav1.CustomPodAutoscaler, p *provisioned, t targetInfo, n int32) error {
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
		return fmt.Errorf("pausing: reading the /scale of %s %s: %w", t.String(), ref.Name, err)
	}
	if cur, found, _ := unstructured.NestedInt64(sc.Object, "spec", "replicas"); found && cur == int64(n) {
		return nil
	}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n))
	if err := r.Client.SubResource("scale").Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("pausing: scaling %s %s to %d: %w", t.String(), ref.Name, n, err)
	}
	p.changes = append(p.changes, fmt.Sprintf("scaled %s %s to %d replicas (paused)", ref.Kind, ref.Name, n))
	return nil
}
