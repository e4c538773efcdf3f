package provider

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	clocktesting "k8s.io/utils/clock/testing"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/custompodautoscaler/cpa/internal/adapter/annotations"
	"github.com/custompodautoscaler/cpa/internal/adapter/store"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

var (
	t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

	ingresses  = schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}
	clusterScs = schema.GroupResource{Group: "zalando.org", Resource: "clusterscalingschedules"}

	hpaWeb   = store.Owner{Namespace: "default", Name: "web"}
	hpaAPI   = store.Owner{Namespace: "default", Name: "api"}
	hpaOther = store.Owner{Namespace: "other", Name: "web"}
)

// resolver knows the kinds the tests use; the store has no table of its own.
type resolver struct{}

func (resolver) Resource(apiVersion, kind string) (schema.GroupResource, bool, error) {
	switch apiVersion + "/" + kind {
	case "networking.k8s.io/v1/Ingress":
		return ingresses, true, nil
	case "zalando.org/v1/ClusterScalingSchedule":
		return clusterScs, false, nil
	}
	return schema.GroupResource{}, false, fmt.Errorf("unknown kind %s %s", apiVersion, kind)
}

func podsKey(name string) annotations.MetricKey {
	return annotations.MetricKey{Type: autoscalingv2.PodsMetricSourceType, Name: name}
}

func objectKey(name, kind, obj string) annotations.MetricKey {
	return annotations.MetricKey{Type: autoscalingv2.ObjectMetricSourceType, Name: name,
		Object: autoscalingv2.CrossVersionObjectReference{Kind: kind, Name: obj}}
}

func externalKey(name, sel string) annotations.MetricKey {
	return annotations.MetricKey{Type: autoscalingv2.ExternalMetricSourceType, Name: name, Selector: sel}
}

func podValue(name string, milli int64, ts time.Time) collector.Value {
	// No kind: pod collectors need not say what the resource already does.
	return collector.Value{Object: collector.ObjectRef{Name: name}, Value: *resource.NewMilliQuantity(milli, resource.DecimalSI), Timestamp: ts}
}

func objValue(apiVersion, kind, ns, name string, milli int64, ts time.Time) collector.Value {
	return collector.Value{Object: collector.ObjectRef{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name},
		Value: *resource.NewMilliQuantity(milli, resource.DecimalSI), Timestamp: ts}
}

func extValue(l map[string]string, milli int64, ts time.Time) collector.Value {
	return collector.Value{Labels: l, Value: *resource.NewMilliQuantity(milli, resource.DecimalSI), Timestamp: ts}
}

func mustSet(t *testing.T, s *store.Store, owner store.Owner, key annotations.MetricKey, l map[string]string, values ...collector.Value) {
	t.Helper()
	if err := s.Set(owner, key, l, values); err != nil {
		t.Fatalf("Set(%v, %v): %v", owner, key, err)
	}
}

func newStore(ttl time.Duration) (*store.Store, *clocktesting.FakePassiveClock) {
	clk := clocktesting.NewFakePassiveClock(t0)
	return store.New(ttl, clk, resolver{}), clk
}

// podLister serves pods from an indexer, the way an informer's lister does.
func podLister(t *testing.T, pods ...*corev1.Pod) corelisters.PodLister {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range pods {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	return corelisters.NewPodLister(idx)
}

func newPod(ns, name string, l map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}}
}

func sel(t *testing.T, s string) labels.Selector {
	t.Helper()
	l, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func podsInfo(metric string) cmprovider.CustomMetricInfo {
	return cmprovider.CustomMetricInfo{GroupResource: store.PodsResource, Namespaced: true, Metric: metric}
}

// summary is "name=milli" per value, for comparing lists.
func summary(items []custom_metrics.MetricValue) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, fmt.Sprintf("%s/%s=%d", it.DescribedObject.Namespace, it.DescribedObject.Name, it.Value.MilliValue()))
	}
	return out
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

