package podjson

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/collector"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

var target = collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}

// cluster fakes the Kubernetes side: the scale target's selector and the pods.
type cluster struct {
	mu        sync.Mutex
	selector  string
	selectErr error
	listErr   error
	pods      []corev1.Pod
	resolved  int
}

func (c *cluster) Selector(_ context.Context, ref collector.ObjectRef) (labels.Selector, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resolved++
	if ref != (collector.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "web"}) {
		return nil, fmt.Errorf("unexpected scale target %+v", ref)
	}
	if c.selectErr != nil {
		return nil, c.selectErr
	}
	return labels.Parse(c.selector)
}

func (c *cluster) List(_ context.Context, namespace string, sel labels.Selector) ([]corev1.Pod, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listErr != nil {
		return nil, c.listErr
	}
	var out []corev1.Pod
	for _, p := range c.pods {
		if p.Namespace == namespace && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, *p.DeepCopy())
		}
	}
	return out, nil
}

type podOpt func(*corev1.Pod)

func readySince(t time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t)}}
	}
}

func notReady(p *corev1.Pod) {
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
}

func noConditions(p *corev1.Pod) { p.Status.Conditions = nil }

func terminating(p *corev1.Pod) {
	ts := metav1.NewTime(now)
	p.DeletionTimestamp = &ts
}

func labelled(k, v string) podOpt { return func(p *corev1.Pod) { p.Labels[k] = v } }

func mkpod(name, ip string, opts ...podOpt) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app", Labels: map[string]string{"app": "web"}},
		Status:     corev1.PodStatus{PodIP: ip},
	}
	readySince(now.Add(-time.Hour))(&p)
	for _, o := range opts {
		o(&p)
	}
	return p
}

// pods is a fake pod network: every pod address is dialled to one httptest server, which
// tells the pods apart by the Host header.
type pods struct {
	srv     *httptest.Server
	handler atomic.Pointer[http.HandlerFunc]
	mu      sync.Mutex
	dialled []string
	refuse  map[string]bool // addresses whose dial fails
	dials   atomic.Int64
}

func newPods(t testing.TB, h http.HandlerFunc) *pods {
	t.Helper()
	p := &pods{refuse: map[string]bool{}}
	p.handler.Store(&h)
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*p.handler.Load())(w, r)
	}))
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pods) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	p.mu.Lock()
	p.dialled = append(p.dialled, addr)
	refused := p.refuse[addr]
	p.mu.Unlock()
	if refused {
		return nil, fmt.Errorf("dial %s %s: connection refused", network, addr)
	}
	p.dials.Add(1)
	return (&net.Dialer{}).DialContext(ctx, network, p.srv.Listener.Addr().String())
}

// byHost answers each pod's JSON from a table keyed by pod IP.
func byHost(t testing.TB, answers map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			t.Errorf("Host %q: %v", r.Host, err)
		}
		a, ok := answers[host]
		if !ok {
			t.Errorf("unexpected request to %s", r.Host)
			http.NotFound(w, r)
			return
		}
		if status, body, ok := strings.Cut(a, " "); ok && len(status) == 3 && status[0] >= '1' && status[0] <= '5' {
			var code int
			fmt.Sscanf(status, "%d", &code)
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(a))
	}
}

func config(keys map[string]string) collector.Config {
	all := map[string]string{"json-key": "$.rps", "path": "/metrics", "port": "9090"}
	for k, v := range keys {
		if v == "-" {
			delete(all, k)
			continue
		}
		all[k] = v
	}
	return collector.Config{
		Kind: collector.Pods, Name: "requests-per-second", Type: Type, Namespace: "app",
		Keys: all, ScaleTarget: target,
	}
}

func options(cl *cluster, p *pods, clk *clocktesting.FakeClock) Options {
	o := Options{Selectors: cl, Pods: cl, Clock: clk}
	if p != nil {
		o.DialContext = p.dial
	}
	return o
}

func newCollector(t testing.TB, cfg collector.Config, o Options) *Collector {
	t.Helper()
	c, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.(*Collector).Close() })
	return c.(*Collector)
}

var quantities = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

