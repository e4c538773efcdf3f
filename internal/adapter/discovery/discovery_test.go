package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/custompodautoscaler/cpa/internal/adapter/annotations"
	"github.com/custompodautoscaler/cpa/internal/adapter/collect"
	"github.com/custompodautoscaler/cpa/internal/adapter/store"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

// fakeScheduler records what runs.
type fakeScheduler struct {
	mu   sync.Mutex
	jobs map[string]collect.Job // "ns/name metric"
	log  []string
}

func (s *fakeScheduler) Start(owner store.Owner, job collect.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[owner.String()+" "+job.Key.String()] = job
	s.log = append(s.log, fmt.Sprintf("start %s %s %s %s", owner, job.Key, job.Type, job.Interval))
}

func (s *fakeScheduler) Stop(owner store.Owner, key annotations.MetricKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jobs, owner.String()+" "+key.String())
	s.log = append(s.log, fmt.Sprintf("stop %s %s", owner, key))
}

func (s *fakeScheduler) StopAll(owner store.Owner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.jobs {
		if strings.HasPrefix(k, owner.String()+" ") {
			delete(s.jobs, k)
		}
	}
	s.log = append(s.log, fmt.Sprintf("stopall %s", owner))
}

func (s *fakeScheduler) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.log
	s.log = nil
	return out
}

type nopCollector struct{}

func (nopCollector) Collect(context.Context) ([]collector.Value, error) { return nil, nil }

// registry is the real collector.Registry with fake factories: json-path for Pods and
// External (needing an "endpoint" or "path" key), prometheus and skipper.
func registry(built *[]collector.Config) *collector.Registry {
	r := collector.NewRegistry()
	f := func(required string) collector.Factory {
		return func(cfg collector.Config) (collector.Collector, error) {
			if required != "" && cfg.Keys[required] == "" {
				return nil, fmt.Errorf("key %q: is required", required)
			}
			*built = append(*built, cfg)
			return nopCollector{}, nil
		}
	}
	r.Register(collector.Pods, "json-path", f("path"), "json-key", "path", "port", "scheme")
	r.Register(collector.External, "json-path", f("endpoint"), "endpoint", "json-key")
	r.Register(collector.External, "prometheus", f("query"), "query")
	r.Register(collector.External, "zmon", f(""), "check-id", "tag-*")
	r.Register(collector.Object, "prometheus", f("query"), "query")
	r.Register(collector.Object, "skipper", f(""), "backend")
	r.Register(collector.Object, "scaling-schedule", f(""))
	return r
}

type fixture struct {
	client   *fake.Clientset
	sched    *fakeScheduler
	recorder *record.FakeRecorder
	ctrl     *Controller
	built    []collector.Config
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{client: fake.NewClientset(), sched: &fakeScheduler{jobs: map[string]collect.Job{}}, recorder: record.NewFakeRecorder(100)}
	factory := informers.NewSharedInformerFactory(f.client, 0)
	inf := factory.Autoscaling().V2().HorizontalPodAutoscalers().Informer()
	ctrl, err := New(inf, registry(&f.built), f.sched, f.recorder, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.ctrl = ctrl
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return f
}

// syncNow runs one sync of the HPA once the informer has its latest version.
func (f *fixture) syncNow(t *testing.T, hpa *autoscalingv2.HorizontalPodAutoscaler, deleted bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := f.ctrl.lister.HorizontalPodAutoscalers(hpa.Namespace).Get(hpa.Name)
		if deleted && err != nil {
			break
		}
		if !deleted && err == nil && got.ResourceVersion == hpa.ResourceVersion {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the informer never saw %s (deleted %v)", hpa.Name, deleted)
		}
		time.Sleep(time.Millisecond)
	}
	if err := f.ctrl.sync(context.Background(), store.Owner{Namespace: hpa.Namespace, Name: hpa.Name}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) apply(t *testing.T, hpa *autoscalingv2.HorizontalPodAutoscaler) *autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	hpas := f.client.AutoscalingV2().HorizontalPodAutoscalers(hpa.Namespace)
	var (
		out *autoscalingv2.HorizontalPodAutoscaler
		err error
	)
	if _, gerr := hpas.Get(context.Background(), hpa.Name, metav1.GetOptions{}); gerr == nil {
		out, err = hpas.Update(context.Background(), hpa, metav1.UpdateOptions{})
	} else {
		out, err = hpas.Create(context.Background(), hpa, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	// The fake clientset keeps no resource versions: count updates in one.
	out.ResourceVersion = fmt.Sprint(time.Now().UnixNano())
	out, err = hpas.Update(context.Background(), out, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.syncNow(t, out, false)
	return out
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func hpa(annos map[string]string, metrics ...autoscalingv2.MetricSpec) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Annotations: annos},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas:    10,
			Metrics:        metrics,
		},
	}
}

