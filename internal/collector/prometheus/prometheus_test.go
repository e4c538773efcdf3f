package prometheus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/collector"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// request is what the fake Prometheus saw of one query.
type request struct {
	method, query, time, timeout, auth string
}

// fakeProm answers /api/v1/query like Prometheus: the data (or a whole body and status)
// comes from answer. It records every request.
type fakeProm struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

func (f *fakeProm) seen() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func newProm(t *testing.T, answer func(r request) (status int, body string)) *fakeProm {
	t.Helper()
	f := &fakeProm{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" && r.URL.Path != "/prefix/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("ParseForm: %v", err)
		}
		req := request{r.Method, r.Form.Get("query"), r.Form.Get("time"), r.Form.Get("timeout"), r.Header.Get("Authorization")}
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		status, body := answer(req)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.Close)
	return f
}

// success wraps data as a successful API answer.
func success(resultType, result string) string {
	return fmt.Sprintf(`{"status":"success","data":{"resultType":%q,"result":%s}}`, resultType, result)
}

var nowSec = strconv.FormatInt(now.Unix(), 10)

func vector(values ...string) string {
	var parts []string
	for i, v := range values {
		parts = append(parts, fmt.Sprintf(`{"metric":{"__name__":"up","instance":"i%d"},"value":[%s,%q]}`, i, nowSec, v))
	}
	return success("vector", "["+strings.Join(parts, ",")+"]")
}

func answering(body string) func(request) (int, string) {
	return func(request) (int, string) { return http.StatusOK, body }
}

func opts(servers Servers) Options {
	return Options{Servers: servers, Clock: clocktesting.NewFakePassiveClock(now)}
}

func external(keys map[string]string) collector.Config {
	return collector.Config{
		Kind: collector.External, Name: "queue-depth", Type: Type, Namespace: "app",
		Keys:   keys,
		Labels: map[string]string{"type": "prometheus", "queue": "orders"},
	}
}

var quantityEq = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

func mustCollect(t *testing.T, cfg collector.Config, o Options) []collector.Value {
	t.Helper()
	c, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	vals, err := c.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return vals
}

func TestExternal(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"one sample", vector("12.5"), "12500m"},
		{"negative", vector("-2"), "-2"},
		{"rounded to milli", vector("0.0015"), "2m"},
		{"below half a milli", vector("0.0004"), "0"},
		{"exponent", vector("1e3"), "1k"},
		{"scalar", success("scalar", "["+nowSec+`,"3"]`), "3"},
		{"warnings are not errors", `{"status":"success","warnings":["slow"],"data":{"resultType":"scalar","result":[` + nowSec + `,"4"]}}`, "4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prom := newProm(t, answering(tc.body))
			vals := mustCollect(t, external(map[string]string{"query": "sum(up)", "type": "prometheus"}), opts(Servers{Default: ServerConfig{URL: prom.URL}}))
			want := []collector.Value{{
				Labels:    map[string]string{"type": "prometheus", "queue": "orders"},
				Value:     resource.MustParse(tc.want),
				Timestamp: now,
			}}
			if diff := cmp.Diff(want, vals, quantityEq); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
			reqs := prom.seen()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if r := reqs[0]; r.method != http.MethodPost || r.query != "sum(up)" || r.time != nowSec || r.timeout != "15s" || r.auth != "" {
				t.Errorf("request %+v, want a POST of sum(up) at %s with a 15s timeout and no token", r, nowSec)
			}
		})
	}
}

func TestGETFallbackAndPathPrefix(t *testing.T) {
	prom := newProm(t, func(r request) (int, string) {
		if r.method == http.MethodPost {
			return http.StatusMethodNotAllowed, ""
		}
		return http.StatusOK, vector("7")
	})
	vals := mustCollect(t, external(map[string]string{"query": "x"}), opts(Servers{Default: ServerConfig{URL: prom.URL + "/prefix/"}}))
	if len(vals) != 1 || vals[0].Value.Cmp(resource.MustParse("7")) != 0 {
		t.Fatalf("values %v, want 7", vals)
	}
	if reqs := prom.seen(); len(reqs) != 2 || reqs[1].method != http.MethodGet || reqs[1].query != "x" {
		t.Errorf("requests %+v, want a POST then a GET", reqs)
	}
}

