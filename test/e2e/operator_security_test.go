//go:build e2e

package e2e

// The operator cannot be used to gain access: a CustomPodAutoscaler that names a kind
// without /scale (a Secret), or a scalable kind the operator does not hold itself, gets
// nothing provisioned, and the autoscaler's token is refused what it was meant to borrow;
// the token of an autoscaler that is provisioned can do what the runtime needs and no
// more. The operator runs with the RBAC of deploy/namespaced.yaml, as installed.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

// widgetCRD is a scalable kind of this test's own that no operator rule names.
const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.e2e.custompodautoscaler.test
spec:
  group: e2e.custompodautoscaler.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`

func TestOperatorGrantsNothingItDoesNotHold(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 4*time.Minute)
	operatorKubeconfig := installNamespaced(t, e)
	framework.Eventually(t, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
		out, err := kubectl(t, widgetCRD, "apply", "-f", "-")
		return err == nil, fmt.Sprintf("kubectl apply of the Widget CRD: %v\n%s", err, out)
	})
	if out, err := kubectl(t, "", "wait", "--for", "condition=Established", "--timeout", "30s", "crd/widgets.e2e.custompodautoscaler.test"); err != nil {
		t.Fatalf("waiting for the Widget CRD: %v\n%s", err, out)
	}
	if _, err := e.c.Client.CoreV1().Secrets(e.ns).Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db-creds"}, StringData: map[string]string{"password": "hunter2"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The accounts the autoscalers would run as exist already, so that a token of each can
	// show what a provisioned Role would have handed it.
	for _, sa := range []string{"steal-secret", "steal-widget"} {
		if _, err := e.c.Client.CoreV1().ServiceAccounts(e.ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	opLog := startOperator(t, e.ns, operatorKubeconfig)

	apply := func(name, apiVersion, kind, target string) {
		t.Helper()
		manifest := fmt.Sprintf(`apiVersion: custompodautoscaler.com/v1
kind: CustomPodAutoscaler
metadata: {name: %s}
spec:
  template:
    spec:
      serviceAccountName: %s
      containers: [{name: cpa, image: attacker/image:latest}]
  provisionServiceAccount: false
  scaleTargetRef: {apiVersion: %s, kind: %s, name: %s}
