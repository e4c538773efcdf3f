package schedulecontroller

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	zv1 "github.com/custompodautoscaler/cpa/api/zalando/v1"
	"github.com/custompodautoscaler/cpa/internal/collector/schedule"
)

// t0 is 10:00 UTC, the start of the one-time schedules of the tests.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// fakeSchedules is Schedules over maps; with apply, status writes through
// fakeStatus change the objects (as the API server and the informer would).
type fakeSchedules struct {
	mu      sync.Mutex
	ss      map[string]*zv1.ScalingSchedule
	css     map[string]*zv1.ClusterScalingSchedule
	rv      int
	listErr error // of ListScalingSchedules
}

func newFakeSchedules() *fakeSchedules {
	return &fakeSchedules{ss: map[string]*zv1.ScalingSchedule{}, css: map[string]*zv1.ClusterScalingSchedule{}}
}

func (f *fakeSchedules) nextRV() string {
	f.rv++
	return strconv.Itoa(f.rv)
}

func (f *fakeSchedules) addScalingSchedule(ns, name string, spec zv1.ScalingScheduleSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ss[ns+"/"+name] = &zv1.ScalingSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Generation: 1, ResourceVersion: f.nextRV()},
		Spec:       spec,
	}
}

func (f *fakeSchedules) addClusterScalingSchedule(name string, spec zv1.ScalingScheduleSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.css[name] = &zv1.ClusterScalingSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Generation: 1, ResourceVersion: f.nextRV()},
		Spec:       spec,
	}
}

// setActive changes the status of an object, as a write seen by the informer.
func (f *fakeSchedules) setActive(ref ScheduleRef, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch ref.Kind {
	case KindScalingSchedule:
		if s, ok := f.ss[ref.Namespace+"/"+ref.Name]; ok {
			c := s.DeepCopy()
			c.Status.Active = active
			c.ResourceVersion = f.nextRV()
			f.ss[ref.Namespace+"/"+ref.Name] = c
		}
	case KindClusterScalingSchedule:
		if s, ok := f.css[ref.Name]; ok {
			c := s.DeepCopy()
			c.Status.Active = active
			c.ResourceVersion = f.nextRV()
			f.css[ref.Name] = c
		}
	}
}

// updateClusterSpec changes the spec of a ClusterScalingSchedule (a new generation).
func (f *fakeSchedules) updateClusterSpec(name string, spec zv1.ScalingScheduleSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.css[name].DeepCopy()
	c.Spec = spec
	c.Generation++
	c.ResourceVersion = f.nextRV()
	f.css[name] = c
}

func (f *fakeSchedules) ListScalingSchedules() ([]*zv1.ScalingSchedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*zv1.ScalingSchedule
	for _, s := range f.ss {
		out = append(out, s)
	}
	return out, f.listErr
}

func (f *fakeSchedules) ListClusterScalingSchedules() ([]*zv1.ClusterScalingSchedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*zv1.ClusterScalingSchedule
	for _, s := range f.css {
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeSchedules) GetScalingSchedule(ns, name string) (*zv1.ScalingSchedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.ss[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(scalingScheduleGR, name)
}

func (f *fakeSchedules) GetClusterScalingSchedule(name string) (*zv1.ClusterScalingSchedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.css[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(clusterScalingScheduleGR, name)
}

type statusWrite struct {
	ref    ScheduleRef
	active bool
}

// fakeStatus records the writes; with apply set, it applies them to apply.
type fakeStatus struct {
	mu     sync.Mutex
	writes []statusWrite
	apply  *fakeSchedules
	err    error
}

func (f *fakeStatus) SetActive(_ context.Context, ref ScheduleRef, active bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.writes = append(f.writes, statusWrite{ref, active})
	if f.apply != nil {
		f.apply.setActive(ref, active)
	}
	return nil
}

func (f *fakeStatus) get() []statusWrite {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]statusWrite(nil), f.writes...)
}

type event struct {
	object               runtime.Object
	typ, reason, message string
}

type fakeRecorder struct {
	mu     sync.Mutex
	events []event
}

func (f *fakeRecorder) Eventf(obj runtime.Object, typ, reason, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, event{obj, typ, reason, fmt.Sprintf(format, args...)})
}

