//go:build e2e

package e2e

// The zalando.org/v1 CRDs of kube-metrics-adapter's scaling schedules (generated from
// api/zalando/v1 into the adapter's Helm chart), applied to the real API server: the
// README's ClusterScalingSchedule is accepted, the short names and the Active column are
// served, and the schema refuses what the original's refused.

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

const readmeClusterScalingSchedule = `apiVersion: zalando.org/v1
kind: ClusterScalingSchedule
metadata:
  name: NAME
spec:
  schedules:
    - type: OneTime
      date: "2021-10-02T08:08:08+02:00"
      durationMinutes: 30
      value: 100
    - type: Repeating
      durationMinutes: 10
      value: 120
      period:
        startTime: "15:45"
        timezone: "Europe/Berlin"
        days:
          - Mon
          - Wed
          - Fri
`

func TestScalingScheduleCRDs(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	crds := filepath.Join(e.c.RepoRoot, "deploy", "helm", "kube-metrics-adapter", "crds")
	framework.Eventually(t, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
		out, err := kubectl(t, "", "apply", "--server-side", "--field-manager", "cpa-e2e", "-f", crds)
		return err == nil, "kubectl apply -f " + crds + ": " + out
	})
	for _, crd := range []string{"scalingschedules.zalando.org", "clusterscalingschedules.zalando.org"} {
		if out, err := kubectl(t, "", "wait", "--for", "condition=Established", "--timeout", "30s", "crd/"+crd); err != nil {
			t.Fatalf("CRD %s: %v\n%s", crd, err, out)
		}
	}

	name := e.ns // unique, and cluster-scoped objects outlive the namespace: removed below
	css := strings.Replace(readmeClusterScalingSchedule, "NAME", name, 1)
	t.Cleanup(func() { _, _ = kubectl(t, "", "delete", "clusterscalingschedule", name, "--ignore-not-found") })
	if out, err := kubectl(t, css, "apply", "-f", "-"); err != nil {
		t.Fatalf("the README's ClusterScalingSchedule: %v\n%s", err, out)
	}
	out, err := kubectl(t, "", "get", "css", name)
	if err != nil || !strings.Contains(out, "ACTIVE") {
		t.Errorf("kubectl get css %s: %v\n%s", name, err, out)
	}
	sched := strings.Replace(strings.Replace(readmeClusterScalingSchedule, "ClusterScalingSchedule", "ScalingSchedule", 1), "NAME", "x", 1)
	if out, err := kubectl(t, sched, "apply", "-n", e.ns, "-f", "-"); err != nil {
		t.Fatalf("a namespaced ScalingSchedule: %v\n%s", err, out)
	}
	if out, err := kubectl(t, "", "get", "sched", "x", "-n", e.ns); err != nil || !strings.Contains(out, "ACTIVE") {
		t.Errorf("kubectl get sched: %v\n%s", err, out)
	}

	for _, bad := range []struct{ from, to, want string }{
		{"- Mon", "- Monday", "Unsupported value"},
		{`startTime: "15:45"`, `startTime: "25:00"`, "should match"},
		{"type: OneTime", "type: Once", "Unsupported value"},
	} {
		obj := strings.Replace(strings.Replace(readmeClusterScalingSchedule, "NAME", name+"-bad", 1), bad.from, bad.to, 1)
		out, err := kubectl(t, obj, "apply", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(out, bad.want) {
			t.Errorf("%s instead of %s: accepted or refused for another reason (%v):\n%s", bad.to, bad.from, err, out)
		}
	}
}