func podsMetric(name string) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: name},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType},
	}}
}

func externalMetric(name, typ string) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: name, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"type": typ}}},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType},
	}}
}

func objectMetric(name, kind string, target autoscalingv2.MetricTargetType) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
		DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "networking.k8s.io/v1", Kind: kind, Name: "app"},
		Metric:          autoscalingv2.MetricIdentifier{Name: name},
		Target:          autoscalingv2.MetricTarget{Type: target},
	}}
}

func TestLifecycle(t *testing.T) {
	f := newFixture(t, Options{DefaultInterval: 45 * time.Second})
	annos := map[string]string{
		"metric-config.pods.rps.json-path/json-key":       "$.rps",
		"metric-config.pods.rps.json-path/path":           "/metrics",
		"metric-config.pods.rps.json-path/port":           "9090",
		"metric-config.external.queue.json-path/endpoint": "http://q/metrics",
		"metric-config.external.queue.json-path/json-key": "$.len",
		"metric-config.external.queue.json-path/interval": "10s",
	}
	h := f.apply(t, hpa(annos, podsMetric("rps"), externalMetric("queue", "json-path")))
	want := []string{
		"start ns/web External/queue {type=json-path} json-path 10s",
		"start ns/web Pods/rps json-path 45s",
	}
	if diff := cmp.Diff(want, f.sched.take()); diff != "" {
		t.Errorf("on add (-want +got):\n%s", diff)
	}
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events for a good HPA: %q", ev)
	}
	pods := f.built[len(f.built)-1]
	if pods.Kind != collector.Pods || pods.ScaleTarget != (collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "web"}) || pods.Keys["port"] != "9090" {
		t.Errorf("pods collector config = %+v", pods)
	}

	// A status update, and a new last-applied annotation: nothing to do.
	h.Status.CurrentReplicas = 3
	h.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
	h = f.apply(t, h)
	if got := f.sched.take(); len(got) != 0 {
		t.Errorf("an unchanged configuration restarted collectors: %q", got)
	}

	// One metric changes: only it restarts.
	h.Annotations["metric-config.external.queue.json-path/json-key"] = "$.length"
	h = f.apply(t, h)
	if diff := cmp.Diff([]string{"start ns/web External/queue {type=json-path} json-path 10s"}, f.sched.take()); diff != "" {
		t.Errorf("on change (-want +got):\n%s", diff)
	}

	// A metric goes.
	h.Spec.Metrics = h.Spec.Metrics[:1]
	delete(h.Annotations, "metric-config.external.queue.json-path/endpoint")
	delete(h.Annotations, "metric-config.external.queue.json-path/json-key")
	delete(h.Annotations, "metric-config.external.queue.json-path/interval")
	h = f.apply(t, h)
	if diff := cmp.Diff([]string{"stop ns/web External/queue {type=json-path}"}, f.sched.take()); diff != "" {
		t.Errorf("on metric removal (-want +got):\n%s", diff)
	}

	// The HPA goes.
	if err := f.client.AutoscalingV2().HorizontalPodAutoscalers("ns").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.syncNow(t, h, true)
	if diff := cmp.Diff([]string{"stopall ns/web"}, f.sched.take()); diff != "" {
		t.Errorf("on delete (-want +got):\n%s", diff)
	}
}