func podValue(name, q string, at time.Time) collector.Value {
	return collector.Value{
		Object:    collector.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "app", Name: name},
		Value:     resource.MustParse(q),
		Timestamp: at,
	}
}

func TestCollect(t *testing.T) {
	var seen sync.Map
	answers := byHost(t, map[string]string{"10.0.0.1": `{"rps": 1.5}`, "10.0.0.2": `{"rps": 20}`, "10.0.0.3": `{"rps": 0}`})
	p := newPods(t, func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Host, r.URL.String()+" "+r.Header.Get("Accept"))
		answers(w, r)
	})
	clk := clocktesting.NewFakeClock(now)
	cl := &cluster{selector: "app=web", pods: []corev1.Pod{
		mkpod("web-c", "10.0.0.3"),
		mkpod("web-a", "10.0.0.1"),
		mkpod("web-b", "10.0.0.2", readySince(now.Add(-30*time.Second))), // exactly the min age
		mkpod("web-young", "10.0.0.9", readySince(now.Add(-29*time.Second))),
		mkpod("web-not-ready", "10.0.0.10", notReady),
		mkpod("web-pending", "", noConditions),
		mkpod("web-terminating", "10.0.0.11", terminating),
		mkpod("other", "10.0.0.12", labelled("app", "other")),
	}}
	cfg := config(map[string]string{"raw-query": "foo=bar&baz=bop"})
	cfg.MinPodReadyAge = 30 * time.Second
	c := newCollector(t, cfg, options(cl, p, clk))
	vals, err := c.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	want := []collector.Value{podValue("web-a", "1500m", now), podValue("web-b", "20", now), podValue("web-c", "0", now)}
	if diff := cmp.Diff(want, vals, quantities); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		got, _ := seen.Load(ip + ":9090")
		if got != "/metrics?foo=bar&baz=bop application/json" {
			t.Errorf("pod %s was asked %v, want /metrics?foo=bar&baz=bop with Accept: application/json", ip, got)
		}
	}
}

