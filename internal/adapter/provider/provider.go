// Package provider serves the adapter's metric store through the custom and external
// metrics APIs: it implements the CustomMetricsProvider and ExternalMetricsProvider
// interfaces of sigs.k8s.io/custom-metrics-apiserver over the store, and only reads it.
//
// # Values
//
// A custom metric value describes the object it is about (Kind, APIVersion, Namespace,
// Name), carries the time its collector sampled it and no window (collectors report
// instantaneous values). Metric.Selector echoes the request's metric selector when there
// is one. Values older than the store's TTL are never returned: the store checks the age
// on every read, so an expired value is "not found" (by name) or left out (by selector).
//
// # Pods and label selectors
//
// The HPA asks for a Pods metric as "the pods in namespace N that label selector S
// selects". The store keys pod values by pod name only, so the selector is resolved
// against the pods themselves: the provider asks an ObjectLister (the adapter lists the
// pods' metadata from the API server's watch cache per request, see MetadataNames; a pod
// informer, see PodNames, trades memory for those requests) for the names of the pods S selects and returns the stored
// values of those pods only. A request therefore never gets values of pods its selector
// does not select, even when another HPA's collector measured them. (The original
// compared the request's selector with the scale target's selector stored with each
// value, ignoring the pods' labels, and ignored the metric selector.) The lister is
// asked only when the store holds values to filter, and never while the store is locked.
//
// A request that selects everything needs no lister: every live value of the resource
// in the namespace is returned. A selector for a resource no lister serves is refused
// with BadRequest rather than answered with values the selector may not select.
//
// The request's metric selector is matched against each value's labels (the metric
// selector labels of the HPA that collects it, merged with the collector's labels).
//
// # External metrics
//
// External values are served in the namespace of the HPA that collects them, filtered by
// the request's selector, one per label set. No value is an empty list, not an error:
// the HPA then reports the metric unavailable.
package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/custompodautoscaler/cpa/internal/adapter/store"
)

// Store is the part of *store.Store the provider reads.
type Store interface {
	Object(gr schema.GroupResource, namespace, name, metric string, metricSelector labels.Selector) (store.Item, bool)
	Objects(gr schema.GroupResource, namespace, metric string, metricSelector labels.Selector, match func(name string) bool) []store.Item
	External(namespace, metric string, selector labels.Selector) []store.Item
	CustomMetrics() []store.CustomMetric
	ExternalMetrics() []string
}

// ObjectLister lists the names of the objects of resource gr in namespace ("" for
// cluster-scoped objects) whose labels selector selects.
type ObjectLister interface {
	ObjectNames(ctx context.Context, gr schema.GroupResource, namespace string, selector labels.Selector) ([]string, error)
}

// ObjectListerFunc is an ObjectLister function.
type ObjectListerFunc func(ctx context.Context, gr schema.GroupResource, namespace string, selector labels.Selector) ([]string, error)

// ObjectNames calls f.
func (f ObjectListerFunc) ObjectNames(ctx context.Context, gr schema.GroupResource, namespace string, selector labels.Selector) ([]string, error) {
	return f(ctx, gr, namespace, selector)
}

// Options are the provider's optional collaborators.
type Options struct {
	// Pods lists the pods a Pods request's label selector selects; nil: Objects does.
	Pods ObjectLister
	// Objects lists the objects of any other resource (and pods when Pods is nil) a
	// request's label selector selects; nil: such requests are refused unless their
	// selector selects everything.
	Objects ObjectLister
}

// Provider serves the store through the custom and external metrics APIs. It is safe
// for concurrent use.
type Provider struct {
	store   Store
	pods    ObjectLister
	objects ObjectLister
}

var (
	_ cmprovider.CustomMetricsProvider   = (*Provider)(nil)
	_ cmprovider.ExternalMetricsProvider = (*Provider)(nil)
)

// New returns a Provider over s.
func New(s Store, opts Options) *Provider {
	return &Provider{store: s, pods: opts.Pods, objects: opts.Objects}
}

// GetMetricByName returns the live value of info's metric about the named object (a
// root-scoped one when name.Namespace is ""), or a NotFound error.
func (p *Provider) GetMetricByName(_ context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValue, error) {
	ns := namespaceOf(info, name.Namespace)
	item, ok := p.store.Object(info.GroupResource, ns, name.Name, info.Metric, metricSelector)
	if !ok && ns != "" {
		// The HPA controller asks for every Object metric in its own namespace, also
		// about a cluster-scoped object (a ClusterScalingSchedule), whose values are
		// stored without one. A namespaced object's values always have a namespace, so
		// this finds only cluster-scoped ones.
		item, ok = p.store.Object(info.GroupResource, "", name.Name, info.Metric, metricSelector)
	}
	if !ok {
		return nil, cmprovider.NewMetricNotFoundForError(info.GroupResource, info.Metric, name.Name)
	}
	ms, err := metricSelectorOf(metricSelector)
	if err != nil {
		return nil, err
	}
	v := metricValue(info, item, ms)
	return &v, nil
}

