package operator

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	cpav1 "github.com/custompodautoscaler/cpa/api/v1"
)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := cpav1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func testMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(appsv1.SchemeGroupVersion.WithKind("Deployment"), meta.RESTScopeNamespace)
	return m
}

func guideCPA() *cpav1.CustomPodAutoscaler {
	return &cpav1.CustomPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "python-custom-autoscaler", Namespace: "ns", Generation: 1, UID: "uid-1"},
		Spec: cpav1.CustomPodAutoscalerSpec{
			Template: cpav1.PodTemplateSpec{
				Metadata: runtime.RawExtension{Raw: []byte(`{"labels":{"team":"a"}}`)},
				Spec: runtime.RawExtension{Raw: []byte(`{"containers":[{"name":"cpa","image":"python-custom-autoscaler:latest",` +
					`"env":[{"name":"FROM_TEMPLATE","value":"1"}]}]}`)},
			},
			ScaleTargetRef:          autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "hello-kubernetes"},
			Config:                  []cpav1.ConfigItem{{Name: "interval", Value: "10000"}},
			ProvisionRole:           ptr.To(true),
			ProvisionRoleBinding:    ptr.To(true),
			ProvisionServiceAccount: ptr.To(true),
			ProvisionPod:            ptr.To(true),
		},
	}
}

// env is a reconciler over a fake client that counts writes.
type env struct {
	t       *testing.T
	r       *Reconciler
	c       client.Client
	updates map[string]int
	creates map[string]int
}

func newEnv(t *testing.T, objs ...client.Object) *env {
	t.Helper()
	e := &env{t: t, updates: map[string]int{}, creates: map[string]int{}}
	s := testScheme(t)
	e.c = fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&cpav1.CustomPodAutoscaler{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
				e.updates[kindName(obj)]++
				return c.Update(ctx, obj, opts...)
			},
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				e.creates[kindName(obj)]++
				return c.Create(ctx, obj, opts...)
			},
		}).Build()
	e.r = &Reconciler{Client: e.c, Scheme: s, Mapper: testMapper()}
	return e
}

func (e *env) reconcile(name string) {
	e.t.Helper()
	if _, err := e.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}}); err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
}

func (e *env) get(name string, obj client.Object) bool {
	e.t.Helper()
	err := e.c.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: name}, obj)
	if err != nil && !strings.Contains(err.Error(), "not found") {
		e.t.Fatal(err)
	}
	return err == nil
}

func (e *env) cpa(name string) *cpav1.CustomPodAutoscaler {
	e.t.Helper()
	c := &cpav1.CustomPodAutoscaler{}
	if !e.get(name, c) {
		e.t.Fatalf("CustomPodAutoscaler %s not found", name)
	}
	return c
}

