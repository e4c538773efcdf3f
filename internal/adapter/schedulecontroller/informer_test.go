package schedulecontroller

import (
	"context"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	scalefake "k8s.io/client-go/scale/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/collector/schedule"
)

// TestWithInformers wires the controller as the adapter does: dynamic informers
// on the schedules, an HPA informer, the dynamic client's status patches and the
// scale client, on client-go's fakes.
func TestWithInformers(t *testing.T) {
	sale := unstructuredSchedule(t, KindClusterScalingSchedule, "", "sale", false)
	sale.Object["spec"] = map[string]any{"schedules": []any{map[string]any{
		"type": "OneTime", "date": t0.Format(time.RFC3339), "durationMinutes": int64(60), "value": int64(1050),
	}}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		ScalingSchedulesResource:        "ScalingScheduleList",
		ClusterScalingSchedulesResource: "ClusterScalingScheduleList",
	}, sale)
	kube := kubefake.NewClientset(hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "100")))

	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	scales := &scalefake.FakeScaleClient{}
	replicas := int32(10)
	scales.AddReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web"}, Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}, nil
	})
	scales.AddReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sc := a.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
		replicas = sc.Spec.Replicas
		return true, sc, nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	df := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	ss := df.ForResource(ScalingSchedulesResource).Informer()
	css := df.ForResource(ClusterScalingSchedulesResource).Informer()
	kf := informers.NewSharedInformerFactory(kube, 0)
	hpaInformer := kf.Autoscaling().V2().HorizontalPodAutoscalers()
	hpaSynced := hpaInformer.Informer().HasSynced
	df.Start(ctx.Done())
	kf.Start(ctx.Done())
	defer df.Shutdown()
	defer kf.Shutdown()

	clk := clocktesting.NewFakeClock(t0.Add(time.Minute))
	opts, err := schedule.NewOptions(schedule.DefaultScalingWindow, schedule.DefaultRampSteps, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	rec := &fakeRecorder{}
	c, err := New(NewInformerSchedules(ss.GetStore(), css.GetStore()), hpaInformer.Lister(), NewStatusClient(dyn), NewScaleClient(scales, mapper), Options{
		Clock:    clk,
		Schedule: opts,
		Recorder: rec,
		Synced:   []cache.InformerSynced{ss.HasSynced, css.HasSynced, hpaSynced},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()

	active := func() bool {
		u, err := dyn.Resource(ClusterScalingSchedulesResource).Get(ctx, "sale", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a, _, _ := unstructured.NestedBool(u.Object, "status", "active")
		return a
	}
	waitFor(t, "status.active true", active)
	waitFor(t, "the informer to see the status", func() bool {
		s, err := c.schedules.GetClusterScalingSchedule("sale")
		return err == nil && s.Status.Active
	})
	waitFor(t, "the adjustment event", func() bool { return len(rec.get()) == 1 })
	if ev := rec.get()[0]; ev.message != "Scaling schedule 'ClusterScalingSchedule/sale' adjusted replicas 10 -> 11 based on metric: sale" {
		t.Errorf("event: %q", ev.message)
	}

	// More ticks within the schedule: no more writes.
	for range 3 {
		waitFor(t, "the ticker", clk.HasWaiters)
		clk.Step(DefaultInterval)
	}
	// After the ramp down: false.
	waitFor(t, "the ticker", clk.HasWaiters)
	clk.SetTime(t0.Add(71 * time.Minute))
	waitFor(t, "status.active false", func() bool { return !active() })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var patches int
	for _, a := range dyn.Actions() {
		if a.GetVerb() == "patch" {
			patches++
		}
	}
	if patches != 2 {
		t.Errorf("%d status patches, want 2", patches)
	}
	var hpaLists int
	for _, a := range kube.Actions() {
		if a.GetVerb() == "list" {
			hpaLists++
		}
	}
	if hpaLists != 1 {
		t.Errorf("%d HPA LISTs, want the informer's one", hpaLists)
	}
}
