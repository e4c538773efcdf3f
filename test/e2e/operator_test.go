//go:build e2e

package e2e

// End-to-end test of custom-pod-autoscaler-operator: the CRD installed with a plain
// kubectl apply, the operator (a real process, namespaced with WATCH_NAMESPACE) against
// the guide's cpa.yaml; every provisioned object; then the runtime run as the provisioned
// pod would run it (its environment, a token of the provisioned ServiceAccount from the
// TokenRequest API) scales the guide's Deployment, which proves the Role is sufficient,
// and is refused another Deployment; then pause, resume and deletion.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

// startOperator runs the operator for one namespace with kubeconfig (a token of the
// operator's ServiceAccount of the install manifests), electing a leader in that
// namespace as the installed Deployment does; cleanup stops it with SIGINT.
func startOperator(t *testing.T, ns, kubeconfig string) *syncBuffer {
	t.Helper()
	bin := framework.BuildBinary(t, "./cmd/custom-pod-autoscaler-operator")
	out := &syncBuffer{}
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig,
		"--leader-elect", "--leader-election-namespace", ns,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--zap-devel=false")
	cmd.Env = append(os.Environ(), "WATCH_NAMESPACE="+ns)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("the operator did not stop within 10s of SIGINT")
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("operator output:\n%s", out.String())
		}
	})
	return out
}

// tokenKubeconfig writes a kubeconfig that authenticates as ServiceAccount ns/sa with a
// token from the TokenRequest API, as a pod running as it would.
func tokenKubeconfig(t *testing.T, e *testEnv, ns, sa string) string {
	t.Helper()
	tr, err := e.c.Client.CoreV1().ServiceAccounts(ns).CreateToken(e.ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for ServiceAccount %s: %v", sa, err)
	}
	admin, err := clientcmd.LoadFromFile(e.c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cluster := admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = cluster
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: sa, Namespace: ns}
	cfg.CurrentContext = "sa"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// installNamespaced applies deploy/namespaced.yaml in the test's namespace with a plain
// kubectl apply, as a user would, and returns a kubeconfig of its operator ServiceAccount.
func installNamespaced(t *testing.T, e *testEnv) string {
	t.Helper()
	manifest := filepath.Join(e.c.RepoRoot, "deploy", "namespaced.yaml")
	// Tests apply the same CRD at once; a conflict of two applies is retried.
	framework.Eventually(t, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
		out, err := kubectl(t, "", "apply", "-n", e.ns, "-f", manifest)
		return err == nil, fmt.Sprintf("kubectl apply -n %s -f deploy/namespaced.yaml: %v\n%s", e.ns, err, out)
	})
	if out, err := kubectl(t, "", "wait", "--for", "condition=Established", "--timeout", "30s", "crd/custompodautoscalers.custompodautoscaler.com"); err != nil {
		t.Fatalf("waiting for the CRD: %v\n%s", err, out)
	}
	return tokenKubeconfig(t, e, e.ns, "custom-pod-autoscaler-operator")
}