func TestGetMetricByName(t *testing.T) {
	s, clk := newStore(time.Minute)
	mustSet(t, s, hpaWeb, podsKey("rps"), nil, podValue("web-1", 1500, t0))
	mustSet(t, s, hpaWeb, objectKey("rps", "Ingress", "web"), map[string]string{"backend": "web"},
		objValue("networking.k8s.io/v1", "Ingress", "", "web", 30000, t0))
	mustSet(t, s, hpaOther, objectKey("rps", "Ingress", "web"), nil,
		objValue("networking.k8s.io/v1", "Ingress", "", "web", 7000, t0))
	mustSet(t, s, hpaWeb, objectKey("replicas", "ClusterScalingSchedule", "peak"), nil,
		objValue("zalando.org/v1", "ClusterScalingSchedule", "", "peak", 10000, t0))
	p := New(s, Options{})
	ctx := context.Background()

	got, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "default", Name: "web-1"}, podsInfo("rps"), labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	want := &custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "default", Name: "web-1"},
		Metric:          custom_metrics.MetricIdentifier{Name: "rps"},
		Timestamp:       metav1.NewTime(t0),
		Value:           *resource.NewMilliQuantity(1500, resource.DecimalSI),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pod value (-want +got):\n%s", diff)
	}

	ing := cmprovider.CustomMetricInfo{GroupResource: ingresses, Namespaced: true, Metric: "rps"}
	got, err = p.GetMetricByName(ctx, types.NamespacedName{Namespace: "default", Name: "web"}, ing, sel(t, "backend=web"))
	if err != nil {
		t.Fatal(err)
	}
	want = &custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{Kind: "Ingress", APIVersion: "networking.k8s.io/v1", Namespace: "default", Name: "web"},
		Metric: custom_metrics.MetricIdentifier{Name: "rps", Selector: &metav1.LabelSelector{
			MatchLabels: map[string]string{"backend": "web"}, MatchExpressions: []metav1.LabelSelectorRequirement{}}},
		Timestamp: metav1.NewTime(t0),
		Value:     *resource.NewMilliQuantity(30000, resource.DecimalSI),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ingress value (-want +got):\n%s", diff)
	}

	// Namespaces are isolated: the same object name elsewhere has its own value.
	got, err = p.GetMetricByName(ctx, types.NamespacedName{Namespace: "other", Name: "web"}, ing, labels.Everything())
	if err != nil || got.Value.MilliValue() != 7000 {
		t.Errorf("other namespace: got %v, %v; want 7000", got, err)
	}

	// Root-scoped objects are asked for with no namespace.
	root := cmprovider.CustomMetricInfo{GroupResource: clusterScs, Metric: "replicas"}
	got, err = p.GetMetricByName(ctx, types.NamespacedName{Name: "peak"}, root, labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	if got.DescribedObject.Namespace != "" || got.DescribedObject.Kind != "ClusterScalingSchedule" || got.Value.MilliValue() != 10000 {
		t.Errorf("root-scoped value: %+v", got)
	}
	// The HPA controller asks for every Object metric in its own namespace, also about a
	// cluster-scoped object: the cluster-scoped value is found.
	got, err = p.GetMetricByName(ctx, types.NamespacedName{Namespace: "default", Name: "peak"},
		cmprovider.CustomMetricInfo{GroupResource: clusterScs, Namespaced: true, Metric: "replicas"}, labels.Everything())
	if err != nil || got.Value.MilliValue() != 10000 {
		t.Errorf("root-scoped value asked in a namespace: %+v, %v", got, err)
	}

	for _, tc := range []struct {
		name   string
		obj    types.NamespacedName
		info   cmprovider.CustomMetricInfo
		metric labels.Selector
	}{
		{"unknown object", types.NamespacedName{Namespace: "default", Name: "web-9"}, podsInfo("rps"), nil},
		{"unknown metric", types.NamespacedName{Namespace: "default", Name: "web-1"}, podsInfo("latency"), nil},
		{"other namespace", types.NamespacedName{Namespace: "other", Name: "web-1"}, podsInfo("rps"), nil},
		{"metric selector", types.NamespacedName{Namespace: "default", Name: "web"}, ing, sel(t, "backend=api")},
	} {
		if _, err := p.GetMetricByName(ctx, tc.obj, tc.info, tc.metric); !isNotFound(err) {
			t.Errorf("%s: got %v, want NotFound", tc.name, err)
		}
	}

	// The TTL is checked on read: at exactly the TTL nothing is served any more.
	clk.SetTime(t0.Add(time.Minute - time.Nanosecond))
	if _, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "default", Name: "web-1"}, podsInfo("rps"), nil); err != nil {
		t.Errorf("before the TTL: %v", err)
	}
	clk.SetTime(t0.Add(time.Minute))
	if _, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "default", Name: "web-1"}, podsInfo("rps"), nil); !isNotFound(err) {
		t.Errorf("at the TTL: got %v, want NotFound", err)
	}
}