// GetMetricBySelector returns the live values of info's metric about the objects in
// namespace that selector selects, one per object, sorted by name; possibly none.
func (p *Provider) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, error) {
	ns := namespaceOf(info, namespace)
	lister := p.listerFor(info.GroupResource)
	if lister == nil && !selectsAll(selector) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("selecting %s by label is not supported here; ask for one object by name or for all of them", info.GroupResource))
	}
	ms, err := metricSelectorOf(metricSelector)
	if err != nil {
		return nil, err
	}
	// The store first: the lister is asked only when there is something to filter, and
	// never while the store is locked (it may call the API server).
	items := p.store.Objects(info.GroupResource, ns, info.Metric, metricSelector, nil)
	if len(items) > 0 && !selectsAll(selector) {
		selected, err := selectedNames(ctx, lister, info.GroupResource, ns, selector)
		if err != nil {
			return nil, err
		}
		items = slices.DeleteFunc(items, func(it store.Item) bool {
			_, ok := selected[it.Value.Object.Name]
			return !ok
		})
	}
	list := &custom_metrics.MetricValueList{Items: make([]custom_metrics.MetricValue, 0, len(items))}
	for _, it := range items {
		list.Items = append(list.Items, metricValue(info, it, ms))
	}
	return list, nil
}

func (p *Provider) listerFor(gr schema.GroupResource) ObjectLister {
	if gr == store.PodsResource && p.pods != nil {
		return p.pods
	}
	return p.objects
}

// selectedNames returns the names of the objects selector selects.
func selectedNames(ctx context.Context, lister ObjectLister, gr schema.GroupResource, namespace string, selector labels.Selector) (map[string]struct{}, error) {
	names, err := lister.ObjectNames(ctx, gr, namespace, selector)
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return nil, err
		}
		return nil, apierrors.NewInternalError(fmt.Errorf("listing the %s selected by %q in namespace %q: %w", gr, selector, namespace, err))
	}
	set := make(map[string]struct{}, len(names))
	for _, n := range names {
		set[n] = struct{}{}
	}
	return set, nil
}

func selectsAll(s labels.Selector) bool { return s == nil || s.Empty() }

// namespaceOf is the namespace a request reads: none for a root-scoped one.
func namespaceOf(info cmprovider.CustomMetricInfo, namespace string) string {
	if !info.Namespaced {
		return ""
	}
	return namespace
}

// metricSelectorOf converts the request's metric selector for the values' Metric
// identifier; nil when it selects everything.
func metricSelectorOf(s labels.Selector) (*metav1.LabelSelector, error) {
	if selectsAll(s) {
		return nil, nil
	}
	ls, err := metav1.ParseToLabelSelector(s.String())
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("metric selector %q: %v", s, err))
	}
	return ls, nil
}

func metricValue(info cmprovider.CustomMetricInfo, it store.Item, ms *metav1.LabelSelector) custom_metrics.MetricValue {
	o := it.Value.Object
	if info.GroupResource == store.PodsResource {
		// Pod collectors need not name the kind: the resource does.
		if o.Kind == "" {
			o.Kind = "Pod"
		}
		if o.APIVersion == "" {
			o.APIVersion = "v1"
		}
	}
	var sel *metav1.LabelSelector
	if ms != nil {
		sel = ms.DeepCopy() // each value owns its selector: encoders may share nothing
	}
	return custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{
			Kind:       o.Kind,
			Namespace:  o.Namespace,
			Name:       o.Name,
			APIVersion: o.APIVersion,
		},
		Metric:    custom_metrics.MetricIdentifier{Name: info.Metric, Selector: sel},
		Timestamp: metav1.NewTime(it.Value.Timestamp),
		Value:     it.Value.Value.DeepCopy(),
	}
}

// ListAllMetrics lists the custom metrics the store holds values for.
func (p *Provider) ListAllMetrics() []cmprovider.CustomMetricInfo {
	ms := p.store.CustomMetrics()
	out := make([]cmprovider.CustomMetricInfo, 0, len(ms))
	for _, m := range ms {
		out = append(out, cmprovider.CustomMetricInfo{GroupResource: m.Resource, Namespaced: m.Namespaced, Metric: m.Metric})
	}
	return out
}

// GetExternalMetric returns the live values of the External metric in namespace whose
// labels selector matches, one per label set; an empty list when there are none.
func (p *Provider) GetExternalMetric(_ context.Context, namespace string, selector labels.Selector, info cmprovider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	items := p.store.External(namespace, info.Metric, selector)
	list := &external_metrics.ExternalMetricValueList{Items: make([]external_metrics.ExternalMetricValue, 0, len(items))}
	for _, it := range items {
		list.Items = append(list.Items, external_metrics.ExternalMetricValue{
			MetricName:   info.Metric,
			MetricLabels: maps.Clone(it.Labels), // the store's map is shared
			Timestamp:    metav1.NewTime(it.Value.Timestamp),
			Value:        it.Value.Value.DeepCopy(),
		})
	}
	return list, nil
}

// ListAllExternalMetrics lists the External metrics the store holds values for.
func (p *Provider) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	names := p.store.ExternalMetrics()
	out := make([]cmprovider.ExternalMetricInfo, 0, len(names))
	for _, n := range names {
		out = append(out, cmprovider.ExternalMetricInfo{Metric: n})
	}
	return out
}
