//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// apiCallAs is apiCall with "Authorization: Bearer token" (none when token is "").
func (p *cpa) apiCallAs(token, method, path string) (apiResponse, error) {
	req, err := http.NewRequest(method, p.apiURL+path, nil)
	if err != nil {
		return apiResponse{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, err
	}
	return apiResponse{Code: resp.StatusCode, Header: resp.Header, Body: string(body)}, nil
}

// With apiConfig.auth, the REST API checks every request against the real API server:
// a TokenReview of the bearer token, then a SubjectAccessReview of get on
// custompodautoscalers/metrics or create on custompodautoscalers/evaluation for the
// CustomPodAutoscaler named by CPA_NAME. ServiceAccount tokens from the TokenRequest API;
// a Role grants one of them metrics only.
func TestRuntimeRESTAPIAuth(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	get := e.deployment(t, "web", 1)
	kc := e.c.Client

	const cpaName = "web-autoscaler"
	token := func(sa string) string {
		t.Helper()
		if _, err := kc.CoreV1().ServiceAccounts(e.ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		exp := int64(600)
		tr, err := kc.CoreV1().ServiceAccounts(e.ns).CreateToken(e.ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	reader, nobody := token("reader"), token("nobody")
	if _, err := kc.RbacV1().Roles(e.ns).Create(e.ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "autoscaler-metrics"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"custompodautoscaler.com"}, Resources: []string{"custompodautoscalers/metrics"},
			ResourceNames: []string{cpaName}, Verbs: []string{"get"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.RbacV1().RoleBindings(e.ns).Create(e.ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "autoscaler-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "autoscaler-metrics"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: e.ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	r := newRecorder(t)
	metric := r.script("metric", `printf 3`)
	evaluate := r.script("evaluate", `printf '{"targetReplicas": 4}'`)
	const century = int64(100 * 365 * 24 * time.Hour / time.Millisecond)
	port := freePort(t)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"),
		Env: map[string]string{
			"apiConfig": fmt.Sprintf(`{"enabled":true,"host":"127.0.0.1","port":%d,"auth":{"enabled":true}}`, port),
			"CPA_NAME":  cpaName,
		},
		Config: jsonConfig(t, map[string]any{
			"runMode": "per-resource", "interval": 600000, "startTime": century,
			"metric": shellMethod(metric, 0), "evaluate": shellMethod(evaluate, 0),
		})})
	p.apiURL = fmt.Sprintf("http://127.0.0.1:%d/api/v1", port)
	if l := p.waitMsg(15*time.Second, 1, "REST API listening")[0]; l["auth"] != true {
		t.Errorf("listening line %v: want auth true", l)
	}

	call := func(token, method, path string) apiResponse {
		t.Helper()
		resp, err := p.apiCallAs(token, method, path)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	forbidden := func(user, verb, sub string) string {
		return fmt.Sprintf(`Forbidden: user \"system:serviceaccount:%s:%s\" cannot %s resource \"custompodautoscalers/%s\" in API group \"custompodautoscaler.com\", name \"%s\", in namespace \"%s\"`, e.ns, user, verb, sub, cpaName, e.ns)
	}
	for _, tc := range []struct {
		name, token, method, path string
		code                      int
		body                      string // a part of it
	}{
		{"no token", "", "GET", "/metrics", 401, `{"message":"Unauthorized: the request needs a bearer token (Authorization: Bearer \u003ctoken\u003e)","code":401}`},
		{"not a token", "not-a-token", "GET", "/metrics", 401, `{"message":"Unauthorized: the bearer token is not valid","code":401}`},
		{"no grant", nobody, "GET", "/metrics", 403, forbidden("nobody", "get", "metrics")},
		{"granted metrics", reader, "GET", "/metrics", 200, `[{"resource":"web","value":"3"}]`},
		{"granted metrics, dry run", reader, "GET", "/metrics?dry_run=true", 200, `[{"resource":"web","value":"3"}]`},
		{"not granted evaluation", reader, "POST", "/evaluation?dry_run=true", 403, forbidden("reader", "create", "evaluation")},
		{"not granted scaling", reader, "POST", "/evaluation", 403, forbidden("reader", "create", "evaluation")},
	} {
		resp := call(tc.token, tc.method, tc.path)
		if resp.Code != tc.code || !strings.Contains(resp.Body, tc.body) {
			t.Errorf("%s: %s %s = %d %s, want %d with %s", tc.name, tc.method, tc.path, resp.Code, resp.Body, tc.code, tc.body)
		}
		if tc.code == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
	if n := len(r.calls("evaluate")); n != 0 {
		t.Errorf("refused requests ran evaluate %d times", n)
	}
	if n := len(r.calls("metric")); n != 2 {
		t.Errorf("metric ran %d times, want 2 (the two granted requests only)", n)
	}
	p.keepReplicas(e.ctx, time.Second, get, 1)
}

// The REST API is bounded on a real runtime: with perPodConcurrency 2, ten parallel
// GET /metrics over 3 Running pods never run more than 2 metric processes at once (each
// process leaves a mark while it runs and records how many it saw); requests beyond the
// 8 in flight get 429; a client that disconnects during a scaling evaluation abandons the
// cycle, which is logged as such and not as a failure, and frees its place.
func TestRuntimeRESTAPIBounds(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	e.deployment(t, "web", 3)
	podNames(e, t, "app=web", 3)

	r := newRecorder(t)
	running, seen := r.file("running"), r.file("seen")
	for _, d := range []string{running, seen} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hold := r.file("hold") // while it exists, metric processes wait (for the disconnect case)
	metric := r.script("metric", fmt.Sprintf(`touch %[1]s/$$; ls %[1]s | wc -l > %[2]s/$$; sleep 0.2; while [ -e %[3]s ]; do sleep 0.05; done; rm %[1]s/$$; printf 1`,
		shQuote(running), shQuote(seen), shQuote(hold)))
	evaluate := r.script("evaluate", `printf '{"targetReplicas": 3}'`)
	const century = int64(100 * 365 * 24 * time.Hour / time.Millisecond)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: deploymentRef("web"), API: true, Config: jsonConfig(t, map[string]any{
		"runMode": "per-pod", "perPodConcurrency": 2, "interval": 600000, "startTime": century,
		"metric": shellMethod(metric, 60000), "evaluate": shellMethod(evaluate, 0),
	})})
	p.waitMsg(15*time.Second, 1, "REST API listening")

	codes := make(chan int, 10)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			resp, err := p.apiCall(http.MethodGet, "/metrics")
			if err != nil {
				t.Error(err)
				codes <- 0
				return
			}
			if resp.Code == 200 && strings.Count(resp.Body, `"value":"1"`) != 3 {
				t.Errorf("GET /metrics = %s", resp.Body)
			}
			codes <- resp.Code
		})
	}
	wg.Wait()
	close(codes)
	counts := map[int]int{}
	for c := range codes {
		counts[c]++
	}
	if counts[200]+counts[429] != 10 || counts[200] < 8 {
		t.Errorf("status codes %v, want at least 8 × 200 (the requests in flight) and the rest 429", counts)
	}
	marks, err := os.ReadDir(seen)
	if err != nil {
		t.Fatal(err)
	}
	if len(marks) != 3*counts[200] {
		t.Errorf("%d metric processes ran, want %d (3 pods × %d answered requests)", len(marks), 3*counts[200], counts[200])
	}
	for _, m := range marks {
		b, _ := os.ReadFile(filepath.Join(seen, m.Name()))
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || n > 2 {
			t.Errorf("a metric process saw %q running at once, want at most perPodConcurrency 2", strings.TrimSpace(string(b)))
		}
	}

	// A client that goes away during a scaling evaluation: the cycle is abandoned (its
	// processes stopped), not failed, and the next request gets in.
	r.set("hold", "")
	ctx, cancel := context.WithCancel(e.ctx)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.apiURL+"/evaluation", nil)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	p.eventually(30*time.Second, func() (bool, string) {
		entries, _ := os.ReadDir(running)
		return len(entries) > 0, "a metric process of the evaluation to start"
	})
	cancel()
	<-done
	p.waitMsg(30*time.Second, 1, "cycle abandoned: its caller went away or the runtime is stopping; target not scaled")
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	if l := p.logsWithMsg("cycle failed; target not scaled"); len(l) != 0 {
		t.Errorf("a disconnected client was logged as a failed cycle: %v", l)
	}
	if resp := p.api(t, http.MethodGet, "/metrics"); resp.Code != 200 {
		t.Errorf("GET /metrics after the disconnect = %d %s", resp.Code, resp.Body)
	}
}
