package skipper

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/collector"
	"github.com/custompodautoscaler/cpa/internal/collector/prometheus"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

type fakeQuerier struct {
	v       float64
	ts      time.Time
	err     error
	queries []string
}

func (f *fakeQuerier) QueryValue(_ context.Context, q string) (float64, time.Time, error) {
	f.queries = append(f.queries, q)
	return f.v, f.ts, f.err
}

type fakeObjects struct {
	obj *unstructured.Unstructured
	err error
	got []collector.ObjectRef
}

func (f *fakeObjects) Get(_ context.Context, ref collector.ObjectRef) (*unstructured.Unstructured, error) {
	f.got = append(f.got, ref)
	if f.obj == nil {
		return nil, f.err
	}
	return f.obj.DeepCopy(), f.err
}

type fakeReplicas struct {
	n   int32
	err error
}

func (f fakeReplicas) Replicas(context.Context, collector.ObjectRef) (int32, error) {
	return f.n, f.err
}

var (
	ingressRef    = collector.ObjectRef{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Namespace: "app", Name: "web"}
	routeGroupRef = collector.ObjectRef{APIVersion: "zalando.org/v1", Kind: "RouteGroup", Namespace: "app", Name: "web"}
	deploy        = collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "web"}
)

func ingress(annotations map[string]string, hosts ...any) *unstructured.Unstructured {
	var rules []any
	for _, h := range hosts {
		rules = append(rules, map[string]any{"host": h})
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
		"metadata": map[string]any{"name": "web", "namespace": "app"},
		"spec":     map[string]any{"rules": rules},
	}}
	u.SetAnnotations(annotations)
	return u
}

func routeGroup(hosts []any, defaults ...map[string]any) *unstructured.Unstructured {
	var d []any
	for _, m := range defaults {
		d = append(d, m)
	}
	spec := map[string]any{"hosts": hosts, "backends": []any{map[string]any{"name": "a", "type": "service"}}}
	if d != nil {
		spec["defaultBackends"] = d
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "zalando.org/v1", "kind": "RouteGroup",
		"metadata": map[string]any{"name": "web", "namespace": "app"},
		"spec":     spec,
	}}
}

func cfg(name string, ref collector.ObjectRef, keys map[string]string) collector.Config {
	return collector.Config{Kind: collector.Object, Name: name, Type: Type, Namespace: "app", Keys: keys, Object: ref, ScaleTarget: deploy}
}

const annotation = "zalando.org/backend-weights"

func query(hosts string, weight string) string {
	return `scalar(sum(rate(skipper_serve_host_duration_seconds_count{host=~"` + hosts + `"}[1m])) * ` + weight + `)`
}

