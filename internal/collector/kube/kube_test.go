package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	scalefake "k8s.io/client-go/scale/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/custompodautoscaler/cpa/internal/collector"
)

func mapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, gvk := range []schema.GroupVersionKind{
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Group: "apps", Version: "v1", Kind: "StatefulSet"},
		{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"},
		{Group: "example.com", Version: "v1", Kind: "Worker"},
		{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
		{Group: "zalando.org", Version: "v1", Kind: "RouteGroup"},
	} {
		m.Add(gvk, meta.RESTScopeNamespace)
	}
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Node"}, meta.RESTScopeRoot)
	return m
}

// scales answers GET <resource>/scale from a table keyed by "resource/namespace/name".
func scales(t *testing.T, table map[string]autoscalingv1.ScaleStatus, fail map[string]error) (*Scales, *[]k8stesting.Action) {
	t.Helper()
	client := &scalefake.FakeScaleClient{}
	var seen []k8stesting.Action
	client.AddReactor("get", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		seen = append(seen, a)
		g := a.(k8stesting.GetAction)
		key := fmt.Sprintf("%s/%s/%s", g.GetResource().GroupResource(), g.GetNamespace(), g.GetName())
		if g.GetSubresource() != "scale" {
			t.Errorf("subresource %q, want scale", g.GetSubresource())
		}
		if err, ok := fail[key]; ok {
			return true, nil, err
		}
		st, ok := table[key]
		if !ok {
			return true, nil, apierrors.NewNotFound(g.GetResource().GroupResource(), g.GetName())
		}
		return true, &autoscalingv1.Scale{Status: st}, nil
	})
	return NewScales(client, mapper()), &seen
}

func TestScalesSelectorAnyKind(t *testing.T) {
	s, seen := scales(t, map[string]autoscalingv1.ScaleStatus{
		"deployments.apps/app/web":          {Replicas: 3, Selector: "app=web"},
		"statefulsets.apps/app/db":          {Replicas: 2, Selector: "app=db,tier in (a,b)"},
		"rollouts.argoproj.io/app/canary":   {Replicas: 5, Selector: "app=canary"},
		"workers.example.com/app/crunchers": {Replicas: 7, Selector: "role=cruncher,!legacy"},
	}, nil)
	for _, tc := range []struct {
		ref      collector.ObjectRef
		selector string
		replicas int32
	}{
		{collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "web"}, "app=web", 3},
		{collector.ObjectRef{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "app", Name: "db"}, "app=db,tier in (a,b)", 2},
		{collector.ObjectRef{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Namespace: "app", Name: "canary"}, "app=canary", 5},
		{collector.ObjectRef{APIVersion: "example.com/v1", Kind: "Worker", Namespace: "app", Name: "crunchers"}, "!legacy,role=cruncher", 7},
	} {
		t.Run(tc.ref.Kind, func(t *testing.T) {
			sel, err := s.Selector(context.Background(), tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := labels.Parse(tc.selector)
			if sel.String() != want.String() {
				t.Errorf("selector %q, want %q", sel, want)
			}
			n, err := s.Replicas(context.Background(), tc.ref)
			if err != nil || n != tc.replicas {
				t.Errorf("Replicas = %d, %v; want %d", n, err, tc.replicas)
			}
		})
	}
	if len(*seen) != 8 {
		t.Errorf("%d GETs, want 8 (nothing cached)", len(*seen))
	}
}