func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keys   map[string]string
		body   string
		want   string
		reqURI string
	}{
		{"json-eval", map[string]string{"json-key": "-", "json-eval": "$.a + $.b"}, `{"a": 1, "b": 2}`, "3", "/metrics"},
		{"aggregator over an array", map[string]string{"json-key": "$.xs", "aggregator": "max"}, `{"xs": [1, 7, 3]}`, "7", "/metrics"},
		{"aggregator avg", map[string]string{"json-key": "$.xs[*].v", "aggregator": "avg"}, `{"xs": [{"v": 1}, {"v": 2}]}`, "1500m", "/metrics"},
		{"path with escapes", map[string]string{"path": "/a%20b/c%2Fd"}, `{"rps": 4}`, "4", "/a%20b/c%2Fd"},
		{"path with a space", map[string]string{"path": "/a b"}, `{"rps": 4}`, "4", "/a%20b"},
		{"port with leading zero", map[string]string{"port": "09090"}, `{"rps": 4}`, "4", "/metrics"},
		{"explicit http and timeouts", map[string]string{"scheme": "http", "request-timeout": "2s", "connect-timeout": "500ms"}, `{"rps": 4}`, "4", "/metrics"},
		{"unknown keys ignored", map[string]string{"interval": "30s", "whatever": "x"}, `{"rps": 4}`, "4", "/metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var uri, dialled atomic.Value
			p := newPods(t, func(w http.ResponseWriter, r *http.Request) {
				uri.Store(r.RequestURI)
				_, _ = w.Write([]byte(tc.body))
			})
			cl := &cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "10.0.0.1")}}
			o := options(cl, p, clocktesting.NewFakeClock(now))
			dial := o.DialContext
			o.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialled.Store(addr)
				return dial(ctx, network, addr)
			}
			vals, err := newCollector(t, config(tc.keys), o).Collect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]collector.Value{podValue("web-1", tc.want, now)}, vals, quantities); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
			if uri.Load() != tc.reqURI {
				t.Errorf("request URI %v, want %s", uri.Load(), tc.reqURI)
			}
			if dialled.Load() != "10.0.0.1:9090" {
				t.Errorf("dialled %v, want 10.0.0.1:9090", dialled.Load())
			}
		})
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"rps": 2}`))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	cl := &cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "10.0.0.1")}}
	o := options(cl, nil, clocktesting.NewFakeClock(now))
	o.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	// httptest's certificate names example.com, not the pod IP.
	o.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: "example.com"}
	vals, err := newCollector(t, config(map[string]string{"scheme": "https"}), o).Collect(context.Background())
	if err != nil || len(vals) != 1 || vals[0].Value.MilliValue() != 2000 {
		t.Fatalf("Collect = %v, %v; want 2 from web-1 over https", vals, err)
	}

	// Without the root the certificate is refused.
	o.TLSClientConfig = nil
	_, err = newCollector(t, config(map[string]string{"scheme": "https"}), o).Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "https://10.0.0.1:9090/metrics") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("error %v, want a certificate error naming the URL", err)
	}
}

func TestIPv6(t *testing.T) {
	var host atomic.Value
	p := newPods(t, func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		_, _ = w.Write([]byte(`{"rps": 5}`))
	})
	cl := &cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "fd00::1")}}
	vals, err := newCollector(t, config(nil), options(cl, p, clocktesting.NewFakeClock(now))).Collect(context.Background())
	if err != nil || len(vals) != 1 {
		t.Fatalf("Collect = %v, %v", vals, err)
	}
	if host.Load() != "[fd00::1]:9090" || p.dialled[0] != "[fd00::1]:9090" {
		t.Errorf("Host %v, dialled %v; want [fd00::1]:9090", host.Load(), p.dialled)
	}
}

func TestPartialFailure(t *testing.T) {
	p := newPods(t, byHost(t, map[string]string{
		"10.0.0.1": `{"rps": 3}`,
		"10.0.0.2": `500 {"error": "overloaded"}`,
		"10.0.0.3": `{"rps": `,
		"10.0.0.4": `{"other": 1}`,
		"10.0.0.5": `{"rps": 4}`,
		"10.0.0.7": `{"rps": 1, "pad": "` + strings.Repeat("x", 200) + `"}`,
		"10.0.0.8": `302 `,
		"10.0.0.9": `{"rps": 1e17}`,
	}))
	p.refuse["10.0.0.6:9090"] = true
	cl := &cluster{selector: "app=web", pods: []corev1.Pod{
		mkpod("a-ok", "10.0.0.1"),
		mkpod("b-500", "10.0.0.2"),
		mkpod("c-malformed", "10.0.0.3"),
		mkpod("d-missing", "10.0.0.4"),
		mkpod("e-ok", "10.0.0.5"),
		mkpod("f-refused", "10.0.0.6"),
		mkpod("g-big", "10.0.0.7"),
		mkpod("h-redirect", "10.0.0.8"),
		mkpod("i-no-ip", "", readySince(now.Add(-time.Hour))),
		mkpod("j-bad-ip", "not-an-ip"),
		mkpod("k-huge", "10.0.0.9"),
	}}
	o := options(cl, p, clocktesting.NewFakeClock(now))
	o.MaxBodyBytes = 100
	vals, err := newCollector(t, config(nil), o).Collect(context.Background())
	if diff := cmp.Diff([]collector.Value{podValue("a-ok", "3", now), podValue("e-ok", "4", now)}, vals, quantities); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	var pe *PodsError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v, want a *PodsError", err)
	}
	if pe.Asked != 11 || len(pe.Failed) != 9 {
		t.Fatalf("asked %d, failed %d; want 11 and 9", pe.Asked, len(pe.Failed))
	}
	wantReasons := map[string]string{
		"b-500":       `GET http://10.0.0.2:9090/metrics: 500 Internal Server Error: "{\"error\": \"overloaded\"}"`,
		"c-malformed": "malformed JSON",
		"d-missing":   `"$.rps" matched nothing`,
		"f-refused":   "connection refused",
		"g-big":       "larger than the 100 bytes allowed",
		"h-redirect":  "302 Found",
		"i-no-ip":     "no IP",
		"j-bad-ip":    `"not-an-ip" is not an IP address`,
		"k-huge":      "the value 1e+17 is out of range",
	}
	for _, f := range pe.Failed {
		if w := wantReasons[f.Pod]; w == "" || !strings.Contains(f.Err.Error(), w) {
			t.Errorf("pod %s: %v, want %q", f.Pod, f.Err, w)
		}
	}
	msg := err.Error()
	for _, w := range []string{"9 of 11 pods gave no value", "pod b-500: GET", "pod c-malformed:", "pod d-missing:", "and 6 more"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	if strings.Contains(msg, "f-refused") {
		t.Errorf("error %q names more than %d pods", msg, maxNamedPods)
	}
}

