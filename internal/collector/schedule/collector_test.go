package schedule

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/collector"
)

// objects serves schedules by namespace/name, recording what was asked.
type objects struct {
	byKey map[string]ScalingScheduleSpec
	asked []collector.ObjectRef
}

func (o *objects) Get(_ context.Context, ref collector.ObjectRef) (*unstructured.Unstructured, error) {
	o.asked = append(o.asked, ref)
	spec, ok := o.byKey[ref.Namespace+"/"+ref.Name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "zalando.org", Resource: "scalingschedules"}, ref.Name)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&struct {
		Spec ScalingScheduleSpec `json:"spec"`
	}{spec})
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}

func scheduleConfig(kind, name string) collector.Config {
	return collector.Config{Kind: collector.Object, Name: name, Type: Type, Namespace: "ns",
		Object: collector.ObjectRef{APIVersion: "zalando.org/v1", Kind: kind, Namespace: "ns", Name: name}}
}

func TestCollectorServesTheScheduleValueNow(t *testing.T) {
	objs := &objects{byKey: map[string]ScalingScheduleSpec{
		"/scheduling-event": specW(0, oneTime("2021-10-02T08:08:08+02:00", "", 30, 100)),
		"ns/local":          specW(0, oneTime("2021-10-02T08:00:00+02:00", "", 60, 7)),
	}}
	clk := clocktesting.NewFakeClock(at("2021-10-02T08:20:00+02:00"))
	opts := CollectorOptions{Objects: objs, Schedule: Options{RampSteps: 10}, Clock: clk}

	c, err := NewCollector(scheduleConfig(KindClusterScalingSchedule, "scheduling-event"), opts)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := c.Collect(context.Background())
	if err != nil || len(vs) != 1 || vs[0].Value.String() != "100" || vs[0].Object.Namespace != "" || vs[0].Object.Kind != KindClusterScalingSchedule {
		t.Fatalf("cluster schedule: %+v, %v", vs, err)
	}
	clk.Step(30 * 60e9) // 08:50: the 30 minutes are over
	if vs, err := c.Collect(context.Background()); err != nil || vs[0].Value.String() != "0" {
		t.Errorf("after the schedule: %+v, %v; want 0", vs, err)
	}

	local, err := NewCollector(scheduleConfig(KindScalingSchedule, "local"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := local.Collect(context.Background()); err != nil || vs[0].Value.String() != "7" || vs[0].Object.Namespace != "ns" {
		t.Errorf("namespaced schedule: %+v, %v", vs, err)
	}
	want := []collector.ObjectRef{
		{APIVersion: "zalando.org/v1", Kind: KindClusterScalingSchedule, Name: "scheduling-event"},
		{APIVersion: "zalando.org/v1", Kind: KindClusterScalingSchedule, Name: "scheduling-event"},
		{APIVersion: "zalando.org/v1", Kind: KindScalingSchedule, Namespace: "ns", Name: "local"},
	}
	for i := range want {
		if objs.asked[i] != want[i] {
			t.Errorf("read %d = %+v, want %+v", i, objs.asked[i], want[i])
		}
	}
}

func TestCollectorErrors(t *testing.T) {
	objs := &objects{byKey: map[string]ScalingScheduleSpec{
		"ns/bad": {Schedules: []Schedule{{Type: "Sometimes", Value: 1}}},
	}}
	opts := CollectorOptions{Objects: objs, Schedule: Options{RampSteps: 10}}
	for name, want := range map[string]string{
		"gone": "referenced ScalingSchedule ns/gone not found",
		"bad":  "ScalingSchedule ns/bad: spec.schedules[0].type",
	} {
		c, err := NewCollector(scheduleConfig(KindScalingSchedule, name), opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	bad := scheduleConfig("Deployment", "x")
	bad.Object.APIVersion = "apps/v1"
	bad.Kind = collector.External
	_, err := NewCollector(bad, CollectorOptions{})
	for _, want := range []string{"Object metrics, not External", `apiVersion "apps/v1"`, `kind "Deployment"`, "no way to read schedules"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewCollector(bad) = %v, want %q", err, want)
		}
	}
}