func TestScalesErrors(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "locked", errors.New("no RBAC"))
	noSubresource := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: 404, Reason: metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource",
	}}
	s, _ := scales(t, map[string]autoscalingv1.ScaleStatus{
		"deployments.apps/app/noselector":  {Replicas: 1},
		"deployments.apps/app/badselector": {Replicas: 1, Selector: "app in (("},
	}, map[string]error{
		"deployments.apps/app/locked":      forbidden,
		"workers.example.com/app/nosub":    noSubresource,
		"deployments.apps/app/unavailable": apierrors.NewServiceUnavailable("etcd down"),
	})
	for _, tc := range []struct {
		name string
		ref  collector.ObjectRef
		want []string
	}{
		{"not found", collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "gone"}, []string{"Deployment app/gone (apps/v1): not found"}},
		{"forbidden", collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "locked"}, []string{"forbidden to get deployments.apps/scale", `namespace "app"`, "Deployment app/locked"}},
		{"no subresource", collector.ObjectRef{APIVersion: "example.com/v1", Kind: "Worker", Namespace: "app", Name: "nosub"}, []string{"Worker app/nosub", "no /scale subresource"}},
		{"no selector", collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "noselector"}, []string{"Deployment app/noselector", "no pod selector"}},
		{"bad selector", collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "badselector"}, []string{"Deployment app/badselector", `"app in (("`}},
		{"unknown kind", collector.ObjectRef{APIVersion: "example.com/v1", Kind: "Gadget", Namespace: "app", Name: "x"}, []string{"Gadget app/x", "no such kind"}},
		{"bad apiVersion", collector.ObjectRef{APIVersion: "a/b/c", Kind: "Deployment", Namespace: "app", Name: "x"}, []string{`apiVersion "a/b/c"`}},
		{"no namespace", collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}, []string{"deployments.apps is namespaced and the reference has no namespace"}},
		{"no name", collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app"}, []string{"needs a kind and a name"}},
		{"server error", collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "unavailable"}, []string{"Deployment app/unavailable", "get deployments.apps/scale", "etcd down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := s.Selector(context.Background(), tc.ref)
			if err == nil {
				t.Fatalf("Selector = %v, want an error", sel)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	var zero *Scales
	if _, err := zero.Replicas(context.Background(), collector.ObjectRef{Kind: "Deployment", Name: "x"}); err == nil {
		t.Error("a nil Scales must fail, not panic")
	}
}

func pod(name string, lbls map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app", Labels: lbls}}
}

func TestPodsList(t *testing.T) {
	client := fake.NewClientset(
		pod("web-1", map[string]string{"app": "web"}),
		pod("web-2", map[string]string{"app": "web", "track": "canary"}),
		pod("db-1", map[string]string{"app": "db"}),
	)
	var opts []metav1.ListOptions
	client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts = append(opts, a.(k8stesting.ListActionImpl).ListOptions)
		return false, nil, nil
	})
	p := NewPods(client)
	sel, _ := labels.Parse("app=web")
	pods, err := p.List(context.Background(), "app", sel)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "web-1,web-2" {
		t.Errorf("pods %v, want web-1,web-2", names)
	}
	if len(opts) != 1 || opts[0].ResourceVersion != "0" || opts[0].LabelSelector != "app=web" || opts[0].Limit != DefaultMaxPods+1 {
		t.Errorf("list options %+v, want one LIST at resourceVersion 0 with the selector and a limit", opts)
	}

	if _, err := p.WithMax(1).List(context.Background(), "app", sel); err == nil || !strings.Contains(err.Error(), "more than 1 pods") {
		t.Errorf("error %v, want the cap named", err)
	}
	if _, err := p.List(context.Background(), "app", labels.Everything()); err == nil || !strings.Contains(err.Error(), "empty selector") {
		t.Errorf("error %v, want an empty selector refused", err)
	}
	if _, err := p.List(context.Background(), "app", nil); err == nil {
		t.Error("a nil selector must be refused")
	}
	if _, err := p.List(context.Background(), "", sel); err == nil {
		t.Error("no namespace must be refused")
	}

	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no RBAC"))
	})
	if _, err := p.List(context.Background(), "app", sel); err == nil || !strings.Contains(err.Error(), `forbidden to list pods in namespace "app"`) {
		t.Errorf("error %v, want forbidden naming the verb and resource", err)
	}
}

func TestPodsContinueIsAnError(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		l := &corev1.PodList{Items: []corev1.Pod{*pod("a", nil)}}
		l.Continue = "more"
		return true, l, nil
	})
	sel, _ := labels.Parse("app=web")
	if _, err := NewPods(client).WithMax(5).List(context.Background(), "app", sel); err == nil || !strings.Contains(err.Error(), "more than 5 pods") {
		t.Errorf("error %v, want the cap named", err)
	}
}

func obj(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func TestObjectsGet(t *testing.T) {
	client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(),
		obj("networking.k8s.io/v1", "Ingress", "app", "web"),
		obj("zalando.org/v1", "RouteGroup", "app", "rg"),
		obj("v1", "Node", "", "node-1"),
	)
	o := NewObjects(client, mapper())
	for _, ref := range []collector.ObjectRef{
		{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Namespace: "app", Name: "web"},
		{APIVersion: "zalando.org/v1", Kind: "RouteGroup", Namespace: "app", Name: "rg"},
		{APIVersion: "v1", Kind: "Node", Namespace: "ignored", Name: "node-1"},
	} {
		u, err := o.Get(context.Background(), ref)
		if err != nil {
			t.Fatalf("%v: %v", ref, err)
		}
		if u.GetKind() != ref.Kind || u.GetName() != ref.Name {
			t.Errorf("got %s %s, want %v", u.GetKind(), u.GetName(), ref)
		}
	}
	for _, tc := range []struct {
		ref  collector.ObjectRef
		want string
	}{
		{collector.ObjectRef{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Namespace: "app", Name: "gone"}, "Ingress app/gone (networking.k8s.io/v1): not found"},
		{collector.ObjectRef{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "web"}, "is namespaced and the reference has no namespace"},
		{collector.ObjectRef{APIVersion: "example.com/v9", Kind: "Nothing", Namespace: "app", Name: "x"}, "no such kind"},
	} {
		if _, err := o.Get(context.Background(), tc.ref); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.ref, err, tc.want)
		}
	}

	client.PrependReactor("get", "ingresses", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}, "web", errors.New("no RBAC"))
	})
	_, err := o.Get(context.Background(), collector.ObjectRef{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Namespace: "app", Name: "web"})
	if err == nil || !strings.Contains(err.Error(), "forbidden to get ingresses.networking.k8s.io") {
		t.Errorf("error %v, want forbidden naming the verb and resource", err)
	}
}
