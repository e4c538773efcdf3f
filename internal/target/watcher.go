// Package target keeps an up-to-date view of the scale target and its pods through
// informers, and applies replica counts through the /scale subresource.
//
// A steady-state cycle costs no API request: the target and its pods come from watch
// caches, and the /scale subresource is read again only when the target's
// resourceVersion has moved since it was last read (the two share one resourceVersion).
package target

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
)

// Snapshot is the target as the autoscaler sees it at the start of a cycle.
type Snapshot struct {
	// Object is the target resource (managedFields stripped). Treat as read-only.
	Object *unstructured.Unstructured
	// Replicas is the current replica count from the /scale subresource.
	Replicas int32
	// Selector is the pod label selector from the /scale subresource's status.
	Selector string
}

// Watcher watches one scale target and its pods.
type Watcher struct {
	ref       autoscalingv2.CrossVersionObjectReference
	namespace string
	kube      kubernetes.Interface
	dynamic   dynamic.Interface
	scales    scale.ScalesGetter
	mapper    meta.RESTMapper

	gvr      schema.GroupVersionResource
	informer cache.SharedIndexInformer

	mu        sync.Mutex
	lastScale *autoscalingv1.Scale
	pods      *podCache
}

// Clients are what a Watcher needs to reach the API server.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	Scales  scale.ScalesGetter
	Mapper  meta.RESTMapper
}

// NewWatcher returns a Watcher for the target ref in namespace; call Start before use.
func NewWatcher(ref autoscalingv2.CrossVersionObjectReference, namespace string, c Clients) *Watcher {
	return &Watcher{ref: ref, namespace: namespace, kube: c.Kube, dynamic: c.Dynamic, scales: c.Scales, mapper: c.Mapper}
}

// syncTimeout bounds the wait for a watch cache's first list.
const syncTimeout = time.Minute

// Start resolves the target's resource, starts watching it and waits (at most a minute)
// for the first list. The watch lasts until ctx is done.
func (w *Watcher) Start(ctx context.Context) error {
	gv, err := schema.ParseGroupVersion(w.ref.APIVersion)
	if err != nil {
		return fmt.Errorf("scaleTargetRef.apiVersion %q: %w", w.ref.APIVersion, err)
	}
	mapping, err := w.mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: w.ref.Kind}, gv.Version)
	if err != nil {
		return fmt.Errorf("scaleTargetRef: the API server does not serve kind %q in %q: %w", w.ref.Kind, w.ref.APIVersion, err)
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		return fmt.Errorf("scaleTargetRef: %s %s is not namespaced", w.ref.APIVersion, w.ref.Kind)
	}
	w.gvr = mapping.Resource
	tweak := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.ref.Name).String()
	}
	w.informer = dynamicinformer.NewFilteredDynamicInformer(w.dynamic, w.gvr, w.namespace, 0, cache.Indexers{}, tweak).Informer()
	if err := w.informer.SetTransform(stripManagedFields); err != nil {
		return fmt.Errorf("watching the target: %w", err)
	}
	go w.informer.RunWithContext(ctx)
	waitCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(waitCtx.Done(), w.informer.HasSynced) {
		return fmt.Errorf("watching %s: no first list within %s: %w", w.describe(), syncTimeout, waitCtx.Err())
	}
	return nil
}

func (w *Watcher) describe() string {
	return fmt.Sprintf("%s %s/%s", w.ref.Kind, w.namespace, w.ref.Name)
}

// Snapshot returns the target and its current scale. It reads the /scale subresource
// only when the target changed since the last read.
func (w *Watcher) Snapshot(ctx context.Context) (*Snapshot, error) {
	item, exists, err := w.informer.GetStore().GetByKey(w.namespace + "/" + w.ref.Name)
	if err != nil {
		return nil, fmt.Errorf("reading %s from the watch cache: %w", w.describe(), err)
	}
	if !exists {
		return nil, fmt.Errorf("scale target %s not found", w.describe())
	}
	obj, ok := item.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("watch cache holds %T for %s", item, w.describe())
	}
	sc, err := w.scale(ctx, obj.GetResourceVersion())
	if err != nil {
		return nil, err
	}
	return &Snapshot{Object: obj, Replicas: sc.Spec.Replicas, Selector: sc.Status.Selector}, nil
}

