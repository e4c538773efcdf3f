//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

// The local cluster's real Prometheus scrapes an exporter that a test serves on loopback,
// once the test lists it as a target, and answers queries about its series.
func TestPrometheusScrapesTestTarget(t *testing.T) {
	t.Parallel()
	promURL := framework.RequirePrometheus(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, "# HELP my_metric A test gauge.\n# TYPE my_metric gauge\nmy_metric 42\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("exporter: %v", err)
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })

	// A job name of its own keeps this test's series apart from other runs' and tests'.
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	job := "e2e-prometheus-" + hex.EncodeToString(b)
	framework.AddPrometheusTarget(t, job, ln.Addr().String(), map[string]string{"suite": "e2e"})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	framework.WaitForPrometheusValue(ctx, t, promURL, fmt.Sprintf(`my_metric{job=%q,suite="e2e"}`, job), 42, 60*time.Second)
	if v, ok := framework.PrometheusQuery(ctx, t, promURL, fmt.Sprintf(`up{job=%q}`, job)); !ok || v != 1 {
		t.Errorf("up{job=%q} = %v (found %v), want 1", job, v, ok)
	}
}
