package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	cpav1 "github.com/custompodautoscaler/cpa/api/custompodautoscaler/v1"
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
	m.Add(corev1.SchemeGroupVersion.WithKind("Secret"), meta.RESTScopeNamespace)
	m.Add(corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, meta.RESTScopeNamespace)
	return m
}

// fakeDiscovery serves the subresources of the test mapper's kinds: Deployments and
// Widgets have /scale, Secrets do not.
type fakeDiscovery struct{ invalidated int }

func (d *fakeDiscovery) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	names := map[string][]string{
		"apps/v1":        {"deployments", "deployments/scale", "deployments/status"},
		"v1":             {"secrets", "pods", "namespaces"},
		"example.com/v1": {"widgets", "widgets/scale"},
	}[gv]
	if names == nil {
		return nil, memory.ErrCacheNotFound
	}
	l := &metav1.APIResourceList{GroupVersion: gv}
	for _, n := range names {
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: n})
	}
	return l, nil
}

func (d *fakeDiscovery) Invalidate() { d.invalidated++ }

const ns = "ns"

func guideCPA() *cpav1.CustomPodAutoscaler {
	return &cpav1.CustomPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "python-custom-autoscaler", Namespace: ns, Generation: 1, UID: "uid-1"},
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

// targetDeployment is the guide's scale target.
func targetDeployment(replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-kubernetes", Namespace: ns},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
	}
}

// env is a reconciler over a fake client that counts writes by kind.
type env struct {
	t      *testing.T
	r      *Reconciler
	c      client.Client
	writes map[string]int
}

func newEnv(t *testing.T, funcs interceptor.Funcs, objs ...client.Object) *env {
	t.Helper()
	e := &env{t: t, writes: map[string]int{}}
	s := testScheme(t)
	count := func(verb string, obj client.Object) {
		kind := kindName(obj)
		if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
			kind = k
		}
		e.writes[verb+" "+kind]++
	}
	if funcs.Create == nil {
		funcs.Create = func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			return c.Create(ctx, obj, opts...)
		}
	}
	if funcs.Update == nil {
		funcs.Update = func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			return c.Update(ctx, obj, opts...)
		}
	}
	// The real client reads an unstructured target's /scale as an unstructured Scale; the
	// fake one knows only typed Scales, so the Deployment's scale is served here.
	funcs.SubResourceGet = func(ctx context.Context, c client.Client, sub string, obj, out client.Object, opts ...client.SubResourceGetOption) error {
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), &d); err != nil {
			return err
		}
		out.(*unstructured.Unstructured).Object["spec"] = map[string]any{"replicas": int64(*d.Spec.Replicas)}
		return nil
	}
	funcs.SubResourcePatch = func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
		data, err := patch.Data(obj)
		if err != nil {
			return err
		}
		var p struct{ Spec struct{ Replicas int32 } }
		if err := json.Unmarshal(data, &p); err != nil {
			return err
		}
		e.writes["patch "+sub]++
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), &d); err != nil {
			return err
		}
		d.Spec.Replicas = &p.Spec.Replicas
		return c.Update(ctx, &d)
	}
	create, update := funcs.Create, funcs.Update
	funcs.Create = func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		count("create", obj)
		return create(ctx, c, obj, opts...)
	}
	funcs.Update = func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
		count("update", obj)
		return update(ctx, c, obj, opts...)
	}
	e.c = fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&cpav1.CustomPodAutoscaler{}, &appsv1.Deployment{}).
		WithInterceptorFuncs(funcs).Build()
	e.r = &Reconciler{Client: e.c, Scheme: s, Mapper: testMapper(), Discovery: &fakeDiscovery{}}
	return e
}

func (e *env) reconcile(name string) ctrl.Result {
	e.t.Helper()
	res, err := e.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	return res
}

