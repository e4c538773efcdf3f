//go:build e2e

package e2e

// The CustomPodAutoscaler CRD (deploy/crd, generated from api/custompodautoscaler/v1 by controller-gen):
// installed with a plain `kubectl apply -f` as the guide does (the original's 525 KB CRD
// fails that: its last-applied annotation exceeds 256 KiB), the guide's cpa.yaml is
// accepted and defaulted, invalid resources are rejected with messages naming the field.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

var cpaGVR = schema.GroupVersionResource{Group: "custompodautoscaler.com", Version: "v1", Resource: "custompodautoscalers"}

// kubectl runs the local cluster's kubectl with the admin kubeconfig.
func kubectl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	c := framework.Ensure(t)
	bin := filepath.Join(filepath.Dir(c.Kubeconfig), "bin", "kubectl")
	if _, err := os.Stat(bin); err != nil {
		skipUnlessCI(t, "no kubectl of the local cluster at %s: %v", bin, err)
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// installCRD applies deploy/crd with a plain (client-side) kubectl apply and waits until
// the CRD is Established.
func installCRD(t *testing.T) {
	t.Helper()
	c := framework.Ensure(t)
	dir := filepath.Join(c.RepoRoot, "deploy", "crd")
	if out, err := kubectl(t, "", "apply", "-f", dir); err != nil {
		t.Fatalf("kubectl apply -f deploy/crd: %v\n%s", err, out)
	}
	if out, err := kubectl(t, "", "wait", "--for", "condition=Established", "--timeout", "30s", "crd/custompodautoscalers.custompodautoscaler.com"); err != nil {
		t.Fatalf("waiting for the CRD: %v\n%s", err, out)
	}
}

func TestCRDPlainApplyAndValidation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	installCRD(t)

	guide := filepath.Join(e.c.RepoRoot, "examples", "python-custom-autoscaler", "cpa.yaml")
	framework.Eventually(t, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
		out, err := kubectl(t, "", "apply", "-n", e.ns, "-f", guide)
		return err == nil, out
	})
	obj, err := e.c.Dynamic.Resource(cpaGVR).Namespace(e.ns).Get(e.ctx, "python-custom-autoscaler", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := obj.Object["spec"].(map[string]any)
	for key, want := range map[string]bool{
		"provisionRole": true, "provisionRoleBinding": true, "provisionServiceAccount": true, "provisionPod": true,
		"roleRequiresMetricsServer": false, "roleRequiresArgoRollouts": false,
	} {
		if got, ok := spec[key].(bool); !ok || got != want {
			t.Errorf("spec.%s = %v, want the default %v", key, spec[key], want)
		}
	}
	if jstr(spec, "template", "spec", "containers", 0, "image") != "python-custom-autoscaler:latest" || jstr(spec, "config", 0, "value") != "10000" {
		t.Errorf("the guide's template or config was not kept: %v", spec)
	}

	out, err := kubectl(t, "", "get", "cpa", "-n", e.ns, "-o", "wide")
	if err != nil || !strings.Contains(out, "TARGET") || !strings.Contains(out, "hello-kubernetes") || !strings.Contains(out, "Deployment") {
		t.Errorf("kubectl get cpa -o wide: %v\n%s", err, out)
	}

	bad := `apiVersion: custompodautoscaler.com/v1
kind: CustomPodAutoscaler
metadata: {name: bad}
spec:
  template: {spec: {containers: [{name: a, image: b}]}}
  scaleTargetRef: {kind: Deployment, name: x}
  config: [{name: interval, value: "1"}, {name: interval, value: "2"}, {name: "", value: "3"}]
`
	out, err = kubectl(t, bad, "apply", "-n", e.ns, "-f", "-")
	if err == nil {
		t.Fatalf("an invalid CustomPodAutoscaler was accepted:\n%s", out)
	}
	for _, want := range []string{
		"scaleTargetRef.apiVersion is required",
		`spec.config[1]: Duplicate value: {"name":"interval"}`,
		"spec.config[2].name",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rejection does not say %q:\n%s", want, out)
		}
	}
	out, err = kubectl(t, strings.Replace(bad, "  template: {spec: {containers: [{name: a, image: b}]}}\n", "", 1), "create", "-n", e.ns, "-f", "-")
	if err == nil || !strings.Contains(out, "spec.template: Required value") {
		t.Errorf("a CustomPodAutoscaler without template: %v\n%s", err, out)
	}
}