func TestCollect(t *testing.T) {
	weights := map[string]string{annotation: `{"blue": 40, "green": 60}`}
	for _, tc := range []struct {
		name      string
		metric    string
		ref       collector.ObjectRef
		keys      map[string]string
		obj       *unstructured.Unstructured
		wantQuery string
	}{
		{"ingress, no weights", "requests-per-second", ingressRef, nil,
			ingress(nil, "example.org", "foo.bar.com"), query(`example_org|foo_bar_com`, "1.0000")},
		{"ingress, duplicate and empty hosts", "requests-per-second", ingressRef, nil,
			ingress(nil, "example.org", "", nil, "example.org"), query(`example_org`, "1.0000")},
		{"ingress, backend by key", "requests-per-second", ingressRef, map[string]string{"backend": "blue"},
			ingress(weights, "example.org"), query(`example_org`, "0.4000")},
		{"ingress, backend by legacy name", "requests-per-second,green", ingressRef, nil,
			ingress(weights, "example.org"), query(`example_org`, "0.6000")},
		{"ingress, key and name agree", "requests-per-second,green", ingressRef, map[string]string{"backend": "green"},
			ingress(weights, "example.org"), query(`example_org`, "0.6000")},
		{"ingress, backend not in the weights", "requests-per-second", ingressRef, map[string]string{"backend": "red"},
			ingress(weights, "example.org"), query(`example_org`, "0.0000")},
		{"ingress, max across annotations", "requests-per-second", ingressRef, map[string]string{"backend": "blue"},
			ingress(map[string]string{annotation: `{"blue": 40}`, "other": `{"blue": 12.5, "x": 0}`}, "example.org"), query(`example_org`, "0.4000")},
		{"ingress, annotation not configured is ignored", "requests-per-second", ingressRef, nil,
			ingress(map[string]string{"unconfigured": `garbage`}, "example.org"), query(`example_org`, "1.0000")},
		{"ingress, extensions/v1beta1", "requests-per-second", collector.ObjectRef{APIVersion: "extensions/v1beta1", Kind: "Ingress", Namespace: "app", Name: "web"}, nil,
			ingress(nil, "example.org"), query(`example_org`, "1.0000")},
		{"ingress, wildcard host", "requests-per-second", ingressRef, nil,
			ingress(nil, "*.example.org"), query(`\\*_example_org`, "1.0000")},
		{"routegroup, no default backends", "requests-per-second", routeGroupRef, nil,
			routeGroup([]any{"a.example.org", "b.example.org"}), query(`a_example_org|b_example_org`, "1.0000")},
		{"routegroup, one default backend", "requests-per-second", routeGroupRef, nil,
			routeGroup([]any{"a.example.org"}, map[string]any{"backendName": "a", "weight": int64(30)}), query(`a_example_org`, "1.0000")},
		{"routegroup, weighted backend", "requests-per-second", routeGroupRef, map[string]string{"backend": "b"},
			routeGroup([]any{"a.example.org"}, map[string]any{"backendName": "a", "weight": int64(30)}, map[string]any{"backendName": "b", "weight": int64(70)}), query(`a_example_org`, "0.7000")},
		{"routegroup, float weight", "requests-per-second,a", routeGroupRef, nil,
			routeGroup([]any{"a.example.org"}, map[string]any{"backendName": "a", "weight": 33.3}, map[string]any{"backendName": "b", "weight": 66.7}), query(`a_example_org`, "0.3330")},
		{"routegroup, backend not a default", "requests-per-second", routeGroupRef, map[string]string{"backend": "c"},
			routeGroup([]any{"a.example.org"}, map[string]any{"backendName": "a", "weight": int64(30)}, map[string]any{"backendName": "b", "weight": int64(70)}), query(`a_example_org`, "0.0000")},
		{"routegroup, backend without weight", "requests-per-second", routeGroupRef, map[string]string{"backend": "a"},
			routeGroup([]any{"a.example.org"}, map[string]any{"backendName": "a"}, map[string]any{"backendName": "b"}), query(`a_example_org`, "0.0000")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQuerier{v: 12.5, ts: now}
			objs := &fakeObjects{obj: tc.obj}
			o := Options{Prometheus: q, Objects: objs, BackendAnnotations: []string{annotation, "other"}, Clock: clocktesting.NewFakePassiveClock(now)}
			c, err := New(cfg(tc.metric, tc.ref, tc.keys), o)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			vals, err := c.Collect(context.Background())
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			want := []collector.Value{{Object: tc.ref, Value: resource.MustParse("12500m"), Timestamp: now}}
			if diff := cmp.Diff(want, vals, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
			if len(q.queries) != 1 || q.queries[0] != tc.wantQuery {
				t.Errorf("queries %q, want %q", q.queries, tc.wantQuery)
			}
			if len(objs.got) != 1 || objs.got[0] != tc.ref {
				t.Errorf("read %v, want %v", objs.got, tc.ref)
			}
		})
	}
}