func (e *env) get(name string, obj client.Object) bool {
	e.t.Helper()
	err := e.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj)
	if err != nil && !apierrors.IsNotFound(err) {
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

// objects lists what the namespace holds besides CustomPodAutoscalers, as "Kind/name".
func (e *env) objects() []string {
	e.t.Helper()
	var out []string
	for _, l := range []client.ObjectList{&corev1.ServiceAccountList{}, &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &appsv1.DeploymentList{}, &corev1.SecretList{}} {
		if err := e.c.List(context.Background(), l, client.InNamespace(ns)); err != nil {
			e.t.Fatal(err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, it := range items {
			o := it.(client.Object)
			typ := fmt.Sprintf("%T", it) // *v1.Role
			out = append(out, typ[strings.LastIndex(typ, ".")+1:]+"/"+o.GetName())
		}
	}
	slices.Sort(out)
	return out
}

// conds is a condition as the tables compare it: type, status, reason.
type cond struct{ Type, Status, Reason string }

func (e *env) conditions(name string) []cond {
	e.t.Helper()
	var out []cond
	for _, c := range e.cpa(name).Status.Conditions {
		out = append(out, cond{c.Type, string(c.Status), c.Reason})
	}
	slices.SortFunc(out, func(a, b cond) int { return strings.Compare(a.Type, b.Type) })
	return out
}

var (
	provisionedObjects = []string{"Deployment/hello-kubernetes", "Deployment/python-custom-autoscaler", "Role/python-custom-autoscaler", "RoleBinding/python-custom-autoscaler", "ServiceAccount/python-custom-autoscaler"}
	targetOnly         = []string{"Deployment/hello-kubernetes"}
	running            = cond{ConditionPaused, "False", ReasonRunning}
)

// forbidEscalation answers a Role write as the API server's RBAC does when the writer
// does not hold a rule it grants.
func forbidEscalation(resource string) interceptor.Funcs {
	refuse := func(obj client.Object) error {
		role, ok := obj.(*rbacv1.Role)
		if !ok {
			return nil
		}
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, resource) {
				return apierrors.NewForbidden(rbacv1.Resource("roles"), role.Name,
					fmt.Errorf("user \"system:serviceaccount:cpa-system:custom-pod-autoscaler-operator\" (groups=[]) is %s: {APIGroups:[%q], Resources:[%q], Verbs:[get list watch]}", escalationMessage, r.APIGroups[0], resource))
			}
		}
		return nil
	}
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := refuse(obj); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if err := refuse(obj); err != nil {
				return err
			}
			return c.Update(ctx, obj, opts...)
		},
	}
}

// availableDeployment is the autoscaler's Deployment as the cluster reports it once its
// pod runs (or, with replicas 0, once its pods are gone).
func availableDeployment(t *testing.T, cpa *cpav1.CustomPodAutoscaler, paused bool) *appsv1.Deployment {
	t.Helper()
	tpl, err := podTemplate(cpa)
	if err != nil {
		t.Fatal(err)
	}
	u, err := desiredDeployment(cpa, tpl, paused)
	if err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
		t.Fatal(err)
	}
	d.OwnerReferences = []metav1.OwnerReference{{APIVersion: cpav1.GroupVersion.String(), Kind: "CustomPodAutoscaler", Name: cpa.Name, UID: cpa.UID, Controller: ptr.To(true)}}
	d.Generation = 1
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: *d.Spec.Replicas, AvailableReplicas: *d.Spec.Replicas,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}}
	return d
}

func owned(o client.Object, cpa *cpav1.CustomPodAutoscaler) client.Object {
	o.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: cpav1.GroupVersion.String(), Kind: "CustomPodAutoscaler", Name: cpa.Name, UID: cpa.UID, Controller: ptr.To(true)}})
	o.SetLabels(ownLabels(cpa))
	return o
}