type fakeReplicas struct {
	n   int32
	err error
	got []collector.ObjectRef
}

func (f *fakeReplicas) Replicas(_ context.Context, target collector.ObjectRef) (int32, error) {
	f.got = append(f.got, target)
	return f.n, f.err
}

var (
	dummyPod = collector.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "app", Name: "dummy-pod"}
	deploy   = collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "web"}
)

func object(keys map[string]string, perReplica bool) collector.Config {
	return collector.Config{
		Kind: collector.Object, Name: "events", Type: Type, Namespace: "app",
		Keys: keys, Object: dummyPod, ScaleTarget: deploy, PerReplica: perReplica,
		Labels: map[string]string{"ignored": "yes"},
	}
}

func TestObject(t *testing.T) {
	prom := newProm(t, answering(vector("30")))
	o := opts(Servers{Default: ServerConfig{URL: prom.URL}})

	vals := mustCollect(t, object(map[string]string{"query": "q"}, false), o)
	want := []collector.Value{{Object: dummyPod, Value: resource.MustParse("30"), Timestamp: now}}
	if diff := cmp.Diff(want, vals, quantityEq); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}

	r := &fakeReplicas{n: 4}
	o.Replicas = r
	vals = mustCollect(t, object(map[string]string{"query": "q"}, true), o)
	want[0].Value = resource.MustParse("7500m")
	if diff := cmp.Diff(want, vals, quantityEq); diff != "" {
		t.Errorf("per-replica values (-want +got):\n%s", diff)
	}
	if len(r.got) != 1 || r.got[0] != deploy {
		t.Errorf("replicas asked for %v, want the scale target", r.got)
	}

	for _, tc := range []struct {
		name string
		r    *fakeReplicas
		want string
	}{
		{"no replicas", &fakeReplicas{n: 0}, "Deployment app/web has 0 replicas, cannot divide by fewer than 1"},
		{"replicas unknown", &fakeReplicas{err: errors.New("not found")}, "the replicas of Deployment app/web: not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o.Replicas = tc.r
			c, err := New(object(map[string]string{"query": "q"}, true), o)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := c.Collect(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || vals != nil {
				t.Fatalf("Collect = %v, %v; want an error containing %q", vals, err, tc.want)
			}
		})
	}
}

func TestObjectServerOverrides(t *testing.T) {
	def := newProm(t, answering(vector("1")))
	other := newProm(t, answering(vector("2")))
	o := opts(Servers{Default: ServerConfig{URL: def.URL}, Additional: map[string]ServerConfig{"other": {URL: other.URL}}})
	for _, keys := range []map[string]string{
		{"query": "q", "prometheus-server": other.URL},
		{"query": "q", "prometheus-server-alias": "other"},
	} {
		vals := mustCollect(t, object(keys, false), o)
		if vals[0].Value.Cmp(resource.MustParse("2")) != 0 {
			t.Errorf("keys %v: value %s, want the other server's 2", keys, &vals[0].Value)
		}
	}
	if n := len(def.seen()); n != 0 {
		t.Errorf("the default server got %d queries, want none", n)
	}
}

func TestQueryErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   []string
	}{
		{"no data", 200, vector(), []string{"no data", "or vector(0)"}},
		{"several series", 200, vector("1", "2", "3"), []string{"3 series, want one", "sum(...)"}},
		{"matrix", 200, success("matrix", `[{"metric":{},"values":[[`+nowSec+`,"1"]]}]`), []string{"range vector (matrix)"}},
		{"string", 200, success("string", `[`+nowSec+`,"hello"]`), []string{`"string"`}},
		{"NaN", 200, vector("NaN"), []string{"NaN, not a finite number"}},
		{"+Inf", 200, vector("+Inf"), []string{"+Inf, not a finite number"}},
		{"-Inf scalar", 200, success("scalar", `[`+nowSec+`,"-Inf"]`), []string{"-Inf, not a finite number"}},
		{"out of range", 200, vector("1e17"), []string{"out of range"}},
		{"bad query", 400, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}`, []string{"bad_data", "parse error"}},
		{"plain 500", 500, `upstream exploded`, []string{"server error: 500", `"upstream exploded"`}},
		{"gateway 502", 502, ``, []string{"502"}},
		{"not JSON", 200, `<html>`, []string{"bad_response"}},
		{"unknown result type", 200, success("weird", `[]`), []string{"weird"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prom := newProm(t, func(request) (int, string) { return tc.status, tc.body })
			c, err := New(external(map[string]string{"query": "sum(rate(x[1m]))"}), opts(Servers{Default: ServerConfig{URL: prom.URL}}))
			if err != nil {
				t.Fatal(err)
			}
			vals, err := c.Collect(context.Background())
			if err == nil {
				t.Fatalf("Collect = %v, want an error", vals)
			}
			if vals != nil {
				t.Errorf("values %v alongside the error", vals)
			}
			for _, w := range append(tc.want, prom.URL, `"sum(rate(x[1m]))"`) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOversizedAnswer(t *testing.T) {
	prom := newProm(t, answering(vector("1", "2", "3", "4", "5", "6")))
	o := opts(Servers{Default: ServerConfig{URL: prom.URL}})
	o.MaxBodyBytes = 100
	c, err := New(external(map[string]string{"query": "q"}), o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than the 100 bytes allowed") {
		t.Fatalf("error %v, want the cap named", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	c, err := New(external(map[string]string{"query": "q", "request-timeout": "50ms"}), opts(Servers{Default: ServerConfig{URL: srv.URL}}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("error %v, want the timeout named", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}

	// The caller's own cancellation is not reported as the timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Collect(ctx)
	if err == nil || strings.Contains(err.Error(), "no answer within") || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func writeToken(t *testing.T, path, token string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestBearerTokenRotation(t *testing.T) {
	prom := newProm(t, answering(vector("1")))
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writeToken(t, path, "alpha\n", mtime)

	clk := clocktesting.NewFakePassiveClock(now)
	o := Options{Servers: Servers{Default: ServerConfig{URL: prom.URL, TokenFile: path}}, Clock: clk}
	c, err := New(external(map[string]string{"query": "q"}), o)
	if err != nil {
		t.Fatal(err)
	}
	collect := func(wantAuth string) {
		t.Helper()
		if _, err := c.Collect(context.Background()); err != nil {
			t.Fatalf("Collect: %v", err)
		}
		reqs := prom.seen()
		if got := reqs[len(reqs)-1].auth; got != wantAuth {
			t.Errorf("Authorization %q, want %q", got, wantAuth)
		}
	}
	collect("Bearer alpha")

	// A rotated file (new modification time) is read again at once.
	writeToken(t, path, "bravo", mtime.Add(time.Second))
	collect("Bearer bravo")

	// A rewrite keeping time and size is picked up once the cached token is TokenMaxAge old.
	writeToken(t, path, "charl", mtime.Add(time.Second))
	collect("Bearer bravo")
	clk.SetTime(now.Add(TokenMaxAge))
	collect("Bearer charl")

	// A vanished or empty file is an error naming it, and no request goes out.
	before := len(prom.seen())
	for _, tc := range []struct {
		name string
		prep func()
		want string
	}{
		{"empty", func() { writeToken(t, path, " \n", mtime.Add(2*time.Second)) }, "is empty"},
		{"gone", func() { _ = os.Remove(path) }, "no such file"},
	} {
		tc.prep()
		_, err := c.Collect(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), prom.URL) {
			t.Errorf("%s: error %v, want %q naming the file and the server", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "charl") {
			t.Errorf("%s: the error shows the token: %v", tc.name, err)
		}
	}
	if n := len(prom.seen()); n != before {
		t.Errorf("%d requests without a token", n-before)
	}
}

func TestTokenNotSentAcrossRedirects(t *testing.T) {
	elsewhere := newProm(t, answering(vector("5")))
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret" {
			t.Errorf("the home server got Authorization %q", r.Header.Get("Authorization"))
		}
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(home.Close)
	path := filepath.Join(t.TempDir(), "token")
	writeToken(t, path, "secret", now)
	vals := mustCollect(t, external(map[string]string{"query": "q"}), opts(Servers{Default: ServerConfig{URL: home.URL, TokenFile: path}}))
	if vals[0].Value.Cmp(resource.MustParse("5")) != 0 {
		t.Fatalf("value %s, want 5", &vals[0].Value)
	}
	for _, r := range elsewhere.seen() {
		if r.auth != "" {
			t.Errorf("the redirect target got Authorization %q", r.auth)
		}
	}
}

func TestServerSelection(t *testing.T) {
	dir := t.TempDir()
	defTok, aliasTok := filepath.Join(dir, "def"), filepath.Join(dir, "alias")
	writeToken(t, defTok, "def-token", now)
	writeToken(t, aliasTok, "alias-token", now)
	def := newProm(t, answering(vector("1")))
	eu := newProm(t, answering(vector("2")))
	us := newProm(t, answering(vector("3")))
	adhoc := newProm(t, answering(vector("4")))

	servers, err := ParseServers(def.URL, defTok, map[string]string{"eu": eu.URL, "us": us.URL}, map[string]string{"eu": aliasTok})
	if err != nil {
		t.Fatal(err)
	}
	f := Factory(opts(servers))
	for _, tc := range []struct {
		keys     map[string]string
		prom     *fakeProm
		want     string
		wantAuth string
	}{
		{map[string]string{"query": "q"}, def, "1", "Bearer def-token"},
		{map[string]string{"query": "q", "prometheus-server-alias": "eu"}, eu, "2", "Bearer alias-token"},
		{map[string]string{"query": "q", "prometheus-server-alias": "us"}, us, "3", ""},
		{map[string]string{"query": "q", "prometheus-server": adhoc.URL}, adhoc, "4", ""},
	} {
		c, err := f(external(tc.keys))
		if err != nil {
			t.Fatalf("%v: %v", tc.keys, err)
		}
		vals, err := c.Collect(context.Background())
		if err != nil {
			t.Fatalf("%v: %v", tc.keys, err)
		}
		if vals[0].Value.Cmp(resource.MustParse(tc.want)) != 0 {
			t.Errorf("%v: value %s, want %s", tc.keys, &vals[0].Value, tc.want)
		}
		reqs := tc.prom.seen()
		if len(reqs) == 0 || reqs[len(reqs)-1].auth != tc.wantAuth {
			t.Errorf("%v: requests %+v, want the last with Authorization %q", tc.keys, reqs, tc.wantAuth)
		}
	}
}

func TestNewErrors(t *testing.T) {
	withDefault := Servers{Default: ServerConfig{URL: "http://prometheus:9090"}, Additional: map[string]ServerConfig{"eu": {URL: "http://eu:9090"}, "us": {URL: "http://us:9090"}}}
	for _, tc := range []struct {
		name    string
		cfg     collector.Config
		servers Servers
		want    []string
	}{
		{"no query", external(map[string]string{"type": "prometheus"}), withDefault, []string{`key "query": is required`}},
		{"blank query", external(map[string]string{"query": "  \n"}), withDefault, []string{`key "query": is required`}},
		{"bad timeout", external(map[string]string{"query": "q", "request-timeout": "soon"}), withDefault, []string{`key "request-timeout": "soon": not a duration`}},
		{"negative timeout", external(map[string]string{"query": "q", "request-timeout": "-1s"}), withDefault, []string{`key "request-timeout": "-1s": must be positive`}},
		{"both overrides", external(map[string]string{"query": "q", "prometheus-server": "http://x", "prometheus-server-alias": "eu"}), withDefault, []string{`keys "prometheus-server" ("http://x") and "prometheus-server-alias" ("eu"): set at most one`}},
		{"unknown alias", external(map[string]string{"query": "q", "prometheus-server-alias": "asia"}), withDefault, []string{`key "prometheus-server-alias": "asia": no --additional-prometheus-server has this alias (known: eu, us)`}},
		{"alias without any", external(map[string]string{"query": "q", "prometheus-server-alias": "asia"}), Servers{}, []string{`"asia": no --additional-prometheus-server is configured`}},
		{"ad-hoc scheme", external(map[string]string{"query": "q", "prometheus-server": "prometheus:9090"}), withDefault, []string{`key "prometheus-server": "prometheus:9090": the scheme must be http or https`}},
		{"ad-hoc credentials", external(map[string]string{"query": "q", "prometheus-server": "http://u:p@prom"}), withDefault, []string{`key "prometheus-server"`, "credentials in the URL are not supported"}},
		{"ad-hoc no host", external(map[string]string{"query": "q", "prometheus-server": "http://"}), withDefault, []string{"no host"}},
		{"ad-hoc not a URL", external(map[string]string{"query": "q", "prometheus-server": "http://[::1"}), withDefault, []string{"not a URL"}},
		{"no server at all", external(map[string]string{"query": "q"}), Servers{}, []string{"no Prometheus server: --prometheus-server is not set"}},
		{"pods", collector.Config{Kind: collector.Pods, Keys: map[string]string{"query": "q"}}, withDefault, []string{"not Pods"}},
		{"per-replica without replicas", object(map[string]string{"query": "q"}, true), withDefault, []string{"per-replica: this collector has no way to read replicas"}},
		{"everything at once", external(map[string]string{"request-timeout": "0s", "prometheus-server-alias": "x"}), withDefault, []string{`"query"`, `"request-timeout"`, `"prometheus-server-alias"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg, opts(tc.servers))
			if err == nil {
				t.Fatalf("New = %v, want an error", c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	// A per-replica metric needs a scale target.
	cfg := object(map[string]string{"query": "q"}, true)
	cfg.ScaleTarget = collector.ObjectRef{}
	o := opts(withDefault)
	o.Replicas = &fakeReplicas{n: 1}
	if _, err := New(cfg, o); err == nil || !strings.Contains(err.Error(), "no scale target") {
		t.Errorf("error %v, want the missing scale target named", err)
	}

	// A missing token file of the default server is an error at creation.
	o = opts(Servers{Default: ServerConfig{URL: "http://prom", TokenFile: filepath.Join(t.TempDir(), "nope")}})
	if _, err := New(external(map[string]string{"query": "q"}), o); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("error %v, want the token file named", err)
	}
}