`, name, name, apiVersion, kind, target)
		if out, err := kubectl(t, manifest, "apply", "-n", e.ns, "-f", "-"); err != nil {
			t.Fatalf("kubectl apply of CustomPodAutoscaler %s: %v\n%s", name, err, out)
		}
	}
	apply("steal-secret", "v1", "Secret", "db-creds")
	apply("steal-widget", "e2e.custompodautoscaler.test/v1", "Widget", "w")

	for _, tc := range []struct{ name, reason, message string }{
		{"steal-secret", "TargetNotScalable", `kind "Secret" (secrets) has no /scale subresource`},
		{"steal-widget", "TargetNotGranted", `{apiGroups: ["e2e.custompodautoscaler.test"], resources: ["widgets"], verbs: [get, list, watch]}`},
	} {
		waitCondition(t, e, tc.name, "Ready", "False", tc.reason, tc.message, opLog)
		waitEvent(t, e, tc.name, corev1.EventTypeWarning, tc.reason, opLog)
		for what, err := range map[string]error{
			"Role":        getErr(e.c.Client.RbacV1().Roles(e.ns).Get(e.ctx, tc.name, metav1.GetOptions{})),
			"RoleBinding": getErr(e.c.Client.RbacV1().RoleBindings(e.ns).Get(e.ctx, tc.name, metav1.GetOptions{})),
			"Deployment":  getErr(e.c.Client.AppsV1().Deployments(e.ns).Get(e.ctx, tc.name, metav1.GetOptions{})),
		} {
			if !apierrors.IsNotFound(err) {
				t.Errorf("%s: a %s was provisioned (or could not be read: %v)", tc.name, what, err)
			}
		}
	}
	// The kinds supported out of the box are granted: the operator holds their rules.
	for _, k := range []struct{ apiVersion, kind string }{{"apps/v1", "StatefulSet"}, {"apps/v1", "ReplicaSet"}, {"v1", "ReplicationController"}} {
		name := "builtin-" + strings.ToLower(k.kind)
		apply(name, k.apiVersion, k.kind, "web")
		framework.Eventually(t, 60*time.Second, 250*time.Millisecond, func() (bool, string) {
			_, err := e.c.Client.RbacV1().Roles(e.ns).Get(e.ctx, name, metav1.GetOptions{})
			return err == nil, fmt.Sprintf("the Role of an autoscaler of a %s: %v\n%s", k.kind, err, opLog.String())
		})
	}
	// Leader election records its events with the core API, which the operator holds.
	framework.Eventually(t, 60*time.Second, 250*time.Millisecond, func() (bool, string) {
		evs, err := e.c.Client.CoreV1().Events(e.ns).List(e.ctx, metav1.ListOptions{FieldSelector: "reason=LeaderElection"})
		return err == nil && len(evs.Items) > 0, fmt.Sprintf("no LeaderElection event from the operator (%v)", err)
	})
	// The token the attacker's image would run with is refused the Secret.
	thief := tokenClient(t, e, "steal-secret")
	if _, err := thief.CoreV1().Secrets(e.ns).Get(e.ctx, "db-creds", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the autoscaler's token reading the Secret: %v, want 403 Forbidden", err)
	}

	// A provisioned autoscaler's token: what the runtime needs, and nothing else.
	createGuideDeployment(t, e)
	e.deployment(t, "not-granted", 1)
	applyGuideAndWaitProvisioned(t, e, opLog)
	const name = "python-custom-autoscaler"
	token := tokenClient(t, e, name)
	type attr = authorizationv1.ResourceAttributes
	allowed := []attr{
		{Group: "apps", Resource: "deployments", Name: "hello-kubernetes", Verb: "get"},
		{Group: "apps", Resource: "deployments", Name: "hello-kubernetes", Verb: "list"},
		{Group: "apps", Resource: "deployments", Name: "hello-kubernetes", Verb: "watch"},
		{Group: "apps", Resource: "deployments", Subresource: "scale", Name: "hello-kubernetes", Verb: "get"},
		{Group: "apps", Resource: "deployments", Subresource: "scale", Name: "hello-kubernetes", Verb: "patch"},
		{Resource: "pods", Verb: "list"},
		{Resource: "pods", Verb: "watch"},
		{Group: "custompodautoscaler.com", Resource: "custompodautoscalers", Name: name, Verb: "get"},
		{Group: "custompodautoscaler.com", Resource: "custompodautoscalers", Subresource: "status", Name: name, Verb: "patch"},
		{Group: "events.k8s.io", Resource: "events", Verb: "create"},
		{Group: "events.k8s.io", Resource: "events", Verb: "patch"},
	}
	refused := []attr{
		{Group: "apps", Resource: "deployments", Subresource: "scale", Name: "hello-kubernetes", Verb: "update"},
		{Group: "apps", Resource: "deployments", Name: "hello-kubernetes", Verb: "update"},
		{Group: "apps", Resource: "deployments", Name: "hello-kubernetes", Verb: "patch"},
		{Group: "apps", Resource: "deployments", Name: "hello-kubernetes", Verb: "delete"},
		{Group: "apps", Resource: "deployments", Name: "not-granted", Verb: "get"},
		{Group: "apps", Resource: "deployments", Subresource: "scale", Name: "not-granted", Verb: "patch"},
		{Group: "apps", Resource: "deployments", Verb: "list"},
		{Group: "apps", Resource: "deployments", Verb: "create"},
		{Resource: "pods", Verb: "get"},
		{Resource: "pods", Verb: "create"},
		{Resource: "pods", Verb: "delete"},
		{Resource: "pods", Subresource: "exec", Verb: "create"},
		{Resource: "secrets", Verb: "list"},
		{Resource: "secrets", Name: "db-creds", Verb: "get"},
		{Resource: "configmaps", Verb: "list"},
		{Resource: "serviceaccounts", Subresource: "token", Name: name, Verb: "create"},
		{Resource: "events", Verb: "create"},
		{Group: "custompodautoscaler.com", Resource: "custompodautoscalers", Name: name, Verb: "patch"},
		{Group: "custompodautoscaler.com", Resource: "custompodautoscalers", Name: "steal-secret", Verb: "get"},
		{Group: "custompodautoscaler.com", Resource: "custompodautoscalers", Subresource: "status", Name: name, Verb: "update"},
		{Group: "custompodautoscaler.com", Resource: "custompodautoscalers", Subresource: "status", Name: "steal-secret", Verb: "patch"},
		{Group: "argoproj.io", Resource: "rollouts", Verb: "list"},
		{Group: "rbac.authorization.k8s.io", Resource: "roles", Verb: "create"},
		{Group: "rbac.authorization.k8s.io", Resource: "rolebindings", Verb: "create"},
		{Group: "metrics.k8s.io", Resource: "pods", Verb: "list"},
	}
	check := func(a attr, want bool) {
		t.Helper()
		a.Namespace = e.ns
		r, err := token.AuthorizationV1().SelfSubjectAccessReviews().Create(e.ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != want {
			t.Errorf("the autoscaler's token may %s %s: %v, want %v", a.Verb, describeAttr(a), r.Status.Allowed, want)
		}
	}
	for _, a := range allowed {
		check(a, true)
	}
	var list []string
	for _, a := range refused {
		check(a, false)
		list = append(list, a.Verb+" "+describeAttr(a))
	}
	t.Logf("the provisioned token is refused: %s", strings.Join(list, "; "))
}

func describeAttr(a authorizationv1.ResourceAttributes) string {
	s := a.Resource
	if a.Group != "" {
		s += "." + a.Group
	}
	if a.Subresource != "" {
		s += "/" + a.Subresource
	}
	if a.Name != "" {
		s += " " + a.Name
	}
	return s
}

func getErr[T any](_ T, err error) error { return err }

// tokenClient is a client authenticated as ServiceAccount sa of the test's namespace.
func tokenClient(t *testing.T, e *testEnv, sa string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", tokenKubeconfig(t, e, e.ns, sa))
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitCondition waits for a condition of CustomPodAutoscaler name with the given status
// and reason, its message containing message.
func waitCondition(t *testing.T, e *testEnv, name, typ, status, reason, message string, opLog *syncBuffer) {
	t.Helper()
	framework.Eventually(t, 60*time.Second, 250*time.Millisecond, func() (bool, string) {
		u, err := e.c.Dynamic.Resource(cpaGVR).Namespace(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == typ && m["status"] == status && m["reason"] == reason && strings.Contains(fmt.Sprint(m["message"]), message) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s: want %s=%s (%s) saying %q; conditions %v\noperator:\n%s", name, typ, status, reason, message, conds, opLog.String())
	})
}

// waitEvent waits for an event about CustomPodAutoscaler name with the given type and reason.
func waitEvent(t *testing.T, e *testEnv, name, typ, reason string, opLog *syncBuffer) {
	t.Helper()
	framework.Eventually(t, 60*time.Second, 250*time.Millisecond, func() (bool, string) {
		evs, err := e.c.Client.EventsV1().Events(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, ev := range evs.Items {
			if ev.Regarding.Kind == "CustomPodAutoscaler" && ev.Regarding.Name == name {
				if ev.Type == typ && ev.Reason == reason {
					return true, ""
				}
				seen = append(seen, ev.Type+" "+ev.Reason)
			}
		}
		return false, fmt.Sprintf("no %s %s event about %s; seen %v\noperator:\n%s", typ, reason, name, seen, opLog.String())
	})
}

// The template's spec reaches the API server as written, so a field the operator's own
// API version does not know is not dropped; the server's strict validation refuses a
// misspelt one, and the resource says which.
func TestOperatorTemplateIsValidatedByTheAPIServer(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	opLog := startOperator(t, e.ns, installNamespaced(t, e))
	createGuideDeployment(t, e)
	manifest := `apiVersion: custompodautoscaler.com/v1
kind: CustomPodAutoscaler
metadata: {name: misspelt}
spec:
  template:
    spec:
      containers: [{name: cpa, image: python-custom-autoscaler:latest, imagePolicy: Always}]
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: hello-kubernetes}
`
	if out, err := kubectl(t, manifest, "apply", "-n", e.ns, "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	waitCondition(t, e, "misspelt", "Ready", "False", "InvalidSpec", `unknown field "spec.template.spec.containers[0].imagePolicy"`, opLog)
	if _, err := e.c.Client.AppsV1().Deployments(e.ns).Get(e.ctx, "misspelt", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Deployment was created from a misspelt template (or could not be read: %v)", err)
	}
}
