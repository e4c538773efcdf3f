// Package kube holds the small client-go readers collectors need: the /scale subresource
// of a scale target (its pod selector and replicas), the pods of a selector, and any
// object by reference. Collectors depend on interfaces of their own that these satisfy;
// nothing here caches, so every call sees the cluster as it is (a scale target's selector
// can change, pods come and go).
package kube

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/scale"

	"github.com/custompodautoscaler/cpa/internal/collector"
)

// DefaultMaxPods is how many pods Pods.List returns at most before it fails.
const DefaultMaxPods = 10000

// describe names ref for errors: "Deployment app/web (apps/v1)".
func describe(ref collector.ObjectRef) string {
	name := ref.Name
	if ref.Namespace != "" {
		name = ref.Namespace + "/" + ref.Name
	}
	if ref.APIVersion == "" {
		return fmt.Sprintf("%s %s", ref.Kind, name)
	}
	return fmt.Sprintf("%s %s (%s)", ref.Kind, name, ref.APIVersion)
}

// mapping finds the resource that serves ref's kind.
func mapping(mapper meta.RESTMapper, ref collector.ObjectRef) (*meta.RESTMapping, error) {
	if ref.Kind == "" || ref.Name == "" {
		return nil, fmt.Errorf("%s: the reference needs a kind and a name", describe(ref))
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("%s: apiVersion %q: %w", describe(ref), ref.APIVersion, err)
	}
	var versions []string
	if gv.Version != "" {
		versions = []string{gv.Version}
	}
	m, err := mapper.RESTMapping(gv.WithKind(ref.Kind).GroupKind(), versions...)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("%s: the cluster serves no such kind (CRD not installed?): %w", describe(ref), err)
		}
		return nil, fmt.Errorf("%s: finding its resource: %w", describe(ref), err)
	}
	return m, nil
}

// apiError says what a failed request means for ref, naming the verb and resource a
// Forbidden answer lacks.
func apiError(err error, verb, resource string, ref collector.ObjectRef) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: not found: %w", describe(ref), err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: forbidden to %s %s in namespace %q (RBAC): %w", describe(ref), verb, resource, ref.Namespace, err)
	}
	return fmt.Errorf("%s: %s %s: %w", describe(ref), verb, resource, err)
}

// Scales reads the /scale subresource of any scalable kind: Deployments, StatefulSets,
// Argo Rollouts, custom resources with a scale subresource.
type Scales struct {
	client scale.ScalesGetter
	mapper meta.RESTMapper
}

// NewScales returns a Scales using client for /scale and mapper to find the resource of
// a kind.
func NewScales(client scale.ScalesGetter, mapper meta.RESTMapper) *Scales {
	return &Scales{client: client, mapper: mapper}
}

func (s *Scales) get(ctx context.Context, ref collector.ObjectRef) (*scaleResult, error) {
	if s == nil || s.client == nil || s.mapper == nil {
		return nil, errors.New("kube.Scales: no client")
	}
	m, err := mapping(s.mapper, ref)
	if err != nil {
		return nil, err
	}
	gr := m.Resource.GroupResource()
	if ref.Namespace == "" && (m.Scope == nil || m.Scope.Name() == meta.RESTScopeNameNamespace) {
		return nil, fmt.Errorf("%s: %s is namespaced and the reference has no namespace", describe(ref), gr)
	}
	sc, err := s.client.Scales(ref.Namespace).Get(ctx, gr, ref.Name, metav1.GetOptions{})
	if err != nil {
		// A 404 without details of the object is the API server's answer for a
		// subresource it does not serve.
		var st apierrors.APIStatus
		if apierrors.IsNotFound(err) && errors.As(err, &st) && (st.Status().Details == nil || st.Status().Details.Name == "") {
			return nil, fmt.Errorf("%s: not found, or %s has no /scale subresource: %w", describe(ref), gr, err)
		}
		return nil, apiError(err, "get", gr.String()+"/scale", ref)
	}
	if sc == nil {
		return nil, fmt.Errorf("%s: get %s/scale: empty answer", describe(ref), gr)
	}
	return &scaleResult{selector: sc.Status.Selector, replicas: sc.Status.Replicas}, nil
}

type scaleResult struct {
	selector string
	replicas int32
}

