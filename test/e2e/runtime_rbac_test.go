//go:build e2e

package e2e

// The runtime with a Role that lacks a permission it needs: it never hangs, it fails each
// cycle with one error naming the verb, the resource and the namespace (in its log, its
// CustomPodAutoscaler's status and a CycleFailed event), its REST API answers, and once
// the Role is fixed the next cycles scale. With list but no watch on pods (a Role written
// for the original, which only listed pods) it keeps working and says so once.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

// rbacRuntime is a ServiceAccount, its Role and RoleBinding, and a CustomPodAutoscaler
// for the runtime to report to.
type rbacRuntime struct {
	e       *testEnv
	name    string
	rules   []rbacv1.PolicyRule // without the pod rule
	kubecfg string
}

// runtimeRules are what the runtime needs in its namespace, but for pods (the
// operator's Role: internal/operator/desired.go).
func runtimeRules(target, cpaName string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{target}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, ResourceNames: []string{target}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{"custompodautoscaler.com"}, Resources: []string{"custompodautoscalers"}, ResourceNames: []string{cpaName}, Verbs: []string{"get"}},
		{APIGroups: []string{"custompodautoscaler.com"}, Resources: []string{"custompodautoscalers/status"}, ResourceNames: []string{cpaName}, Verbs: []string{"patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

// newRBACRuntime creates the ServiceAccount name, a Role with the runtime's rules for
// target plus podVerbs on pods (none: no pod rule), its binding, and CustomPodAutoscaler
// name; it returns a kubeconfig with a token of the ServiceAccount.
func newRBACRuntime(t *testing.T, e *testEnv, name, target string, podVerbs ...string) *rbacRuntime {
	t.Helper()
	installCRD(t)
	kc := e.c.Client
	r := &rbacRuntime{e: e, name: name, rules: runtimeRules(target, name)}
	if _, err := kc.CoreV1().ServiceAccounts(e.ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.RbacV1().Roles(e.ns).Create(e.ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: r.withPods(podVerbs...)}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.RbacV1().RoleBindings(e.ns).Create(e.ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: e.ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "custompodautoscaler.com/v1", "kind": "CustomPodAutoscaler",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"template":       map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "scaler", "image": "never-pulled"}}}},
			"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
		},
	}}
	if _, err := e.c.Dynamic.Resource(cpaGVR).Namespace(e.ns).Create(e.ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.kubecfg = tokenKubeconfig(t, e, e.ns, name)
	return r
}

func (r *rbacRuntime) withPods(verbs ...string) []rbacv1.PolicyRule {
	rules := append([]rbacv1.PolicyRule(nil), r.rules...)
	if len(verbs) > 0 {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: verbs})
	}
	return rules
}

