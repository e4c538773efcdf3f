//go:build e2e

package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The local cluster's Prometheus (hack/cluster/cluster.sh) scrapes, every 2 s, the
// targets listed in the *.json files of <cluster dir>/prometheus/targets (file_sd_configs,
// re-read every 2 s). A test adds one with AddPrometheusTarget and waits for a series with
// WaitForPrometheusValue; a new target's first sample shows up within a few seconds.

// prometheusClient bounds every request the helpers make.
var prometheusClient = &http.Client{Timeout: 5 * time.Second}

// findPrometheus returns the URL of the Prometheus that `cluster.sh up` started for the
// cluster in state (it writes prometheus/url once Prometheus is ready) and the directory
// of its target files; both are "" when none is there or it does not answer.
func findPrometheus(state string) (promURL, targets string) {
	b, err := os.ReadFile(filepath.Join(state, "prometheus", "url"))
	if err != nil {
		return "", ""
	}
	u := strings.TrimSpace(string(b))
	resp, err := prometheusClient.Get(u + "/-/ready")
	if err != nil {
		return "", ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", ""
	}
	return u, filepath.Join(state, "prometheus", "targets")
}

// RequirePrometheus returns the local cluster's Prometheus URL. When none runs it skips
// the test, or fails it under CI=true, where the cluster must have one.
func RequirePrometheus(t testing.TB) string {
	t.Helper()
	c := Ensure(t)
	if c.PrometheusURL != "" {
		return c.PrometheusURL
	}
	const why = "the local cluster runs no Prometheus (hack/cluster/build.sh installs the Debian package prometheus as root; then run hack/cluster/cluster.sh up)"
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// AddPrometheusTarget makes the local cluster's Prometheus scrape addr (host:port, path
// /metrics over HTTP) with the label job=job and the given labels, until the test ends.
// It writes a target file that t.Cleanup removes; Prometheus picks it up within about
// 2 s and scrapes every 2 s. Use a job name unique to the test so that its queries
// select its own series.
func AddPrometheusTarget(t testing.TB, job, addr string, labels map[string]string) {
	t.Helper()
	RequirePrometheus(t)
	dir := Ensure(t).prometheusTargets
	if job == "" || addr == "" {
		t.Fatalf("AddPrometheusTarget: job and addr are required (job %q, addr %q)", job, addr)
	}
	all := map[string]string{"job": job}
	for k, v := range labels {
		if !labelName.MatchString(k) || strings.HasPrefix(k, "__") {
			t.Fatalf("AddPrometheusTarget: %q is not a valid target label name", k)
		}
		if k == "job" {
			t.Fatalf("AddPrometheusTarget: give the job as the job argument, not as a label")
		}
		all[k] = v
	}
	body, err := json.Marshal([]map[string]any{{"targets": []string{addr}, "labels": all}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("AddPrometheusTarget: %v", err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := fmt.Sprintf("%s-%s.json", sanitizeFileName(t.Name()), hex.EncodeToString(suffix))
	file := filepath.Join(dir, name)
	// Write then rename, so that Prometheus never reads half a file (the temporary name
	// does not match *.json).
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		t.Fatalf("AddPrometheusTarget: %v", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		t.Fatalf("AddPrometheusTarget: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
			t.Errorf("removing Prometheus target file: %v", err)
		}
	})
	t.Logf("Prometheus scrapes %s (job %q) as listed in %s", addr, job, file)
}

func sanitizeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// PrometheusQuery runs the instant query at promURL (/api/v1/query) and returns the value
// of its first sample (a vector's first series, or a scalar) and true; false when the
// result is empty or Prometheus cannot be asked right now (logged). A query Prometheus
// refuses (HTTP 400: bad PromQL) fails the test, since asking again cannot help.
func PrometheusQuery(ctx context.Context, t testing.TB, promURL, query string) (float64, bool) {
	t.Helper()
	v, ok, err := prometheusQuery(ctx, promURL, query)
	if err != nil {
		if _, bad := err.(badQueryError); bad {
			t.Fatal(err)
		}
		t.Logf("Prometheus query %q: %v", query, err)
	}
	return v, ok
}

// WaitForPrometheusValue waits until the instant query at promURL returns want (its first
// sample), failing the test after timeout with the last value or error seen.
func WaitForPrometheusValue(ctx context.Context, t testing.TB, promURL, query string, want float64, timeout time.Duration) {
	t.Helper()
	EventuallyCtx(ctx, t, timeout, 500*time.Millisecond, func() (bool, string) {
		v, ok, err := prometheusQuery(ctx, promURL, query)
		switch {
		case err != nil:
			if _, bad := err.(badQueryError); bad {
				t.Fatal(err)
			}
			return false, fmt.Sprintf("query %q: %v", query, err)
		case !ok:
			return false, fmt.Sprintf("query %q: no result yet (want %v)", query, want)
		case v != want:
			return false, fmt.Sprintf("query %q = %v, want %v", query, v, want)
		}
		return true, ""
	})
}

type badQueryError struct{ msg string }

func (e badQueryError) Error() string { return e.msg }

func prometheusQuery(ctx context.Context, promURL, query string) (float64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := strings.TrimSuffix(promURL, "/") + "/api/v1/query?" + url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := prometheusClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, false, err
	}
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, false, fmt.Errorf("HTTP %d, not a query response: %.200s", resp.StatusCode, body)
	}
	if r.Status != "success" {
		msg := fmt.Sprintf("Prometheus refused query %q (HTTP %d, %s): %s", query, resp.StatusCode, r.ErrorType, r.Error)
		if resp.StatusCode == http.StatusBadRequest {
			return 0, false, badQueryError{msg}
		}
		return 0, false, fmt.Errorf("%s", msg)
	}
	var sample []any // [unix time, "value"]
	switch r.Data.ResultType {
	case "vector":
		var series []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &series); err != nil {
			return 0, false, fmt.Errorf("decoding vector: %w", err)
		}
		if len(series) == 0 {
			return 0, false, nil
		}
		sample = series[0].Value
	case "scalar":
		if err := json.Unmarshal(r.Data.Result, &sample); err != nil {
			return 0, false, fmt.Errorf("decoding scalar: %w", err)
		}
	default:
		return 0, false, badQueryError{fmt.Sprintf("query %q gives a %s; want an instant vector or a scalar", query, r.Data.ResultType)}
	}
	if len(sample) != 2 {
		return 0, false, fmt.Errorf("unexpected sample %v", sample)
	}
	s, _ := sample[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, fmt.Errorf("sample value %v: %w", sample[1], err)
	}
	return v, true, nil
}
