package schedulecontroller

import (
	"context"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	scalefake "k8s.io/client-go/scale/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	zv1 "github.com/custompodautoscaler/cpa/api/zalando/v1"
)

func unstructuredSchedule(t *testing.T, kind, ns, name string, active bool) *unstructured.Unstructured {
	t.Helper()
	obj := map[string]any{
		"apiVersion": "zalando.org/v1",
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "uid": "u-" + name, "resourceVersion": "7"},
		"spec": map[string]any{
			"scalingWindowDurationMinutes": int64(5),
			"schedules": []any{map[string]any{
				"type": "Repeating", "value": int64(30), "durationMinutes": int64(60),
				"period": map[string]any{"startTime": "08:00", "days": []any{"Mon", "Tue"}, "timezone": "Europe/Berlin"},
			}},
		},
		"status": map[string]any{"active": active},
	}
	u := &unstructured.Unstructured{Object: obj}
	if ns != "" {
		u.SetNamespace(ns)
	}
	return u
}

func TestInformerSchedules(t *testing.T) {
	ss := cache.NewStore(cache.MetaNamespaceKeyFunc)
	css := cache.NewStore(cache.MetaNamespaceKeyFunc)
	if err := ss.Add(unstructuredSchedule(t, KindScalingSchedule, "app", "sale", true)); err != nil {
		t.Fatal(err)
	}
	if err := css.Add(unstructuredSchedule(t, KindClusterScalingSchedule, "", "friday", false)); err != nil {
		t.Fatal(err)
	}
	// A typed object (an informer with a transform) is taken as it is.
	if err := css.Add(&zv1.ClusterScalingSchedule{ObjectMeta: metav1.ObjectMeta{Name: "typed"}}); err != nil {
		t.Fatal(err)
	}
	s := NewInformerSchedules(ss, css)

	list, err := s.ListScalingSchedules()
	if err != nil || len(list) != 1 {
		t.Fatalf("ListScalingSchedules = %v, %v", list, err)
	}
	got := list[0]
	if got.Namespace != "app" || got.Name != "sale" || got.UID != "u-sale" || got.ResourceVersion != "7" || !got.Status.Active ||
		got.Kind != KindScalingSchedule || got.APIVersion != "zalando.org/v1" {
		t.Errorf("converted object: %#v", got)
	}
	if got.Spec.ScalingWindowDurationMinutes == nil || *got.Spec.ScalingWindowDurationMinutes != 5 || len(got.Spec.Schedules) != 1 ||
		got.Spec.Schedules[0].Period == nil || got.Spec.Schedules[0].Period.Timezone != "Europe/Berlin" || got.Spec.Schedules[0].Value != 30 {
		t.Errorf("converted spec: %+v", got.Spec)
	}
	clist, err := s.ListClusterScalingSchedules()
	if err != nil || len(clist) != 2 {
		t.Fatalf("ListClusterScalingSchedules = %v, %v", clist, err)
	}

	if g, err := s.GetScalingSchedule("app", "sale"); err != nil || g.Name != "sale" {
		t.Errorf("GetScalingSchedule = %v, %v", g, err)
	}
	if _, err := s.GetScalingSchedule("other", "sale"); !apierrors.IsNotFound(err) {
		t.Errorf("GetScalingSchedule in another namespace: %v, want NotFound", err)
	}
	if g, err := s.GetClusterScalingSchedule("friday"); err != nil || g.Name != "friday" || g.Kind != KindClusterScalingSchedule {
		t.Errorf("GetClusterScalingSchedule = %v, %v", g, err)
	}
	if _, err := s.GetClusterScalingSchedule("nope"); !apierrors.IsNotFound(err) {
		t.Errorf("GetClusterScalingSchedule(nope): %v, want NotFound", err)
	}

	// An object that does not convert is left out and reported.
	bad := unstructuredSchedule(t, KindScalingSchedule, "app", "bad", false)
	bad.Object["spec"] = map[string]any{"schedules": "not a list"}
	if err := ss.Add(bad); err != nil {
		t.Fatal(err)
	}
	list, err = s.ListScalingSchedules()
	if err == nil || len(list) != 1 {
		t.Errorf("ListScalingSchedules with a bad object = %d objects, %v; want 1 and an error", len(list), err)
	}
}

