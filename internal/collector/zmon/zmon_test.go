package zmon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/collector"
)

const secret = "zmon-s3cr3t-token"

// kairos is a KairosDB stand-in answering POST /api/v1/datapoints/query as documented
// (https://kairosdb.github.io/docs/restapi/QueryMetrics.html): it records each request
// and answers with status and body.
type kairos struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	requests []recorded
	status   int
	answer   string
	delay    time.Duration
}

type recorded struct {
	method, path, contentType, accept, attribution, authorization string
	body                                                          string
}

func newKairos(t *testing.T, prefix string) *kairos {
	k := &kairos{t: t, status: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+QueryPath, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading the request: %v", err)
		}
		k.mu.Lock()
		k.requests = append(k.requests, recorded{
			method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"), accept: r.Header.Get("Accept"),
			attribution: r.Header.Get("X-Attribution"), authorization: r.Header.Get("Authorization"), body: string(b),
		})
		status, answer, delay := k.status, k.answer, k.delay
		k.mu.Unlock()
		if r.Method != http.MethodPost {
			http.Error(w, `{"errors":["method not allowed"]}`, http.StatusMethodNotAllowed)
			return
		}
		var q map[string]any
		if err := json.Unmarshal(b, &q); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"errors":["query body is not JSON"]}`)
			return
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	})
	k.Server = httptest.NewServer(mux)
	t.Cleanup(k.Close)
	return k
}

func (k *kairos) set(status int, answer string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.status, k.answer = status, answer
}

func (k *kairos) last() recorded {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.requests) == 0 {
		k.t.Fatal("no request")
	}
	return k.requests[len(k.requests)-1]
}

func (k *kairos) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.requests)
}

// answer is a KairosDB answer of one query with one result holding values.
func answer(values string) string {
	return `{"queries":[{"sample_size":3,"results":[{"name":"zmon.check.1234",` +
		`"group_by":[{"name":"type","type":"number"}],"tags":{"application":["my-app"],"key":["custom.value"]},` +
		`"values":` + values + `}]}]}`
}

func external(keys map[string]string) collector.Config {
	labels := map[string]string{}
	for k, v := range keys {
		if !strings.Contains(v, "*") {
			labels[k] = v
		}
	}
	return collector.Config{Kind: collector.External, Name: "my-zmon-check", Type: Type, Keys: keys, Labels: labels}
}

func mustNew(t *testing.T, cfg collector.Config, opts Options) collector.Collector {
	t.Helper()
	c, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestQuery(t *testing.T) {
	const last10m = `"aggregators":[{"name":"last","sampling":{"value":10,"unit":"minutes"}}]`
	tests := []struct {
		name string
		keys map[string]string
		want string
	}{{
		name: "check only: the defaults",
		keys: map[string]string{"type": "zmon", "check-id": "1234"},
		want: `{"start_relative":{"value":10,"unit":"minutes"},"metrics":[{"name":"zmon.check.1234","limit":10000,` +
			`"tags":{},"group_by":[],` + last10m + `}]}`,
	}, {
		name: "the README's example",
		keys: map[string]string{"type": "zmon", "check-id": "1234", "key": "custom.value", "tag-application": "my-custom-app",
			"aggregators": "avg", "duration": "5m"},
		want: `{"start_relative":{"value":5,"unit":"minutes"},"metrics":[{"name":"zmon.check.1234","limit":10000,` +
			`"tags":{"application":["my-custom-app"],"key":["custom.value"]},"group_by":[{"name":"tag","tags":["key"]}],` +
			`"aggregators":[{"name":"avg","sampling":{"value":5,"unit":"minutes"}}]}]}`,
	}, {
		name: "annotation patterns, several tags and aggregators",
		keys: map[string]string{"check-id": "42", "key": "custom.*", "tag-application": "my-custom-app-*", "tag-alias": "cluster-a",
			"tag-entity": "pod-x[aws:1]", "aggregators": "avg, max,sum", "duration": "1h"},
		want: `{"start_relative":{"value":1,"unit":"hours"},"metrics":[{"name":"zmon.check.42","limit":10000,` +
			`"tags":{"alias":["cluster-a"],"application":["my-custom-app-*"],"entity":["pod-x[aws:1]"],"key":["custom.*"]},` +
			`"group_by":[{"name":"tag","tags":["key"]}],"aggregators":[` +
			`{"name":"avg","sampling":{"value":1,"unit":"hours"}},{"name":"max","sampling":{"value":1,"unit":"hours"}},` +
			`{"name":"sum","sampling":{"value":1,"unit":"hours"}}]}]}`,
	}, {
		name: "tag-key without key: a tag, no grouping",
		keys: map[string]string{"check-id": "7", "tag-key": "cpu", "aggregators": "count,diff,min"},
		want: `{"start_relative":{"value":10,"unit":"minutes"},"metrics":[{"name":"zmon.check.7","limit":10000,` +
			`"tags":{"key":["cpu"]},"group_by":[],"aggregators":[{"name":"count","sampling":{"value":10,"unit":"minutes"}},` +
			`{"name":"diff","sampling":{"value":10,"unit":"minutes"}},{"name":"min","sampling":{"value":10,"unit":"minutes"}}]}]}`,
	}, {
		name: "key and the same tag-key",
		keys: map[string]string{"check-id": "7", "key": "cpu", "tag-key": "cpu"},
		want: `{"start_relative":{"value":10,"unit":"minutes"},"metrics":[{"name":"zmon.check.7","limit":10000,` +
			`"tags":{"key":["cpu"]},"group_by":[{"name":"tag","tags":["key"]}],` + last10m + `}]}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := newKairos(t, "")
			k.set(http.StatusOK, answer(`[[1700000000000,1]]`))
			c := mustNew(t, external(tc.keys), Options{Endpoint: k.URL})
			if _, err := c.Collect(context.Background()); err != nil {
				t.Fatalf("Collect: %v", err)
			}
			r := k.last()
			if r.body != tc.want {
				t.Errorf("query\n got %s\nwant %s", r.body, tc.want)
			}
			if r.method != http.MethodPost || r.path != QueryPath || r.contentType != "application/json" || r.accept != "application/json" {
				t.Errorf("request %s %s, Content-Type %q, Accept %q", r.method, r.path, r.contentType, r.accept)
			}
			id := tc.keys["check-id"]
			if r.attribution != "kube-metrics-adapter/"+id {
				t.Errorf("X-Attribution %q", r.attribution)
			}
			if r.authorization != "" {
				t.Errorf("Authorization %q without a token", r.authorization)
			}
		})
	}
}

