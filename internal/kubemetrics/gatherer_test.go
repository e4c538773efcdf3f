package kubemetrics

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"
	custommetrics "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	externalmetrics "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	metricsapi "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"
	customclient "k8s.io/metrics/pkg/client/custom_metrics"
	externalclient "k8s.io/metrics/pkg/client/external_metrics"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/custompodautoscaler/cpa/pkg/k8smetric"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

func newPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("100Mi")},
		}}}},
		Status: corev1.PodStatus{
			Phase:     corev1.PodRunning,
			StartTime: &metav1.Time{Time: now.Add(-time.Hour)},
			Conditions: []corev1.PodCondition{{
				Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Time{Time: now.Add(-time.Hour + 10*time.Second)},
			}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }

func started(ago time.Duration, ready corev1.ConditionStatus, transitionAgo time.Duration) podOpt {
	return func(p *corev1.Pod) {
		p.Status.StartTime = &metav1.Time{Time: now.Add(-ago)}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready, LastTransitionTime: metav1.Time{Time: now.Add(-transitionAgo)}}}
	}
}

func podMetrics(name string, at time.Time, usage ...corev1.ResourceList) *metricsapi.PodMetrics {
	pm := &metricsapi.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}},
		Timestamp:  metav1.Time{Time: at},
		Window:     metav1.Duration{Duration: 30 * time.Second},
	}
	names := []string{"app", "sidecar"}
	for i, u := range usage {
		pm.Containers = append(pm.Containers, metricsapi.ContainerMetrics{Name: names[i], Usage: u})
	}
	return pm
}

// newMetricsClient serves items as metrics.k8s.io pods. The fake's tracker would file
// PodMetrics under the guessed resource "podmetricses"; the API serves them as "pods".
func newMetricsClient(t *testing.T, items ...*metricsapi.PodMetrics) *metricsfake.Clientset {
	t.Helper()
	c := metricsfake.NewSimpleClientset()
	for _, pm := range items {
		if err := c.Tracker().Create(metricsapi.SchemeGroupVersion.WithResource("pods"), pm, pm.Namespace); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func otherApp(pm *metricsapi.PodMetrics) *metricsapi.PodMetrics {
	pm.Labels = map[string]string{"app": "other"}
	return pm
}

func cpuMem(cpu, mem string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
}

func resourceSpec(name corev1.ResourceName, t autoscalingv2.MetricTargetType) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: name, Target: autoscalingv2.MetricTarget{Type: t}}}
}

func podsOf(pods ...*corev1.Pod) PodsFunc {
	return func(context.Context) ([]*corev1.Pod, error) { return pods, nil }
}

// fakeCustom serves custom metrics from functions and counts the calls.
type fakeCustom struct {
	calls    int
	objects  func(ns *string, gk schema.GroupKind, sel labels.Selector, metric string) (*custommetrics.MetricValueList, error)
	object   func(ns *string, gk schema.GroupKind, name, metric string) (*custommetrics.MetricValue, error)
	selector labels.Selector
}

type fakeCustomScope struct {
	f  *fakeCustom
	ns *string
}

func (f *fakeCustom) RootScopedMetrics() customclient.MetricsInterface { return fakeCustomScope{f: f} }
func (f *fakeCustom) NamespacedMetrics(ns string) customclient.MetricsInterface {
	return fakeCustomScope{f: f, ns: &ns}
}

func (s fakeCustomScope) GetForObject(gk schema.GroupKind, name, metric string, msel labels.Selector) (*custommetrics.MetricValue, error) {
	s.f.calls++
	s.f.selector = msel
	return s.f.object(s.ns, gk, name, metric)
}

func (s fakeCustomScope) GetForObjects(gk schema.GroupKind, sel labels.Selector, metric string, msel labels.Selector) (*custommetrics.MetricValueList, error) {
	s.f.calls++
	s.f.selector = msel
	return s.f.objects(s.ns, gk, sel, metric)
}

// fakeExternal serves external metrics from a function and counts the calls.
type fakeExternal struct {
	calls int
	list  func(ns, metric string, sel labels.Selector) (*externalmetrics.ExternalMetricValueList, error)
}

type fakeExternalScope struct {
	f  *fakeExternal
	ns string
}

func (f *fakeExternal) NamespacedMetrics(ns string) externalclient.MetricsInterface {
	return fakeExternalScope{f: f, ns: ns}
}

func (s fakeExternalScope) List(metric string, sel labels.Selector) (*externalmetrics.ExternalMetricValueList, error) {
	s.f.calls++
	return s.f.list(s.ns, metric, sel)
}

