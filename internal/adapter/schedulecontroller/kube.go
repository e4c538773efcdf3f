package schedulecontroller

import (
	"context"
	"errors"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"

	zv1 "github.com/custompodautoscaler/cpa/api/zalando/v1"
)

// The resources of the schedule objects, for the dynamic informers and client.
var (
	ScalingSchedulesResource        = zv1.GroupVersion.WithResource("scalingschedules")
	ClusterScalingSchedulesResource = zv1.GroupVersion.WithResource("clusterscalingschedules")
)

// InformerSchedules is Schedules over the stores of two informers, typically
// dynamic ones (dynamicinformer's ForResource(ScalingSchedulesResource) and
// ForResource(ClusterScalingSchedulesResource)): their *unstructured.Unstructured
// objects are converted to the typed ones on each read. Typed objects in the
// stores (an informer with a transform) are taken as they are.
type InformerSchedules struct {
	scalingSchedules        cache.Store
	clusterScalingSchedules cache.Store
}

var _ Schedules = (*InformerSchedules)(nil)

// NewInformerSchedules returns the Schedules of the stores of the
// ScalingSchedule and ClusterScalingSchedule informers (informer.GetStore()).
func NewInformerSchedules(scalingSchedules, clusterScalingSchedules cache.Store) *InformerSchedules {
	return &InformerSchedules{scalingSchedules: scalingSchedules, clusterScalingSchedules: clusterScalingSchedules}
}

var (
	scalingScheduleGR        = ScalingSchedulesResource.GroupResource()
	clusterScalingScheduleGR = ClusterScalingSchedulesResource.GroupResource()
)

// ListScalingSchedules implements Schedules. Objects that do not convert are
// left out, and the first such problem is returned with the others.
func (s *InformerSchedules) ListScalingSchedules() ([]*zv1.ScalingSchedule, error) {
	return list[zv1.ScalingSchedule](s.scalingSchedules, KindScalingSchedule)
}

// ListClusterScalingSchedules implements Schedules, as ListScalingSchedules.
func (s *InformerSchedules) ListClusterScalingSchedules() ([]*zv1.ClusterScalingSchedule, error) {
	return list[zv1.ClusterScalingSchedule](s.clusterScalingSchedules, KindClusterScalingSchedule)
}

// GetScalingSchedule implements Schedules.
func (s *InformerSchedules) GetScalingSchedule(namespace, name string) (*zv1.ScalingSchedule, error) {
	return get[zv1.ScalingSchedule](s.scalingSchedules, KindScalingSchedule, scalingScheduleGR, namespace+"/"+name, name)
}

// GetClusterScalingSchedule implements Schedules.
func (s *InformerSchedules) GetClusterScalingSchedule(name string) (*zv1.ClusterScalingSchedule, error) {
	return get[zv1.ClusterScalingSchedule](s.clusterScalingSchedules, KindClusterScalingSchedule, clusterScalingScheduleGR, name, name)
}

type scheduleType interface {
	zv1.ScalingSchedule | zv1.ClusterScalingSchedule
}

func list[T scheduleType](store cache.Store, kind string) ([]*T, error) {
	if store == nil {
		return nil, nil
	}
	items := store.List()
	out := make([]*T, 0, len(items))
	var first error
	for _, item := range items {
		o, err := convert[T](item, kind)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		out = append(out, o)
	}
	return out, first
}

func get[T scheduleType](store cache.Store, kind string, gr schema.GroupResource, key, name string) (*T, error) {
	if store == nil {
		return nil, apierrors.NewNotFound(gr, name)
	}
	item, ok, err := store.GetByKey(key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierrors.NewNotFound(gr, name)
	}
	return convert[T](item, kind)
}

// convert returns item, an object of an informer's store, as a *T with its
// TypeMeta set.
func convert[T scheduleType](item any, kind string) (*T, error) {
	switch o := item.(type) {
	case *T:
		return o, nil
	case *unstructured.Unstructured:
		if k := o.GetKind(); k != "" && k != kind {
			return nil, fmt.Errorf("%s %s: the store holds a %s", kind, cache.MetaObjectToName(o), k)
		}
		t := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.UnstructuredContent(), t); err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind, cache.MetaObjectToName(o), err)
		}
		any(t).(runtime.Object).GetObjectKind().SetGroupVersionKind(zv1.GroupVersion.WithKind(kind))
		return t, nil
	}
	return nil, fmt.Errorf("%s: unexpected %T in the informer's store", kind, item)
}