func TestRelative(t *testing.T) {
	for _, tc := range []struct {
		d     time.Duration
		value int64
		unit  string
	}{
		{10 * time.Minute, 10, "minutes"},
		{90 * time.Second, 90, "seconds"},
		{90 * time.Minute, 90, "minutes"},
		{time.Hour, 1, "hours"},
		{48 * time.Hour, 2, "days"},
		{36 * time.Hour, 36, "hours"},
		{14 * 24 * time.Hour, 2, "weeks"},
		{30 * 24 * time.Hour, 30, "days"},
		{365 * 24 * time.Hour, 365, "days"},
		{1500 * time.Millisecond, 1500, "milliseconds"},
		{time.Millisecond, 1, "milliseconds"},
	} {
		got := relative(tc.d)
		if got.Value != tc.value || got.Unit != tc.unit {
			t.Errorf("relative(%s) = %d %s, want %d %s", tc.d, got.Value, got.Unit, tc.value, tc.unit)
		}
	}
}

func TestDurationKeyInQuery(t *testing.T) {
	k := newKairos(t, "/kairosdb")
	k.set(http.StatusOK, answer(`[[1700000000000,1]]`))
	c := mustNew(t, external(map[string]string{"check-id": "1", "duration": "1h30m", "aggregators": "max"}), Options{Endpoint: k.URL + "/kairosdb/"})
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := k.last()
	if r.path != "/kairosdb"+QueryPath {
		t.Errorf("path %q", r.path)
	}
	want := `{"start_relative":{"value":90,"unit":"minutes"},"metrics":[{"name":"zmon.check.1","limit":10000,"tags":{},"group_by":[],` +
		`"aggregators":[{"name":"max","sampling":{"value":90,"unit":"minutes"}}]}]}`
	if r.body != want {
		t.Errorf("query\n got %s\nwant %s", r.body, want)
	}
}

