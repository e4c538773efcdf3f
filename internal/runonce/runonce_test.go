package runonce

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 4
  selector:
    matchLabels: {app: web}
`

func TestLoadTargetAndPods(t *testing.T) {
	pods := write(t, "pods.yaml", `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: web-b}, status: {phase: Running}}
- {apiVersion: v1, kind: Pod, metadata: {name: web-a}, status: {phase: Running}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-c}
status: {phase: Failed}
`)
	tgt, err := LoadTarget(write(t, "d.yaml", deploymentYAML), pods)
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := tgt.Snapshot(context.Background())
	if snap.Replicas != 4 || snap.Selector != "app=web" || tgt.Name() != "Deployment web" {
		t.Fatalf("snapshot %+v name %s", snap, tgt.Name())
	}
	got, _ := tgt.Pods(context.Background(), snap.Selector)
	if len(got) != 2 || got[0].Name != "web-a" || got[1].Name != "web-b" {
		t.Fatalf("pods %v", got)
	}
	if _, asked := tgt.Requested(); asked {
		t.Fatal("nothing was requested yet")
	}
	_ = tgt.SetReplicas(context.Background(), 6)
	if n, asked := tgt.Requested(); !asked || n != 6 {
		t.Fatalf("Requested() = %d %v", n, asked)
	}
}

func TestLoadTargetErrors(t *testing.T) {
	tests := []struct{ name, target, pods, want string }{
		{"missing file", "", "", "no such file"},
		{"two objects", deploymentYAML + "---\n" + deploymentYAML, "", "exactly one object"},
		{"no kind", "metadata: {name: x}\n", "", "needs kind and metadata.name"},
		{"bad replicas", "kind: Deployment\nmetadata: {name: x}\nspec: {replicas: 1.5}\n", "", "spec.replicas"},
		{"bad selector", "kind: Deployment\nmetadata: {name: x}\nspec: {selector: {matchExpressions: [{key: a, operator: Bogus}]}}\n", "", "spec.selector"},
		{"not a pod", deploymentYAML, "kind: Service\nmetadata: {name: s}\n", "want Pod"},
		{"not yaml", deploymentYAML, "{{{", "pods.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			targetPath := filepath.Join(t.TempDir(), "absent.yaml")
			if tt.target != "" {
				targetPath = write(t, "target.yaml", tt.target)
			}
			podsPath := ""
			if tt.pods != "" {
				podsPath = write(t, "pods.yaml", tt.pods)
			}
			_, err := LoadTarget(targetPath, podsPath)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestPrinter(t *testing.T) {
	var b bytes.Buffer
	p := NewPrinter(&b)
	p.Trace("metric", []byte(`{"a":1}`), []byte("3\n"), nil)
	p.Trace("evaluate", []byte(`{}`), nil, errors.New("exit status 1"))
	want := "=== metric\n--- input:\n{\n  \"a\": 1\n}\n--- output:\n3\n\n=== evaluate\n--- input:\n{}\n--- error:\nexit status 1\n\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
