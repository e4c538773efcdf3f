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
	"log/slog"
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
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/scale"
	"k8s.io/utils/clock"
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
//
// No lock is held while waiting on the API server, and every wait is bounded: a cycle
// that cannot get what it needs fails with an error naming it, and the next one retries.
type Watcher struct {
	ref       autoscalingv2.CrossVersionObjectReference
	namespace string
	kube      kubernetes.Interface
	dynamic   dynamic.Interface
	scales    scale.ScalesGetter
	mapper    meta.RESTMapper
	clock     clock.Clock
	log       *slog.Logger
	timeout   time.Duration

	gvr    schema.GroupVersionResource
	target *source

	mu        sync.Mutex
	lastScale *autoscalingv1.Scale
	pods      *podCache
	warned    map[schema.GroupResource]bool // list-only access already logged
}

// Clients are what a Watcher needs to reach the API server.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	Scales  scale.ScalesGetter
	Mapper  meta.RESTMapper
}

// Options tune a Watcher; the zero value is the default.
type Options struct {
	// Clock times the bounded waits; default the real clock.
	Clock clock.Clock
	// Logger gets the warning about a refused watch; default discards.
	Logger *slog.Logger
	// Timeout bounds each wait on the API server during a cycle: one request, or a
	// watch's first list. Default DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout bounds each wait on the API server during a cycle.
const DefaultTimeout = 30 * time.Second

// startTimeout bounds the wait for the target's first list at start.
const startTimeout = time.Minute

// NewWatcher returns a Watcher for the target ref in namespace; call Start before use.
func NewWatcher(ref autoscalingv2.CrossVersionObjectReference, namespace string, c Clients, o Options) *Watcher {
	w := &Watcher{ref: ref, namespace: namespace, kube: c.Kube, dynamic: c.Dynamic, scales: c.Scales, mapper: c.Mapper,
		clock: o.Clock, log: o.Logger, timeout: o.Timeout}
	if w.clock == nil {
		w.clock = clock.RealClock{}
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	return w
}

// Start resolves the target's resource, starts watching it and waits (at most a minute)
// for the first list; a refused list is an error at once. The watch lasts until ctx is
// done.
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
	byName := fields.OneTermEqualSelector("metadata.name", w.ref.Name).String()
	res := w.dynamic.Resource(w.gvr).Namespace(w.namespace)
	w.target = newSource(w.gvr.GroupResource(), w.namespace, listWatch{
		list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = byName
			return res.List(ctx, o)
		},
		watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = byName
			return res.Watch(ctx, o)
		},
		client: w.dynamic,
	}, &unstructured.Unstructured{}, w.clock, w.log, w.timeout, w.warnListOnly(w.gvr.GroupResource()))
	if err := w.target.run(ctx); err != nil {
		return fmt.Errorf("watching %s: %w", w.describe(), err)
	}
	err = w.target.waitSynced(ctx, startTimeout)
	if err != nil && !errors.Is(err, errWatchDenied) {
		// A refused watch is not fatal: the first cycle switches to listing.
		w.target.shutdown()
		return fmt.Errorf("watching %s: %w", w.describe(), err)
	}
	return nil
}

func (w *Watcher) describe() string {
	return fmt.Sprintf("%s %s/%s", w.ref.Kind, w.namespace, w.ref.Name)
}

// Snapshot returns the target and its current scale. It reads the /scale subresource
// only when the target changed since the last read.
func (w *Watcher) Snapshot(ctx context.Context) (*Snapshot, error) {
	items, err := w.target.items(ctx, w.timeout)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", w.describe(), err)
	}
	var obj *unstructured.Unstructured
	for _, it := range items {
		if u, ok := it.(*unstructured.Unstructured); ok && u.GetName() == w.ref.Name && u.GetNamespace() == w.namespace {
			obj = u
		}
	}
	if obj == nil {
		return nil, fmt.Errorf("scale target %s not found", w.describe())
	}
	sc, err := w.scale(ctx, obj.GetResourceVersion())
	if err != nil {
		return nil, err
	}
	return &Snapshot{Object: obj, Replicas: sc.Spec.Replicas, Selector: sc.Status.Selector}, nil
}

