//go:build e2e

package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RaceEnv, when set to a non-empty value, asks tests that support it to build the
// binaries they run with the race detector (see BuildBinaryWithFlags). The first such
// build takes minutes; Go's build cache keeps it for later runs.
const RaceEnv = "CPA_E2E_RACE"

// BuildBinaryWithFlags is BuildBinary with extra `go build` flags, e.g. "-race". Each
// package and set of flags is built once per test process, next to BuildBinary's
// executables (Main removes them).
func BuildBinaryWithFlags(t testing.TB, pkg string, flags ...string) string {
	t.Helper()
	if len(flags) == 0 {
		return BuildBinary(t, pkg)
	}
	key := pkg + "\x00" + strings.Join(flags, "\x00")
	buildMu.Lock()
	r, ok := buildResults[key]
	if !ok {
		r = &buildResult{}
		buildResults[key] = r
	}
	buildMu.Unlock()
	r.once.Do(func() { r.path, r.err = buildWithFlags(pkg, flags) })
	if r.err != nil {
		t.Fatalf("BuildBinaryWithFlags(%q, %q): %v", pkg, flags, r.err)
	}
	return r.path
}

func buildWithFlags(pkg string, flags []string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	buildMu.Lock()
	if buildDir == "" {
		buildDir, err = os.MkdirTemp("", "cpa-e2e-bin-")
	}
	dir := buildDir
	buildMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("creating the build directory: %w", err)
	}
	name := path.Base(strings.TrimSuffix(pkg, "/"))
	if name == "." || name == "/" || name == "" {
		return "", fmt.Errorf("cannot name a binary for package %q", pkg)
	}
	sub, err := os.MkdirTemp(dir, name+"-flags-")
	if err != nil {
		return "", fmt.Errorf("creating the build directory: %w", err)
	}
	out := filepath.Join(sub, name)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	args := append(append([]string{"build"}, flags...), "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s (in %s) failed after %s: %w\n%s",
			strings.Join(args, " "), root, time.Since(start).Round(time.Millisecond), err, strings.TrimSpace(string(b)))
	}
	return out, nil
}