// grantPods updates the Role to allow verbs on pods.
func (r *rbacRuntime) grantPods(t *testing.T, verbs ...string) {
	t.Helper()
	role, err := r.e.c.Client.RbacV1().Roles(r.e.ns).Get(r.e.ctx, r.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role.Rules = r.withPods(verbs...)
	if _, err := r.e.c.Client.RbacV1().Roles(r.e.ns).Update(r.e.ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// condition returns the status, reason and message of a condition of the
// CustomPodAutoscaler's status.
func (r *rbacRuntime) condition(typ string) (status, reason, message string, err error) {
	u, err := r.e.c.Dynamic.Resource(cpaGVR).Namespace(r.e.ns).Get(r.e.ctx, r.name, metav1.GetOptions{})
	if err != nil {
		return "", "", "", err
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			return fmt.Sprint(m["status"]), fmt.Sprint(m["reason"]), fmt.Sprint(m["message"]), nil
		}
	}
	return "", "", "", nil
}

// events returns the notes of the runtime's events of reason about the CustomPodAutoscaler.
func (r *rbacRuntime) events(reason string) ([]string, error) {
	evs, err := r.e.c.Client.EventsV1().Events(r.e.ns).List(r.e.ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, ev := range evs.Items {
		if ev.Regarding.Kind == "CustomPodAutoscaler" && ev.Regarding.Name == r.name && ev.ReportingController == "custom-pod-autoscaler" && ev.Reason == reason {
			notes = append(notes, ev.Note)
		}
	}
	return notes, nil
}

// clientGoWatchErrors are client-go's own "Failed to watch" lines, which it logs every
// few seconds while a list or watch is refused unless the runtime handles the errors.
func clientGoWatchErrors(p *cpa) int {
	n := 0
	for _, l := range p.logs() {
		if strings.Contains(l.str("msg"), "Failed to watch") {
			n++
		}
	}
	return n
}

func TestRuntimeMissingPodListPermission(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 4*time.Minute)
	get := e.deployment(t, "web", 1)
	rt := newRBACRuntime(t, e, "web-autoscaler", "web") // no rule for pods

	r := newRecorder(t)
	metric := r.script("metric", `printf 1`)
	evaluate := r.script("evaluate", `printf '{"targetReplicas": 3}'`)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), API: true,
		Env: map[string]string{"KUBECONFIG": rt.kubecfg, "CPA_NAME": rt.name},
		Config: jsonConfig(t, map[string]any{
			"runMode": "per-pod", "interval": 1000, "maxReplicas": 5,
			"metric": shellMethod(metric, 10000), "evaluate": shellMethod(evaluate, 10000),
		})})

	// Each cycle fails with an error naming the verb, the resource and the namespace.
	names := func(s string) bool {
		return strings.Contains(s, "cannot list pods") && strings.Contains(s, fmt.Sprintf("namespace %q", e.ns)) && strings.Contains(s, `verb "list"`)
	}
	failed := p.waitLog(60*time.Second, 2, "failed cycles naming list, pods and the namespace", func(l logEntry) bool {
		return l.str("msg") == "cycle failed; target not scaled" && names(l.str("error"))
	})
	t.Logf("cycle error: %s", failed[0].str("error"))

	// The REST API answers, with the same error, and does not wait for anything.
	resp, err := p.apiCall(http.MethodGet, "/metrics")
	if err != nil {
		t.Fatalf("the REST API did not answer while pods cannot be listed: %v", err)
	}
	var body struct{ Message string }
	_ = json.Unmarshal([]byte(resp.Body), &body)
	if resp.Code != 500 || !names(body.Message) {
		t.Errorf("GET /metrics = %d %s; want 500 naming list, pods and the namespace", resp.Code, resp.Body)
	}

	// The status says so, and one CycleFailed event (the error repeats every cycle).
	framework.Eventually(t, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		status, reason, msg, err := rt.condition("ScalingActive")
		if err != nil {
			return false, err.Error()
		}
		return status == "False" && reason == "CycleFailed" && names(msg), fmt.Sprintf("ScalingActive = %s %s %q", status, reason, msg)
	})
	framework.Eventually(t, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		notes, err := rt.events("CycleFailed")
		if err != nil {
			return false, err.Error()
		}
		return len(notes) > 0 && names(notes[0]), fmt.Sprintf("CycleFailed events: %q", notes)
	})
	if n := clientGoWatchErrors(p); n != 0 {
		t.Errorf("client-go logged %d \"Failed to watch\" lines; the cycle's error is enough", n)
	}
	for _, l := range p.logs() {
		if strings.Contains(l.str("msg"), "refused to watch") {
			t.Errorf("logged %q although pods cannot be listed either", l.str("msg"))
		}
	}
	if ok, status := replicasStatus(e.ctx, get, 1); !ok {
		t.Errorf("scaled although the cycles failed: %s", status)
	}

	// The permission is granted: the next cycles scale and the status turns active.
	rt.grantPods(t, "list", "watch")
	p.waitReplicas(e.ctx, 60*time.Second, get, 3)
	framework.Eventually(t, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		status, reason, msg, err := rt.condition("ScalingActive")
		return err == nil && status == "True", fmt.Sprintf("ScalingActive = %s %s %q (%v)", status, reason, msg, err)
	})
	framework.Eventually(t, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		notes, err := rt.events("Scaled")
		return err == nil && len(notes) > 0, fmt.Sprintf("Scaled events: %q (%v)", notes, err)
	})
	if n := clientGoWatchErrors(p); n != 0 {
		t.Errorf("client-go logged %d \"Failed to watch\" lines", n)
	}
}

// A Role written for the original runtime, which only listed pods: list but no watch.
// The runtime keeps working, listing the pods every cycle (so each cycle sees the pods
// as they are), and says so once, as a warning.
func TestRuntimePodListOnly(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 4*time.Minute)
	get := e.deployment(t, "web", 1)
	rt := newRBACRuntime(t, e, "web-autoscaler", "web", "list")

	r := newRecorder(t)
	metric := r.script("metric", `printf 1`)
	evaluate := r.script("evaluate", `printf '{"targetReplicas": 3}'`)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"),
		Env: map[string]string{"KUBECONFIG": rt.kubecfg, "CPA_NAME": rt.name},
		Config: jsonConfig(t, map[string]any{
			"runMode": "per-pod", "interval": 1000, "maxReplicas": 5,
			"metric": shellMethod(metric, 10000), "evaluate": shellMethod(evaluate, 10000),
		})})

	p.waitReplicas(e.ctx, 60*time.Second, get, 3)
	podNames(e, t, "app=web", 3)
	// Later cycles see the 3 pods: the pods are listed again, not served from a stale cache.
	seen := p.waitLog(60*time.Second, 3, "cycles with 3 metrics (one per pod)", func(l logEntry) bool {
		return l.str("msg") == "no change" && l.num("metrics") == 3
	})
	for _, l := range seen {
		if l.num("apiRequests") < 1 {
			t.Errorf("cycle %v made no API request; want the pod list every cycle", l)
		}
	}
	const warning = "the API server refused to watch pods"
	var warnings []logEntry
	for _, l := range p.logs() {
		if strings.Contains(l.str("msg"), warning) {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 || warnings[0].str("level") != "WARN" {
		t.Errorf("want one WARN line with %q, got %v", warning, warnings)
	}
	if n := clientGoWatchErrors(p); n != 0 {
		t.Errorf("client-go logged %d \"Failed to watch\" lines", n)
	}
	if failures := p.logsWithMsg("cycle failed; target not scaled"); len(failures) != 0 {
		t.Errorf("%d cycles failed, want none: %v", len(failures), failures[0])
	}
}