// Selector returns the pod selector of ref's /scale status. An empty selector is an
// error: it would select every pod of the namespace.
func (s *Scales) Selector(ctx context.Context, ref collector.ObjectRef) (labels.Selector, error) {
	r, err := s.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if r.selector == "" {
		return nil, fmt.Errorf("%s: its /scale status has no pod selector (the controller has not set status.selector, or the kind's scale subresource has no labelSelectorPath)", describe(ref))
	}
	sel, err := labels.Parse(r.selector)
	if err != nil {
		return nil, fmt.Errorf("%s: the /scale status selector %q: %w", describe(ref), r.selector, err)
	}
	if sel.Empty() {
		return nil, fmt.Errorf("%s: the /scale status selector %q selects every pod", describe(ref), r.selector)
	}
	return sel, nil
}

// Replicas returns the current replicas of ref's /scale status.
func (s *Scales) Replicas(ctx context.Context, ref collector.ObjectRef) (int32, error) {
	r, err := s.get(ctx, ref)
	if err != nil {
		return 0, err
	}
	return r.replicas, nil
}

// Pods lists pods by label selector.
type Pods struct {
	client kubernetes.Interface
	max    int
}

// NewPods returns a Pods listing with client, failing beyond DefaultMaxPods pods.
func NewPods(client kubernetes.Interface) *Pods {
	return &Pods{client: client, max: DefaultMaxPods}
}

// WithMax returns a copy of p failing beyond max pods (max > 0).
func (p *Pods) WithMax(max int) *Pods {
	c := *p
	if max > 0 {
		c.max = max
	}
	return &c
}

// List returns the pods of namespace that sel selects, with one LIST served from the API
// server's watch cache (resourceVersion 0: possibly a little stale, far cheaper than a
// quorum read from etcd). A nil or empty selector is refused: it would select every pod
// of the namespace. More than the maximum number of pods is an error, not a silent cut.
func (p *Pods) List(ctx context.Context, namespace string, sel labels.Selector) ([]corev1.Pod, error) {
	if p == nil || p.client == nil {
		return nil, errors.New("kube.Pods: no client")
	}
	if namespace == "" {
		return nil, errors.New("listing pods: no namespace")
	}
	if sel == nil || sel.Empty() {
		return nil, fmt.Errorf("listing pods in namespace %q: refusing an empty selector, which selects every pod", namespace)
	}
	// The watch cache may ignore the limit; the length check below covers both.
	list, err := p.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
		LabelSelector:   sel.String(),
		ResourceVersion: "0",
		Limit:           int64(p.max) + 1,
	})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("forbidden to list pods in namespace %q (RBAC): %w", namespace, err)
		}
		return nil, fmt.Errorf("listing pods in namespace %q with selector %q: %w", namespace, sel, err)
	}
	if len(list.Items) > p.max || list.Continue != "" {
		return nil, fmt.Errorf("listing pods in namespace %q with selector %q: more than %d pods", namespace, sel, p.max)
	}
	return list.Items, nil
}

// Objects reads any object by reference.
type Objects struct {
	client dynamic.Interface
	mapper meta.RESTMapper
}

// NewObjects returns an Objects using client for reads and mapper to find the resource of
// a kind.
func NewObjects(client dynamic.Interface, mapper meta.RESTMapper) *Objects {
	return &Objects{client: client, mapper: mapper}
}

// Get reads the object ref names; ref.Namespace is ignored for cluster-scoped kinds.
func (o *Objects) Get(ctx context.Context, ref collector.ObjectRef) (*unstructured.Unstructured, error) {
	if o == nil || o.client == nil || o.mapper == nil {
		return nil, errors.New("kube.Objects: no client")
	}
	m, err := mapping(o.mapper, ref)
	if err != nil {
		return nil, err
	}
	var r dynamic.ResourceInterface = o.client.Resource(m.Resource)
	if m.Scope == nil || m.Scope.Name() == meta.RESTScopeNameNamespace {
		if ref.Namespace == "" {
			return nil, fmt.Errorf("%s: %s is namespaced and the reference has no namespace", describe(ref), m.Resource.GroupResource())
		}
		r = o.client.Resource(m.Resource).Namespace(ref.Namespace)
	}
	u, err := r.Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, apiError(err, "get", m.Resource.GroupResource().String(), ref)
	}
	return u, nil
}