func TestCollectValue(t *testing.T) {
	k := newKairos(t, "")
	cfg := external(map[string]string{"type": "zmon", "check-id": "1234", "key": "custom.value", "tag-application": "my-app"})
	c := mustNew(t, cfg, Options{Endpoint: k.URL})

	for _, tc := range []struct {
		name, values string
		want         string
		ts           int64
	}{
		{"the last point, not the first", `[[1700000000000,3],[1700000030000,4.5],[1700000060000,1.25]]`, "1250m", 1700000060000},
		{"integers", `[[1700000060000,42]]`, "42", 1700000060000},
		{"rounded to milli-units", `[[1700000060000,0.0016]]`, "2m", 1700000060000},
		{"negative", `[[1700000060000,-3]]`, "-3", 1700000060000},
		{"exponent", `[[1.70000006E12,1e3]]`, "1k", 1700000060000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k.set(http.StatusOK, answer(tc.values))
			got, err := c.Collect(context.Background())
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			want := []collector.Value{{
				Labels:    map[string]string{"type": "zmon", "check-id": "1234", "key": "custom.value", "tag-application": "my-app"},
				Value:     resource.MustParse(tc.want),
				Timestamp: time.UnixMilli(tc.ts).UTC(),
			}}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}

	// The labels handed out are copies.
	k.set(http.StatusOK, answer(`[[1700000060000,1]]`))
	got, _ := c.Collect(context.Background())
	got[0].Labels["type"] = "changed"
	got, _ = c.Collect(context.Background())
	if got[0].Labels["type"] != "zmon" {
		t.Error("a caller's change to the labels reached the collector")
	}
	cfg.Labels["type"] = "changed too"
	got, _ = c.Collect(context.Background())
	if got[0].Labels["type"] != "zmon" {
		t.Error("a change to the config's labels reached the collector")
	}
}

func TestCollectErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		answer string
		want   []string
	}{
		{"no query", 200, `{"queries":[]}`, []string{"the answer holds no query"}},
		{"no results", 200, `{"queries":[{"sample_size":0,"results":[]}]}`, []string{"no result"}},
		{"no data points", 200, answer(`[]`), []string{"no data points in the queried time range"}},
		{"null values", 200, answer(`null`), []string{"no data points"}},
		{"empty object", 200, `{}`, []string{"the answer holds no query"}},
		{"not JSON", 200, `<html>oops</html>`, []string{"not a KairosDB answer", `"<html>oops</html>"`}},
		{"a point with one element", 200, answer(`[[1700000000000]]`), []string{"the last data point \"[1700000000000]\" is not [time, value]"}},
		{"a point that is not an array", 200, answer(`[{"t":1}]`), []string{"is not [time, value]"}},
		{"a string value", 200, answer(`[[1700000000000,"12"]]`), []string{`the last data point's value "\"12\"" is not a number`}},
		{"a null value", 200, answer(`[[1700000000000,null]]`), []string{`the last data point's value "null" is not a number`}},
		{"an object value (a histogram)", 200, answer(`[[1700000000000,{"bins":{}}]]`), []string{"value", "is not a number"}},
		{"a string time", 200, answer(`[["now",1]]`), []string{"the last data point's time", "is not a number"}},
		{"a huge time", 200, answer(`[[1e300,1]]`), []string{"is not a time in milliseconds"}},
		{"a value beyond float64", 200, answer(`[[1700000000000,1e400]]`), []string{"the last data point's value 1e400 is out of range"}},
		{"a value beyond a Quantity", 200, answer(`[[1700000000000,1e300]]`), []string{"out of range"}},
		{"only the last point is judged", 200, answer(`[[1700000000000,"x"],[1700000000001,null]]`), []string{`"null" is not a number`}},
		{"a KairosDB error", 400, `{"errors":["metrics[0].aggregate must be one of avg,dev"]}`,
			[]string{"400 Bad Request", "metrics[0].aggregate must be one of avg,dev"}},
		{"a server error", 500, `internal trouble`, []string{"500 Internal Server Error", `"internal trouble"`}},
		{"unauthorized", 401, ``, []string{"401 Unauthorized"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := newKairos(t, "")
			k.set(tc.status, tc.answer)
			c := mustNew(t, external(map[string]string{"check-id": "1234", "key": "custom.value", "tag-application": "my-app"}),
				Options{Endpoint: k.URL, Token: secret})
			got, err := c.Collect(context.Background())
			if err == nil {
				t.Fatalf("no error; values %v", got)
			}
			if got != nil {
				t.Errorf("values %v with the error", got)
			}
			msg := err.Error()
			prefix := `zmon check 1234 (key "custom.value", tag application="my-app"): POST ` + k.URL + QueryPath + ": "
			if !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("the error shows the token: %q", msg)
			}
		})
	}
}