func TestPodsErrorIsBounded(t *testing.T) {
	long := errors.New(strings.Repeat("é", 10_000))
	e := &PodsError{Asked: 1000}
	for i := range 1000 {
		e.Failed = append(e.Failed, PodError{Pod: fmt.Sprintf("pod-%04d", i), Err: long})
	}
	if n := len(e.Error()); n > 1500 {
		t.Errorf("error is %d bytes long", n)
	}
	if !strings.Contains(e.Error(), "and 997 more") {
		t.Errorf("error %q does not count the rest", e.Error())
	}
	if !errors.Is(e, long) {
		t.Error("the pods' errors must be reachable with errors.Is")
	}
}

func TestAllPodsFail(t *testing.T) {
	p := newPods(t, byHost(t, map[string]string{"10.0.0.1": `503 down`}))
	cl := &cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "10.0.0.1")}}
	vals, err := newCollector(t, config(nil), options(cl, p, clocktesting.NewFakeClock(now))).Collect(context.Background())
	var pe *PodsError
	if vals != nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), "503 Service Unavailable") {
		t.Fatalf("Collect = %v, %v; want no values and the 503", vals, err)
	}
}

func TestNoPodToAsk(t *testing.T) {
	for _, tc := range []struct {
		name string
		pods []corev1.Pod
		want string
	}{
		{"no pod", nil, `no pod in namespace "app" matches the selector "app=web"`},
		{"none ready", []corev1.Pod{
			mkpod("a", "10.0.0.1", notReady), mkpod("b", "10.0.0.2", noConditions),
			mkpod("c", "10.0.0.3", terminating), mkpod("d", "10.0.0.4", readySince(now.Add(-time.Second))),
		}, `no ready pod to ask among the 4 pods in namespace "app" matching "app=web": 2 not Ready, 1 terminating, 1 Ready for less than the min-pod-ready-age`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := &cluster{selector: "app=web", pods: tc.pods}
			cfg := config(nil)
			cfg.MinPodReadyAge = time.Minute
			vals, err := newCollector(t, cfg, options(cl, nil, clocktesting.NewFakeClock(now))).Collect(context.Background())
			if vals != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Collect = %v, %v; want %q", vals, err, tc.want)
			}
		})
	}
}

func TestMinPodReadyAge(t *testing.T) {
	p := newPods(t, byHost(t, map[string]string{"10.0.0.1": `{"rps": 1}`, "10.0.0.2": `{"rps": 2}`}))
	clk := clocktesting.NewFakeClock(now)
	cl := &cluster{selector: "app=web", pods: []corev1.Pod{
		mkpod("old", "10.0.0.1", readySince(now.Add(-time.Minute))),
		mkpod("new", "10.0.0.2", readySince(now.Add(-10*time.Second))),
	}}
	cfg := config(nil)
	cfg.MinPodReadyAge = 30 * time.Second
	c := newCollector(t, cfg, options(cl, p, clk))
	vals, err := c.Collect(context.Background())
	if err != nil || len(vals) != 1 || vals[0].Object.Name != "old" {
		t.Fatalf("Collect = %v, %v; want only the pod Ready for a minute", vals, err)
	}
	clk.Step(19 * time.Second)
	if vals, err = c.Collect(context.Background()); err != nil || len(vals) != 1 {
		t.Fatalf("after 29s: Collect = %v, %v; want still one pod", vals, err)
	}
	clk.Step(time.Second)
	vals, err = c.Collect(context.Background())
	if err != nil || len(vals) != 2 || !vals[0].Timestamp.Equal(now.Add(20*time.Second)) {
		t.Fatalf("after 30s: Collect = %v, %v; want both pods stamped by the clock", vals, err)
	}
}