func newGatherer(specs []autoscalingv2.MetricSpec, c Clients) *Gatherer {
	return New(Options{
		Specs: specs, Namespace: "ns", Clients: c,
		CPUInitializationPeriod: 5 * time.Minute, InitialReadinessDelay: 30 * time.Second,
		Clock: clocktesting.NewFakePassiveClock(now),
	})
}

func TestResourceMetricsFollowTheHPAsPodRules(t *testing.T) {
	sample := now.Add(-5 * time.Second)
	pods := []*corev1.Pod{
		newPod("ready"),
		newPod("pending", phase(corev1.PodPending)),
		newPod("no-metrics"),
		// Within the CPU initialization period and not ready: ignored for CPU only.
		newPod("starting", started(time.Minute, corev1.ConditionFalse, time.Minute)),
		// Became ready 10s ago; its sample (30s window) predates readiness: ignored for CPU.
		newPod("just-ready", started(2*time.Minute, corev1.ConditionTrue, 10*time.Second)),
		// Long started, unready now but was ready once: counted.
		newPod("was-ready", started(time.Hour, corev1.ConditionFalse, time.Minute)),
	}
	client := newMetricsClient(t,
		podMetrics("ready", sample, cpuMem("100m", "50Mi")),
		podMetrics("pending", sample, cpuMem("1", "50Mi")),
		podMetrics("starting", sample, cpuMem("900m", "60Mi")),
		podMetrics("just-ready", sample, cpuMem("800m", "70Mi")),
		podMetrics("was-ready", sample, cpuMem("300m", "80Mi")),
		otherApp(podMetrics("other-app", sample, cpuMem("5", "1Gi"))),
	)
	lists := 0
	client.PrependReactor("list", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		lists++
		return false, nil, nil
	})
	g := newGatherer([]autoscalingv2.MetricSpec{
		resourceSpec(corev1.ResourceCPU, autoscalingv2.UtilizationMetricType),
		resourceSpec(corev1.ResourceMemory, autoscalingv2.AverageValueMetricType),
	}, Clients{Resource: client.MetricsV1beta1()})

	ms, err := g.Gather(context.Background(), Target{Replicas: 6, Selector: "app=web", Pods: podsOf(pods...)})
	if err != nil {
		t.Fatal(err)
	}
	if lists != 1 {
		t.Errorf("%d lists of pod metrics, want 1 shared by both specs", lists)
	}
	if len(ms) != 2 {
		t.Fatalf("%d metrics, want 2", len(ms))
	}
	cpu, mem := ms[0].Resource, ms[1].Resource
	if ms[0].CurrentReplicas != 6 || ms[0].Spec.Resource.Name != corev1.ResourceCPU {
		t.Errorf("cpu metric header = %d %+v", ms[0].CurrentReplicas, ms[0].Spec)
	}
	wantCPU := &k8smetric.ResourceMetric{
		PodMetricsInfo: map[string]k8smetric.PodMetric{
			"ready":     {Timestamp: sample, Window: 30 * time.Second, Value: 100},
			"was-ready": {Timestamp: sample, Window: 30 * time.Second, Value: 300},
		},
		Requests:      map[string]int64{"ready": 200, "pending": 200, "no-metrics": 200, "starting": 200, "just-ready": 200, "was-ready": 200},
		ReadyPodCount: 2,
		IgnoredPods:   k8smetric.PodSet{"pending": {}, "starting": {}, "just-ready": {}},
		MissingPods:   k8smetric.PodSet{"no-metrics": {}},
		TotalPods:     6,
		Timestamp:     sample,
	}
	assertJSON(t, "cpu", cpu, wantCPU)
	if mem.Requests != nil {
		t.Errorf("AverageValue metric has requests %v, want none", mem.Requests)
	}
	if mem.ReadyPodCount != 4 || len(mem.IgnoredPods) != 1 || len(mem.MissingPods) != 1 {
		t.Errorf("memory: ready %d, ignored %v, missing %v; want 4 ready (CPU rules do not apply), pending ignored, no-metrics missing", mem.ReadyPodCount, mem.IgnoredPods, mem.MissingPods)
	}
	if v := mem.PodMetricsInfo["starting"].Value; v != 60*1024*1024*1000 {
		t.Errorf("memory of starting = %d milli-bytes, want %d", v, 60*1024*1024*1000)
	}
}

func assertJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// The element shape is the original's (snake_case keys, Go-cased pod samples), so
// existing metric scripts read it unchanged.
func TestWireFormatMatchesTheSpec(t *testing.T) {
	ts := time.Date(2021, 4, 5, 18, 10, 10, 0, time.UTC)
	pod := newPod("flask-metric-697794dd85-bsttm")
	client := newMetricsClient(t, podMetrics(pod.Name, ts, cpuMem("4m", "10Mi")))
	g := newGatherer([]autoscalingv2.MetricSpec{resourceSpec(corev1.ResourceCPU, autoscalingv2.UtilizationMetricType)}, Clients{Resource: client.MetricsV1beta1()})
	g.opts.Clock = clocktesting.NewFakePassiveClock(ts.Add(time.Hour))
	pod.Status.StartTime = &metav1.Time{Time: ts.Add(-time.Hour)}
	pod.Status.Conditions[0].LastTransitionTime = metav1.Time{Time: ts.Add(-time.Hour)}
	ms, err := g.Gather(context.Background(), Target{Replicas: 1, Selector: "app=web", Pods: podsOf(pod)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := k8smetric.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"current_replicas":1,"spec":{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization"}}},` +
		`"resource":{"pod_metrics_info":{"flask-metric-697794dd85-bsttm":{"Timestamp":"2021-04-05T18:10:10Z","Window":30000000000,"Value":4}},` +
		`"requests":{"flask-metric-697794dd85-bsttm":200},"ready_pod_count":1,"ignored_pods":{},"missing_pods":{},"total_pods":1,` +
		`"timestamp":"2021-04-05T18:10:10Z"}}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestCPUReadinessRules(t *testing.T) {
	r := readinessRules{cpu: true, now: now, cpuInitializationPeriod: 5 * time.Minute, initialReadinessDelay: 30 * time.Second}
	fresh := k8smetric.PodMetric{Timestamp: now, Window: 30 * time.Second}
	stale := k8smetric.PodMetric{Timestamp: now.Add(-time.Minute), Window: 30 * time.Second}
	cases := []struct {
		name    string
		pod     *corev1.Pod
		sample  k8smetric.PodMetric
		unready bool
	}{
		{"no ready condition", newPod("p", func(p *corev1.Pod) { p.Status.Conditions = nil }), fresh, true},
		{"no start time", newPod("p", func(p *corev1.Pod) { p.Status.StartTime = nil }), fresh, true},
		{"initializing, unready", newPod("p", started(time.Minute, corev1.ConditionFalse, time.Minute)), fresh, true},
		{"initializing, ready, sample after a window", newPod("p", started(2*time.Minute, corev1.ConditionTrue, time.Minute)), fresh, false},
		{"initializing, ready, sample before a window passed", newPod("p", started(2*time.Minute, corev1.ConditionTrue, time.Minute)), stale, true},
		{"initialized, unready, never ready in time", newPod("p", started(time.Hour, corev1.ConditionFalse, time.Hour-10*time.Second)), fresh, true},
		{"initialized, unready, was ready", newPod("p", started(time.Hour, corev1.ConditionFalse, time.Minute)), fresh, false},
		{"initialized, ready", newPod("p", started(time.Hour, corev1.ConditionTrue, time.Hour)), stale, false},
	}
	for _, c := range cases {
		if got := cpuUnready(c.pod, c.sample, r); got != c.unready {
			t.Errorf("%s: unready = %v, want %v", c.name, got, c.unready)
		}
	}
}

func TestContainerResource(t *testing.T) {
	withSidecar := func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "sidecar", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")},
		}})
	}
	pods := []*corev1.Pod{newPod("a", withSidecar), newPod("b", withSidecar), newPod("c")}
	client := newMetricsClient(t,
		podMetrics("a", now, cpuMem("100m", "1Mi"), cpuMem("20m", "1Mi")),
		podMetrics("b", now, cpuMem("300m", "1Mi"), cpuMem("40m", "1Mi")),
		podMetrics("c", now, cpuMem("500m", "1Mi")),
	)
	spec := autoscalingv2.MetricSpec{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
		Name: corev1.ResourceCPU, Container: "sidecar", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType},
	}}
	g := newGatherer([]autoscalingv2.MetricSpec{spec, resourceSpec(corev1.ResourceCPU, autoscalingv2.AverageValueMetricType)}, Clients{Resource: client.MetricsV1beta1()})
	ms, err := g.Gather(context.Background(), Target{Replicas: 3, Selector: "app=web", Pods: podsOf(pods...)})
	if err != nil {
		t.Fatal(err)
	}
	cr := ms[0].ContainerResource
	if cr == nil || ms[0].Resource != nil {
		t.Fatalf("container metric = %+v", ms[0])
	}
	if cr.PodMetricsInfo["a"].Value != 20 || cr.PodMetricsInfo["b"].Value != 40 || len(cr.PodMetricsInfo) != 2 {
		t.Errorf("sidecar samples = %v, want a=20 b=40", cr.PodMetricsInfo)
	}
	if _, ok := cr.MissingPods["c"]; !ok || cr.ReadyPodCount != 2 {
		t.Errorf("pod c (no sidecar) should be missing: ready %d, missing %v", cr.ReadyPodCount, cr.MissingPods)
	}
	if cr.Requests["a"] != 50 || cr.Requests["b"] != 50 || len(cr.Requests) != 2 {
		t.Errorf("sidecar requests = %v, want a=50 b=50", cr.Requests)
	}
	if whole := ms[1].Resource; whole.PodMetricsInfo["a"].Value != 120 || whole.PodMetricsInfo["c"].Value != 500 {
		t.Errorf("whole-pod cpu = %v, want a=120 c=500", whole.PodMetricsInfo)
	}
}

func TestRequestsIncludeSidecarsAndPodLevel(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	p := newPod("p", func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{
			{Name: "init", Resources: corev1.ResourceRequirements{}}, // runs to completion: not counted
			{Name: "proxy", RestartPolicy: &always, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}},
		}
	})
	got, err := requests([]*corev1.Pod{p}, corev1.ResourceCPU, "")
	if err != nil || got["p"] != 300 {
		t.Errorf("requests = %v, %v; want p=300", got, err)
	}
	p.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}
	if got, err := requests([]*corev1.Pod{p}, corev1.ResourceCPU, ""); err != nil || got["p"] != 1000 {
		t.Errorf("pod-level requests = %v, %v; want p=1000", got, err)
	}
	noReq := newPod("q", func(p *corev1.Pod) { p.Spec.Containers[0].Resources = corev1.ResourceRequirements{} })
	_, err = requests([]*corev1.Pod{noReq}, corev1.ResourceCPU, "")
	if err == nil || !strings.Contains(err.Error(), "container app of pod q has no cpu request") {
		t.Errorf("err = %v, want the container and pod named", err)
	}
}

func TestPodsMetric(t *testing.T) {
	pods := []*corev1.Pod{newPod("a"), newPod("b"), newPod("pending", phase(corev1.PodPending)), newPod("silent")}
	custom := &fakeCustom{objects: func(ns *string, gk schema.GroupKind, sel labels.Selector, metric string) (*custommetrics.MetricValueList, error) {
		if ns == nil || *ns != "ns" || gk.Kind != "Pod" || sel.String() != "app=web" || metric != "requests_per_second" {
			return nil, errors.New("unexpected query")
		}
		item := func(name, v string, window *int64) custommetrics.MetricValue {
			return custommetrics.MetricValue{DescribedObject: corev1.ObjectReference{Kind: "Pod", Name: name}, Timestamp: metav1.Time{Time: now}, WindowSeconds: window, Value: resource.MustParse(v)}
		}
		return &custommetrics.MetricValueList{Items: []custommetrics.MetricValue{item("a", "10", nil), item("b", "500m", ptr.To[int64](30)), item("pending", "7", nil)}}, nil
	}}
	spec := autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: "requests_per_second", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"verb": "GET"}}},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType},
	}}
	g := newGatherer([]autoscalingv2.MetricSpec{spec}, Clients{Custom: custom})
	ms, err := g.Gather(context.Background(), Target{Replicas: 4, Selector: "app=web", Pods: podsOf(pods...)})
	if err != nil {
		t.Fatal(err)
	}
	want := &k8smetric.PodsMetric{
		PodMetricsInfo: map[string]k8smetric.PodMetric{
			"a": {Timestamp: now, Window: time.Minute, Value: 10000},
			"b": {Timestamp: now, Window: 30 * time.Second, Value: 500},
		},
		ReadyPodCount: 2,
		IgnoredPods:   k8smetric.PodSet{"pending": {}},
		MissingPods:   k8smetric.PodSet{"silent": {}},
		TotalPods:     4,
		Timestamp:     now,
	}
	assertJSON(t, "pods", ms[0].Pods, want)
	if custom.selector.String() != "verb=GET" {
		t.Errorf("metric selector = %q, want verb=GET", custom.selector)
	}
}

func TestObjectMetric(t *testing.T) {
	pods := []*corev1.Pod{newPod("a"), newPod("b", started(time.Hour, corev1.ConditionFalse, time.Minute)), newPod("c", phase(corev1.PodPending))}
	var gotNS *string
	var gotGK schema.GroupKind
	custom := &fakeCustom{object: func(ns *string, gk schema.GroupKind, name, metric string) (*custommetrics.MetricValue, error) {
		gotNS, gotGK = ns, gk
		return &custommetrics.MetricValue{Timestamp: metav1.Time{Time: now}, Value: resource.MustParse("2500m")}, nil
	}}
	spec := func(apiVersion, kind, name string, t autoscalingv2.MetricTargetType) autoscalingv2.MetricSpec {
		return autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: apiVersion, Kind: kind, Name: name},
			Metric:          autoscalingv2.MetricIdentifier{Name: "hits"},
			Target:          autoscalingv2.MetricTarget{Type: t},
		}}
	}
	g := newGatherer([]autoscalingv2.MetricSpec{spec("networking.k8s.io/v1", "Ingress", "main", autoscalingv2.ValueMetricType)}, Clients{Custom: custom})
	ms, err := g.Gather(context.Background(), Target{Replicas: 3, Selector: "app=web", Pods: podsOf(pods...)})
	if err != nil {
		t.Fatal(err)
	}
	assertJSON(t, "object value", ms[0].Object, &k8smetric.ObjectMetric{Current: k8smetric.MetricValue{Value: ptr.To[int64](2500)}, ReadyPodCount: ptr.To[int64](1), Timestamp: now})
	if gotNS == nil || *gotNS != "ns" || gotGK != (schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}) {
		t.Errorf("queried %v %v, want namespace ns, Ingress.networking.k8s.io", gotNS, gotGK)
	}

	podsRead := false
	g = newGatherer([]autoscalingv2.MetricSpec{spec("v1", "Namespace", "ns", autoscalingv2.AverageValueMetricType)}, Clients{Custom: custom})
	ms, err = g.Gather(context.Background(), Target{Replicas: 3, Selector: "app=web", Pods: func(context.Context) ([]*corev1.Pod, error) {
		podsRead = true
		return pods, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	assertJSON(t, "object average", ms[0].Object, &k8smetric.ObjectMetric{Current: k8smetric.MetricValue{AverageValue: ptr.To[int64](2500)}, Timestamp: now})
	if gotNS != nil {
		t.Errorf("a Namespace's metric was queried in namespace %q, want root-scoped", *gotNS)
	}
	if podsRead {
		t.Error("an AverageValue object metric read the pods; it needs none")
	}
}

func TestExternalMetric(t *testing.T) {
	ext := &fakeExternal{list: func(ns, metric string, sel labels.Selector) (*externalmetrics.ExternalMetricValueList, error) {
		if ns != "ns" || metric != "queue_messages" || sel.String() != "queue=jobs" {
			return nil, errors.New("unexpected query")
		}
		v := func(q string) externalmetrics.ExternalMetricValue {
			return externalmetrics.ExternalMetricValue{Timestamp: metav1.Time{Time: now}, Value: resource.MustParse(q)}
		}
		return &externalmetrics.ExternalMetricValueList{Items: []externalmetrics.ExternalMetricValue{v("30"), v("12")}}, nil
	}}
	spec := autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: "queue_messages", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"queue": "jobs"}}},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType},
	}}
	g := newGatherer([]autoscalingv2.MetricSpec{spec}, Clients{External: ext})
	ms, err := g.Gather(context.Background(), Target{Replicas: 2, Selector: "app=web", Pods: podsOf(newPod("a"), newPod("b"))})
	if err != nil {
		t.Fatal(err)
	}
	assertJSON(t, "external", ms[0].External, &k8smetric.ExternalMetric{Current: k8smetric.MetricValue{Value: ptr.To[int64](42000)}, ReadyPodCount: ptr.To[int64](2), Timestamp: now})

	if got := addCapped(math.MaxInt64-1, 5); got != math.MaxInt64 {
		t.Errorf("addCapped overflowed to %d", got)
	}
}

func TestFailuresNameTheSpecAndKeepTheRest(t *testing.T) {
	client := newMetricsClient(t, podMetrics("a", now, cpuMem("100m", "1Mi")))
	ext := &fakeExternal{list: func(string, string, labels.Selector) (*externalmetrics.ExternalMetricValueList, error) {
		return &externalmetrics.ExternalMetricValueList{}, nil
	}}
	custom := &fakeCustom{object: func(*string, schema.GroupKind, string, string) (*custommetrics.MetricValue, error) {
		return nil, apierrors.NewServiceUnavailable("the server is currently unable to handle the request")
	}}
	specs := []autoscalingv2.MetricSpec{
		resourceSpec(corev1.ResourceCPU, autoscalingv2.AverageValueMetricType),
		{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "empty"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType}}},
		{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "Service", Name: "s"}, Metric: autoscalingv2.MetricIdentifier{Name: "rps"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType}}},
		resourceSpec(corev1.ResourceCPU, autoscalingv2.ValueMetricType),
	}
	g := newGatherer(specs, Clients{Resource: client.MetricsV1beta1(), External: ext, Custom: custom})
	ms, err := g.Gather(context.Background(), Target{Replicas: 1, Selector: "app=web", Pods: podsOf(newPod("a"))})
	var gerr *Error
	if !errors.As(err, &gerr) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if len(ms) != 1 || ms[0].Resource == nil {
		t.Errorf("gathered %+v, want the cpu metric kept", ms)
	}
	if gerr.Total != 4 || len(gerr.Failed) != 3 {
		t.Fatalf("failed %d of %d, want 3 of 4: %v", len(gerr.Failed), gerr.Total, err)
	}
	for i, want := range []string{
		`kubernetesMetricSpecs[1] (External empty): external.metrics.k8s.io returned no series of "empty"`,
		"kubernetesMetricSpecs[2] (Object rps of Service s): the custom.metrics.k8s.io API is unavailable",
		`kubernetesMetricSpecs[3] (Resource cpu): target.type "Value" is not supported`,
	} {
		if !strings.HasPrefix(gerr.Failed[i].Error(), want) {
			t.Errorf("failure %d = %q, want prefix %q", i, gerr.Failed[i].Error(), want)
		}
	}
	if !strings.HasPrefix(err.Error(), "failed to gather some Kubernetes metrics (3 of 4)") {
		t.Errorf("err = %v", err)
	}
}

func TestUnavailableMetricsAPI(t *testing.T) {
	for name, apiErr := range map[string]error{
		"not registered": apierrors.NewNotFound(schema.GroupResource{Group: "metrics.k8s.io", Resource: "pods"}, ""),
		"not ready":      apierrors.NewServiceUnavailable("the server is currently unable to handle the request"),
	} {
		t.Run(name, func(t *testing.T) {
			client := newMetricsClient(t)
			client.PrependReactor("list", "pods", func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, apiErr })
			g := newGatherer([]autoscalingv2.MetricSpec{resourceSpec(corev1.ResourceCPU, autoscalingv2.UtilizationMetricType)}, Clients{Resource: client.MetricsV1beta1()})
			ms, err := g.Gather(context.Background(), Target{Replicas: 1, Selector: "app=web", Pods: podsOf(newPod("a"))})
			if len(ms) != 0 || err == nil || !strings.Contains(err.Error(), "failed to gather all Kubernetes metrics (1 of 1)") ||
				!strings.Contains(err.Error(), "the metrics.k8s.io API is") {
				t.Errorf("got %v, %v; want a clear error", ms, err)
			}
		})
	}
	// No client at all (the runtime could not build one) and no pods: clear errors, no panic.
	g := newGatherer([]autoscalingv2.MetricSpec{resourceSpec(corev1.ResourceCPU, autoscalingv2.UtilizationMetricType)}, Clients{})
	if _, err := g.Gather(context.Background(), Target{Selector: "app=web", Pods: podsOf()}); err == nil || !strings.Contains(err.Error(), "no client for the metrics.k8s.io API") {
		t.Errorf("err = %v", err)
	}
	client := newMetricsClient(t)
	g = newGatherer([]autoscalingv2.MetricSpec{resourceSpec(corev1.ResourceCPU, autoscalingv2.UtilizationMetricType)}, Clients{Resource: client.MetricsV1beta1()})
	if _, err := g.Gather(context.Background(), Target{Selector: "app=web", Pods: podsOf()}); err == nil || !strings.Contains(err.Error(), `no pods match the target's selector "app=web"`) {
		t.Errorf("err = %v", err)
	}
	if _, err := g.Gather(context.Background(), Target{Selector: "app=web", Pods: podsOf(newPod("a"))}); err == nil || !strings.Contains(err.Error(), "returned no cpu usage") {
		t.Errorf("err = %v", err)
	}
}