func TestGetMetricBySelectorPods(t *testing.T) {
	s, clk := newStore(time.Minute)
	// Two HPAs in one namespace measure the same metric of their own pods; a third in
	// another namespace has pods of the same names.
	mustSet(t, s, hpaWeb, podsKey("rps"), nil, podValue("web-1", 1000, t0), podValue("web-2", 2000, t0))
	mustSet(t, s, hpaAPI, podsKey("rps"), map[string]string{"path": "api"}, podValue("api-1", 3000, t0))
	mustSet(t, s, hpaOther, podsKey("rps"), nil, podValue("web-1", 9000, t0))
	pods := podLister(t,
		newPod("default", "web-1", map[string]string{"app": "web", "track": "stable"}),
		newPod("default", "web-2", map[string]string{"app": "web", "track": "canary"}),
		newPod("default", "api-1", map[string]string{"app": "api"}),
		newPod("default", "idle-1", map[string]string{"app": "idle"}), // no value stored
		newPod("other", "web-1", map[string]string{"app": "web"}),
	)
	p := New(s, Options{Pods: PodNames(pods)})
	ctx := context.Background()

	for _, tc := range []struct {
		name      string
		namespace string
		selector  string
		metric    string
		want      []string
	}{
		{"the request's selector selects the pods", "default", "app=web", "", []string{"default/web-1=1000", "default/web-2=2000"}},
		{"a narrower selector", "default", "app=web,track=canary", "", []string{"default/web-2=2000"}},
		{"another HPA's pods", "default", "app=api", "", []string{"default/api-1=3000"}},
		{"a set-based selector", "default", "app in (web,api),track!=canary", "", []string{"default/api-1=3000", "default/web-1=1000"}},
		{"selected pods without values", "default", "app=idle", "", []string{}},
		{"no pod selected", "default", "app=none", "", []string{}},
		{"everything", "default", "", "", []string{"default/api-1=3000", "default/web-1=1000", "default/web-2=2000"}},
		{"namespaces isolated", "other", "app=web", "", []string{"other/web-1=9000"}},
		{"metric selector", "default", "", "path=api", []string{"default/api-1=3000"}},
		{"metric selector and selector disjoint", "default", "app=web", "path=api", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.GetMetricBySelector(ctx, tc.namespace, sel(t, tc.selector), podsInfo("rps"), sel(t, tc.metric))
			if err != nil {
				t.Fatal(err)
			}
			if got.Items == nil {
				t.Error("Items is nil, want an empty list")
			}
			if diff := cmp.Diff(tc.want, summary(got.Items)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, it := range got.Items {
				if it.DescribedObject.Kind != "Pod" || it.DescribedObject.APIVersion != "v1" || it.WindowSeconds != nil ||
					!it.Timestamp.Time.Equal(t0) || it.Metric.Name != "rps" {
					t.Errorf("value %+v", it)
				}
				if (tc.metric == "") != (it.Metric.Selector == nil) {
					t.Errorf("metric selector %v for request %q", it.Metric.Selector, tc.metric)
				}
			}
		})
	}

	clk.SetTime(t0.Add(time.Minute))
	got, err := p.GetMetricBySelector(ctx, "default", sel(t, "app=web"), podsInfo("rps"), nil)
	if err != nil || len(got.Items) != 0 {
		t.Errorf("after the TTL: got %v, %v; want an empty list", summary(got.Items), err)
	}
}

