//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// apiResponse is one REST API answer.
type apiResponse struct {
	Code   int
	Header http.Header
	Body   string
}

func (p *cpa) api(t *testing.T, method, path string) apiResponse {
	t.Helper()
	resp, err := p.apiCall(method, path)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// apiCall is api for any goroutine: it returns the error instead of failing the test.
func (p *cpa) apiCall(method, path string) (apiResponse, error) {
	req, err := http.NewRequest(method, p.apiURL+path, nil)
	if err != nil {
		return apiResponse{}, err
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: reading the body: %w", method, path, err)
	}
	return apiResponse{Code: resp.StatusCode, Header: resp.Header, Body: string(body)}, nil
}

// The REST API on a runtime whose loop never runs during the test (startTime aligns
// the first cycle decades away): GET /api/v1/metrics and POST /api/v1/evaluation with
// and without dry_run, the run types the user logic sees, that only a non-dry
// evaluation scales, and the error bodies of the original (400, 404, 405, 500).
func TestRuntimeRESTAPI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	get := e.deployment(t, "web", 1)

	r := newRecorder(t)
	failFlag := r.file("fail")
	metric := r.script("metric", `if [ -e `+shQuote(failFlag)+` ]; then echo "metric backend down" >&2; exit 3; fi; printf 3`)
	evaluate := r.script("evaluate", `printf '{"targetReplicas": 12}'`)
	preScale := r.script("preScale", `:`)
	const century = int64(100 * 365 * 24 * time.Hour / time.Millisecond)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), API: true, Config: jsonConfig(t, map[string]any{
		"runMode":     "per-resource",
		"interval":    600000,
		"startTime":   century,
		"maxReplicas": 5,
		"metric":      shellMethod(metric, 0),
		"evaluate":    shellMethod(evaluate, 0),
		"preScale":    shellMethod(preScale, 0),
	})})
	started := p.waitMsg(15*time.Second, 1, "autoscaler started")[0]
	if first, err := time.Parse(time.RFC3339Nano, started.str("firstCycle")); err != nil || time.Until(first) < 24*time.Hour {
		t.Fatalf("first cycle at %q (%v), want it far in the future so the loop stays out of the way", started.str("firstCycle"), err)
	}
	p.waitMsg(15*time.Second, 1, "REST API listening")

	lastRunType := func(stage string) string {
		c := r.calls(stage)
		if len(c) == 0 {
			return "(never called)"
		}
		return jstr(c[len(c)-1].JSON, "runType")
	}
	expect := func(resp apiResponse, code int, body, contentType string) {
		t.Helper()
		if resp.Code != code || resp.Body != body || resp.Header.Get("Content-Type") != contentType {
			t.Errorf("got %d %q (Content-Type %q), want %d %q (%q)", resp.Code, resp.Body, resp.Header.Get("Content-Type"), code, body, contentType)
		}
	}

	// GET /metrics: the metric stage's result; never scales.
	for _, tc := range []struct{ query, runType string }{{"", "api"}, {"?dry_run=true", "api_dry_run"}, {"?dry_run=false", "api"}, {"?dry_run=1", "api_dry_run"}} {
		resp := p.api(t, http.MethodGet, "/metrics"+tc.query)
		expect(resp, 200, `[{"resource":"web","value":"3"}]`, "application/json")
		if got := lastRunType("metric"); got != tc.runType {
			t.Errorf("GET /metrics%s: the metric stage got runType %q, want %q", tc.query, got, tc.runType)
		}
	}
	if n := len(r.calls("evaluate", "preScale")); n != 0 {
		t.Errorf("GET /metrics ran evaluate or preScale %d times, want 0", n)
	}

	// A dry-run evaluation returns the raw evaluation and scales nothing.
	expect(p.api(t, http.MethodPost, "/evaluation?dry_run=true"), 200, `{"targetReplicas":12}`, "application/json")
	if got := lastRunType("evaluate"); got != "api_dry_run" {
		t.Errorf("dry-run evaluation: evaluate got runType %q, want api_dry_run", got)
	}
	if got := lastRunType("metric"); got != "api_dry_run" {
		t.Errorf("dry-run evaluation: metric got runType %q, want api_dry_run", got)
	}
	if n := len(r.calls("preScale")); n != 0 {
		t.Errorf("a dry-run evaluation ran preScale %d times, want 0", n)
	}
	p.keepReplicas(e.ctx, 1500*time.Millisecond, get, 1)
	if l := p.waitMsg(5*time.Second, 1, "dry run evaluated")[0]; l.str("runType") != "api_dry_run" || l.num("evaluated") != 12 {
		t.Errorf("dry-run log line %v: want runType api_dry_run, evaluated 12", l)
	}

	// A real evaluation scales (clamped to maxReplicas 5) before it answers.
	expect(p.api(t, http.MethodPost, "/evaluation"), 200, `{"targetReplicas":5}`, "application/json")
	if ok, status := replicasStatus(e.ctx, get, 5); !ok {
		t.Errorf("after POST /evaluation answered: %s", status)
	}
	if got := lastRunType("evaluate"); got != "api" {
		t.Errorf("evaluation: evaluate got runType %q, want api", got)
	}
	if ps := r.calls("preScale"); len(ps) != 1 {
		t.Errorf("preScale ran %d times, want once", len(ps))
	} else if in := ps[0].JSON; jstr(in, "runType") != "api" || jnum(in, "evaluation", "targetReplicas") != 5 || jnum(in, "targetReplicas") != 12 || jnum(in, "currentReplicas") != 1 {
		t.Errorf("preScale input: %.400s; want runType api, evaluation.targetReplicas 5, targetReplicas 12, currentReplicas 1", ps[0].Raw)
	}
	if l := p.waitMsg(5*time.Second, 1, "scaled")[0]; l.str("runType") != "api" || l.num("replicas") != 5 {
		t.Errorf("scaling log line %v: want runType api, replicas 5", l)
	}

	// Errors: the original's JSON bodies.
	const errType = "application/json; charset=utf-8"
	for _, tc := range []struct {
		method, path string
		code         int
		message      string
	}{
		{"GET", "/metrics?dry_run=maybe", 400, `Invalid format for 'dry_run' query parameter; 'maybe' is not a valid boolean value`},
		{"POST", "/evaluation?dry_run=maybe", 400, `Invalid format for 'dry_run' query parameter; 'maybe' is not a valid boolean value`},
		{"GET", "/nope", 404, `Resource '/api/v1/nope' not found`},
		{"POST", "/metrics", 405, `Method 'POST' not allowed on resource '/api/v1/metrics'`},
		{"GET", "/evaluation", 405, `Method 'GET' not allowed on resource '/api/v1/evaluation'`},
		{"DELETE", "/evaluation?dry_run=true", 405, `Method 'DELETE' not allowed on resource '/api/v1/evaluation'`},
	} {
		resp := p.api(t, tc.method, tc.path)
		want := fmt.Sprintf(`{"message":%q,"code":%d}`, tc.message, tc.code)
		if resp.Code != tc.code || resp.Body != want || resp.Header.Get("Content-Type") != errType || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: got %d %s (Content-Type %q, X-Content-Type-Options %q), want %d %s (%q, nosniff)",
				tc.method, tc.path, resp.Code, resp.Body, resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"), tc.code, want, errType)
		}
	}
	callsBefore := len(r.calls())

	// A failing stage: 500 with the stage's error.
	r.set("fail", "")
	wantMsg := fmt.Sprintf(`metric stage: shell command %q exited with status 3: metric backend down`, metric)
	for _, tc := range []struct{ method, path string }{{"GET", "/metrics"}, {"POST", "/evaluation?dry_run=true"}, {"POST", "/evaluation"}} {
		resp := p.api(t, tc.method, tc.path)
		want := fmt.Sprintf(`{"message":%q,"code":500}`, wantMsg)
		if resp.Code != 500 || resp.Body != want || resp.Header.Get("Content-Type") != errType {
			t.Errorf("%s %s with a failing metric stage: got %d %s (Content-Type %q), want 500 %s", tc.method, tc.path, resp.Code, resp.Body, resp.Header.Get("Content-Type"), want)
		}
	}
	if n := len(r.calls()) - callsBefore; n != 3 {
		t.Errorf("the 3 failing requests made %d calls, want 3 (metric only; the error requests none)", n)
	}
	p.keepReplicas(e.ctx, time.Second, get, 5)

	// The loop never ran.
	for _, l := range p.logs() {
		if l.str("runType") == "scaler" {
			t.Errorf("the scheduled loop ran: %v", l)
		}
	}
	for _, c := range r.calls() {
		if rt := jstr(c.JSON, "runType"); !strings.HasPrefix(rt, "api") {
			t.Errorf("%s got runType %q", c.Stage, rt)
		}
	}
}