func TestCollectTransportErrors(t *testing.T) {
	keys := map[string]string{"check-id": "9"}

	t.Run("refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c := mustNew(t, external(keys), Options{Endpoint: "http://" + addr})
		_, err = c.Collect(context.Background())
		if err == nil || !strings.Contains(err.Error(), "zmon check 9: POST http://"+addr+QueryPath) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("error %v", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		k := newKairos(t, "")
		k.set(200, answer(`[[1,1]]`))
		k.mu.Lock()
		k.delay = 5 * time.Second
		k.mu.Unlock()
		c := mustNew(t, external(keys), Options{Endpoint: k.URL, RequestTimeout: 50 * time.Millisecond})
		start := time.Now()
		_, err := c.Collect(context.Background())
		if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
			t.Errorf("error %v", err)
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("Collect took %s", time.Since(start))
		}
	})

	t.Run("canceled", func(t *testing.T) {
		k := newKairos(t, "")
		k.set(200, answer(`[[1,1]]`))
		c := mustNew(t, external(keys), Options{Endpoint: k.URL})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Collect(ctx)
		if !errors.Is(err, context.Canceled) && (err == nil || !strings.Contains(err.Error(), "context canceled")) {
			t.Errorf("error %v", err)
		}
		if err != nil && strings.Contains(err.Error(), "no answer within") {
			t.Errorf("a canceled collection reported as a timeout: %v", err)
		}
	})

	t.Run("too large", func(t *testing.T) {
		k := newKairos(t, "")
		k.set(200, answer(`[[1700000000000,1],[1700000000001,2]]`))
		c := mustNew(t, external(keys), Options{Endpoint: k.URL, MaxBodyBytes: 64})
		_, err := c.Collect(context.Background())
		if err == nil || !strings.Contains(err.Error(), "the answer is larger than the 64 bytes allowed") {
			t.Errorf("error %v", err)
		}
	})
}

