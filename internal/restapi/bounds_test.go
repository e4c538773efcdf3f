package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/custompodautoscaler/cpa/internal/autoscaler"
	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/internal/execute"
	"github.com/custompodautoscaler/cpa/internal/target"
	"github.com/custompodautoscaler/cpa/pkg/evaluate"
	"github.com/custompodautoscaler/cpa/pkg/metric"
)

// podsTarget is an in-memory scale target with n running pods.
type podsTarget struct{ pods []*corev1.Pod }

func (p *podsTarget) Snapshot(context.Context) (*target.Snapshot, error) {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "app", "namespace": "ns"},
	}}
	return &target.Snapshot{Object: obj, Replicas: int32(len(p.pods)), Selector: "app=app"}, nil
}

func (p *podsTarget) Pods(context.Context, string) ([]*corev1.Pod, error) { return p.pods, nil }
func (p *podsTarget) SetReplicas(context.Context, int32) error            { return nil }

// With perPodConcurrency 2, ten parallel GET /metrics over per-pod shell metrics never
// run more than 2 metric processes at once: each process leaves a file while it runs and
// records how many such files it saw.
func TestParallelRequestsRunAtMostPerPodConcurrencyProcesses(t *testing.T) {
	dir := t.TempDir()
	running, seen := filepath.Join(dir, "running"), filepath.Join(dir, "seen")
	for _, d := range []string{running, seen} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Each process marks itself running, counts the marks, lingers so that any process
	// started alongside it would be counted, and removes its mark before it exits (and so
	// before its slot is freed).
	script := fmt.Sprintf(`touch %[1]s/$$; ls %[1]s | wc -l > %[2]s/$$; sleep 0.05; rm %[1]s/$$; printf 1`, running, seen)
	cfg := config.Default()
	cfg.ScaleTargetRef = &autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"}
	cfg.Namespace = "ns"
	cfg.PerPodConcurrency = 2
	cfg.Metric = &config.Method{Type: config.MethodShell, Timeout: 60000, Shell: &config.Shell{Entrypoint: "/bin/sh", Command: []string{"-c", script}}}
	cfg.Evaluate = &config.Method{Type: config.MethodShell, Timeout: 60000, Shell: &config.Shell{Entrypoint: "/bin/sh", Command: []string{"-c", `printf '{"targetReplicas": 1}'`}}}
	stages, err := autoscaler.StagesFromConfig(cfg, execute.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tgt := &podsTarget{}
	for i := range 3 {
		tgt.pods = append(tgt.pods, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-" + strconv.Itoa(i), Namespace: "ns"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}})
	}
	a, err := autoscaler.New(cfg, autoscaler.Options{Target: tgt, Stages: stages})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(a, Options{MaxRequests: 10}))
	defer srv.Close()

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			resp, err := http.Get(srv.URL + "/api/v1/metrics")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("GET /api/v1/metrics = %d %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	counts, err := os.ReadDir(seen)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 30 {
		t.Fatalf("%d metric processes ran, want 30 (10 requests × 3 pods)", len(counts))
	}
	for _, c := range counts {
		b, err := os.ReadFile(filepath.Join(seen, c.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || n > 2 {
			t.Fatalf("a metric process saw %q running at once, want at most perPodConcurrency 2", strings.TrimSpace(string(b)))
		}
	}
}

// blockingPipeline blocks every call until its context ends or release is closed.
type blockingPipeline struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingPipeline) wait(ctx context.Context) error {
	b.entered <- struct{}{}
	select {
	case <-ctx.Done():
		return fmt.Errorf("metric stage: shell command interrupted: %w", context.Cause(ctx))
	case <-b.release:
		return nil
	}
}

func (b *blockingPipeline) Metrics(ctx context.Context, _ string) ([]*metric.ResourceMetric, error) {
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	return []*metric.ResourceMetric{}, nil
}

func (b *blockingPipeline) Evaluate(ctx context.Context, _ string, _ bool) (*evaluate.Evaluation, error) {
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	return &evaluate.Evaluation{TargetReplicas: 1}, nil
}

// Requests beyond MaxRequests are refused with 429 at once; a client that goes away
// frees its place.
func TestTooManyRequests(t *testing.T) {
	p := &blockingPipeline{entered: make(chan struct{}, 10), release: make(chan struct{})}
	srv := httptest.NewServer(NewHandler(p, Options{MaxRequests: 2}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan int, 2)
	for range 2 {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/metrics", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- -1
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	<-p.entered
	<-p.entered

	resp, err := http.Post(srv.URL+"/api/v1/evaluation", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		string(body) != `{"message":"Too many requests: 2 already in progress; retry later","code":429}` {
		t.Fatalf("third request = %d %v %s, want 429 with Retry-After", resp.StatusCode, resp.Header, body)
	}

	// The two clients go away: their places are freed and a new request gets in.
	cancel()
	<-results
	<-results
	done := make(chan int, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := http.Get(srv.URL + "/api/v1/metrics")
			if err != nil {
				done <- -1
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests {
				done <- resp.StatusCode
				return
			}
			time.Sleep(5 * time.Millisecond) // the server has yet to see the disconnects
		}
		done <- http.StatusTooManyRequests
	}()
	<-p.entered
	close(p.release)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("request after the clients left = %d, want 200", code)
	}
}

// A request that outlives RequestTimeout is stopped (its context ends, which stops the
// user logic) and answered 503 with the error body.
func TestRequestTimeout(t *testing.T) {
	p := &blockingPipeline{entered: make(chan struct{}, 1), release: make(chan struct{})}
	rec := httptest.NewRecorder()
	NewHandler(p, Options{RequestTimeout: 20 * time.Millisecond}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/metrics", nil))
	var e Error
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || e.Code != 503 || !strings.Contains(e.Message, "timed out after 20ms") || !strings.Contains(e.Message, "interrupted") {
		t.Fatalf("= %d %s, want 503 naming the timeout and the stage's error", rec.Code, rec.Body)
	}
}

// Listening beyond loopback without authentication is warned about at start.
func TestWarnsWhenOpenBeyondLoopback(t *testing.T) {
	for _, tt := range []struct {
		addr string
		auth bool
		warn string
	}{
		{"127.0.0.1:0", false, ""},
		{"0.0.0.0:0", false, "without authentication"},
		{"0.0.0.0:0", true, "plain HTTP"},
	} {
		ln, err := net.Listen("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		var mu sync.Mutex
		log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
		ctx, cancel := context.WithCancel(context.Background())
		api := &config.APIConfig{Enabled: true, Auth: &config.APIAuth{Enabled: tt.auth}}
		done := make(chan error, 1)
		go func() { done <- ServeListener(ctx, ln, api, NewHandler(&fakePipeline{}, Options{}), log, time.Second) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		out := buf.String()
		mu.Unlock()
		if tt.warn == "" && strings.Contains(out, "WARN") {
			t.Errorf("%s: unexpected warning: %s", tt.addr, out)
		}
		if tt.warn != "" && !strings.Contains(out, tt.warn) {
			t.Errorf("%s auth=%v: log %q lacks %q", tt.addr, tt.auth, out, tt.warn)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