func TestReconcile(t *testing.T) {
	base := guideCPA()
	for _, tc := range []struct {
		name      string
		cpa       func(*cpav1.CustomPodAutoscaler)
		existing  func(cpa *cpav1.CustomPodAutoscaler) []client.Object
		intercept interceptor.Funcs
		objects   []string
		conds     []cond
		message   string // in the Ready condition's message
		target    int32  // the target's replicas after the reconcile; 0 means unchanged (1)
	}{{
		name:    "the guide's autoscaler, nothing there yet",
		objects: provisionedObjects,
		conds:   []cond{running, {ConditionReady, "False", ReasonStarting}},
		message: "waiting for the autoscaler's Deployment python-custom-autoscaler to be available",
	}, {
		name: "the autoscaler's Deployment available",
		existing: func(cpa *cpav1.CustomPodAutoscaler) []client.Object {
			return []client.Object{availableDeployment(t, cpa, false)}
		},
		objects: provisionedObjects,
		conds:   []cond{running, {ConditionReady, "True", ReasonAvailable}},
	}, {
		name: "a Secret is no scale target: nothing is provisioned",
		cpa: func(c *cpav1.CustomPodAutoscaler) {
			c.Spec.ScaleTargetRef = autoscalingv1.CrossVersionObjectReference{APIVersion: "v1", Kind: "Secret", Name: "db-creds"}
		},
		objects: targetOnly,
		conds:   []cond{running, {ConditionReady, "False", ReasonNotScalable}},
		message: `kind "Secret" (secrets) has no /scale subresource`,
	}, {
		name: "a cluster-scoped kind is no scale target",
		cpa: func(c *cpav1.CustomPodAutoscaler) {
			c.Spec.ScaleTargetRef = autoscalingv1.CrossVersionObjectReference{APIVersion: "v1", Kind: "Namespace", Name: "kube-system"}
		},
		objects: targetOnly,
		conds:   []cond{running, {ConditionReady, "False", ReasonNotScalable}},
		message: "is not namespaced",
	}, {
		name:    "an unknown kind",
		cpa:     func(c *cpav1.CustomPodAutoscaler) { c.Spec.ScaleTargetRef.Kind = "Deploymnet" },
		objects: targetOnly,
		conds:   []cond{running, {ConditionReady, "False", ReasonUnknownTarget}},
		message: `does not serve kind "Deploymnet" in "apps/v1"`,
	}, {
		name: "a scalable kind the operator may not grant: nothing is provisioned, the rule to add is named",
		cpa: func(c *cpav1.CustomPodAutoscaler) {
			c.Spec.ScaleTargetRef = autoscalingv1.CrossVersionObjectReference{APIVersion: "example.com/v1", Kind: "Widget", Name: "w"}
		},
		intercept: forbidEscalation("widgets"),
		objects:   targetOnly,
		conds:     []cond{running, {ConditionReady, "False", ReasonNotGranted}},
		message:   `{apiGroups: ["example.com"], resources: ["widgets"], verbs: [get, list, watch]} and {apiGroups: ["example.com"], resources: ["widgets/scale"], verbs: [get, patch]}`,
	}, {
		name: "a Role of the same name that the user made is not taken over",
		existing: func(cpa *cpav1.CustomPodAutoscaler) []client.Object {
			return []client.Object{&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: cpa.Name, Namespace: ns}}}
		},
		objects: []string{"Deployment/hello-kubernetes", "Role/python-custom-autoscaler"},
		conds:   []cond{running, {ConditionReady, "False", ReasonNotOwned}},
		message: "Role python-custom-autoscaler exists and was not created by the operator for this resource",
	}, {
		name: "a Deployment of the same name that another resource controls is not taken over",
		existing: func(cpa *cpav1.CustomPodAutoscaler) []client.Object {
			other := cpa.DeepCopy()
			other.Name, other.UID = "other", "uid-2"
			return []client.Object{owned(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: cpa.Name, Namespace: ns}}, other)}
		},
		objects: provisionedObjects,
		conds:   []cond{running, {ConditionReady, "False", ReasonNotOwned}},
		message: "is controlled by CustomPodAutoscaler other",
	}, {
		name: "a template spec field this operator does not know is passed to the API server",
		cpa: func(c *cpav1.CustomPodAutoscaler) {
			c.Spec.Template.Spec.Raw = []byte(`{"futureField":true,"containers":[{"name":"a","image":"b"}]}`)
		},
		objects: provisionedObjects,
		conds:   []cond{running, {ConditionReady, "False", ReasonStarting}},
	}, {
		name:    "no containers",
		cpa:     func(c *cpav1.CustomPodAutoscaler) { c.Spec.Template.Spec.Raw = []byte(`{}`) },
		objects: targetOnly,
		conds:   []cond{running, {ConditionReady, "False", ReasonInvalidSpec}},
		message: "spec.template.spec.containers: at least one container is required",
	}, {
		name:    "a mistyped template field",
		cpa:     func(c *cpav1.CustomPodAutoscaler) { c.Spec.Template.Spec.Raw = []byte(`{"containers":"a"}`) },
		objects: targetOnly,
		conds:   []cond{running, {ConditionReady, "False", ReasonInvalidSpec}},
		message: "spec.template.spec: json: cannot unmarshal string",
	}, {
		name:    "an unknown metadata field",
		cpa:     func(c *cpav1.CustomPodAutoscaler) { c.Spec.Template.Metadata.Raw = []byte(`{"lables":{}}`) },
		objects: targetOnly,
		conds:   []cond{running, {ConditionReady, "False", ReasonInvalidSpec}},
		message: `spec.template.metadata: json: unknown field "lables"`,
	}, {
		name: "a bad pause annotation",
		cpa: func(c *cpav1.CustomPodAutoscaler) {
			c.Annotations = map[string]string{cpav1.PausedReplicasAnnotation: "three"}
		},
		objects: targetOnly,
		conds:   []cond{{ConditionPaused, "False", ReasonInvalidSpec}, {ConditionReady, "False", ReasonInvalidSpec}},
		message: `paused-replicas="three"`,
	}, {
		name: "pause: the autoscaler is stopped first, the target is not yet held",
		cpa: func(c *cpav1.CustomPodAutoscaler) {
			c.Annotations = map[string]string{cpav1.PausedReplicasAnnotation: "2"}
		},
		existing: func(cpa *cpav1.CustomPodAutoscaler) []client.Object {
			running := cpa.DeepCopy()
			running.Annotations = nil
			return []client.Object{availableDeployment(t, running, false)}
		},
		objects: provisionedObjects,
		conds:   []cond{{ConditionPaused, "True", ReasonPaused}, {ConditionReady, "False", ReasonPausing}},
		message: "waiting for the autoscaler's pods to stop before holding the target at 2 replicas",
	}, {
		name: "pause: once the autoscaler is stopped the target is held",
		cpa: func(c *cpav1.CustomPodAutoscaler) {
			c.Annotations = map[string]string{cpav1.PausedReplicasAnnotation: "2"}
		},
		existing: func(cpa *cpav1.CustomPodAutoscaler) []client.Object {
			return []client.Object{availableDeployment(t, cpa, true)}
		},
		objects: provisionedObjects,
		conds:   []cond{{ConditionPaused, "True", ReasonPaused}, {ConditionReady, "False", ReasonPaused}},
		message: "paused: the autoscaler is stopped and the target held at 2 replicas",
		target:  2,
	}, {
		name: "a renamed template: the old Deployment goes before the new one is made",
		cpa:  func(c *cpav1.CustomPodAutoscaler) { c.Spec.Template.Metadata.Raw = []byte(`{"name":"renamed"}`) },
		existing: func(cpa *cpav1.CustomPodAutoscaler) []client.Object {
			old := cpa.DeepCopy()
			old.Spec.Template.Metadata.Raw = nil
			return []client.Object{availableDeployment(t, old, false)}
		},
		objects: []string{"Deployment/hello-kubernetes", "Role/python-custom-autoscaler", "RoleBinding/python-custom-autoscaler", "ServiceAccount/python-custom-autoscaler"},
		conds:   []cond{running, {ConditionReady, "False", ReasonReplacing}},
		message: "waiting for the old Deployment python-custom-autoscaler to be gone before the autoscaler starts as renamed",
	}, {
		name: "provision false: the operator's objects go, the user's are left",
		cpa: func(c *cpav1.CustomPodAutoscaler) {
			c.Spec.ProvisionPod, c.Spec.ProvisionServiceAccount = ptr.To(false), ptr.To(false)
			c.Spec.Template.Spec.Raw = []byte(`{"serviceAccountName":"mine","containers":[{"name":"a","image":"b"}]}`)
		},
		existing: func(cpa *cpav1.CustomPodAutoscaler) []client.Object {
			return []client.Object{
				owned(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: cpa.Name, Namespace: ns}}, cpa),
				&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: ns}},
			}
		},
		objects: []string{"Deployment/hello-kubernetes", "Role/python-custom-autoscaler", "RoleBinding/python-custom-autoscaler", "ServiceAccount/mine"},
		conds:   []cond{running, {ConditionReady, "True", ReasonProvisioned}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cpa := base.DeepCopy()
			if tc.cpa != nil {
				tc.cpa(cpa)
			}
			objs := []client.Object{cpa, targetDeployment(1)}
			if tc.existing != nil {
				objs = append(objs, tc.existing(cpa)...)
			}
			e := newEnv(t, tc.intercept, objs...)
			e.reconcile(cpa.Name)
			if diff := cmp.Diff(tc.objects, e.objects()); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.conds, e.conditions(cpa.Name)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			var target appsv1.Deployment
			e.get("hello-kubernetes", &target)
			if want := max(tc.target, 1); *target.Spec.Replicas != want {
				t.Errorf("the target has %d replicas, want %d", *target.Spec.Replicas, want)
			}
			if c := meta.FindStatusCondition(e.cpa(cpa.Name).Status.Conditions, ConditionReady); tc.message != "" && (c == nil || !strings.Contains(c.Message, tc.message)) {
				t.Errorf("Ready message %q, want it to say %q", c.Message, tc.message)
			}
		})
	}
}