func TestStatusClient(t *testing.T) {
	scheme := runtime.NewScheme()
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
		ScalingSchedulesResource:        "ScalingScheduleList",
		ClusterScalingSchedulesResource: "ClusterScalingScheduleList",
	},
		unstructuredSchedule(t, KindScalingSchedule, "app", "sale", false),
		unstructuredSchedule(t, KindClusterScalingSchedule, "", "friday", true),
	)
	s := NewStatusClient(client)
	ctx := context.Background()
	if err := s.SetActive(ctx, ScheduleRef{Kind: KindScalingSchedule, Namespace: "app", Name: "sale"}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive(ctx, ScheduleRef{Kind: KindClusterScalingSchedule, Name: "friday"}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive(ctx, ScheduleRef{Kind: "Deployment", Name: "x"}, false); err == nil {
		t.Error("SetActive on a Deployment: no error")
	}

	var patches []k8stesting.PatchAction
	for _, a := range client.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			patches = append(patches, p)
		}
	}
	if len(patches) != 2 {
		t.Fatalf("patches = %v", client.Actions())
	}
	for i, want := range []struct {
		gvr      schema.GroupVersionResource
		ns, name string
		patch    string
	}{
		{ScalingSchedulesResource, "app", "sale", `{"status":{"active":true}}`},
		{ClusterScalingSchedulesResource, "", "friday", `{"status":{"active":false}}`},
	} {
		p := patches[i]
		if p.GetResource() != want.gvr || p.GetNamespace() != want.ns || p.GetName() != want.name || p.GetSubresource() != "status" ||
			p.GetPatchType() != types.MergePatchType || string(p.GetPatch()) != want.patch {
			t.Errorf("patch %d: %s %s/%s /%s %s %s", i, p.GetResource(), p.GetNamespace(), p.GetName(), p.GetSubresource(), p.GetPatchType(), p.GetPatch())
		}
	}
}

func TestScaleClient(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"}, meta.RESTScopeNamespace)

	replicas := map[string]int32{"deployments.apps/web": 10, "rollouts.argoproj.io/canary": 3}
	var updates []string
	client := &scalefake.FakeScaleClient{}
	client.AddReactor("get", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		g := a.(k8stesting.GetAction)
		key := g.GetResource().GroupResource().String() + "/" + g.GetName()
		r, ok := replicas[key]
		if !ok {
			return true, nil, apierrors.NewNotFound(g.GetResource().GroupResource(), g.GetName())
		}
		return true, &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Namespace: g.GetNamespace(), Name: g.GetName(), ResourceVersion: "5"},
			Spec:       autoscalingv1.ScaleSpec{Replicas: r},
		}, nil
	})
	client.AddReactor("update", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		u := a.(k8stesting.UpdateAction)
		sc := u.GetObject().(*autoscalingv1.Scale)
		if sc.ResourceVersion != "5" {
			t.Errorf("update without the resourceVersion read: %q", sc.ResourceVersion)
		}
		key := u.GetResource().GroupResource().String() + "/" + sc.Name
		updates = append(updates, key)
		replicas[key] = sc.Spec.Replicas
		return true, sc, nil
	})
	s := NewScaleClient(client, mapper)
	ctx := context.Background()
	deploy := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}

	prev, changed, err := s.ScaleUp(ctx, "app", deploy, 11)
	if err != nil || prev != 10 || !changed || replicas["deployments.apps/web"] != 11 {
		t.Fatalf("ScaleUp(web, 11) = %d, %v, %v; replicas %d", prev, changed, err, replicas["deployments.apps/web"])
	}
	prev, changed, err = s.ScaleUp(ctx, "app", deploy, 11)
	if err != nil || prev != 11 || changed {
		t.Fatalf("ScaleUp(web, 11) again = %d, %v, %v", prev, changed, err)
	}
	rollout := autoscalingv2.CrossVersionObjectReference{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "canary"}
	if _, changed, err := s.ScaleUp(ctx, "app", rollout, 4); err != nil || !changed || replicas["rollouts.argoproj.io/canary"] != 4 {
		t.Fatalf("ScaleUp(rollout) = %v, %v", changed, err)
	}
	if len(updates) != 2 {
		t.Errorf("updates = %v, want 2", updates)
	}
	if _, _, err := s.ScaleUp(ctx, "app", autoscalingv2.CrossVersionObjectReference{APIVersion: "example.com/v1", Kind: "Nope", Name: "x"}, 2); err == nil {
		t.Error("ScaleUp of an unknown kind: no error")
	}
	if _, _, err := s.ScaleUp(ctx, "app", autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "gone"}, 2); err == nil {
		t.Error("ScaleUp of a missing target: no error")
	}
}