func TestGetMetricBySelectorListers(t *testing.T) {
	s, _ := newStore(time.Minute)
	mustSet(t, s, hpaWeb, podsKey("rps"), nil, podValue("web-1", 1000, t0))
	mustSet(t, s, hpaWeb, objectKey("rps", "Ingress", "web"), nil, objValue("networking.k8s.io/v1", "Ingress", "", "web", 5000, t0))
	ctx := context.Background()
	ing := cmprovider.CustomMetricInfo{GroupResource: ingresses, Namespaced: true, Metric: "rps"}

	// Without a lister a selector cannot be honoured: refused, not answered with values
	// it may not select. Selecting everything needs no lister.
	p := New(s, Options{})
	if _, err := p.GetMetricBySelector(ctx, "default", sel(t, "app=web"), podsInfo("rps"), nil); !apierrors.IsBadRequest(err) {
		t.Errorf("no lister: got %v, want BadRequest", err)
	}
	got, err := p.GetMetricBySelector(ctx, "default", labels.Everything(), podsInfo("rps"), nil)
	if err != nil || len(got.Items) != 1 {
		t.Errorf("everything without a lister: %v, %v", summary(got.Items), err)
	}

	// Objects serves other resources, and pods when Pods is nil.
	var asked []string
	objects := ObjectListerFunc(func(_ context.Context, gr schema.GroupResource, ns string, selector labels.Selector) ([]string, error) {
		asked = append(asked, fmt.Sprintf("%s %s %s", gr, ns, selector))
		return []string{"web", "web-1"}, nil
	})
	p = New(s, Options{Objects: objects})
	if got, err := p.GetMetricBySelector(ctx, "default", sel(t, "app=web"), ing, nil); err != nil || len(got.Items) != 1 {
		t.Errorf("ingresses: %v, %v", summary(got.Items), err)
	}
	if got, err := p.GetMetricBySelector(ctx, "default", sel(t, "app=web"), podsInfo("rps"), nil); err != nil || len(got.Items) != 1 {
		t.Errorf("pods through Objects: %v, %v", summary(got.Items), err)
	}
	// With no value stored there is nothing to filter: the lister is not asked.
	if got, err := p.GetMetricBySelector(ctx, "default", sel(t, "app=web"), podsInfo("latency"), nil); err != nil || len(got.Items) != 0 {
		t.Errorf("no values: %v, %v", summary(got.Items), err)
	}
	if diff := cmp.Diff([]string{"ingresses.networking.k8s.io default app=web", "pods default app=web"}, asked); diff != "" {
		t.Errorf("lister calls (-want +got):\n%s", diff)
	}

	// A lister's failure is the server's, unless it is already an API status.
	failing := ObjectListerFunc(func(context.Context, schema.GroupResource, string, labels.Selector) ([]string, error) {
		return nil, errors.New("cache not synced")
	})
	p = New(s, Options{Pods: failing})
	if _, err := p.GetMetricBySelector(ctx, "default", sel(t, "app=web"), podsInfo("rps"), nil); !apierrors.IsInternalError(err) {
		t.Errorf("failing lister: got %v, want InternalError", err)
	}
	forbidden := ObjectListerFunc(func(context.Context, schema.GroupResource, string, labels.Selector) ([]string, error) {
		return nil, apierrors.NewForbidden(ingresses, "", errors.New("no"))
	})
	p = New(s, Options{Objects: forbidden})
	if _, err := p.GetMetricBySelector(ctx, "default", sel(t, "app=web"), ing, nil); !apierrors.IsForbidden(err) {
		t.Errorf("forbidden lister: got %v, want Forbidden", err)
	}
}