// StatusClient is a StatusWriter over the dynamic client: a JSON merge patch of
// status.active on the /status subresource.
type StatusClient struct {
	client dynamic.Interface
}

var _ StatusWriter = (*StatusClient)(nil)

// NewStatusClient returns a StatusClient writing with client.
func NewStatusClient(client dynamic.Interface) *StatusClient {
	return &StatusClient{client: client}
}

// SetActive implements StatusWriter.
func (s *StatusClient) SetActive(ctx context.Context, ref ScheduleRef, active bool) error {
	if s == nil || s.client == nil {
		return errors.New("schedulecontroller.StatusClient: no client")
	}
	var r dynamic.ResourceInterface
	switch ref.Kind {
	case KindScalingSchedule:
		r = s.client.Resource(ScalingSchedulesResource).Namespace(ref.Namespace)
	case KindClusterScalingSchedule:
		r = s.client.Resource(ClusterScalingSchedulesResource)
	default:
		return fmt.Errorf("%s: not a scaling schedule", ref)
	}
	patch := fmt.Appendf(nil, `{"status":{"active":%t}}`, active)
	if _, err := r.Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("%s: forbidden to patch its status (RBAC: patch on %s/status): %w", ref, resourceOf(ref), err)
		}
		return fmt.Errorf("%s: patching status.active: %w", ref, err)
	}
	return nil
}

func resourceOf(ref ScheduleRef) string {
	if ref.Kind == KindScalingSchedule {
		return scalingScheduleGR.String()
	}
	return clusterScalingScheduleGR.String()
}

// ScaleClient is a Scaler over the /scale subresource of any scalable kind,
// mapped to its resource by a RESTMapper (kube.RefreshingMapper).
type ScaleClient struct {
	client scale.ScalesGetter
	mapper meta.RESTMapper
}

var _ Scaler = (*ScaleClient)(nil)

// NewScaleClient returns a ScaleClient.
func NewScaleClient(client scale.ScalesGetter, mapper meta.RESTMapper) *ScaleClient {
	return &ScaleClient{client: client, mapper: mapper}
}

// ScaleUp implements Scaler: it reads the target's /scale and, if its
// spec.replicas is below replicas, updates it (with the resourceVersion read, so
// a concurrent change by the HPA controller fails this write instead of being
// overwritten).
func (s *ScaleClient) ScaleUp(ctx context.Context, namespace string, target autoscalingv2.CrossVersionObjectReference, replicas int32) (int32, bool, error) {
	if s == nil || s.client == nil || s.mapper == nil {
		return 0, false, errors.New("schedulecontroller.ScaleClient: no client")
	}
	name := fmt.Sprintf("%s %s/%s", target.Kind, namespace, target.Name)
	gv, err := schema.ParseGroupVersion(target.APIVersion)
	if err != nil {
		return 0, false, fmt.Errorf("%s: apiVersion %q: %w", name, target.APIVersion, err)
	}
	var versions []string
	if gv.Version != "" {
		versions = []string{gv.Version}
	}
	m, err := s.mapper.RESTMapping(gv.WithKind(target.Kind).GroupKind(), versions...)
	if err != nil {
		return 0, false, fmt.Errorf("%s: finding its resource: %w", name, err)
	}
	gr := m.Resource.GroupResource()
	scales := s.client.Scales(namespace)
	sc, err := scales.Get(ctx, gr, target.Name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return 0, false, fmt.Errorf("%s: forbidden to get %s/scale (RBAC): %w", name, gr, err)
		}
		return 0, false, fmt.Errorf("%s: get %s/scale: %w", name, gr, err)
	}
	previous := sc.Spec.Replicas
	if previous >= replicas {
		return previous, false, nil
	}
	sc.Spec.Replicas = replicas
	if _, err := scales.Update(ctx, gr, sc, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsForbidden(err) {
			return previous, false, fmt.Errorf("%s: forbidden to update %s/scale (RBAC): %w", name, gr, err)
		}
		return previous, false, fmt.Errorf("%s: update %s/scale: %w", name, gr, err)
	}
	return previous, true, nil
}