func (e *env) change(name string, f func(*cpav1.CustomPodAutoscaler)) {
	e.t.Helper()
	c := e.cpa(name)
	f(c)
	c.Generation++
	if err := e.c.Update(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
}

func TestProvisionsTheGuidesAutoscaler(t *testing.T) {
	cpa := guideCPA()
	e := newEnv(t, cpa)
	e.reconcile(cpa.Name)

	owned := func(o client.Object) {
		t.Helper()
		if !metav1.IsControlledBy(o, cpa) {
			t.Errorf("%s %s is not controlled by the CustomPodAutoscaler: %v", kindName(o), o.GetName(), o.GetOwnerReferences())
		}
		if l := o.GetLabels(); l[ManagedByLabel] != ManagedByValue || l[OwnedByLabel] != cpa.Name {
			t.Errorf("%s labels = %v", kindName(o), l)
		}
	}
	var sa corev1.ServiceAccount
	var role rbacv1.Role
	var rb rbacv1.RoleBinding
	var d appsv1.Deployment
	for _, o := range []client.Object{&sa, &role, &rb, &d} {
		if !e.get(cpa.Name, o) {
			t.Fatalf("%T %s not provisioned", o, cpa.Name)
		}
		owned(o)
	}

	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{"hello-kubernetes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, ResourceNames: []string{"hello-kubernetes"}, Verbs: []string{"get", "patch", "update"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	}
	for _, w := range wantRules {
		if !slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return equalJSON(r, w) }) {
			t.Errorf("Role lacks %+v", w)
		}
	}
	for _, r := range role.Rules {
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") && !strings.Contains(r.APIGroups[0], "metrics") {
			t.Errorf("over-broad rule %+v", r)
		}
		if slices.Contains(r.APIGroups, "metrics.k8s.io") {
			t.Errorf("metrics access without roleRequiresMetricsServer: %+v", r)
		}
	}
	if rb.RoleRef.Name != cpa.Name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != cpa.Name || rb.Subjects[0].Namespace != "ns" {
		t.Errorf("RoleBinding = %+v", rb)
	}

	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("Deployment replicas %d, strategy %s; want 1, Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template
	if pod.Labels["team"] != "a" || pod.Labels[OwnedByLabel] != cpa.Name || pod.Spec.ServiceAccountName != cpa.Name {
		t.Errorf("pod template labels %v, serviceAccountName %q", pod.Labels, pod.Spec.ServiceAccountName)
	}
	var names []string
	vals := map[string]string{}
	for _, ev := range pod.Spec.Containers[0].Env {
		names = append(names, ev.Name)
		vals[ev.Name] = ev.Value
	}
	if !slices.Equal(names, []string{"FROM_TEMPLATE", "scaleTargetRef", "namespace", "CPA_NAME", "interval"}) ||
		vals["scaleTargetRef"] != `{"kind":"Deployment","name":"hello-kubernetes","apiVersion":"apps/v1"}` || vals["namespace"] != "ns" || vals["interval"] != "10000" {
		t.Errorf("env = %v", pod.Spec.Containers[0].Env)
	}

	got := e.cpa(cpa.Name)
	if c := meta.FindStatusCondition(got.Status.Conditions, ConditionReady); c == nil || c.Status != metav1.ConditionTrue || got.Status.ObservedGeneration != 1 {
		t.Errorf("status = %+v", got.Status)
	}

	// A second pass changes nothing.
	e.updates = map[string]int{}
	e.reconcile(cpa.Name)
	if len(e.updates) != 0 {
		t.Errorf("a reconcile with nothing changed updated %v", e.updates)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestOnlyATemplateOrConfigChangeRollsTheAutoscaler(t *testing.T) {
	cpa := guideCPA()
	e := newEnv(t, cpa)
	e.reconcile(cpa.Name)
	var d appsv1.Deployment
	e.get(cpa.Name, &d)
	hash := d.Annotations[TemplateHashAnnotation]

	e.change(cpa.Name, func(c *cpav1.CustomPodAutoscaler) { c.Spec.RoleRequiresMetricsServer = ptr.To(true) })
	e.updates = map[string]int{}
	e.reconcile(cpa.Name)
	if e.updates["Role"] != 1 || e.updates["Deployment"] != 0 {
		t.Errorf("roleRequiresMetricsServer: updates %v, want the Role only", e.updates)
	}
	var role rbacv1.Role
	e.get(cpa.Name, &role)
	if !slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.APIGroups, "metrics.k8s.io") }) {
		t.Errorf("Role has no metrics.k8s.io rule: %+v", role.Rules)
	}

	e.change(cpa.Name, func(c *cpav1.CustomPodAutoscaler) { c.Spec.Config[0].Value = "5000" })
	e.updates = map[string]int{}
	e.reconcile(cpa.Name)
	e.get(cpa.Name, &d)
	if e.updates["Deployment"] != 1 || d.Annotations[TemplateHashAnnotation] == hash {
		t.Errorf("config change: updates %v, template hash %s (was %s)", e.updates, d.Annotations[TemplateHashAnnotation], hash)
	}
}