func (f *fakeRecorder) get() []event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]event(nil), f.events...)
}

type fakeHPAs []*autoscalingv2.HorizontalPodAutoscaler

func (f fakeHPAs) List(labels.Selector) ([]*autoscalingv2.HorizontalPodAutoscaler, error) {
	return f, nil
}

type scaleCall struct {
	namespace string
	target    autoscalingv2.CrossVersionObjectReference
	replicas  int32
}

// fakeScaler holds the spec.replicas of the targets by "namespace/name".
type fakeScaler struct {
	mu       sync.Mutex
	replicas map[string]int32
	calls    []scaleCall
}

func (f *fakeScaler) ScaleUp(_ context.Context, ns string, target autoscalingv2.CrossVersionObjectReference, replicas int32) (int32, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, scaleCall{ns, target, replicas})
	key := ns + "/" + target.Name
	prev, ok := f.replicas[key]
	if !ok {
		return 0, false, apierrors.NewNotFound(autoscalingv2.Resource("deployments"), target.Name)
	}
	if prev >= replicas {
		return prev, false, nil
	}
	f.replicas[key] = replicas
	return prev, true, nil
}

func (f *fakeScaler) get() []scaleCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]scaleCall(nil), f.calls...)
}

// oneTime is a spec with one OneTime schedule of value from start for minutes.
func oneTime(start time.Time, minutes int, value int64) zv1.ScalingScheduleSpec {
	return zv1.ScalingScheduleSpec{Schedules: []zv1.Schedule{{
		Type:            zv1.OneTimeSchedule,
		Date:            ptr(zv1.ScheduleDate(start.Format(time.RFC3339))),
		DurationMinutes: minutes,
		Value:           value,
	}}}
}

func ptr[T any](v T) *T { return &v }

// env is a controller over fakes at t0 - 1h.
type env struct {
	clock     *clocktesting.FakeClock
	schedules *fakeSchedules
	status    *fakeStatus
	recorder  *fakeRecorder
	scaler    *fakeScaler
	hpas      fakeHPAs
	logs      *syncBuffer
	c         *Controller
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T, hpas ...*autoscalingv2.HorizontalPodAutoscaler) *env {
	t.Helper()
	e := &env{
		clock:     clocktesting.NewFakeClock(t0.Add(-time.Hour)),
		schedules: newFakeSchedules(),
		recorder:  &fakeRecorder{},
		scaler:    &fakeScaler{replicas: map[string]int32{}},
		hpas:      hpas,
		logs:      &syncBuffer{},
	}
	e.status = &fakeStatus{apply: e.schedules}
	opts, err := schedule.NewOptions(10*time.Minute, 10, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	e.c, err = New(e.schedules, e.hpas, e.status, e.scaler, Options{
		Clock:    e.clock,
		Schedule: opts,
		Log:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Recorder: e.recorder,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// at runs one tick at t.
func (e *env) at(t time.Time) {
	e.clock.SetTime(t)
	e.c.Tick(context.Background())
}

// hpa returns an HPA in namespace "app" on Deployment "web" with current
// replicas, maxReplicas max and the metrics.
func hpa(name string, current, max int32, metrics ...autoscalingv2.MetricSpec) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    ptr(int32(1)),
			MaxReplicas:    max,
			Metrics:        metrics,
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: current, DesiredReplicas: current},
	}
}

// scheduleMetric returns an Object metric on the schedule kind/name with
// target averageValue avg.
func objectMetric(kind, name, avg string) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ObjectMetricSourceType,
		Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "zalando.org/v1", Kind: kind, Name: name},
			Metric:          autoscalingv2.MetricIdentifier{Name: name},
			Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(resource.MustParse(avg))},
		},
	}
}