func TestProblemsOneEventPerChangeAndGoodMetricsRun(t *testing.T) {
	f := newFixture(t, Options{})
	annos := map[string]string{
		"metric-config.external.queue.json-path/endpoint": "http://q/metrics",
		"metric-config.external.queue.json-path/json-key": "$.len",
		"metric-config.external.cpu.json-path/interval":   "soon", // malformed
		"metric-config.external.lag.prometheus/interval":  "30s",  // no query key
	}
	h := f.apply(t, hpa(annos, externalMetric("queue", "json-path"), externalMetric("cpu", "json-path"),
		externalMetric("lag", "prometheus"), externalMetric("nats", "nats")))
	if diff := cmp.Diff([]string{"start ns/web External/queue {type=json-path} json-path 1m0s"}, f.sched.take()); diff != "" {
		t.Errorf("started (-want +got):\n%s", diff)
	}
	ev := f.events()
	if len(ev) != 1 {
		t.Fatalf("events = %q, want one", ev)
	}
	for _, want := range []string{
		"Warning InvalidMetricConfig",
		`annotation "metric-config.external.cpu.json-path/interval" (value "soon")`,
		`metric External/lag {type=prometheus}: metric "lag", collector prometheus: key "query": is required`,
		`no collector of type "nats" for External metrics`,
	} {
		if !strings.Contains(ev[0], want) {
			t.Errorf("event %q lacks %q", ev[0], want)
		}
	}

	// Re-synced unchanged (a status update): no new event.
	h.Status.CurrentReplicas = 2
	h = f.apply(t, h)
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("an unchanged HPA produced events again: %q", ev)
	}

	// Fixed: a Normal event says so, the fixed metrics start.
	h.Annotations["metric-config.external.cpu.json-path/interval"] = "20s"
	h.Annotations["metric-config.external.cpu.json-path/endpoint"] = "http://cpu"
	h.Annotations["metric-config.external.cpu.json-path/json-key"] = "$.cpu"
	h.Annotations["metric-config.external.lag.prometheus/query"] = "sum(lag)"
	h.Spec.Metrics = h.Spec.Metrics[:3]
	f.apply(t, h)
	got := f.sched.take()
	slices.Sort(got)
	want := []string{
		"start ns/web External/cpu {type=json-path} json-path 20s",
		"start ns/web External/lag {type=prometheus} prometheus 30s",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the fix (-want +got):\n%s", diff)
	}
	if ev := f.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Normal MetricConfigValid") {
		t.Errorf("events after the fix = %q, want one MetricConfigValid", ev)
	}
}

func TestDisregardIncompatible(t *testing.T) {
	f := newFixture(t, Options{DisregardIncompatible: true})
	f.apply(t, hpa(nil, externalMetric("nats", "nats")))
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events with --disregard-incompatible-hpas: %q", ev)
	}
}

func TestSkipperRoutingAndPodsWithoutCollector(t *testing.T) {
	f := newFixture(t, Options{SkipperKinds: map[string]bool{"Ingress": true}})
	f.apply(t, hpa(nil,
		objectMetric("requests-per-second", "Ingress", autoscalingv2.ValueMetricType),
		objectMetric("requests-per-second,b", "Ingress", autoscalingv2.AverageValueMetricType),
		objectMetric("lag", "Service", autoscalingv2.ValueMetricType),
		podsMetric("rps")))
	got := f.sched.take()
	slices.Sort(got)
	want := []string{
		"start ns/web Object/requests-per-second of Ingress/app skipper 1m0s",
		"start ns/web Object/requests-per-second,b of Ingress/app skipper 1m0s",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("started (-want +got):\n%s", diff)
	}
	perReplica := map[string]bool{}
	for _, c := range f.built {
		perReplica[c.Name] = c.PerReplica
		if c.Object != (collector.ObjectRef{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Namespace: "ns", Name: "app"}) {
			t.Errorf("object of %s = %+v", c.Name, c.Object)
		}
	}
	if !perReplica["requests-per-second"] || perReplica["requests-per-second,b"] {
		t.Errorf("per-replica = %v, want true only for the Value target", perReplica)
	}
	ev := f.events()
	if len(ev) != 1 || !strings.Contains(ev[0], "a Pods metric needs its collector configured (json-path)") ||
		!strings.Contains(ev[0], "an Object metric about a Service needs its collector configured") {
		t.Errorf("events = %q", ev)
	}
}