// The Role grants exactly what the runtime uses, by name where it can.
func TestRoleRules(t *testing.T) {
	target := func(name string) []rbacv1.PolicyRule {
		return []rbacv1.PolicyRule{
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{name}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, ResourceNames: []string{name}, Verbs: []string{"get", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"custompodautoscaler.com"}, Resources: []string{"custompodautoscalers"}, ResourceNames: []string{"python-custom-autoscaler"}, Verbs: []string{"get"}},
			{APIGroups: []string{"custompodautoscaler.com"}, Resources: []string{"custompodautoscalers/status"}, ResourceNames: []string{"python-custom-autoscaler"}, Verbs: []string{"patch"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		}
	}
	for _, tc := range []struct {
		name  string
		cpa   func(*cpav1.CustomPodAutoscaler)
		rules []rbacv1.PolicyRule
	}{
		{"the guide", nil, target("hello-kubernetes")},
		{"with the metrics APIs", func(c *cpav1.CustomPodAutoscaler) { c.Spec.RoleRequiresMetricsServer = ptr.To(true) }, append(target("hello-kubernetes"), metricsRules...)},
		{"roleRequiresArgoRollouts adds no Rollout beyond the target", func(c *cpav1.CustomPodAutoscaler) { c.Spec.RoleRequiresArgoRollouts = ptr.To(true) }, target("hello-kubernetes")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cpa := guideCPA()
			if tc.cpa != nil {
				tc.cpa(cpa)
			}
			e := newEnv(t, interceptor.Funcs{}, cpa, targetDeployment(1))
			e.reconcile(cpa.Name)
			var role rbacv1.Role
			e.get(cpa.Name, &role)
			if diff := cmp.Diff(tc.rules, role.Rules); diff != "" {
				t.Errorf("Role rules (-want +got):\n%s", diff)
			}
		})
	}
}