func (w *Watcher) scale(ctx context.Context, resourceVersion string) (*autoscalingv1.Scale, error) {
	w.mu.Lock()
	last := w.lastScale
	w.mu.Unlock()
	if last != nil && last.ResourceVersion == resourceVersion {
		return last, nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	sc, err := w.scales.Scales(w.namespace).Get(ctx, w.gvr.GroupResource(), w.ref.Name, metav1.GetOptions{})
	if err != nil {
		switch {
		case isDenied(err):
			return nil, denied(err, "get", w.scaleResource(), w.namespace)
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("reading the /scale subresource of %s: not found (does %s have a scale subresource?): %w", w.describe(), w.gvr.Resource, err)
		}
		return nil, fmt.Errorf("reading the /scale subresource of %s: %w", w.describe(), err)
	}
	w.mu.Lock()
	w.lastScale = sc
	w.mu.Unlock()
	return sc, nil
}

// scaleResource names the /scale subresource in permission errors, as RBAC rules do.
func (w *Watcher) scaleResource() schema.GroupResource {
	gr := w.gvr.GroupResource()
	gr.Resource += "/scale"
	return gr
}

// SetReplicas patches the target's /scale subresource to n replicas.
func (w *Watcher) SetReplicas(ctx context.Context, n int32) error {
	patch := fmt.Appendf(nil, `[{"op":"replace","path":"/spec/replicas","value":%d}]`, n)
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	sc, err := w.scales.Scales(w.namespace).Patch(ctx, w.gvr, w.ref.Name, types.JSONPatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("scaling %s to %d replicas: %w", w.describe(), n, denied(err, "patch", w.scaleResource(), w.namespace))
	}
	w.mu.Lock()
	w.lastScale = sc
	w.mu.Unlock()
	return nil
}

// Pods returns the target's pods that are neither terminating nor finished, sorted by
// name, from a watch cache of the pods matching selector. The cache is started on
// first use and restarted when the selector changes. The wait for its first list is
// bounded (Options.Timeout, and ctx); a refused list fails at once and the next call
// starts a new watch, so a permission granted meanwhile is used at once.
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
	items, err := pc.src.items(ctx, w.timeout)
	if err != nil {
		var perr *PermissionError
		if errors.As(err, &perr) {
			w.dropPods(pc)
		}
		return nil, fmt.Errorf("pods of %s: %w", w.describe(), err)
	}
	all := make([]*corev1.Pod, 0, len(items))
	for _, it := range items {
		if p, ok := it.(*corev1.Pod); ok && p.Namespace == w.namespace && sel.Matches(labels.Set(p.Labels)) {
			all = append(all, p)
		}
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
	src      *source
}

// podCacheFor returns the pod watch for selector, starting it if needed. It does not
// wait for the watch's first list: the caller does, without the lock.
func (w *Watcher) podCacheFor(ctx context.Context, selector string) (*podCache, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pods != nil && w.pods.selector == selector {
		return w.pods, nil
	}
	if w.pods != nil {
		w.pods.src.shutdown()
		w.pods = nil
	}
	pods := w.kube.CoreV1().Pods(w.namespace)
	src := newSource(corev1.Resource("pods"), w.namespace, listWatch{
		list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return pods.List(ctx, o)
		},
		watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return pods.Watch(ctx, o)
		},
		client: w.kube,
	}, &corev1.Pod{}, w.clock, w.log, w.timeout, w.warnListOnly(corev1.Resource("pods")))
	// The pod watch lives as long as the watcher, not the cycle that started it.
	if err := src.run(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Errorf("watching pods of %s: %w", w.describe(), err)
	}
	w.pods = &podCache{selector: selector, src: src}
	return w.pods, nil
}

// warnListOnly returns the function a source calls when it lists because the watch was
// refused: it warns once per resource for the watcher's life (pod watches are restarted).
func (w *Watcher) warnListOnly(gr schema.GroupResource) func(error) {
	return func(watchErr error) {
		w.mu.Lock()
		seen := w.warned[gr]
		if w.warned == nil {
			w.warned = map[schema.GroupResource]bool{}
		}
		w.warned[gr] = true
		w.mu.Unlock()
		if seen {
			return
		}
		w.log.Warn(fmt.Sprintf("the API server refused to watch %s; listing them every cycle instead, one more API request each cycle (allow \"watch\" on %q and restart the runtime to use a watch cache)", gr, gr.Resource),
			"resource", gr.String(), "namespace", w.namespace, "error", watchErr)
	}
}

// dropPods stops the pod watch pc if it is still the current one.
func (w *Watcher) dropPods(pc *podCache) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pc.src.shutdown()
	if w.pods == pc {
		w.pods = nil
	}
}

// Stop stops the pod watch; the target watch stops with the context given to Start.
func (w *Watcher) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pods != nil {
		w.pods.src.shutdown()
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