func TestParseServers(t *testing.T) {
	dir := t.TempDir()
	tok, empty := filepath.Join(dir, "tok"), filepath.Join(dir, "empty")
	writeToken(t, tok, "t", now)
	writeToken(t, empty, "\n", now)

	got, err := ParseServers("https://prom:9090/prefix", tok, map[string]string{"eu": "http://eu"}, map[string]string{"eu": tok})
	if err != nil {
		t.Fatal(err)
	}
	want := Servers{Default: ServerConfig{URL: "https://prom:9090/prefix", TokenFile: tok}, Additional: map[string]ServerConfig{"eu": {URL: "http://eu", TokenFile: tok}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if got, err := ParseServers("", "", nil, nil); err != nil || got.Default.URL != "" || len(got.Additional) != 0 {
		t.Errorf("no flags: %+v, %v", got, err)
	}

	for _, tc := range []struct {
		name        string
		def, defTok string
		add, addTok map[string]string
		want        []string
	}{
		{"bad default", "ftp://prom", "", nil, nil, []string{`--prometheus-server "ftp://prom": the scheme must be http or https`}},
		{"token without server", "", tok, nil, nil, []string{"--prometheus-server-token-file", "--prometheus-server is not set"}},
		{"empty token", "http://prom", empty, nil, nil, []string{empty, "is empty"}},
		{"missing token", "http://prom", filepath.Join(dir, "gone"), nil, nil, []string{"gone", "no such file"}},
		{"credentials", "", "", map[string]string{"eu": "http://user:pw@eu"}, nil, []string{`--additional-prometheus-server "eu"`, "credentials"}},
		{"empty alias", "", "", map[string]string{"": "http://eu"}, nil, []string{"the alias is empty"}},
		{"empty URL", "", "", map[string]string{"eu": ""}, nil, []string{`"eu="`, "the URL is empty"}},
		{"token for no alias", "", "", map[string]string{"eu": "http://eu"}, map[string]string{"us": tok}, []string{`"us=` + tok + `"`, `no --additional-prometheus-server has the alias "us" (known: [eu])`}},
		{"empty alias token path", "", "", map[string]string{"eu": "http://eu"}, map[string]string{"eu": ""}, []string{"the path is empty"}},
		{"all at once", "http://", "", map[string]string{"a": "b"}, map[string]string{"c": tok}, []string{"no host", `"a"`, `"c=`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseServers(tc.def, tc.defTok, tc.add, tc.addTok)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestServerQueryValue(t *testing.T) {
	prom := newProm(t, answering(success("vector", `[{"metric":{},"value":[1764417600.5,"2.25"]}]`)))
	s, err := NewServer(ServerConfig{URL: prom.URL}, ServerOptions{Clock: clocktesting.NewFakePassiveClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	if s.URL() != prom.URL {
		t.Errorf("URL %q", s.URL())
	}
	v, ts, err := s.WithTimeout(time.Second).QueryValue(context.Background(), "q")
	if err != nil || v != 2.25 || !ts.Equal(time.Unix(1764417600, 5e8)) {
		t.Fatalf("QueryValue = %v, %v, %v", v, ts, err)
	}
	if r := prom.seen()[0]; r.timeout != "1s" {
		t.Errorf("timeout %q, want 1s", r.timeout)
	}
	if _, err := NewServer(ServerConfig{URL: "unix:///x"}, ServerOptions{}); err == nil {
		t.Error("NewServer accepted a unix URL")
	}
}

// TestTokenSymlinkSwap rotates the token the way a Kubernetes secret volume does: the
// file is a symlink into a directory that is replaced by swapping another symlink.
func TestTokenSymlinkSwap(t *testing.T) {
	prom := newProm(t, answering(vector("1")))
	dir := t.TempDir()
	for i, tok := range []string{"one", "two"} {
		sub := filepath.Join(dir, fmt.Sprintf("v%d", i+1))
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		writeToken(t, filepath.Join(sub, "token"), tok, now.Add(time.Duration(i)*time.Hour))
	}
	if err := os.Symlink("v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "token"), filepath.Join(dir, "token")); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerConfig{URL: prom.URL, TokenFile: filepath.Join(dir, "token")}, ServerOptions{Clock: clocktesting.NewFakePassiveClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.QueryValue(context.Background(), "q"); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.QueryValue(context.Background(), "q"); err != nil {
		t.Fatal(err)
	}
	reqs := prom.seen()
	if reqs[0].auth != "Bearer one" || reqs[1].auth != "Bearer two" {
		t.Errorf("Authorization %q then %q, want one then two", reqs[0].auth, reqs[1].auth)
	}
}

func TestMultiLineToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeToken(t, path, "a\nb\n", now)
	if _, err := NewServer(ServerConfig{URL: "http://prom", TokenFile: path}, ServerOptions{}); err == nil || !strings.Contains(err.Error(), "several lines") {
		t.Errorf("error %v, want the line break named", err)
	}
}