func TestSelectorResolvedEveryCollection(t *testing.T) {
	p := newPods(t, byHost(t, map[string]string{"10.0.0.1": `{"rps": 1}`, "10.0.0.2": `{"rps": 2}`}))
	cl := &cluster{selector: "app=web,track=stable", pods: []corev1.Pod{
		mkpod("stable", "10.0.0.1", labelled("track", "stable")),
		mkpod("canary", "10.0.0.2", labelled("track", "canary")),
	}}
	c := newCollector(t, config(nil), options(cl, p, clocktesting.NewFakeClock(now)))
	names := func() string {
		t.Helper()
		vals, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vals {
			out = append(out, v.Object.Name)
		}
		return strings.Join(out, ",")
	}
	if got := names(); got != "stable" {
		t.Fatalf("pods %s, want stable", got)
	}
	if n := c.conns.open(); n != 1 {
		t.Errorf("%d connections open, want 1 (to stable)", n)
	}
	cl.mu.Lock()
	cl.selector = "app=web,track=canary"
	cl.mu.Unlock()
	if got := names(); got != "canary" {
		t.Fatalf("pods %s, want canary after the selector changed", got)
	}
	if cl.resolved != 2 {
		t.Errorf("selector resolved %d times, want 2", cl.resolved)
	}
	// The connection to the pod no longer asked is closed; canary's is kept.
	c.conns.mu.Lock()
	_, stale := c.conns.byAddr["10.0.0.1:9090"]
	_, kept := c.conns.byAddr["10.0.0.2:9090"]
	c.conns.mu.Unlock()
	if stale || !kept {
		t.Errorf("connections %v: want only 10.0.0.2:9090's", c.conns.byAddr)
	}
}

func TestConnectionsReused(t *testing.T) {
	answers := map[string]string{}
	var pl []corev1.Pod
	for i := range 20 {
		ip := fmt.Sprintf("10.0.1.%d", i+1)
		answers[ip] = `{"rps": 1}`
		pl = append(pl, mkpod(fmt.Sprintf("web-%02d", i), ip))
	}
	p := newPods(t, byHost(t, answers))
	cl := &cluster{selector: "app=web", pods: pl}
	c := newCollector(t, config(nil), options(cl, p, clocktesting.NewFakeClock(now)))
	for range 3 {
		if vals, err := c.Collect(context.Background()); err != nil || len(vals) != 20 {
			t.Fatalf("Collect = %d values, %v", len(vals), err)
		}
	}
	if n := p.dials.Load(); n != 20 {
		t.Errorf("%d dials for 3 collections of 20 pods, want 20 (keep-alive)", n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := c.conns.open(); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
}

func TestConcurrencyBound(t *testing.T) {
	for _, tc := range []struct {
		name  string
		max   int
		pods  int
		limit int
	}{
		{"configured", 4, 40, 4},
		{"default", 0, 40, DefaultMaxConcurrency},
		{"fewer pods than the bound", 0, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			inFlight, peak := 0, 0
			arrived := make(chan struct{}, tc.pods)
			gate := make(chan struct{})
			p := newPods(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				inFlight++
				peak = max(peak, inFlight)
				if inFlight > tc.limit {
					t.Errorf("%d requests in flight, bound %d", inFlight, tc.limit)
				}
				mu.Unlock()
				arrived <- struct{}{}
				<-gate // held until the bound is reached
				mu.Lock()
				inFlight--
				mu.Unlock()
				_, _ = w.Write([]byte(`{"rps": 1}`))
			})
			var pl []corev1.Pod
			for i := range tc.pods {
				pl = append(pl, mkpod(fmt.Sprintf("web-%02d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)))
			}
			o := options(&cluster{selector: "app=web", pods: pl}, p, clocktesting.NewFakeClock(now))
			o.MaxConcurrency = tc.max
			c := newCollector(t, config(nil), o)
			done := make(chan error, 1)
			go func() {
				vals, err := c.Collect(context.Background())
				if err == nil && len(vals) != tc.pods {
					err = fmt.Errorf("%d values, want %d", len(vals), tc.pods)
				}
				done <- err
			}()
			for range tc.limit {
				<-arrived
			}
			close(gate)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if peak != tc.limit {
				t.Errorf("peak %d requests in flight, want the bound %d", peak, tc.limit)
			}
		})
	}
}

// blocking holds every request until its context ends.
func blocking(t *testing.T) (p *pods, started, ended chan struct{}) {
	started, ended = make(chan struct{}, 100), make(chan struct{}, 100)
	p = newPods(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
		ended <- struct{}{}
	})
	return p, started, ended
}

func TestCancellation(t *testing.T) {
	p, started, ended := blocking(t)
	var pl []corev1.Pod
	for i := range 10 {
		pl = append(pl, mkpod(fmt.Sprintf("web-%d", i), fmt.Sprintf("10.0.0.%d", i+1)))
	}
	o := options(&cluster{selector: "app=web", pods: pl}, p, clocktesting.NewFakeClock(now))
	o.MaxConcurrency = 2
	c := newCollector(t, config(nil), o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		vals, err := c.Collect(ctx)
		if vals != nil {
			err = fmt.Errorf("values %v after a cancel", vals)
		}
		done <- err
	}()
	<-started
	<-started
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted, 0 of 10 pods answered") {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	<-ended
	<-ended
	if n := len(started); n != 0 {
		t.Errorf("%d more pods asked after the cancel", n)
	}
}

func TestCollectionsDoNotOverlap(t *testing.T) {
	p, started, _ := blocking(t)
	c := newCollector(t, config(nil), options(&cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "10.0.0.1")}}, p, clocktesting.NewFakeClock(now)))
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.Collect(ctx); first <- err }()
	<-started
	second, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := c.Collect(second); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "previous collection") {
		t.Errorf("error %v, want a cancelled wait for the previous collection", err)
	}
	cancel()
	<-first
}