// The autoscaler's Deployment: one Recreate replica of the template, the template's
// fields (unknown ones too) kept, the runtime's environment after the template's own.
func TestAutoscalerDeployment(t *testing.T) {
	cpa := guideCPA()
	cpa.Spec.Template.Spec.Raw = []byte(`{"futureField":{"a":1},"containers":[{"name":"cpa","image":"python-custom-autoscaler:latest","env":[{"name":"FROM_TEMPLATE","value":"1"}]}]}`)
	// What the API server is sent: the fake client would drop the unknown field.
	var u *unstructured.Unstructured
	e := newEnv(t, interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		if d, ok := obj.(*unstructured.Unstructured); ok && d.GetKind() == "Deployment" {
			u = d.DeepCopy()
		}
		return c.Create(ctx, obj, opts...)
	}}, cpa, targetDeployment(1))
	e.reconcile(cpa.Name)
	if u == nil {
		t.Fatal("no Deployment created")
	}
	if !metav1.IsControlledBy(u, cpa) {
		t.Errorf("not controlled by the CustomPodAutoscaler: %v", u.GetOwnerReferences())
	}
	want := map[string]any{
		"replicas":             int64(1),
		"revisionHistoryLimit": int64(2),
		"strategy":             map[string]any{"type": "Recreate"},
		"selector":             map[string]any{"matchLabels": map[string]any{ManagedByLabel: ManagedByValue, OwnedByLabel: cpa.Name}},
		"template": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"team": "a", ManagedByLabel: ManagedByValue, OwnedByLabel: cpa.Name}},
			"spec": map[string]any{
				"futureField":        map[string]any{"a": int64(1)},
				"serviceAccountName": cpa.Name,
				"containers": []any{map[string]any{"name": "cpa", "image": "python-custom-autoscaler:latest", "env": []any{
					map[string]any{"name": "FROM_TEMPLATE", "value": "1"},
					map[string]any{"name": "scaleTargetRef", "value": `{"kind":"Deployment","name":"hello-kubernetes","apiVersion":"apps/v1"}`},
					map[string]any{"name": "namespace", "value": ns},
					map[string]any{"name": "CPA_NAME", "value": cpa.Name},
					map[string]any{"name": "interval", "value": "10000"},
				}}},
			},
		},
	}
	got := u.Object["spec"].(map[string]any)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deployment spec (-want +got):\n%s", diff)
	}
}