func TestCollectRereadsTheObject(t *testing.T) {
	q := &fakeQuerier{v: 1, ts: now}
	objs := &fakeObjects{obj: ingress(nil, "a.org")}
	c, err := New(cfg("requests-per-second", ingressRef, map[string]string{"backend": "x"}), Options{Prometheus: q, Objects: objs, BackendAnnotations: []string{annotation}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	objs.obj = ingress(map[string]string{annotation: `{"x": 25}`}, "b.org")
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{query("a_org", "1.0000"), query("b_org", "0.2500")}
	if diff := cmp.Diff(want, q.queries); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}
}

func TestPerReplicaAndTimestamp(t *testing.T) {
	q := &fakeQuerier{v: 30} // no timestamp: the clock's
	o := Options{Prometheus: q, Objects: &fakeObjects{obj: ingress(nil, "a.org")}, Replicas: fakeReplicas{n: 4}, Clock: clocktesting.NewFakePassiveClock(now)}
	c0 := cfg("requests-per-second", ingressRef, nil)
	c0.PerReplica = true
	c, err := New(c0, o)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if vals[0].Value.Cmp(resource.MustParse("7500m")) != 0 || !vals[0].Timestamp.Equal(now) {
		t.Errorf("value %s at %s, want 7500m at %s", &vals[0].Value, vals[0].Timestamp, now)
	}

	for _, r := range []fakeReplicas{{n: 0}, {n: -1}, {err: errors.New("boom")}} {
		o.Replicas = r
		c, err := New(c0, o)
		if err != nil {
			t.Fatal(err)
		}
		if vals, err := c.Collect(context.Background()); err == nil || vals != nil || !strings.Contains(err.Error(), "Deployment app/web") {
			t.Errorf("replicas %+v: Collect = %v, %v; want an error naming the scale target", r, vals, err)
		}
	}
}

func TestCollectErrors(t *testing.T) {
	weights := map[string]string{annotation: `{"blue": 40}`}
	for _, tc := range []struct {
		name   string
		ref    collector.ObjectRef
		keys   map[string]string
		obj    *unstructured.Unstructured
		getErr error
		qErr   error
		qv     float64
		want   string
	}{
		{"get fails", ingressRef, nil, nil, errors.New("forbidden"), nil, 1, "reading Ingress app/web: forbidden"},
		{"nil object", ingressRef, nil, nil, nil, nil, 1, "no object"},
		{"ingress without hosts", ingressRef, nil, ingress(nil), nil, nil, 1, "Ingress app/web: no hosts defined"},
		{"ingress with only empty hosts", ingressRef, nil, ingress(nil, ""), nil, nil, 1, "no hosts defined"},
		{"routegroup without hosts", routeGroupRef, nil, routeGroup(nil), nil, nil, 1, "RouteGroup app/web: no hosts defined"},
		{"host not a string", ingressRef, nil, ingress(nil, int64(3)), nil, nil, 1, "spec.rules[0].host: is int64, not a string"},
		{"routegroup host not a string", routeGroupRef, nil, routeGroup([]any{true}), nil, nil, 1, "spec.hosts[0]: is bool"},
		{"rules not a list", ingressRef, nil, &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"rules": "x"}}}, nil, nil, 1, "spec.rules"},
		{"weights without backend", ingressRef, nil, ingress(weights, "a.org"), nil, nil, 1, "backend name must be specified"},
		{"malformed weights", ingressRef, map[string]string{"backend": "blue"}, ingress(map[string]string{annotation: `{"blue": "40"`}, "a.org"), nil, nil, 1, `annotation ` + annotation + `: "{\"blue\": \"40\"": not a JSON object`},
		{"weights not numbers", ingressRef, map[string]string{"backend": "blue"}, ingress(map[string]string{annotation: `{"blue": "40"}`}, "a.org"), nil, nil, 1, "annotation " + annotation},
		{"weight above 100", ingressRef, map[string]string{"backend": "blue"}, ingress(map[string]string{annotation: `{"blue": 140}`}, "a.org"), nil, nil, 1, `backend "blue": weight 140 is not a percentage`},
		{"negative weight", ingressRef, map[string]string{"backend": "blue"}, ingress(map[string]string{annotation: `{"green": -1}`}, "a.org"), nil, nil, 1, `backend "green": weight -1`},
		{"routegroup weights without backend", routeGroupRef, nil, routeGroup([]any{"a.org"}, map[string]any{"backendName": "a"}, map[string]any{"backendName": "b"}), nil, nil, 1, "backend name must be specified"},
		{"routegroup weight not a number", routeGroupRef, map[string]string{"backend": "a"}, routeGroup([]any{"a.org"}, map[string]any{"backendName": "a", "weight": "50"}, map[string]any{"backendName": "b"}), nil, nil, 1, "spec.defaultBackends[0].weight: is string"},
		{"routegroup negative weight", routeGroupRef, map[string]string{"backend": "a"}, routeGroup([]any{"a.org"}, map[string]any{"backendName": "a", "weight": int64(-5)}, map[string]any{"backendName": "b"}), nil, nil, 1, "-5 is not a weight"},
		{"routegroup default not an object", routeGroupRef, map[string]string{"backend": "a"}, &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"hosts": []any{"a.org"}, "defaultBackends": []any{"x", "y"}}}}, nil, nil, 1, "spec.defaultBackends[0]: is string"},
		{"query fails", ingressRef, nil, ingress(nil, "a.org"), nil, errors.New("no data"), 1, "Ingress app/web: no data"},
		{"value out of range", ingressRef, nil, ingress(nil, "a.org"), nil, nil, 1e17, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Prometheus: &fakeQuerier{v: tc.qv, err: tc.qErr}, Objects: &fakeObjects{obj: tc.obj, err: tc.getErr}, BackendAnnotations: []string{annotation}}
			c, err := New(cfg("requests-per-second", tc.ref, tc.keys), o)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := c.Collect(context.Background())
			if err == nil || vals != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Collect = %v, %v; want an error containing %q", vals, err, tc.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	good := Options{Prometheus: &fakeQuerier{}, Objects: &fakeObjects{}}
	perReplica := cfg("requests-per-second", ingressRef, nil)
	perReplica.PerReplica = true
	noTarget := perReplica
	noTarget.ScaleTarget = collector.ObjectRef{}
	external := cfg("requests-per-second", ingressRef, nil)
	external.Kind = collector.External
	for _, tc := range []struct {
		name string
		cfg  collector.Config
		opts Options
		want []string
	}{
		{"other metric", cfg("latency", ingressRef, nil), good, []string{`metric "latency" is not supported by the skipper collector (want requests-per-second)`}},
		{"prefix only", cfg("requests-per-second-total", ingressRef, nil), good, []string{`metric "requests-per-second-total" is not supported`}},
		{"empty legacy backend", cfg("requests-per-second,", ingressRef, nil), good, []string{"no backend after the comma"}},
		{"key and name disagree", cfg("requests-per-second,a", ingressRef, map[string]string{"backend": "b"}), good, []string{`key "backend": "b": the metric name "requests-per-second,a" names backend "a"`}},
		{"empty key", cfg("requests-per-second", ingressRef, map[string]string{"backend": ""}), good, []string{`key "backend": is empty`}},
		{"other kind", cfg("requests-per-second", collector.ObjectRef{APIVersion: "v1", Kind: "Service", Name: "x"}, nil), good, []string{"Service x: the skipper collector serves Ingress and RouteGroup"}},
		{"wrong group", cfg("requests-per-second", collector.ObjectRef{APIVersion: "example.com/v1", Kind: "Ingress", Name: "x"}, nil), good, []string{`apiVersion "example.com/v1": want the group networking.k8s.io or extensions`}},
		{"no name", cfg("requests-per-second", collector.ObjectRef{APIVersion: "zalando.org/v1", Kind: "RouteGroup"}, nil), good, []string{"no name"}},
		{"not Object", external, good, []string{`not "External"`}},
		{"no querier or getter", cfg("requests-per-second", ingressRef, nil), Options{}, []string{"no Prometheus server", "no way to read Ingresses"}},
		{"per-replica without replicas", perReplica, good, []string{"per-replica: this collector has no way to read replicas"}},
		{"per-replica without target", noTarget, Options{Prometheus: &fakeQuerier{}, Objects: &fakeObjects{}, Replicas: fakeReplicas{n: 1}}, []string{"no scale target"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg, tc.opts)
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

// TestQueryQuoting: whatever a host holds, the query has exactly one string literal
// after host=~, and its regexp matches that host (dots as underscores) and nothing else.
func TestQueryQuoting(t *testing.T) {
	literal := regexp.MustCompile(`^scalar\(sum\(rate\(skipper_serve_host_duration_seconds_count\{host=~(.*)\}\[1m\]\)\) \* 0\.5000\)$`)
	for _, hosts := range [][]string{
		{"example.org"},
		{`evil"}[1m])) or vector(1e9) #`},
		{`back\slash`, `quote"`, "new\nline", "tab\t", "nul\x00"},
		{"*.example.org", "a+b.org", "(x|y)", "[abc]", "^$", "héllo.org", "\xff\xfe"},
		{`\"`, `\\"`, `"\`},
	} {
		q := Query(hosts, 0.5)
		m := literal.FindStringSubmatch(q)
		if m == nil {
			t.Fatalf("hosts %q: query %q has not the expected shape", hosts, q)
		}
		s, err := strconv.Unquote(m[1])
		if err != nil {
			t.Fatalf("hosts %q: %s is not one string literal: %v", hosts, m[1], err)
		}
		re, err := regexp.Compile("^(?:" + s + ")$")
		if err != nil {
			t.Fatalf("hosts %q: regexp %q: %v", hosts, s, err)
		}
		for _, h := range hosts {
			if !re.MatchString(strings.ReplaceAll(strings.ToValidUTF8(h, "\uFFFD"), ".", "_")) {
				t.Errorf("hosts %q: regexp %q does not match %q", hosts, s, h)
			}
		}
		if re.MatchString("other_host") {
			t.Errorf("hosts %q: regexp %q matches another host", hosts, s)
		}
	}
}

// FuzzQuery: no host list can break out of the string literal.
func FuzzQuery(f *testing.F) {
	f.Add("example.org", `a"b`)
	f.Add(`\`, "}")
	f.Fuzz(func(t *testing.T, a, b string) {
		q := Query([]string{a, b}, 1)
		const pre, post = `scalar(sum(rate(skipper_serve_host_duration_seconds_count{host=~`, `}[1m])) * 1.0000)`
		if !strings.HasPrefix(q, pre) || !strings.HasSuffix(q, post) {
			t.Fatalf("query %q", q)
		}
		s, err := strconv.Unquote(q[len(pre) : len(q)-len(post)])
		if err != nil {
			t.Fatalf("query %q: not one literal: %v", q, err)
		}
		if _, err := regexp.Compile(s); err != nil {
			t.Fatalf("query %q: regexp %q: %v", q, s, err)
		}
	})
}

// TestThroughPrometheus runs a collection against a fake Prometheus HTTP API through a
// prometheus.Server.
func TestThroughPrometheus(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		got = append(got, r.Form.Get("query"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"scalar","result":[%d,"42.5"]}}`, now.Unix())
	}))
	t.Cleanup(srv.Close)
	server, err := prometheus.NewServer(prometheus.ServerConfig{URL: srv.URL}, prometheus.ServerOptions{Clock: clocktesting.NewFakePassiveClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	f := Factory(Options{Prometheus: server, Objects: &fakeObjects{obj: ingress(map[string]string{annotation: `{"blue": 50}`}, "shop.example.org")}, BackendAnnotations: []string{annotation}})
	c, err := f(cfg("requests-per-second,blue", ingressRef, nil))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []collector.Value{{Object: ingressRef, Value: resource.MustParse("42500m"), Timestamp: now}}
	if diff := cmp.Diff(want, vals, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if w := query("shop_example_org", "0.5000"); len(got) != 1 || got[0] != w {
		t.Errorf("queries %q, want %q", got, w)
	}
}

func TestNamespaceDefaultsToTheMetrics(t *testing.T) {
	objs := &fakeObjects{obj: ingress(nil, "a.org")}
	ref := ingressRef
	ref.Namespace = ""
	c, err := New(cfg("requests-per-second", ref, nil), Options{Prometheus: &fakeQuerier{v: 1, ts: now}, Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if objs.got[0] != ingressRef || vals[0].Object != ref {
		t.Errorf("read %v and valued %v, want %v read and %v valued", objs.got[0], vals[0].Object, ingressRef, ref)
	}
}