func TestRequestTimeout(t *testing.T) {
	p, _, ended := blocking(t)
	c := newCollector(t, config(map[string]string{"request-timeout": "20ms"}), options(&cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "10.0.0.1")}}, p, clocktesting.NewFakeClock(now)))
	_, err := c.Collect(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 20ms") {
		t.Fatalf("error %v, want a deadline naming 20ms", err)
	}
	<-ended
}

func TestBodyTimeout(t *testing.T) {
	p := newPods(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"rps": `))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest never comes
	})
	c := newCollector(t, config(map[string]string{"request-timeout": "20ms"}), options(&cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "10.0.0.1")}}, p, clocktesting.NewFakeClock(now)))
	_, err := c.Collect(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "reading the body: not done within 20ms") {
		t.Fatalf("error %v, want a body deadline naming 20ms", err)
	}
}

func TestConnectTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  string
		opt  time.Duration
		want time.Duration
	}{
		{"key", "250ms", 0, 250 * time.Millisecond},
		{"option", "", 3 * time.Second, 3 * time.Second},
		{"default", "", 0, DefaultConnectTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := map[string]string{"request-timeout": "1h"}
			if tc.key != "" {
				keys["connect-timeout"] = tc.key
			}
			o := options(&cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "10.0.0.1")}}, nil, clocktesting.NewFakeClock(now))
			o.ConnectTimeout = tc.opt
			var left time.Duration
			o.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				d, ok := ctx.Deadline()
				if !ok {
					return nil, errors.New("no deadline")
				}
				left = time.Until(d)
				return nil, errors.New("unreachable")
			}
			_, err := newCollector(t, config(keys), o).Collect(context.Background())
			if err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Fatalf("error %v, want the dial error", err)
			}
			if left > tc.want || left < tc.want/2 {
				t.Errorf("dial deadline in %s, want about %s", left, tc.want)
			}
		})
	}
}

func TestUpstreamErrors(t *testing.T) {
	cl := &cluster{selector: "app=web", selectErr: errors.New("Deployment app/web (apps/v1): not found")}
	c := newCollector(t, config(nil), options(cl, nil, clocktesting.NewFakeClock(now)))
	if _, err := c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), "pod selector of the scale target: Deployment app/web (apps/v1): not found") {
		t.Errorf("error %v, want the selector error", err)
	}
	cl.selectErr, cl.listErr = nil, errors.New("forbidden to list pods")
	if _, err := c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), "forbidden to list pods") {
		t.Errorf("error %v, want the list error", err)
	}
}

func TestNewErrors(t *testing.T) {
	cl := &cluster{}
	for _, tc := range []struct {
		name string
		keys map[string]string
		edit func(*collector.Config, *Options)
		want []string
	}{
		{"nothing", map[string]string{"json-key": "-", "path": "-", "port": "-"}, nil, []string{`keys "json-key" or "json-eval": one is required`, `key "path": is required`, `key "port": is required`}},
		{"both paths", map[string]string{"json-eval": "$.a"}, nil, []string{"exactly one, not both"}},
		{"bad JSONPath", map[string]string{"json-key": "$.a["}, nil, []string{`key "json-key": "$.a["`, "invalid JSONPath"}},
		{"empty JSONPath", map[string]string{"json-key": ""}, nil, []string{`key "json-key": ""`, "empty"}},
		{"bad eval", map[string]string{"json-key": "-", "json-eval": "avg($.a"}, nil, []string{`key "json-eval": "avg($.a"`, "invalid expression"}},
		{"aggregator", map[string]string{"aggregator": "median"}, nil, []string{`key "aggregator": "median": unknown aggregator`}},
		{"relative path", map[string]string{"path": "metrics"}, nil, []string{`key "path": "metrics": must start with "/"`}},
		{"empty path", map[string]string{"path": ""}, nil, []string{`key "path": "": must start with "/"`}},
		{"path with a query", map[string]string{"path": "/metrics?x=1"}, nil, []string{`key "path": "/metrics?x=1"`, `"raw-query"`}},
		{"path with a control character", map[string]string{"path": "/a\x01"}, nil, []string{`key "path": "/a\x01": not a URL path`}},
		{"port not a number", map[string]string{"port": "http"}, nil, []string{`key "port": "http": not a port number (1-65535)`}},
		{"port zero", map[string]string{"port": "0"}, nil, []string{`key "port": "0": not a port`}},
		{"port too big", map[string]string{"port": "65536"}, nil, []string{`key "port": "65536": not a port`}},
		{"port empty", map[string]string{"port": ""}, nil, []string{`key "port": "": not a port`}},
		{"scheme", map[string]string{"scheme": "ftp"}, nil, []string{`key "scheme": "ftp": must be http or https`}},
		{"scheme upper case", map[string]string{"scheme": "HTTPS"}, nil, []string{`key "scheme": "HTTPS"`}},
		{"raw-query fragment", map[string]string{"raw-query": "a=1#x"}, nil, []string{`key "raw-query": "a=1#x": must not contain "#"`}},
		{"raw-query space", map[string]string{"raw-query": "a=1 2"}, nil, []string{`key "raw-query": "a=1 2": must not contain spaces`}},
		{"raw-query escape", map[string]string{"raw-query": "a=%zz"}, nil, []string{`key "raw-query": "a=%zz": invalid escape at byte 2`}},
		{"raw-query short escape", map[string]string{"raw-query": "a=%2"}, nil, []string{`invalid escape`}},
		{"request-timeout not a duration", map[string]string{"request-timeout": "soon"}, nil, []string{`key "request-timeout": "soon": not a duration`}},
		{"request-timeout zero", map[string]string{"request-timeout": "0s"}, nil, []string{`key "request-timeout": "0s": must be positive`}},
		{"connect-timeout not a duration", map[string]string{"connect-timeout": "15"}, nil, []string{`key "connect-timeout": "15": not a duration`}},
		{"connect-timeout negative", map[string]string{"connect-timeout": "-1s"}, nil, []string{`key "connect-timeout": "-1s": must be positive`}},
		{"all at once", map[string]string{"json-key": "$[", "path": "x", "port": "-1", "scheme": "tcp", "aggregator": "mean", "request-timeout": "x", "connect-timeout": "0"},
			nil, []string{`"json-key"`, `"path"`, `"port"`, `"scheme"`, `"aggregator"`, `"request-timeout"`, `"connect-timeout"`}},
		{"external kind", nil, func(c *collector.Config, _ *Options) { c.Kind = collector.External }, []string{`serves Pods metrics, not "External"`}},
		{"no kind", nil, func(c *collector.Config, _ *Options) { c.Kind = "" }, []string{`not ""`}},
		{"no namespace", nil, func(c *collector.Config, _ *Options) { c.Namespace = "" }, []string{"no namespace"}},
		{"no scale target", nil, func(c *collector.Config, _ *Options) { c.ScaleTarget = collector.ObjectRef{} }, []string{"no scale target"}},
		{"negative min-pod-ready-age", nil, func(c *collector.Config, _ *Options) { c.MinPodReadyAge = -time.Second }, []string{"min-pod-ready-age -1s is negative"}},
		{"no Kubernetes readers", nil, func(_ *collector.Config, o *Options) { *o = Options{} }, []string{"needs Options.Selectors and Options.Pods"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, o := config(tc.keys), Options{Selectors: cl, Pods: cl}
			if tc.edit != nil {
				tc.edit(&cfg, &o)
			}
			c, err := New(cfg, o)
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
	p := newPods(t, byHost(t, map[string]string{"10.0.0.1": `{"rps": 42}`}))
	reg := collector.NewRegistry()
	reg.Register(collector.Pods, Type, Factory(options(&cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "10.0.0.1")}}, p, clocktesting.NewFakeClock(now))))
	c, err := reg.New(config(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.(*Collector).Close() })
	vals, err := c.Collect(context.Background())
	if err != nil || len(vals) != 1 || vals[0].Value.MilliValue() != 42000 {
		t.Fatalf("Collect = %v, %v; want one value of 42", vals, err)
	}
	if _, err := reg.New(config(map[string]string{"port": "-"})); err == nil || !strings.Contains(err.Error(), `key "port"`) {
		t.Fatalf("error %v, want the missing port named", err)
	}
}

func TestTransportOption(t *testing.T) {
	p := newPods(t, byHost(t, map[string]string{"10.0.0.1": `{"rps": 1}`}))
	var used atomic.Bool
	base := &http.Transport{DialContext: p.dial}
	t.Cleanup(base.CloseIdleConnections)
	o := options(&cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "10.0.0.1")}}, nil, clocktesting.NewFakeClock(now))
	o.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		used.Store(true)
		return base.RoundTrip(r)
	})
	c := newCollector(t, config(nil), o)
	if vals, err := c.Collect(context.Background()); err != nil || len(vals) != 1 || !used.Load() {
		t.Fatalf("Collect = %v, %v; used the transport: %v", vals, err, used.Load())
	}
	if c.conns != nil || c.own != nil {
		t.Error("with Options.Transport the collector must not build its own")
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestKeepAliveDisabled(t *testing.T) {
	p := newPods(t, byHost(t, map[string]string{"10.0.0.1": `{"rps": 1}`}))
	o := options(&cluster{selector: "app=web", pods: []corev1.Pod{mkpod("web-1", "10.0.0.1")}}, p, clocktesting.NewFakeClock(now))
	o.MaxIdleConns = -1
	c := newCollector(t, config(nil), o)
	for range 2 {
		if _, err := c.Collect(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.dials.Load(); n != 2 {
		t.Errorf("%d dials, want 2 without keep-alive", n)
	}
}

func TestDefaultOptions(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Clock == nil || o.RequestTimeout != DefaultRequestTimeout || o.ConnectTimeout != DefaultConnectTimeout ||
		o.MaxBodyBytes != DefaultMaxBodyBytes || o.MaxConcurrency != DefaultMaxConcurrency ||
		o.MaxIdleConns != DefaultMaxIdleConns || o.IdleConnTimeout != DefaultIdleConnTimeout {
		t.Fatalf("defaults %+v", o)
	}
}