// A second reconcile with nothing changed writes nothing; a Role-only change updates the
// Role and leaves the autoscaler running; a config change rolls it.
func TestWritesOnlyWhatChanged(t *testing.T) {
	cpa := guideCPA()
	e := newEnv(t, interceptor.Funcs{}, cpa, targetDeployment(1))
	e.reconcile(cpa.Name)
	if diff := cmp.Diff(map[string]int{"create Role": 1, "create ServiceAccount": 1, "create RoleBinding": 1, "create Deployment": 1}, e.writes); diff != "" {
		t.Errorf("first reconcile's writes (-want +got):\n%s", diff)
	}
	for _, step := range []struct {
		name   string
		change func(*cpav1.CustomPodAutoscaler)
		writes map[string]int
	}{
		{"nothing changed", nil, map[string]int{}},
		{"roleRequiresMetricsServer", func(c *cpav1.CustomPodAutoscaler) { c.Spec.RoleRequiresMetricsServer = ptr.To(true) }, map[string]int{"update Role": 1}},
		{"a config value", func(c *cpav1.CustomPodAutoscaler) { c.Spec.Config[0].Value = "5000" }, map[string]int{"update Deployment": 1}},
	} {
		if step.change != nil {
			e.change(cpa.Name, step.change)
		}
		e.writes = map[string]int{}
		e.reconcile(cpa.Name)
		if diff := cmp.Diff(step.writes, e.writes); diff != "" {
			t.Errorf("%s: writes (-want +got):\n%s", step.name, diff)
		}
	}
	var d appsv1.Deployment
	e.get(cpa.Name, &d)
	if env := d.Spec.Template.Spec.Containers[0].Env; env[len(env)-1].Value != "5000" {
		t.Errorf("after the config change the autoscaler's env is %v", env)
	}
}

// The operator's status write is a server-side apply of its own conditions only.
func TestStatusIsAppliedAsTheOperator(t *testing.T) {
	cpa := guideCPA()
	var applied []string
	funcs := interceptor.Funcs{
		SubResourceApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
			o := &client.SubResourceApplyOptions{}
			o.ApplyOpts(opts)
			applied = append(applied, fmt.Sprintf("%s by %s force=%v", sub, o.FieldManager, ptr.Deref(o.Force, false)))
			return c.SubResource(sub).Apply(ctx, obj, opts...)
		},
	}
	e := newEnv(t, funcs, cpa, targetDeployment(1))
	e.reconcile(cpa.Name)
	e.reconcile(cpa.Name) // unchanged: nothing applied
	if diff := cmp.Diff([]string{"status by custom-pod-autoscaler-operator force=true"}, applied); diff != "" {
		t.Errorf("status applies (-want +got):\n%s", diff)
	}
	if got := e.cpa(cpa.Name).Status.ObservedGeneration; got != 1 {
		t.Errorf("observedGeneration %d, want 1", got)
	}
}

