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
	"sync"
	"testing"
	"time"
)

// buildTimeout bounds one `go build` of a package of this repository.
const buildTimeout = 10 * time.Minute

type buildResult struct {
	once sync.Once
	path string
	err  error
}

var (
	buildMu      sync.Mutex
	buildDir     string
	buildResults = map[string]*buildResult{}
)

// BuildBinary builds a main package of this repository, given as a path relative to
// the repository root ("./cmd/custom-pod-autoscaler") or as a full import path, and
// returns the path of the executable. Each package is built once per test process,
// into a temporary directory that Main removes at the end; concurrent callers wait
// for the same build. A failed build fails the test with the compiler's output.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	r, ok := buildResults[pkg]
	if !ok {
		r = &buildResult{}
		buildResults[pkg] = r
	}
	buildMu.Unlock()
	r.once.Do(func() { r.path, r.err = build(pkg) })
	if r.err != nil {
		t.Fatalf("BuildBinary(%q): %v", pkg, r.err)
	}
	return r.path
}

func build(pkg string) (string, error) {
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
	out := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -o %s %s (in %s) failed after %s: %w\n%s",
			out, pkg, root, time.Since(start).Round(time.Millisecond), err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

func cleanupBuilds() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
		buildDir = ""
	}
}