func TestOperatorProvisionsAndRunsTheGuide(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 4*time.Minute)
	operatorKubeconfig := installNamespaced(t, e)
	target := createGuideDeployment(t, e)
	other := e.deployment(t, "not-granted", 1)
	opLog := startOperator(t, e.ns, operatorKubeconfig)

	guide := filepath.Join(guideExample(e), "cpa.yaml")
	if out, err := kubectl(t, "", "apply", "-n", e.ns, "-f", guide); err != nil {
		t.Fatalf("kubectl apply -f cpa.yaml: %v\n%s", err, out)
	}
	const name = "python-custom-autoscaler"
	cpaObj, err := e.c.Dynamic.Resource(cpaGVR).Namespace(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uid := cpaObj.GetUID()

	// Every object, owned by the resource.
	var d *appsv1.Deployment
	framework.Eventually(t, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		d, err = e.c.Client.AppsV1().Deployments(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		return err == nil, fmt.Sprintf("the autoscaler's Deployment: %v\n%s", err, opLog.String())
	})
	sa, err := e.c.Client.CoreV1().ServiceAccounts(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role, err := e.c.Client.RbacV1().Roles(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := e.c.Client.RbacV1().RoleBindings(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []metav1.Object{d, sa, role, rb} {
		ref := metav1.GetControllerOf(o)
		if ref == nil || ref.UID != uid || ref.Kind != "CustomPodAutoscaler" {
			t.Errorf("%s is not controlled by the CustomPodAutoscaler: %v", o.GetName(), o.GetOwnerReferences())
		}
	}
	for _, r := range role.Rules {
		for _, v := range r.Verbs {
			if v == "*" || v == "delete" || v == "create" && r.Resources[0] != "events" {
				t.Errorf("the Role grants %q on %v: more than the runtime needs", v, r.Resources)
			}
		}
	}
	if rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}) || rb.Subjects[0].Name != name {
		t.Errorf("RoleBinding %+v", rb)
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	if d.Spec.Template.Spec.ServiceAccountName != name || ctr.Image != "python-custom-autoscaler:latest" {
		t.Errorf("the autoscaler's pod: serviceAccountName %q, image %q", d.Spec.Template.Spec.ServiceAccountName, ctr.Image)
	}
	podEnv := map[string]string{}
	for _, ev := range ctr.Env {
		podEnv[ev.Name] = ev.Value
	}
	if podEnv["namespace"] != e.ns || podEnv["interval"] != "10000" || !strings.Contains(podEnv["scaleTargetRef"], `"name":"hello-kubernetes"`) {
		t.Errorf("the autoscaler's environment: %v", podEnv)
	}
	framework.Eventually(t, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
		u, err := e.c.Dynamic.Resource(cpaGVR).Namespace(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		return strings.Contains(fmt.Sprint(conds), "type:Ready"), fmt.Sprintf("status.conditions = %v", conds)
	})

	// The runtime as the pod runs it: the pod's environment (interval shortened) and the
	// provisioned ServiceAccount's token.
	cfg, env := guideConfig(t, e)
	for k, v := range podEnv {
		env[k] = v
	}
	env["interval"] = "1000"
	env["KUBECONFIG"] = tokenKubeconfig(t, e, e.ns, name)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef(target), Config: cfg, Env: env})
	p.waitReplicas(e.ctx, 30*time.Second, deploymentReplicas(e.ns, target), 3)
	// The runtime writes its part of the status (CPA_NAME in the pod's environment), next
	// to the operator's conditions.
	framework.Eventually(t, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
		u, err := e.c.Dynamic.Resource(cpaGVR).Namespace(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st, _ := u.Object["status"].(map[string]any)
		types := map[string]string{}
		conds, _ := st["conditions"].([]any)
		for _, c := range conds {
			m, _ := c.(map[string]any)
			types[fmt.Sprint(m["type"])] = fmt.Sprint(m["status"])
		}
		ok := fmt.Sprint(st["currentReplicas"]) == "3" && fmt.Sprint(st["desiredReplicas"]) == "3" && st["lastScaleTime"] != nil &&
			types["ScalingActive"] == "True" && types["ScalingLimited"] == "False" && types["Ready"] == "True"
		return ok, fmt.Sprintf("status = %v", st)
	})
	// And records its scale as an event about the CustomPodAutoscaler.
	framework.Eventually(t, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
		evs, err := e.c.Client.EventsV1().Events(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, ev := range evs.Items {
			if ev.Regarding.Kind == "CustomPodAutoscaler" && ev.Regarding.Name == name && ev.ReportingController == "custom-pod-autoscaler" {
				if ev.Reason == "Scaled" && strings.Contains(ev.Note, "from 1 to 3 replicas") {
					return true, ""
				}
				seen = append(seen, ev.Reason+": "+ev.Note)
			}
		}
		return false, fmt.Sprintf("no Scaled event from the runtime; its events: %v", seen)
	})
	// The printer columns, compared field by field (the spacing is kubectl's business).
	out, err := kubectl(t, "", "get", "cpa", "-n", e.ns, name)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := func(i int) []string {
		if i >= len(lines) || len(strings.Fields(lines[i])) < 5 {
			return nil
		}
		return strings.Fields(lines[i])[:5]
	}
	if err != nil || len(lines) != 2 || !slices.Equal(fields(0), []string{"NAME", "TARGET", "CURRENT", "DESIRED", "READY"}) ||
		!slices.Equal(fields(1), []string{name, "hello-kubernetes", "3", "3", "True"}) {
		t.Errorf("kubectl get cpa: %v\n%s", err, out)
	}
	p.stop()

	// The same token may not touch a Deployment the Role does not name.
	env["scaleTargetRef"] = `{"apiVersion":"apps/v1","kind":"Deployment","name":"not-granted"}`
	denied := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("not-granted"), Config: cfg, Env: env})
	deadline := time.Now().Add(20 * time.Second)
	for !denied.exited() && time.Now().Before(deadline) {
		if strings.Contains(denied.out.String(), "forbidden") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(denied.out.String(), "forbidden") {
		t.Errorf("the runtime with the autoscaler's token was not refused another Deployment:\n%s", denied.lastLines(5))
	}
	if n, _ := other(e.ctx); n != 1 {
		t.Errorf("the Deployment not granted has %d replicas, want 1", n)
	}
	denied.stop()
	denied.exitCode = 0 // it was expected to fail; its exit status is not the point

	// A change that does not touch the autoscaler's pod leaves it running; a config
	// change rolls it.
	generation := func() (int64, map[string]string) {
		a, err := e.c.Client.AppsV1().Deployments(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, ev := range a.Spec.Template.Spec.Containers[0].Env {
			env[ev.Name] = ev.Value
		}
		return a.Generation, env
	}
	before, _ := generation()
	if out, err := kubectl(t, "", "patch", "-n", e.ns, "cpa", name, "--type", "merge", "-p", `{"spec":{"roleRequiresMetricsServer":true}}`); err != nil {
		t.Fatalf("patch: %v\n%s", err, out)
	}
	framework.Eventually(t, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
		r, err := e.c.Client.RbacV1().Roles(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(fmt.Sprint(r.Rules), "metrics.k8s.io"), fmt.Sprintf("Role rules %v, want metrics.k8s.io", r.Rules)
	})
	if g, _ := generation(); g != before {
		t.Errorf("roleRequiresMetricsServer changed the autoscaler's Deployment (generation %d -> %d): it would restart", before, g)
	}
	if out, err := kubectl(t, "", "patch", "-n", e.ns, "cpa", name, "--type", "merge", "-p", `{"spec":{"config":[{"name":"interval","value":"5000"}]}}`); err != nil {
		t.Fatalf("patch: %v\n%s", err, out)
	}
	framework.Eventually(t, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
		g, env := generation()
		return g > before && env["interval"] == "5000", fmt.Sprintf("after the config change: generation %d (was %d), interval %q", g, before, env["interval"])
	})

	// Pause: the target is held at the annotation's count and the autoscaler stopped.
	if out, err := kubectl(t, "", "annotate", "-n", e.ns, "cpa", name, "v1.custompodautoscaler.com/paused-replicas=2"); err != nil {
		t.Fatalf("annotate: %v\n%s", err, out)
	}
	framework.Eventually(t, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
		n, _ := deploymentReplicas(e.ns, target)(e.ctx)
		a, err := e.c.Client.AppsV1().Deployments(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return n == 2 && *a.Spec.Replicas == 0, fmt.Sprintf("paused: target %d replicas (want 2), autoscaler %d (want 0)", n, *a.Spec.Replicas)
	})
	// One status, two writers: the operator's conditions changed (Paused, Ready) and the
	// runtime's (ScalingActive, ScalingLimited, written before) are still there.
	framework.Eventually(t, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
		u, err := e.c.Dynamic.Resource(cpaGVR).Namespace(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		got := map[string]string{}
		for _, c := range conds {
			m, _ := c.(map[string]any)
			got[fmt.Sprint(m["type"])] = fmt.Sprintf("%v/%v", m["status"], m["reason"])
		}
		ok := got["Paused"] == "True/Paused" && got["Ready"] == "False/Paused" && got["ScalingActive"] != "" && got["ScalingLimited"] != ""
		return ok, fmt.Sprintf("conditions after the pause: %v", got)
	})
	if out, err := kubectl(t, "", "annotate", "-n", e.ns, "cpa", name, "v1.custompodautoscaler.com/paused-replicas-"); err != nil {
		t.Fatalf("annotate: %v\n%s", err, out)
	}
	framework.Eventually(t, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
		a, err := e.c.Client.AppsV1().Deployments(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return *a.Spec.Replicas == 1, fmt.Sprintf("resumed: autoscaler %d replicas, want 1", *a.Spec.Replicas)
	})

	// Foreground deletion ends, and takes everything with it.
	policy := metav1.DeletePropagationForeground
	if err := e.c.Dynamic.Resource(cpaGVR).Namespace(e.ns).Delete(e.ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 60*time.Second, 500*time.Millisecond, func() (bool, string) {
		var left []string
		check := func(kind string, err error) {
			if !apierrors.IsNotFound(err) {
				left = append(left, fmt.Sprintf("%s (%v)", kind, err))
			}
		}
		_, err := e.c.Dynamic.Resource(cpaGVR).Namespace(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		check("CustomPodAutoscaler", err)
		_, err = e.c.Client.AppsV1().Deployments(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		check("Deployment", err)
		_, err = e.c.Client.CoreV1().ServiceAccounts(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		check("ServiceAccount", err)
		_, err = e.c.Client.RbacV1().Roles(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		check("Role", err)
		_, err = e.c.Client.RbacV1().RoleBindings(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		check("RoleBinding", err)
		return len(left) == 0, fmt.Sprintf("still there after deletion: %v", left)
	})
}

// The cluster-wide install: deploy/cluster.yaml applies with a plain kubectl apply, and
// its ClusterRole lets the operator provision an autoscaler. (The operator runs here
// with WATCH_NAMESPACE set, so that it leaves other tests' namespaces alone.)
func TestOperatorClusterInstall(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	manifest := filepath.Join(e.c.RepoRoot, "deploy", "cluster.yaml")
	framework.Eventually(t, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
		out, err := kubectl(t, "", "apply", "-f", manifest)
		return err == nil, fmt.Sprintf("kubectl apply -f deploy/cluster.yaml: %v\n%s", err, out)
	})
	if out, err := kubectl(t, "", "wait", "--for", "condition=Established", "--timeout", "30s", "crd/custompodautoscalers.custompodautoscaler.com"); err != nil {
		t.Fatalf("waiting for the CRD: %v\n%s", err, out)
	}
	createGuideDeployment(t, e)
	opLog := startOperator(t, e.ns, tokenKubeconfig(t, e, "cpa-system", "custom-pod-autoscaler-operator"))
	applyGuideAndWaitProvisioned(t, e, opLog)
}

// applyGuideAndWaitProvisioned applies the guide's cpa.yaml and waits until the operator
// has created its four objects.
func applyGuideAndWaitProvisioned(t *testing.T, e *testEnv, opLog *syncBuffer) {
	t.Helper()
	if out, err := kubectl(t, "", "apply", "-n", e.ns, "-f", filepath.Join(guideExample(e), "cpa.yaml")); err != nil {
		t.Fatalf("kubectl apply -f cpa.yaml: %v\n%s", err, out)
	}
	const name = "python-custom-autoscaler"
	framework.Eventually(t, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		_, errD := e.c.Client.AppsV1().Deployments(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		_, errR := e.c.Client.RbacV1().Roles(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		_, errB := e.c.Client.RbacV1().RoleBindings(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		_, errS := e.c.Client.CoreV1().ServiceAccounts(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		return errD == nil && errR == nil && errB == nil && errS == nil,
			fmt.Sprintf("provisioned: Deployment %v, Role %v, RoleBinding %v, ServiceAccount %v\n%s", errD, errR, errB, errS, opLog.String())
	})
}

// The Helm chart (deploy/helm), rendered by helm in namespaced mode for the test's
// namespace, applies with kubectl, and its RBAC lets the operator provision an autoscaler.
// make e2e passes the pinned helm as CPA_HELM.
func TestOperatorHelmChart(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	helm := os.Getenv("CPA_HELM")
	if helm == "" {
		var err error
		if helm, err = exec.LookPath("helm"); err != nil {
			t.Fatal("no helm: set CPA_HELM to a helm binary (make e2e installs the pinned one and sets it)")
		}
	}
	chart := filepath.Join(e.c.RepoRoot, "deploy", "helm", "custom-pod-autoscaler-operator")
	rendered, err := exec.Command(helm, "template", "cpa", chart, "--namespace", e.ns, "--set", "mode=namespaced", "--include-crds").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("helm template: %v\n%s", err, stderr)
	}
	framework.Eventually(t, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
		out, err := kubectl(t, string(rendered), "apply", "-n", e.ns, "-f", "-")
		return err == nil, fmt.Sprintf("kubectl apply of the rendered chart: %v\n%s", err, out)
	})
	if _, err := e.c.Client.RbacV1().Roles(e.ns).Get(e.ctx, "custom-pod-autoscaler-operator", metav1.GetOptions{}); err != nil {
		t.Fatalf("the chart's namespaced Role: %v", err)
	}
	createGuideDeployment(t, e)
	opLog := startOperator(t, e.ns, tokenKubeconfig(t, e, e.ns, "custom-pod-autoscaler-operator"))
	applyGuideAndWaitProvisioned(t, e, opLog)
}
