package httpjson

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/collector"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func serve(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			t.Errorf("method %s, want GET", r.Method)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func cfg(keys map[string]string) collector.Config {
	return collector.Config{
		Kind: collector.External, Name: "queue-depth", Type: Type, Namespace: "app",
		Keys:   keys,
		Labels: map[string]string{"type": "json-path", "queue": "orders"},
	}
}

func opts(srv *httptest.Server) Options {
	o := Options{Clock: clocktesting.NewFakePassiveClock(now)}
	if srv != nil {
		o.Client = srv.Client()
	}
	return o
}

func collect(t *testing.T, srv *httptest.Server, keys map[string]string) ([]collector.Value, error) {
	t.Helper()
	keys["endpoint"] = srv.URL + "/metrics"
	c, err := New(cfg(keys), opts(srv))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c.Collect(context.Background())
}

func TestCollect(t *testing.T) {
	doc := `{"some-metric":{"value":12.5},"items":[{"v":1},{"v":2},{"v":6}],"arr":[3,-1.5,4],
		"big":1e3,"neg":-2,"tiny":0.0004,"a.b":{"c":7},"empty":[]}`
	for _, tc := range []struct {
		name string
		keys map[string]string
		want string
	}{
		{"json-key", map[string]string{"json-key": "$.some-metric.value"}, "12500m"},
		{"json-key bracket notation", map[string]string{"json-key": "$['a.b'].c"}, "7"},
		{"exponent", map[string]string{"json-key": "$.big"}, "1k"},
		{"negative", map[string]string{"json-key": "$.neg"}, "-2"},
		{"below milli truncates", map[string]string{"json-key": "$.tiny"}, "0"},
		{"one-element match with aggregator", map[string]string{"json-key": "$.some-metric.value", "aggregator": "sum"}, "12500m"},
		{"avg over matches", map[string]string{"json-key": "$.items[*].v", "aggregator": "avg"}, "3"},
		{"min over matches", map[string]string{"json-key": "$.items[*].v", "aggregator": "min"}, "1"},
		{"max over matches", map[string]string{"json-key": "$.items[*].v", "aggregator": "max"}, "6"},
		{"sum over matches", map[string]string{"json-key": "$.items[*].v", "aggregator": "sum"}, "9"},
		{"avg over an array", map[string]string{"json-key": "$.arr", "aggregator": "avg"}, "1833m"},
		{"min over an array", map[string]string{"json-key": "$.arr", "aggregator": "min"}, "-1500m"},
		{"max over an array", map[string]string{"json-key": "$.arr", "aggregator": "max"}, "4"},
		{"sum over an array", map[string]string{"json-key": "$.arr", "aggregator": "sum"}, "5500m"},
		{"json-eval", map[string]string{"json-eval": "avg($.items[*].v) * 2"}, "6"},
		{"json-eval array with aggregator", map[string]string{"json-eval": "$.arr", "aggregator": "max"}, "4"},
		// ajson's own functions define their results on empty input: avg of no values is 0
		// (documented in the package doc; json-key with an aggregator errors instead).
		{"json-eval avg of an empty array", map[string]string{"json-eval": "avg($.empty)"}, "0"},
		{"request-timeout and unrelated keys", map[string]string{"json-key": "$.neg", "request-timeout": "3s", "type": "json-path", "interval": "30s"}, "-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, http.StatusOK, doc)
			vals, err := collect(t, srv, tc.keys)
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			want := []collector.Value{{
				Labels:    map[string]string{"type": "json-path", "queue": "orders"},
				Value:     resource.MustParse(tc.want),
				Timestamp: now,
			}}
			if diff := cmp.Diff(want, vals, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCollectErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		keys       map[string]string
		want       []string
	}{
		{"500 with a body", `{"error":"backend down"}`, 500, map[string]string{"json-key": "$.x"}, []string{"500 Internal Server Error", `backend down`}},
		{"404", `nope`, 404, map[string]string{"json-key": "$.x"}, []string{"404", `"nope"`}},
		{"malformed JSON", `{"x": 1`, 200, map[string]string{"json-key": "$.x"}, []string{"malformed JSON"}},
		{"empty body", ``, 200, map[string]string{"json-key": "$.x"}, []string{"malformed JSON"}},
		{"missing path", `{"y": 1}`, 200, map[string]string{"json-key": "$.x"}, []string{`"$.x" matched nothing`}},
		{"empty array", `{"x": []}`, 200, map[string]string{"json-key": "$.x", "aggregator": "sum"}, []string{"empty array"}},
		{"no matches of a wildcard", `{"x": []}`, 200, map[string]string{"json-key": "$.x[*]", "aggregator": "sum"}, []string{"matched nothing"}},
		{"string", `{"x": "12"}`, 200, map[string]string{"json-key": "$.x"}, []string{"a string, not a number"}},
		{"null", `{"x": null}`, 200, map[string]string{"json-key": "$.x"}, []string{"null, not a number"}},
		{"bool", `{"x": true}`, 200, map[string]string{"json-key": "$.x"}, []string{"a boolean"}},
		{"object", `{"x": {"y": 1}}`, 200, map[string]string{"json-key": "$.x"}, []string{"an object"}},
		{"string in an array", `{"x": [1, "2"]}`, 200, map[string]string{"json-key": "$.x", "aggregator": "max"}, []string{"value 1 is a string"}},
		{"array without aggregator", `{"x": [1, 2]}`, 200, map[string]string{"json-key": "$.x"}, []string{"array of 2 values", "no aggregator"}},
		{"matches without aggregator", `{"x": [{"v":1},{"v":2}]}`, 200, map[string]string{"json-key": "$.x[*].v"}, []string{"matched 2 values", "no aggregator"}},
		{"NaN from eval", `{"x": -1}`, 200, map[string]string{"json-eval": "sqrt($.x)"}, []string{"NaN, not a finite number"}},
		{"-Inf from eval", `{"x": 0}`, 200, map[string]string{"json-eval": "log($.x)"}, []string{"-Inf, not a finite number"}},
		// ajson v0.9.6 panics on an integer modulo by zero; the panic becomes an error.
		{"modulo by zero in eval (a library panic)", `{"x": 0}`, 200, map[string]string{"json-eval": "7 % $.x"}, []string{"evaluating the JSON path failed"}},
		{"division by zero in eval", `{"x": 0}`, 200, map[string]string{"json-eval": "1 / $.x"}, []string{"division by zero"}},
		{"eval of a missing field", `{"y": 1}`, 200, map[string]string{"json-eval": "$.x"}, []string{"null, not a number"}},
		{"eval sum of a missing field", `{"y": 1}`, 200, map[string]string{"json-eval": "$.x + 1"}, nil},
		{"Inf from sum", `{"x": [1e308, 1e308]}`, 200, map[string]string{"json-key": "$.x", "aggregator": "sum"}, []string{"+Inf", "not a finite number"}},
		{"out of quantity range", `{"x": 1e17}`, 200, map[string]string{"json-key": "$.x"}, []string{"out of range"}},
		{"eval yields a string", `{"x": "a"}`, 200, map[string]string{"json-eval": "$.x"}, []string{"a string"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, tc.status, tc.body)
			vals, err := collect(t, srv, tc.keys)
			if err == nil {
				t.Fatalf("Collect = %v, want an error", vals)
			}
			if vals != nil {
				t.Errorf("values %v alongside the error", vals)
			}
			for _, w := range append(tc.want, srv.URL) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestErrorBodyExcerptIsClipped(t *testing.T) {
	srv := serve(t, 503, strings.Repeat("x", 10_000))
	_, err := collect(t, srv, map[string]string{"json-key": "$.x"})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "bytes in all") {
		t.Fatalf("error %v, want a 503 with a clipped excerpt", err)
	}
	if len(err.Error()) > 1000 {
		t.Errorf("error is %d bytes long", len(err.Error()))
	}
}

func TestOversizedBody(t *testing.T) {
	srv := serve(t, 200, `{"x": 1, "pad": "`+strings.Repeat("a", 200)+`"}`)
	o := opts(srv)
	o.MaxBodyBytes = 100
	c, err := New(cfg(map[string]string{"endpoint": srv.URL, "json-key": "$.x"}), o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than the 100 bytes allowed") {
		t.Fatalf("error %v, want the body cap named", err)
	}

	// The default cap is 1 MiB.
	srv = serve(t, 200, `{"x": 1, "pad": "`+strings.Repeat("a", DefaultMaxBodyBytes)+`"}`)
	_, err = collect(t, srv, map[string]string{"json-key": "$.x"})
	if err == nil || !strings.Contains(err.Error(), "larger than the 1048576 bytes allowed") {
		t.Fatalf("error %v, want the default body cap named", err)
	}
}

// blocking answers only when the request's context ends; it says when a request started
// and when its context ended.
func blocking(t *testing.T) (srv *httptest.Server, started, ended <-chan struct{}) {
	t.Helper()
	s, e := make(chan struct{}, 1), make(chan struct{}, 1)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s <- struct{}{}
		<-r.Context().Done()
		e <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return srv, s, e
}

func TestCancellation(t *testing.T) {
	srv, started, ended := blocking(t)
	c, err := New(cfg(map[string]string{"endpoint": srv.URL, "json-key": "$.x"}), opts(srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Collect(ctx)
		done <- err
	}()
	<-started
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "within") {
		t.Fatalf("error %v, want context.Canceled, not a timeout", err)
	}
	<-ended // the server saw the request end
}

func TestCancelledBeforehand(t *testing.T) {
	srv := serve(t, 200, `{"x": 1}`)
	c, err := New(cfg(map[string]string{"endpoint": srv.URL, "json-key": "$.x"}), opts(srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Collect(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestRequestTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys map[string]string
		opt  time.Duration
		want string
	}{
		{"from the key", map[string]string{"request-timeout": "1ms"}, 0, "within 1ms"},
		{"from the options", map[string]string{}, time.Millisecond, "within 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _, ended := blocking(t)
			tc.keys["endpoint"] = srv.URL
			tc.keys["json-key"] = "$.x"
			o := opts(srv)
			o.RequestTimeout = tc.opt
			c, err := New(cfg(tc.keys), o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Collect(context.Background())
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a deadline error saying %q", err, tc.want)
			}
			<-ended // the server saw the request end
		})
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys map[string]string
		kind collector.Kind
		want []string
	}{
		{"nothing", map[string]string{}, "", []string{`key "endpoint": is required`, `keys "json-key" or "json-eval": one is required`}},
		{"both paths", map[string]string{"endpoint": "http://x", "json-key": "$.a", "json-eval": "$.a"}, "", []string{"exactly one, not both"}},
		{"ftp endpoint", map[string]string{"endpoint": "ftp://x/m", "json-key": "$.a"}, "", []string{`key "endpoint": "ftp://x/m": the scheme must be http or https`}},
		{"relative endpoint", map[string]string{"endpoint": "/metrics", "json-key": "$.a"}, "", []string{`key "endpoint": "/metrics"`}},
		{"no host", map[string]string{"endpoint": "http:///m", "json-key": "$.a"}, "", []string{`key "endpoint": "http:///m": no host`}},
		{"unparsable endpoint", map[string]string{"endpoint": "http://x y:%zz", "json-key": "$.a"}, "", []string{`key "endpoint"`, "not a URL"}},
		{"credentials", map[string]string{"endpoint": "http://u:p@x/m", "json-key": "$.a"}, "", []string{`key "endpoint"`, "credentials"}},
		{"blank endpoint", map[string]string{"endpoint": " ", "json-key": "$.a"}, "", []string{`key "endpoint": is required`}},
		{"bad JSONPath", map[string]string{"endpoint": "http://x", "json-key": "$.a["}, "", []string{`key "json-key": "$.a["`, "invalid JSONPath"}},
		{"JSONPath without root", map[string]string{"endpoint": "http://x", "json-key": "a.b"}, "", []string{`key "json-key": "a.b"`}},
		{"empty JSONPath", map[string]string{"endpoint": "http://x", "json-key": ""}, "", []string{`key "json-key": ""`, "empty"}},
		{"bad eval", map[string]string{"endpoint": "http://x", "json-eval": "avg($.a"}, "", []string{`key "json-eval": "avg($.a"`, "invalid expression"}},
		{"empty eval", map[string]string{"endpoint": "http://x", "json-eval": ""}, "", []string{`key "json-eval": ""`}},
		{"aggregator", map[string]string{"endpoint": "http://x", "json-key": "$.a", "aggregator": "median"}, "", []string{`key "aggregator": "median": unknown aggregator`}},
		{"request-timeout not a duration", map[string]string{"endpoint": "http://x", "json-key": "$.a", "request-timeout": "soon"}, "", []string{`key "request-timeout": "soon": not a duration`}},
		{"request-timeout negative", map[string]string{"endpoint": "http://x", "json-key": "$.a", "request-timeout": "-1s"}, "", []string{`key "request-timeout": "-1s": must be positive`}},
		{"all at once", map[string]string{"endpoint": "gopher://x", "json-key": "$[", "aggregator": "mean", "request-timeout": "0s"}, "", []string{`"endpoint"`, `"json-key"`, `"aggregator"`, `"request-timeout"`}},
		{"pods kind", map[string]string{"endpoint": "http://x", "json-key": "$.a"}, collector.Pods, []string{"External metrics, not Pods"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cf := cfg(tc.keys)
			if tc.kind != "" {
				cf.Kind = tc.kind
			}
			c, err := New(cf, Options{})
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
}

func TestFactoryAndRegistry(t *testing.T) {
	srv := serve(t, 200, `{"x": 42}`)
	reg := collector.NewRegistry()
	reg.Register(collector.External, Type, Factory(opts(srv)))
	c, err := reg.New(cfg(map[string]string{"endpoint": srv.URL, "json-key": "$.x"}))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := c.Collect(context.Background())
	if err != nil || len(vals) != 1 || vals[0].Value.MilliValue() != 42000 {
		t.Fatalf("Collect = %v, %v; want one value of 42", vals, err)
	}
	_, err = reg.New(cfg(map[string]string{"json-key": "$.x"}))
	if err == nil || !strings.Contains(err.Error(), `key "endpoint"`) {
		t.Fatalf("error %v, want the missing endpoint named", err)
	}
}

func TestLabelsAreCopied(t *testing.T) {
	srv := serve(t, 200, `{"x": 1}`)
	cf := cfg(map[string]string{"endpoint": srv.URL, "json-key": "$.x"})
	c, err := New(cf, opts(srv))
	if err != nil {
		t.Fatal(err)
	}
	cf.Labels["queue"] = "changed"
	vals, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	vals[0].Labels["queue"] = "mutated"
	vals, err = c.Collect(context.Background())
	if err != nil || vals[0].Labels["queue"] != "orders" {
		t.Fatalf("labels %v, %v; want queue=orders", vals, err)
	}
}

func TestDefaultOptions(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Client == nil || o.RequestTimeout != DefaultRequestTimeout || o.MaxBodyBytes != DefaultMaxBodyBytes || o.Clock == nil {
		t.Fatalf("defaults %+v", o)
	}
}

func TestFactoryCollectorsShareOneClient(t *testing.T) {
	f := Factory(Options{})
	a, err := f(cfg(map[string]string{KeyEndpoint: "http://a/", KeyJSONKey: "$.v"}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f(cfg(map[string]string{KeyEndpoint: "http://b/", KeyJSONKey: "$.v"}))
	if err != nil {
		t.Fatal(err)
	}
	if a.(*Collector).opts.Client != b.(*Collector).opts.Client {
		t.Error("two collectors of one Factory have clients of their own")
	}
}