func TestStaticToken(t *testing.T) {
	k := newKairos(t, "")
	k.set(200, answer(`[[1700000000000,1]]`))
	dir := t.TempDir()
	// --token wins over the credentials directory.
	if err := os.WriteFile(TokenFile(dir, "zmon"), []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustNew(t, external(map[string]string{"check-id": "1"}), Options{Endpoint: k.URL, Token: secret, CredentialsDir: dir})
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := k.last().authorization; got != "Bearer "+secret {
		t.Errorf("Authorization %q", got)
	}
}

func TestTokenFile(t *testing.T) {
	if got := TokenFile("/meta/credentials", "zmon"); got != "/meta/credentials/zmon-token-secret" {
		t.Errorf("TokenFile = %q", got)
	}

	k := newKairos(t, "")
	k.set(200, answer(`[[1700000000000,1]]`))
	dir := t.TempDir()
	path := TokenFile(dir, "zmon-reader")
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	opts := Options{Endpoint: k.URL, CredentialsDir: dir, TokenName: "zmon-reader", Clock: clk}
	f := Factory(opts)
	c, err := f(external(map[string]string{"check-id": "1"}))
	if err != nil {
		t.Fatalf("New without the token file yet: %v", err)
	}

	// No file yet: an error naming the file, and nothing sent.
	_, err = c.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "token file") {
		t.Errorf("error %v, want one naming %s", err, path)
	}
	if k.count() != 0 {
		t.Errorf("%d requests sent without a token", k.count())
	}

	write := func(tok string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(c collector.Collector, tok string) {
		t.Helper()
		if _, err := c.Collect(context.Background()); err != nil {
			t.Fatalf("Collect: %v", err)
		}
		if got := k.last().authorization; got != "Bearer "+tok {
			t.Errorf("Authorization %q, want the token %q", got, tok)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write("token-one", t0)
	expect(c, "token-one")

	// Rotated: the new token at the next collection, for every collector of the factory.
	write("token-two-longer", t0.Add(time.Minute))
	expect(c, "token-two-longer")
	c2, err := f(external(map[string]string{"check-id": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	expect(c2, "token-two-longer")

	// Emptied: an error, not the last token.
	write("", t0.Add(2*time.Minute))
	if _, err := c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("emptied token file: %v", err)
	}
}

func TestTokenRedacted(t *testing.T) {
	// A server quoting the request's header in its answer does not get the token into
	// the error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "denied for "+r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	c := mustNew(t, external(map[string]string{"check-id": "1"}), Options{Endpoint: srv.URL, Token: secret})
	_, err := c.Collect(context.Background())
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "denied for Bearer <redacted>") {
		t.Errorf("error %v", err)
	}
}

func TestTokenNotSentElsewhere(t *testing.T) {
	var otherAuth string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherAuth = r.Header.Get("Authorization")
		_, _ = io.WriteString(w, answer(`[[1700000000000,5]]`))
	}))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+QueryPath, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	c := mustNew(t, external(map[string]string{"check-id": "1"}), Options{Endpoint: redirect.URL, Token: secret})
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if otherAuth != "" {
		t.Errorf("the redirect's target got Authorization %q", otherAuth)
	}
}

func TestNewErrors(t *testing.T) {
	ok := Options{Endpoint: "http://kairosdb.example:8080"}
	tests := []struct {
		name string
		kind collector.Kind
		keys map[string]string
		opts Options
		want []string
	}{
		{"no check-id", "", map[string]string{"type": "zmon"}, ok, []string{`key "check-id": is required`}},
		{"check-id not an integer", "", map[string]string{"check-id": "abc"}, ok, []string{`key "check-id": "abc": not an integer`}},
		{"check-id zero", "", map[string]string{"check-id": "0"}, ok, []string{`key "check-id": "0": must be positive`}},
		{"check-id negative", "", map[string]string{"check-id": "-4"}, ok, []string{`must be positive`}},
		{"empty key", "", map[string]string{"check-id": "1", "key": ""}, ok, []string{`key "key": "": is empty`}},
		{"unknown aggregator", "", map[string]string{"check-id": "1", "aggregators": "avg,dev"}, ok,
			[]string{`key "aggregators": "avg,dev": unknown aggregator "dev" (known: avg, count, diff, last, max, min, sum)`}},
		{"upper-case aggregator", "", map[string]string{"check-id": "1", "aggregators": "AVG"}, ok, []string{`unknown aggregator "AVG"`}},
		{"empty aggregator", "", map[string]string{"check-id": "1", "aggregators": "avg,,max"}, ok, []string{`key "aggregators": "avg,,max": an empty aggregator`}},
		{"no aggregator", "", map[string]string{"check-id": "1", "aggregators": ""}, ok, []string{`an empty aggregator`}},
		{"bad duration", "", map[string]string{"check-id": "1", "duration": "5 minutes"}, ok, []string{`key "duration": "5 minutes": not a duration`}},
		{"zero duration", "", map[string]string{"check-id": "1", "duration": "0s"}, ok, []string{`key "duration": "0s": must be positive`}},
		{"sub-millisecond duration", "", map[string]string{"check-id": "1", "duration": "1500us"}, ok,
			[]string{`key "duration": "1500us": must be a whole number of milliseconds`}},
		{"tag without a name", "", map[string]string{"check-id": "1", "tag-": "x"}, ok, []string{`key "tag-": "x": no tag name`}},
		{"empty tag", "", map[string]string{"check-id": "1", "tag-application": " "}, ok, []string{`key "tag-application": " ": is empty`}},
		{"key and tag-key differ", "", map[string]string{"check-id": "1", "key": "a", "tag-key": "b"}, ok,
			[]string{`keys "key" ("a") and "tag-key" ("b"): both set the tag "key", differently`}},
		{"Pods metric", collector.Pods, map[string]string{"check-id": "1"}, ok, []string{"serves External metrics, not Pods"}},
		{"no endpoint", "", map[string]string{"check-id": "1"}, Options{}, []string{"--zmon-kariosdb-endpoint is not set"}},
		{"bad endpoint scheme", "", map[string]string{"check-id": "1"}, Options{Endpoint: "kairosdb:8080"}, []string{`--zmon-kariosdb-endpoint "kairosdb:8080": the scheme must be http or https`}},
		{"endpoint with credentials", "", map[string]string{"check-id": "1"}, Options{Endpoint: "https://u:p@kairosdb"}, []string{"credentials in the URL are not supported"}},
		{"endpoint with a query", "", map[string]string{"check-id": "1"}, Options{Endpoint: "https://kairosdb/?x=1"}, []string{"a query or fragment is not supported"}},
		{"endpoint without host", "", map[string]string{"check-id": "1"}, Options{Endpoint: "http://"}, []string{"no host"}},
		{"token with a line break", "", map[string]string{"check-id": "1"}, Options{Endpoint: "http://k", Token: secret + "\n" + secret},
			[]string{"--token: the token spans several lines"}},
		{"token name a path", "", map[string]string{"check-id": "1"}, Options{Endpoint: "http://k", CredentialsDir: "/meta/credentials", TokenName: "../x"},
			[]string{`--zmon-token-name "../x": a name, not a path`}},
		{"every problem at once", "", map[string]string{"check-id": "x", "aggregators": "median", "duration": "-1m", "tag-": ""}, Options{},
			[]string{"--zmon-kariosdb-endpoint is not set", `"check-id"`, `"aggregators"`, `"duration"`, `"tag-"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := external(tc.keys)
			cfg.Kind = tc.kind
			c, err := New(cfg, tc.opts)
			if err == nil {
				t.Fatalf("no error; collector %v", c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the token: %q", err)
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	for _, keys := range []map[string]string{
		{"check-id": "1"},
		{"check-id": " 12 "},
		{"check-id": "1", "aggregators": " avg , max "},
		{"check-id": "1", "duration": "2h45m", "type": "zmon", "interval": "60s"},
	} {
		if _, err := New(external(keys), Options{Endpoint: "https://kairosdb.example/base/"}); err != nil {
			t.Errorf("New(%v): %v", keys, err)
		}
	}
	// No kind is taken as External.
	if _, err := New(collector.Config{Keys: map[string]string{"check-id": "1"}}, Options{Endpoint: "http://k"}); err != nil {
		t.Errorf("New without a kind: %v", err)
	}
}

func TestKnownKey(t *testing.T) {
	for k, want := range map[string]bool{
		"check-id": true, "key": true, "aggregators": true, "duration": true,
		"tag-application": true, "tag-alias": true, "tag-x": true,
		"tag-": false, "tag": false, "type": false, "aggregator": false, "entity-application": false, "query": false,
	} {
		if got := KnownKey(k); got != want {
			t.Errorf("KnownKey(%q) = %v, want %v", k, got, want)
		}
	}
	for _, k := range Keys {
		if !KnownKey(k) {
			t.Errorf("KnownKey(%q) = false for one of Keys", k)
		}
	}
}

func TestCheckEndpoint(t *testing.T) {
	for s, ok := range map[string]bool{
		"http://kairosdb:8080":           true,
		"https://zmon.example/kairosdb/": true,
		"ftp://kairosdb":                 false,
		"kairosdb":                       false,
		"http://a b":                     false,
		"https://kairosdb#x":             false,
	} {
		if err := CheckEndpoint(s); (err == nil) != ok {
			t.Errorf("CheckEndpoint(%q) = %v", s, err)
		}
	}
}

func TestFactoryConcurrent(t *testing.T) {
	k := newKairos(t, "")
	k.set(200, answer(`[[1700000000000,2]]`))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zmon-token-secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	f := Factory(Options{Endpoint: k.URL, CredentialsDir: dir})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			c, err := f(external(map[string]string{"check-id": string(rune('1' + i))}))
			if err != nil {
				t.Error(err)
				return
			}
			for range 5 {
				if _, err := c.Collect(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if k.count() != 40 {
		t.Errorf("%d requests, want 40", k.count())
	}
}
