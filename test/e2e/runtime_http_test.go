//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// httpRequest is what the test's server received.
type httpRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	ContentLength          int64
	Body                   []byte
}

// The http method: metric as GET with the input in the query parameter "value" (after
// the URL's own query), evaluate as POST with the input as a JSON body, both served by
// the test process. The target is scaled to what the evaluate endpoint answered.
func TestRuntimeHTTPMethods(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	get := e.deployment(t, "web", 1)

	var mu sync.Mutex
	var reqs []httpRequest
	record := func(r *http.Request) httpRequest {
		body, _ := io.ReadAll(r.Body)
		req := httpRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), ContentLength: r.ContentLength, Body: body}
		mu.Lock()
		reqs = append(reqs, req)
		mu.Unlock()
		return req
	}
	mux := http.NewServeMux()
	// metricMode: 0 answers 4, 1 fails with 503, 2 hangs past the timeout.
	var metricMode atomic.Int32
	mux.HandleFunc("/metric", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		switch metricMode.Load() {
		case 1:
			http.Error(w, "backend down", http.StatusServiceUnavailable)
		case 2:
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		default:
			_, _ = io.WriteString(w, "4")
		}
	})
	mux.HandleFunc("/evaluate", func(w http.ResponseWriter, r *http.Request) {
		req := record(r)
		var in struct {
			Metrics []struct{ Value string } `json:"metrics"`
		}
		if err := json.Unmarshal(req.Body, &in); err != nil || len(in.Metrics) != 1 {
			http.Error(w, fmt.Sprintf("bad evaluate input (%v): %q", err, req.Body), http.StatusBadRequest)
			return
		}
		n, err := strconv.Atoi(in.Metrics[0].Value)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = fmt.Fprintf(w, `{"targetReplicas": %d}`, n)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), Config: jsonConfig(t, map[string]any{
		"runMode":  "per-resource",
		"interval": 500,
		"metric": map[string]any{"type": "http", "timeout": 2000, "http": map[string]any{
			"method": "get", "url": srv.URL + "/metric?tenant=a", "parameterMode": "query",
			"headers": map[string]any{"X-E2e-Tenant": "a"},
		}},
		"evaluate": map[string]any{"type": "http", "http": map[string]any{
			"url": srv.URL + "/evaluate", "successCodes": []int{202},
		}},
	})})
	p.waitReplicas(e.ctx, 15*time.Second, get, 4)
	if l := p.waitMsg(5*time.Second, 1, "scaled")[0]; l.num("evaluated") != 4 || l.num("current") != 1 {
		t.Errorf("scaling log line %v: want evaluated 4, current 1", l)
	}

	mu.Lock()
	got := append([]httpRequest(nil), reqs...)
	mu.Unlock()
	if len(got) < 2 || got[0].Path != "/metric" || got[1].Path != "/evaluate" {
		t.Fatalf("the server got %d requests, want /metric then /evaluate first", len(got))
	}

	m := got[0]
	if m.Method != http.MethodGet || len(m.Body) != 0 || m.ContentLength > 0 || m.Header.Get("X-E2e-Tenant") != "a" {
		t.Errorf("metric request: %s with %d body bytes, X-E2e-Tenant %q; want GET, no body, the configured header", m.Method, len(m.Body), m.Header.Get("X-E2e-Tenant"))
	}
	if !strings.HasPrefix(m.RawQuery, "tenant=a&value=") {
		t.Errorf("metric request query %.80q: want the URL's own query first, then value=", m.RawQuery)
	}
	q, err := url.ParseQuery(m.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	var metricIn map[string]any
	if err := json.Unmarshal([]byte(q.Get("value")), &metricIn); err != nil {
		t.Fatalf("metric request's value parameter is not JSON: %v: %.200q", err, q.Get("value"))
	}
	if keysOf(metricIn)[0] != "resource" || jstr(metricIn, "runType") != "scaler" || jstr(metricIn, "resource", "kind") != "Deployment" || jstr(metricIn, "resource", "metadata", "name") != "web" {
		t.Errorf("metric request's value: %.300v; want the Deployment web and runType scaler", metricIn)
	}

	ev := got[1]
	if ev.Method != http.MethodPost || ev.Header.Get("Content-Type") != "application/json" || ev.ContentLength != int64(len(ev.Body)) || ev.RawQuery != "" {
		t.Errorf("evaluate request: %s Content-Type %q Content-Length %d (body %d bytes) query %q; want POST application/json with a length, no query",
			ev.Method, ev.Header.Get("Content-Type"), ev.ContentLength, len(ev.Body), ev.RawQuery)
	}
	// Failures: the error names the method and the configured URL, never the input
	// that query mode put into the URL.
	metricURL := srv.URL + "/metric?tenant=a"
	failed := func(want string) {
		t.Helper()
		p.waitLog(15*time.Second, 1, fmt.Sprintf("an error containing %q", want), func(l logEntry) bool {
			return l.str("msg") == "cycle failed; target not scaled" && strings.Contains(l.str("error"), want)
		})
	}
	metricMode.Store(1)
	failed(fmt.Sprintf(`metric stage: http GET %s: status 503 (want one of [200]): backend down`, metricURL))
	metricMode.Store(2)
	failed(fmt.Sprintf(`metric stage: http GET %s: timed out after 2s`, metricURL))
	srv.Close()
	failed(fmt.Sprintf(`metric stage: http GET %s: dial tcp %s: connect: connection refused`, metricURL, srv.Listener.Addr()))
	for _, l := range p.logs() {
		if e := l.str("error"); strings.Contains(e, "value=") || strings.Contains(e, "%7B") {
			t.Errorf("an error quotes the query-mode input: %.300s", e)
		}
	}
	if ok, status := replicasStatus(e.ctx, get, 4); !ok {
		t.Errorf("after the failures: %s", status)
	}

	var evalIn map[string]any
	if err := json.Unmarshal(ev.Body, &evalIn); err != nil {
		t.Fatalf("evaluate request body is not JSON: %v", err)
	}
	if ms := metricsOf(evalIn); !reflect.DeepEqual(ms, [][2]string{{"web", "4"}}) || jstr(evalIn, "runType") != "scaler" || jstr(evalIn, "resource", "metadata", "name") != "web" {
		t.Errorf("evaluate request body: metrics %v runType %q; want [[web 4]], scaler, the Deployment", ms, jstr(evalIn, "runType"))
	}
}