func TestDeletingResourceIsLeftToGarbageCollection(t *testing.T) {
	cpa := guideCPA()
	now := metav1.Now()
	cpa.DeletionTimestamp = &now
	cpa.Finalizers = []string{"foregroundDeletion"}
	e := newEnv(t, interceptor.Funcs{}, cpa)
	e.reconcile(cpa.Name)
	if len(e.writes) != 0 {
		t.Errorf("reconciling a resource being deleted wrote %v", e.writes)
	}
}

// staleDiscovery knows a group version only after it was invalidated: a CRD installed
// after the cache was filled.
type staleDiscovery struct {
	fakeDiscovery
	fresh bool
}

func (d *staleDiscovery) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	if gv == "example.com/v1" && !d.fresh {
		return nil, memory.ErrCacheNotFound
	}
	return d.fakeDiscovery.ServerResourcesForGroupVersion(gv)
}

func (d *staleDiscovery) Invalidate() { d.fresh = true; d.invalidated++ }

// A kind the discovery cache does not know yet is looked up again, at most every
// rediscoverEvery, before it is refused.
func TestScaleDiscoveryIsReadAgainOnAMiss(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	d := &staleDiscovery{}
	r := &Reconciler{Discovery: d, Clock: clk}
	widgets := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	if ok, err := r.hasScale(widgets); !ok || err != nil || d.invalidated != 1 {
		t.Fatalf("a kind added since the cache was filled: hasScale %v, %v after %d invalidations; want true after 1", ok, err, d.invalidated)
	}
	secrets := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	for range 3 {
		if ok, err := r.hasScale(secrets); ok || err != nil {
			t.Fatalf("secrets: hasScale %v, %v", ok, err)
		}
	}
	if d.invalidated != 1 {
		t.Errorf("misses within %s invalidated discovery %d times in all, want once", rediscoverEvery, d.invalidated)
	}
	clk.SetTime(clk.Now().Add(rediscoverEvery))
	r.hasScale(secrets)
	if d.invalidated != 2 {
		t.Errorf("a miss %s later did not read discovery again", rediscoverEvery)
	}
}

// The operator's cache holds only what it labelled, and may not yet have seen an object it
// just created: a create that finds its own object there is no refusal; one that finds
// someone else's is.
func TestCreateConflictReadsPastTheCache(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sa    func(cpa *cpav1.CustomPodAutoscaler) client.Object
		conds []cond
	}{
		{"its own, not yet in the cache", func(cpa *cpav1.CustomPodAutoscaler) client.Object {
			return owned(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: cpa.Name, Namespace: ns}}, cpa)
		}, []cond{running, {ConditionReady, "False", ReasonStarting}}},
		{"the user's, never in the cache", func(cpa *cpav1.CustomPodAutoscaler) client.Object {
			return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: cpa.Name, Namespace: ns}}
		}, []cond{running, {ConditionReady, "False", ReasonNotOwned}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cpa := guideCPA()
			sa := tc.sa(cpa)
			cacheMisses := interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if _, ok := obj.(*corev1.ServiceAccount); ok {
					return apierrors.NewNotFound(corev1.Resource("serviceaccounts"), key.Name)
				}
				return c.Get(ctx, key, obj, opts...)
			}}
			e := newEnv(t, cacheMisses, cpa, targetDeployment(1), sa)
			e.r.APIReader = fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(sa.DeepCopyObject().(client.Object)).Build()
			e.reconcile(cpa.Name)
			if diff := cmp.Diff(tc.conds, e.conditions(cpa.Name)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
		})
	}
}
