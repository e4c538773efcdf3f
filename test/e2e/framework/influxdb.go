//go:build e2e && (linux || darwin)

package framework

// A real InfluxDB for the tests: influxd 1.8.3, built from its Go module once and cached
// outside the work tree, started on a free loopback port with Flux enabled. InfluxDB 1.8
// answers Flux on the v2 query API that InfluxDB 2 serves. The first use builds influxd
// (about a minute) into ${CPA_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/custom-pod-autoscaler}/bin.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	influxdVersion = "v1.8.3"
	influxdModule  = "github.com/influxdata/influxdb/cmd/influxd"
)

// cacheBin is the cluster binaries' cache, as hack/cluster/build.sh computes it.
func cacheBin(t testing.TB) string {
	dir := os.Getenv("CPA_CACHE_DIR")
	if dir == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				unavailable(t, "no cache directory: %v", err)
			}
			base = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(base, "custom-pod-autoscaler")
	}
	return filepath.Join(dir, "bin")
}

// unavailable skips, or fails under CI=true, where the real server must run.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("the real InfluxDB is unavailable (CI=true): "+format, args...)
	}
	t.Skipf("the real InfluxDB is unavailable: "+format, args...)
}

// influxd returns the cached influxd, building it first if it is missing. Builds are
// serialized with hack/cluster/build.sh's lock on the cache.
func influxd(t testing.TB) string {
	t.Helper()
	bin := cacheBin(t)
	out := filepath.Join(bin, "influxd-"+influxdVersion)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		unavailable(t, "%v", err)
	}
	lock, err := os.OpenFile(filepath.Join(bin, ".lock"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		unavailable(t, "%v", err)
	}
	defer func() { _ = lock.Close() }()
	t.Logf("taking the cache lock %s", lock.Name())
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		unavailable(t, "locking %s: %v", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := os.Stat(out); err == nil {
		return out // built by another process meanwhile
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		unavailable(t, "no go command to build influxd: %v", err)
	}
	tmp, err := os.MkdirTemp(bin, ".influxd-build-")
	if err != nil {
		unavailable(t, "%v", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	t.Logf("building influxd %s from %s into %s (first time only) ...", influxdVersion, influxdModule, bin)
	start := time.Now()
	cmd := exec.Command(goBin, "install", "-trimpath", influxdModule+"@"+influxdVersion)
	cmd.Dir = tmp // outside any module
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOFLAGS=")
	if outb, err := cmd.CombinedOutput(); err != nil {
		unavailable(t, "go install %s@%s: %v\n%s", influxdModule, influxdVersion, err, outb)
	}
	if err := os.Rename(filepath.Join(tmp, "influxd"), out); err != nil {
		unavailable(t, "%v", err)
	}
	t.Logf("built influxd in %v", time.Since(start).Round(time.Second))
	return out
}

// influxFreePort returns a loopback port free a moment ago.
func influxFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// StartInfluxDB runs a real influxd 1.8.3 (built from its Go module once and cached
// beside the cluster binaries) with Flux enabled on a free loopback port until the test
// ends, and returns its address. When it cannot be built the test skips, except under
// CI=true, where it fails.
func StartInfluxDB(t testing.TB) string {
	t.Helper()
	binary := influxd(t)
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		port := influxFreePort(t)
		conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:0"
[meta]
  dir = %[1]q
[data]
  dir = %[2]q
  wal-dir = %[3]q
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:%[4]d"
  flux-enabled = true
  log-enabled = false
[logging]
  level = "warn"
`, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), port)
		confPath := filepath.Join(dir, "influxd.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, fmt.Sprintf("influxd-%d.log", attempt))
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary, "run", "-config", confPath)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			_ = logFile.Close()
			t.Fatalf("starting influxd: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); _ = logFile.Close(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		address := fmt.Sprintf("http://127.0.0.1:%d", port)
		if waitReady(address, exited, 30*time.Second) {
			t.Cleanup(stop)
			t.Logf("influxd %s serves %s", influxdVersion, address)
			return address
		}
		stop()
		log, _ := os.ReadFile(logPath)
		if attempt == 3 {
			t.Fatalf("influxd did not become ready on %s:\n%s", address, log)
		}
		t.Logf("influxd did not start on port %d (taken meanwhile?), retrying:\n%s", port, log)
	}
}

func waitReady(address string, exited <-chan struct{}, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		resp, err := http.Get(address + "/ping")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// InfluxDBPost sends an InfluxDB 1.x API request (/query, /write) and fails the test
// unless it succeeds.
func InfluxDBPost(t testing.TB, u, contentType, body string) {
	t.Helper()
	resp, err := http.Post(u, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 || strings.Contains(string(b), `"error"`) {
		t.Fatalf("POST %s: %s: %s", u, resp.Status, b)
	}
}