func TestGetMetricBySelectorRootScoped(t *testing.T) {
	s, _ := newStore(time.Minute)
	mustSet(t, s, hpaWeb, objectKey("replicas", "ClusterScalingSchedule", "peak"), nil,
		objValue("zalando.org/v1", "ClusterScalingSchedule", "", "peak", 10000, t0))
	mustSet(t, s, hpaOther, objectKey("replicas", "ClusterScalingSchedule", "night"), nil,
		objValue("zalando.org/v1", "ClusterScalingSchedule", "", "night", 2000, t0))
	p := New(s, Options{})
	root := cmprovider.CustomMetricInfo{GroupResource: clusterScs, Metric: "replicas"}
	got, err := p.GetMetricBySelector(context.Background(), "", labels.Everything(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/night=2000", "/peak=10000"}, summary(got.Items)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestGetExternalMetric(t *testing.T) {
	s, clk := newStore(time.Minute)
	mustSet(t, s, hpaWeb, externalKey("queue-length", "queue=jobs"), map[string]string{"queue": "jobs"},
		extValue(map[string]string{"region": "eu"}, 30000, t0), extValue(map[string]string{"region": "us"}, 10000, t0.Add(-time.Second)))
	mustSet(t, s, hpaOther, externalKey("queue-length", "queue=jobs"), map[string]string{"queue": "jobs"},
		extValue(nil, 99000, t0))
	p := New(s, Options{})
	ctx := context.Background()
	info := cmprovider.ExternalMetricInfo{Metric: "queue-length"}

	got, err := p.GetExternalMetric(ctx, "default", sel(t, "queue=jobs"), info)
	if err != nil {
		t.Fatal(err)
	}
	want := []external_metrics.ExternalMetricValue{
		{MetricName: "queue-length", MetricLabels: map[string]string{"queue": "jobs", "region": "eu"},
			Timestamp: metav1.NewTime(t0), Value: *resource.NewMilliQuantity(30000, resource.DecimalSI)},
		{MetricName: "queue-length", MetricLabels: map[string]string{"queue": "jobs", "region": "us"},
			Timestamp: metav1.NewTime(t0.Add(-time.Second)), Value: *resource.NewMilliQuantity(10000, resource.DecimalSI)},
	}
	if diff := cmp.Diff(want, got.Items); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Labels handed out are copies: a client mutating them leaves the store alone.
	got.Items[0].MetricLabels["queue"] = "changed"
	again, _ := p.GetExternalMetric(ctx, "default", sel(t, "region=eu"), info)
	if len(again.Items) != 1 || again.Items[0].MetricLabels["queue"] != "jobs" {
		t.Errorf("after mutating a result: %+v", again.Items)
	}

	got, _ = p.GetExternalMetric(ctx, "other", labels.Everything(), info)
	if len(got.Items) != 1 || got.Items[0].Value.MilliValue() != 99000 {
		t.Errorf("other namespace: %+v", got.Items)
	}

	for _, tc := range []struct {
		name, namespace, selector, metric string
	}{
		{"no match", "default", "queue=other", "queue-length"},
		{"unknown metric", "default", "", "nope"},
		{"unknown namespace", "nowhere", "", "queue-length"},
	} {
		got, err := p.GetExternalMetric(ctx, tc.namespace, sel(t, tc.selector), cmprovider.ExternalMetricInfo{Metric: tc.metric})
		if err != nil || got.Items == nil || len(got.Items) != 0 {
			t.Errorf("%s: got %+v, %v; want an empty list", tc.name, got, err)
		}
	}

	clk.SetTime(t0.Add(time.Minute - time.Second))
	got, _ = p.GetExternalMetric(ctx, "default", labels.Everything(), info)
	if len(got.Items) != 1 || got.Items[0].MetricLabels["region"] != "eu" {
		t.Errorf("the older value expires first: %+v", got.Items)
	}
	clk.SetTime(t0.Add(time.Minute))
	got, _ = p.GetExternalMetric(ctx, "default", labels.Everything(), info)
	if len(got.Items) != 0 {
		t.Errorf("after the TTL: %+v", got.Items)
	}
}

func TestListAll(t *testing.T) {
	s, _ := newStore(time.Minute)
	p := New(s, Options{})
	if got := p.ListAllMetrics(); len(got) != 0 {
		t.Errorf("empty store: %v", got)
	}
	if got := p.ListAllExternalMetrics(); len(got) != 0 {
		t.Errorf("empty store: %v", got)
	}
	mustSet(t, s, hpaWeb, podsKey("rps"), nil, podValue("web-1", 1, t0))
	mustSet(t, s, hpaOther, podsKey("rps"), nil, podValue("web-1", 1, t0))
	mustSet(t, s, hpaWeb, objectKey("replicas", "ClusterScalingSchedule", "peak"), nil,
		objValue("zalando.org/v1", "ClusterScalingSchedule", "", "peak", 1, t0))
	mustSet(t, s, hpaWeb, externalKey("queue-length", ""), nil, extValue(nil, 1, t0))
	mustSet(t, s, hpaOther, externalKey("queue-length", ""), nil, extValue(nil, 1, t0))
	mustSet(t, s, hpaOther, externalKey("backlog", ""), nil, extValue(nil, 1, t0))

	wantCustom := []cmprovider.CustomMetricInfo{
		{GroupResource: store.PodsResource, Namespaced: true, Metric: "rps"},
		{GroupResource: clusterScs, Namespaced: false, Metric: "replicas"},
	}
	if diff := cmp.Diff(wantCustom, p.ListAllMetrics()); diff != "" {
		t.Errorf("custom (-want +got):\n%s", diff)
	}
	wantExt := []cmprovider.ExternalMetricInfo{{Metric: "backlog"}, {Metric: "queue-length"}}
	if diff := cmp.Diff(wantExt, p.ListAllExternalMetrics()); diff != "" {
		t.Errorf("external (-want +got):\n%s", diff)
	}
}

func TestMetadataNames(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(gvr.GroupVersion().WithKind("Ingress"), meta.RESTScopeNamespace)

	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ingress := func(ns, name string, l map[string]string) runtime.Object {
		return &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
		}
	}
	client := metadatafake.NewSimpleMetadataClient(scheme,
		ingress("default", "web", map[string]string{"app": "web"}),
		ingress("default", "api", map[string]string{"app": "api"}),
		ingress("other", "web", map[string]string{"app": "web"}),
	)
	l := MetadataNames(mapper, client)
	got, err := l.ObjectNames(context.Background(), ingresses, "default", sel(t, "app=web"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"web"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := l.ObjectNames(context.Background(), schema.GroupResource{Resource: "widgets"}, "default", labels.Everything()); err == nil {
		t.Error("unknown resource: no error")
	}
}