func TestFailuresReporter(t *testing.T) {
	f := newFixture(t, Options{})
	f.apply(t, hpa(nil))
	rep := Failures{Lister: f.ctrl.lister, Recorder: f.recorder}
	key := annotations.MetricKey{Type: autoscalingv2.ExternalMetricSourceType, Name: "queue"}
	rep.CollectionFailed(store.Owner{Namespace: "ns", Name: "web"}, key, errors.New("source down"))
	rep.CollectionRecovered(store.Owner{Namespace: "ns", Name: "web"}, key)
	rep.CollectionFailed(store.Owner{Namespace: "ns", Name: "gone"}, key, errors.New("x"))
	want := []string{"Warning CollectionFailed source down", "Normal CollectionRecovered metric External/queue is collected again"}
	if diff := cmp.Diff(want, f.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestUnknownKeysAndLongIntervalsAreReportedButRun(t *testing.T) {
	f := newFixture(t, Options{TTL: 15 * time.Minute})
	f.apply(t, hpa(map[string]string{
		"metric-config.pods.rps.json-path/json-key": "$.rps",
		"metric-config.pods.rps.json-path/path":     "/metrics",
		"metric-config.pods.rps.json-path/schema":   "https", // a typo of scheme
		"metric-config.pods.rps.json-path/interval": "20m",
	}, podsMetric("rps")))
	if diff := cmp.Diff([]string{"start ns/web Pods/rps json-path 20m0s"}, f.sched.take()); diff != "" {
		t.Errorf("started (-want +got):\n%s", diff)
	}
	ev := f.events()
	if len(ev) != 1 {
		t.Fatalf("events = %q, want one", ev)
	}
	for _, w := range []string{
		`annotation "metric-config.pods.rps.json-path/schema": the json-path collector has no key "schema" (it reads json-key, path, port, scheme); ignored`,
		"metric Pods/rps: its interval 20m0s is not below --metrics-ttl 15m0s",
	} {
		if !strings.Contains(ev[0], w) {
			t.Errorf("event %q lacks %q", ev[0], w)
		}
	}
}

func TestLegacyQueryNameKeysAreNotUnknown(t *testing.T) {
	f := newFixture(t, Options{})
	m := externalMetric("prometheus-query", "prometheus")
	m.External.Metric.Selector.MatchLabels["query-name"] = "lag"
	f.apply(t, hpa(map[string]string{"metric-config.external.prometheus-query.prometheus/lag": "sum(lag)"}, m))
	if got := f.sched.take(); len(got) != 1 {
		t.Errorf("started %q, want the legacy metric", got)
	}
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events = %q, want none", ev)
	}
}

// flaky fails to build until told otherwise, like a token file that is not there yet.
type flaky struct {
	*collector.Registry
	fail bool
}

func (f *flaky) New(cfg collector.Config) (collector.Collector, error) {
	if f.fail {
		return nil, errors.New("token file /var/run/token: no such file")
	}
	return f.Registry.New(cfg)
}

func TestBuildFailuresAreRetriedWithoutAChange(t *testing.T) {
	f := newFixture(t, Options{})
	b := &flaky{Registry: registry(&f.built), fail: true}
	f.ctrl.builder = b
	h := f.apply(t, hpa(map[string]string{
		"metric-config.external.queue.json-path/endpoint": "http://q/metrics",
		"metric-config.external.queue.json-path/json-key": "$.len",
	}, externalMetric("queue", "json-path")))
	if got := f.sched.take(); len(got) != 0 {
		t.Fatalf("started %q with a failing build", got)
	}
	if ev := f.events(); len(ev) != 1 || !strings.Contains(ev[0], "token file /var/run/token") {
		t.Fatalf("events = %q", ev)
	}
	// The same HPA, unchanged, synced again (the retry): the same failure sends no
	// second event.
	f.syncNow(t, h, false)
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("a repeated failure sent events again: %q", ev)
	}
	b.fail = false
	f.syncNow(t, h, false)
	if diff := cmp.Diff([]string{"start ns/web External/queue {type=json-path} json-path 1m0s"}, f.sched.take()); diff != "" {
		t.Errorf("after the retry (-want +got):\n%s", diff)
	}
	if ev := f.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Normal MetricConfigValid") {
		t.Errorf("events = %q, want MetricConfigValid", ev)
	}
}

func TestPrefixKeys(t *testing.T) {
	f := newFixture(t, Options{})
	f.apply(t, hpa(map[string]string{
		"metric-config.external.checks.zmon/check-id":        "1234",
		"metric-config.external.checks.zmon/tag-application": "my-app",
		"metric-config.external.checks.zmon/tag-":            "x", // a prefix alone is no tag
	}, externalMetric("checks", "zmon")))
	ev := f.events()
	if len(ev) != 1 || !strings.Contains(ev[0], `zmon/tag-": the zmon collector has no key "tag-"`) || strings.Contains(ev[0], "tag-application") {
		t.Errorf("events = %q, want only tag- reported", ev)
	}
}

func TestScheduleRouting(t *testing.T) {
	f := newFixture(t, Options{ScheduleKinds: map[string]bool{"ClusterScalingSchedule": true, "ScalingSchedule": true}})
	m := objectMetric("scheduling-event", "ClusterScalingSchedule", autoscalingv2.AverageValueMetricType)
	m.Object.DescribedObject.APIVersion = "zalando.org/v1"
	m.Object.DescribedObject.Name = "scheduling-event"
	f.apply(t, hpa(nil, m))
	if diff := cmp.Diff([]string{"start ns/web Object/scheduling-event of ClusterScalingSchedule/scheduling-event scaling-schedule 1m0s"}, f.sched.take()); diff != "" {
		t.Errorf("started (-want +got):\n%s", diff)
	}
}