func TestRenameAndProvisionFalse(t *testing.T) {
	cpa := guideCPA()
	e := newEnv(t, cpa)
	e.reconcile(cpa.Name)

	e.change(cpa.Name, func(c *cpav1.CustomPodAutoscaler) {
		c.Spec.Template.Metadata.Raw = []byte(`{"name":"renamed"}`)
	})
	e.reconcile(cpa.Name)
	var d appsv1.Deployment
	if e.get(cpa.Name, &d) || !e.get("renamed", &d) {
		t.Errorf("after renaming the template, want only Deployment renamed")
	}

	e.change(cpa.Name, func(c *cpav1.CustomPodAutoscaler) {
		c.Spec.ProvisionPod = ptr.To(false)
		c.Spec.ProvisionServiceAccount = ptr.To(false)
		c.Spec.Template.Spec.Raw = []byte(`{"serviceAccountName":"mine","containers":[{"name":"a","image":"b"}]}`)
	})
	e.reconcile(cpa.Name)
	var sa corev1.ServiceAccount
	if e.get("renamed", &d) || e.get(cpa.Name, &sa) {
		t.Errorf("provisionPod/ServiceAccount false: the operator's Deployment or ServiceAccount is still there")
	}
	var rb rbacv1.RoleBinding
	e.get(cpa.Name, &rb)
	if rb.Subjects[0].Name != "mine" {
		t.Errorf("RoleBinding subject %q, want the template's own service account", rb.Subjects[0].Name)
	}

	// Objects the user made are never touched when not provisioned.
	userSA := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns"}}
	other := guideCPA()
	other.Name, other.UID = "other", "uid-2"
	other.Spec.ProvisionServiceAccount = ptr.To(false)
	e2 := newEnv(t, other, userSA)
	e2.reconcile("other")
	e2.get("other", userSA)
	if len(userSA.OwnerReferences) != 0 || e2.updates["ServiceAccount"] != 0 {
		t.Errorf("a ServiceAccount the user made was changed: %+v", userSA.ObjectMeta)
	}
}

func TestBadSpecsAreReportedNotRetried(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(*cpav1.CustomPodAutoscaler)
		reason string
		msg    string
	}{
		"unknown field": {func(c *cpav1.CustomPodAutoscaler) {
			c.Spec.Template.Spec.Raw = []byte(`{"containers":[{"name":"a","image":"b","imagePolicy":"x"}]}`)
		}, ReasonInvalidSpec, `spec.template.spec: json: unknown field "imagePolicy"`},
		"no containers": {func(c *cpav1.CustomPodAutoscaler) { c.Spec.Template.Spec.Raw = []byte(`{}`) }, ReasonInvalidSpec, "spec.template.spec.containers: at least one container is required"},
		"unknown kind":  {func(c *cpav1.CustomPodAutoscaler) { c.Spec.ScaleTargetRef.Kind = "Deploymnet" }, ReasonUnknownTarget, `does not serve kind "Deploymnet" in "apps/v1"`},
		"bad pause": {func(c *cpav1.CustomPodAutoscaler) {
			c.Annotations = map[string]string{cpav1.PausedReplicasAnnotation: "three"}
		}, ReasonInvalidSpec, `paused-replicas="three"`},
	} {
		t.Run(name, func(t *testing.T) {
			cpa := guideCPA()
			tc.change(cpa)
			e := newEnv(t, cpa)
			e.reconcile(cpa.Name) // no error: retrying cannot help
			c := meta.FindStatusCondition(e.cpa(cpa.Name).Status.Conditions, ConditionReady)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.reason || !strings.Contains(c.Message, tc.msg) {
				t.Errorf("Ready = %+v, want False %s with %q", c, tc.reason, tc.msg)
			}
			var d appsv1.Deployment
			if e.get(cpa.Name, &d) {
				t.Error("a Deployment was created from a bad spec")
			}
		})
	}
}

func TestDeletingResourceIsLeftToGarbageCollection(t *testing.T) {
	cpa := guideCPA()
	now := metav1.Now()
	cpa.DeletionTimestamp = &now
	cpa.Finalizers = []string{"foregroundDeletion"}
	e := newEnv(t, cpa)
	e.reconcile(cpa.Name)
	if len(e.creates) != 0 || len(e.updates) != 0 {
		t.Errorf("reconciling a resource being deleted created %v, updated %v", e.creates, e.updates)
	}
}
