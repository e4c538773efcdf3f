package target

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	scalefake "k8s.io/client-go/scale/fake"
	k8stesting "k8s.io/client-go/testing"
)

var deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

func deployment(name, rv string, labels map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{
			"name": name, "namespace": "ns", "resourceVersion": rv, "labels": labels,
			"managedFields": []any{map[string]any{"manager": "kubectl"}},
		},
	}}
}

type fixture struct {
	w        *Watcher
	dyn      *dynamicfake.FakeDynamicClient
	kube     *kubefake.Clientset
	scales   *scalefake.FakeScaleClient
	mapper   meta.RESTMapper
	mu       sync.Mutex
	gets     int
	patches  []string
	replicas int32
	rv       string
}

func newFixture(t *testing.T, objects ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{replicas: 2, rv: "1"}
	scheme := runtime.NewScheme()
	f.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{deployments: "DeploymentList"}, objects...)
	f.kube = kubefake.NewClientset()
	scales := &scalefake.FakeScaleClient{}
	scales.AddReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.gets++
		return true, &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", ResourceVersion: f.rv},
			Spec:       autoscalingv1.ScaleSpec{Replicas: f.replicas},
			Status:     autoscalingv1.ScaleStatus{Replicas: f.replicas, Selector: "app=app"},
		}, nil
	})
	scales.AddReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		p := a.(k8stesting.PatchAction)
		f.patches = append(f.patches, string(p.GetPatchType())+" "+string(p.GetPatch()))
		return true, &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", ResourceVersion: "99"},
			Spec:       autoscalingv1.ScaleSpec{Replicas: 7},
			Status:     autoscalingv1.ScaleStatus{Selector: "app=app"},
		}, nil
	})
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.AddSpecific(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, deployments,
		deployments.GroupVersion().WithResource("deployment"), meta.RESTScopeNamespace)
	f.scales, f.mapper = scales, mapper
	f.withOptions(Options{})
	return f
}

// withOptions replaces the fixture's watcher by one with opts.
func (f *fixture) withOptions(opts Options) {
	ref := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"}
	f.w = NewWatcher(ref, "ns", Clients{Kube: f.kube, Dynamic: f.dyn, Scales: f.scales, Mapper: f.mapper}, opts)
}

func (f *fixture) scaleGets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

func startWatcher(t *testing.T, f *fixture) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { f.w.Stop(); cancel() })
	if err := f.w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func TestSnapshotReadsScaleOnlyWhenTargetChanges(t *testing.T) {
	f := newFixture(t, deployment("app", "1", map[string]any{"numPods": "3"}))
	ctx := startWatcher(t, f)

	snap, err := f.w.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Replicas != 2 || snap.Selector != "app=app" || snap.Object.GetLabels()["numPods"] != "3" {
		t.Fatalf("snapshot %+v", snap)
	}
	if snap.Object.GetManagedFields() != nil {
		t.Errorf("managedFields not stripped")
	}
	for range 3 {
		if _, err := f.w.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.scaleGets(); n != 1 {
		t.Fatalf("/scale read %d times for an unchanged target, want 1", n)
	}

	// The target changes: the watch delivers the new object and /scale is read again.
	f.mu.Lock()
	f.rv, f.replicas = "2", 4
	f.mu.Unlock()
	if _, err := f.dyn.Resource(deployments).Namespace("ns").Update(ctx, deployment("app", "2", map[string]any{"numPods": "5"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(guard)
	for {
		snap, err = f.w.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Object.GetLabels()["numPods"] == "5" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watch never delivered the update")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if snap.Replicas != 4 || f.scaleGets() != 2 {
		t.Fatalf("after update: replicas %d, /scale reads %d; want 4 and 2", snap.Replicas, f.scaleGets())
	}
}

func TestSetReplicasPatchesScale(t *testing.T) {
	f := newFixture(t, deployment("app", "1", nil))
	ctx := startWatcher(t, f)
	if err := f.w.SetReplicas(ctx, 7); err != nil {
		t.Fatal(err)
	}
	want := `application/json-patch+json [{"op":"replace","path":"/spec/replicas","value":7}]`
	if len(f.patches) != 1 || f.patches[0] != want {
		t.Fatalf("patches %q, want %q", f.patches, want)
	}
}

func TestSnapshotMissingTarget(t *testing.T) {
	f := newFixture(t)
	ctx := startWatcher(t, f)
	_, err := f.w.Snapshot(ctx)
	if err == nil || !strings.Contains(err.Error(), "scale target Deployment ns/app not found") {
		t.Fatalf("error = %v", err)
	}
}

func TestStartUnknownKind(t *testing.T) {
	f := newFixture(t)
	f.w.ref.Kind = "Widget"
	err := f.w.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `does not serve kind "Widget"`) {
		t.Fatalf("error = %v", err)
	}
}

func TestPodsFromWatchCache(t *testing.T) {
	f := newFixture(t, deployment("app", "1", nil))
	ctx := startWatcher(t, f)
	mk := func(name string, labels map[string]string, phase corev1.PodPhase) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: labels}, Status: corev1.PodStatus{Phase: phase}}
		if _, err := f.kube.CoreV1().Pods("ns").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	app := map[string]string{"app": "app"}
	mk("c", app, corev1.PodRunning)
	mk("a", app, corev1.PodPending)
	mk("b", app, corev1.PodSucceeded)
	mk("other", map[string]string{"app": "other"}, corev1.PodRunning)

	pods, err := f.w.Pods(ctx, "app=app")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "a,c" {
		t.Fatalf("pods %s, want a,c (sorted, finished and foreign pods left out)", got)
	}
	if _, err := f.w.Pods(ctx, "app=other"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Pods(ctx, "app in ("); err == nil {
		t.Fatal("bad selector accepted")
	}
	if _, err := f.w.Pods(ctx, ""); err == nil || !strings.Contains(err.Error(), "no pod selector") {
		t.Fatalf("empty selector: %v", err)
	}
}
