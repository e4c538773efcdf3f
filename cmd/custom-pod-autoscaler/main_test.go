package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	metric := writeFile(t, dir, "metric.sh", "#!/bin/sh\ncat >/dev/null\necho 4\n")
	failing := writeFile(t, dir, "fail.sh", "#!/bin/sh\ncat >/dev/null\necho 'no numPods label' >&2\nexit 3\n")
	evaluate := writeFile(t, dir, "evaluate.sh", "#!/bin/sh\ncat >/dev/null\necho '{\"targetReplicas\": 4}'\n")
	cfg := func(metricPath string) string {
		return writeFile(t, t.TempDir(), "config.yaml", `
scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
runMode: per-resource
metric: {type: shell, shell: {entrypoint: /bin/sh, command: [`+metricPath+`]}}
evaluate: {type: shell, shell: {entrypoint: /bin/sh, command: [`+evaluate+`]}}
`)
	}
	good := cfg(metric)
	bad := writeFile(t, dir, "bad.yaml", "metrc: {}\nminReplicas: 5\nmaxReplicas: 2\n")
	otherCase := writeFile(t, dir, "case.yaml", strings.Replace(readFile(t, good), "runMode:", "runmode:", 1))
	target := writeFile(t, dir, "deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n")

	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    []string
		stderr    []string
		notStdout string
	}{
		{name: "version", args: []string{"--version"}, stdout: []string{"custom-pod-autoscaler dev"}},
		{name: "help", args: []string{"--help"}, stderr: []string{"Usage:", "--run-once", "-kubeconfig"}},
		{name: "unknown flag", args: []string{"--nope"}, code: 2, stderr: []string{"flag provided but not defined: -nope"}},
		{name: "stray argument", args: []string{"extra"}, code: 2, stderr: []string{"unexpected arguments"}},
		{name: "bad log format", args: []string{"--log-format", "xml"}, code: 2, stderr: []string{"--log-format must be text or json"}},
		{name: "run-once without target", args: []string{"--run-once"}, code: 2, stderr: []string{"--run-once needs --target"}},
		{name: "target without run-once", args: []string{"--target", target}, code: 2, stderr: []string{"only apply with --run-once"}},
		{name: "missing config", args: []string{"--config", filepath.Join(dir, "absent.yaml")}, code: 2, stderr: []string{"absent.yaml", "no such file"}},
		{name: "check valid config", args: []string{"--config", good, "--check-config"}, stdout: []string{"configuration is valid"}},
		{name: "invalid config lists every problem", args: []string{"--config", bad, "--check-config"}, code: 2,
			stderr: []string{`unknown field "metrc" (did you mean "metric"?)`, "minReplicas", "evaluate", "scaleTargetRef"}},
		{name: "keys in another case work, with a warning", args: []string{"--config", otherCase, "--check-config"},
			stdout: []string{"configuration is valid"}, stderr: []string{`warning: runmode: key "runmode" taken as "runMode"`, `write it "runMode"`}},
		{name: "run once", args: []string{"--config", good, "--run-once", "--target", target}, stdout: []string{
			"=== metric", `"runType": "scaler"`, "=== evaluate", `"value": "4\n"`, "current replicas: 1, target replicas: 4",
			"would scale Deployment web from 1 to 4 replicas (run-once never scales)"}},
		{name: "run once with a failing metric", args: []string{"--config", cfg(failing), "--run-once", "--target", target}, code: 1,
			stdout: []string{"the cycle failed, nothing would be scaled", "exited with status 3", "no numPods label"}, notStdout: "would scale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, &stdout, &stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, &stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, &stderr)
				}
			}
			if tt.notStdout != "" && strings.Contains(stdout.String(), tt.notStdout) {
				t.Errorf("stdout has %q:\n%s", tt.notStdout, &stdout)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
