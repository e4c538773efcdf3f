//go:build e2e

// Package framework runs end-to-end tests against the real local cluster that
// hack/cluster/cluster.sh starts (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok's fake nodes). See docs/development.md.
//
// A test package typically has
//
//	func TestMain(m *testing.M) { framework.Main(m) }
//
// and its tests call NewNamespace, BuildBinary and the WaitFor helpers; Ensure
// gives the clients. The cluster is started once (or reused) per test process.
package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ModulePath is the Go module the repository root is recognised by.
const ModulePath = "github.com/custompodautoscaler/cpa"

// KubeconfigEnv, when set, names the kubeconfig of an already running cluster to
// use instead of starting the local one. The tests assume kwok-like fake nodes
// (pods become Running with loopback IPs), so this is for debugging.
const KubeconfigEnv = "CPA_E2E_KUBECONFIG"

// startTimeout bounds `cluster.sh up`, which builds the cluster's binaries on a
// fresh machine (about 12 minutes on 2 cores) before starting it.
const startTimeout = 25 * time.Minute

// Cluster is the running local cluster and clients for it, all with admin rights.
type Cluster struct {
	// RepoRoot is the repository's root directory (where go.mod is).
	RepoRoot string
	// Kubeconfig is the path of the admin kubeconfig.
	Kubeconfig string
	// Config is the admin client configuration; copy it (rest.CopyConfig) before changing it.
	Config  *rest.Config
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// PrometheusURL is the local cluster's Prometheus server (http://127.0.0.1:19090), or
	// "" when none runs; RequirePrometheus skips or fails a test that needs it.
	PrometheusURL string
	// prometheusTargets is the directory whose *.json files list Prometheus's scrape
	// targets (AddPrometheusTarget writes them).
	prometheusTargets string
}

var (
	setupOnce    sync.Once
	setupCluster *Cluster
	setupErr     error
)

// Setup makes sure the local cluster is up, starting it with
// `hack/cluster/cluster.sh up` unless it already runs, and returns it. It does the
// work once per process; later calls return the same result. Use it from TestMain;
// tests use Ensure.
func Setup() (*Cluster, error) {
	setupOnce.Do(func() { setupCluster, setupErr = setup() })
	return setupCluster, setupErr
}

// Ensure is Setup for a test: it fails the test at once if the cluster cannot be started.
func Ensure(t testing.TB) *Cluster {
	t.Helper()
	c, err := Setup()
	if err != nil {
		t.Fatalf("local cluster: %v", err)
	}
	return c
}

// Main runs a test package: it starts (or reuses) the cluster first, so that a
// broken cluster is reported once and clearly, runs the tests, and removes the
// binaries BuildBinary made.
func Main(m *testing.M) {
	if _, err := Setup(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: local cluster: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	cleanupBuilds()
	os.Exit(code)
}

func setup() (*Cluster, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	kubeconfig := os.Getenv(KubeconfigEnv)
	if kubeconfig == "" {
		kubeconfig, err = clusterUp(root)
		if err != nil {
			return nil, err
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "cpa-e2e"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	probeCfg := rest.CopyConfig(cfg)
	probeCfg.Timeout = 10 * time.Second
	probe, err := kubernetes.NewForConfig(probeCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if _, err := probe.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("cluster at %s (kubeconfig %s) does not answer: %w", cfg.Host, kubeconfig, err)
	}
	c := &Cluster{RepoRoot: root, Kubeconfig: kubeconfig, Config: cfg, Client: client, Dynamic: dyn}
	c.PrometheusURL, c.prometheusTargets = findPrometheus(filepath.Dir(kubeconfig))
	return c, nil
}

// clusterUp runs `hack/cluster/cluster.sh up` (its progress goes to stderr) and
// returns the kubeconfig path it prints.
func clusterUp(root string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	script := filepath.Join(root, "hack", "cluster", "cluster.sh")
	cmd := exec.CommandContext(ctx, script, "up")
	cmd.Dir = root
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s up failed after %s (its output is above): %w", script, time.Since(start).Round(time.Second), err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	kubeconfig := strings.TrimSpace(lines[len(lines)-1])
	if kubeconfig == "" {
		return "", fmt.Errorf("%s up printed no kubeconfig path", script)
	}
	if _, err := os.Stat(kubeconfig); err != nil {
		return "", fmt.Errorf("%s up printed kubeconfig %q: %w", script, kubeconfig, err)
	}
	return kubeconfig, nil
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot finds the repository root: the nearest directory at or above the
// working directory (go test runs in the package's directory) whose go.mod
// declares ModulePath, falling back to `go env GOMOD`.
func RepoRoot() (string, error) {
	rootOnce.Do(func() { rootDir, rootErr = findRepoRoot() })
	return rootDir, rootErr
}

func findRepoRoot() (string, error) {
	isRoot := func(dir string) bool {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		return err == nil && moduleOf(b) == ModulePath
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if isRoot(dir) {
				return dir, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if dir := filepath.Dir(strings.TrimSpace(string(out))); isRoot(dir) {
			return dir, nil
		}
	}
	return "", errors.New("cannot find the repository root: no go.mod of module " + ModulePath + " at or above the working directory")
}

func moduleOf(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}
