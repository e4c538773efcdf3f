//go:build e2e

package e2e

// More of the operator and the runtime together: the provision* flags turned off, and
// the downscale-stabilization history surviving a restart of the runtime.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

const guideCPAName = "python-custom-autoscaler"

// Turning provisionPod and provisionServiceAccount off removes what the operator made and
// leaves the rest; a ServiceAccount the user made is used and never touched.
func TestOperatorProvisionFalse(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	opLog := startOperator(t, e.ns, installNamespaced(t, e))
	createGuideDeployment(t, e)
	applyGuideAndWaitProvisioned(t, e, opLog)

	patch := `{"spec":{"provisionPod":false,"provisionServiceAccount":false,"template":{"spec":{"serviceAccountName":"mine","containers":[{"name":"a","image":"b"}]}}}}`
	if out, err := kubectl(t, "", "patch", "-n", e.ns, "cpa", guideCPAName, "--type", "merge", "-p", patch); err != nil {
		t.Fatalf("patch: %v\n%s", err, out)
	}
	framework.Eventually(t, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		_, errD := e.c.Client.AppsV1().Deployments(e.ns).Get(e.ctx, guideCPAName, metav1.GetOptions{})
		_, errS := e.c.Client.CoreV1().ServiceAccounts(e.ns).Get(e.ctx, guideCPAName, metav1.GetOptions{})
		rb, errB := e.c.Client.RbacV1().RoleBindings(e.ns).Get(e.ctx, guideCPAName, metav1.GetOptions{})
		subject := ""
		if errB == nil && len(rb.Subjects) > 0 {
			subject = rb.Subjects[0].Name
		}
		return apierrors.IsNotFound(errD) && apierrors.IsNotFound(errS) && subject == "mine",
			fmt.Sprintf("Deployment %v, ServiceAccount %v (want both deleted); RoleBinding subject %q (want mine)\n%s", errD, errS, subject, opLog.String())
	})
	if _, err := e.c.Client.RbacV1().Roles(e.ns).Get(e.ctx, guideCPAName, metav1.GetOptions{}); err != nil {
		t.Errorf("the Role, still provisioned, is gone: %v", err)
	}
}

// With downscaleStabilization, a restarted runtime restores the recent recommendations
// from its CustomPodAutoscaler's status and keeps holding a scale-down back; without the
// history it would scale down at once.
func TestStabilizationSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 3*time.Minute)
	opLog := startOperator(t, e.ns, installNamespaced(t, e))
	target := createGuideDeployment(t, e)
	applyGuideAndWaitProvisioned(t, e, opLog)

	d, err := e.c.Client.AppsV1().Deployments(e.ns).Get(e.ctx, guideCPAName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, env := guideConfig(t, e)
	for _, ev := range d.Spec.Template.Spec.Containers[0].Env {
		env[ev.Name] = ev.Value
	}
	env["interval"] = "1000"
	env["downscaleStabilization"] = "600"
	env["KUBECONFIG"] = tokenKubeconfig(t, e, e.ns, guideCPAName)
	get := deploymentReplicas(e.ns, target)

	first := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef(target), Config: cfg, Env: env})
	first.waitReplicas(e.ctx, 30*time.Second, get, 3)
	if _, err := e.c.Client.AppsV1().Deployments(e.ns).Patch(e.ctx, target, types.MergePatchType, []byte(`{"metadata":{"labels":{"numPods":"1"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	first.waitLog(20*time.Second, 1, "a cycle stabilized at 3", func(l logEntry) bool {
		return l.num("evaluated") == 1 && l.num("replicas") == 3 && strings.Contains(l.str("reason"), "downscale stabilized")
	})
	first.stop()

	second := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef(target), Config: cfg, Env: env})
	second.waitMsg(20*time.Second, 1, "restored the downscale-stabilization history from the status")
	second.waitLog(20*time.Second, 2, "cycles still stabilized at 3 after the restart", func(l logEntry) bool {
		return l.num("evaluated") == 1 && l.num("replicas") == 3 && strings.Contains(l.str("reason"), "downscale stabilized")
	})
	second.keepReplicas(e.ctx, 2*time.Second, get, 3)
}