func (w *Watcher) scale(ctx context.Context, resourceVersion string) (*autoscalingv1.Scale, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastScale != nil && w.lastScale.ResourceVersion == resourceVersion {
		return w.lastScale, nil
	}
	sc, err := w.scales.Scales(w.namespace).Get(ctx, w.gvr.GroupResource(), w.ref.Name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the /scale subresource of %s: not found (does %s have a scale subresource?): %w", w.describe(), w.gvr.Resource, err)
		}
		return nil, fmt.Errorf("reading the /scale subresource of %s: %w", w.describe(), err)
	}
	w.lastScale = sc
	return sc, nil
}

// SetReplicas patches the target's /scale subresource to n replicas.
func (w *Watcher) SetReplicas(ctx context.Context, n int32) error {
	patch := fmt.Appendf(nil, `[{"op":"replace","path":"/spec/replicas","value":%d}]`, n)
	sc, err := w.scales.Scales(w.namespace).Patch(ctx, w.gvr, w.ref.Name, types.JSONPatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("scaling %s to %d replicas: %w", w.describe(), n, err)
	}
	w.mu.Lock()
	w.lastScale = sc
	w.mu.Unlock()
	return nil
}

// Pods returns the target's pods that are neither terminating nor finished, sorted by
// name, from a watch cache of the pods matching selector. The cache is started on
// first use and restarted when the selector changes.
func (w *Watcher) Pods(ctx context.Context, selector string) ([]*corev1.Pod, error) {
	if selector == "" {
		return nil, fmt.Errorf("the /scale subresource of %s reports no pod selector", w.describe())
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil, fmt.Errorf("parsing the pod selector %q of %s: %w", selector, w.describe(), err)
	}
	pc, err := w.podCacheFor(ctx, selector)
	if err != nil {
		return nil, err
	}
	all, err := pc.lister.Pods(w.namespace).List(sel)
	if err != nil {
		return nil, fmt.Errorf("listing pods of %s from the watch cache: %w", w.describe(), err)
	}
	return Active(all), nil
}

// Active returns the pods that are neither terminating nor finished, sorted by name.
func Active(pods []*corev1.Pod) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(pods))
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type podCache struct {
	selector string
	lister   corelisters.PodLister
	stop     func()
}

var errStopped = errors.New("pod watch stopped")

func (w *Watcher) podCacheFor(ctx context.Context, selector string) (*podCache, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pods != nil && w.pods.selector == selector {
		return w.pods, nil
	}
	if w.pods != nil {
		w.pods.stop()
		w.pods = nil
	}
	factory := informers.NewSharedInformerFactoryWithOptions(w.kube, 0,
		informers.WithNamespace(w.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }),
		informers.WithTransform(stripManagedFields),
	)
	informer := factory.Core().V1().Pods().Informer()
	// The pod watch lives as long as the watcher, not the cycle that started it.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	factory.Start(runCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		cancel()
		factory.Shutdown()
		err := ctx.Err()
		if err == nil {
			err = errStopped
		}
		return nil, fmt.Errorf("watching pods of %s: %w", w.describe(), err)
	}
	w.pods = &podCache{selector: selector, lister: factory.Core().V1().Pods().Lister(), stop: func() { cancel(); factory.Shutdown() }}
	return w.pods, nil
}

// Stop stops the pod watch; the target watch stops with the context given to Start.
func (w *Watcher) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pods != nil {
		w.pods.stop()
		w.pods = nil
	}
}

// stripManagedFields drops server-side-apply bookkeeping: user logic does not need it and
// it is a large share of each cached object's memory and of each stage's input.
func stripManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}
