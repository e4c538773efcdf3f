package influxdb

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/collector"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

const fluxQuery = `from(bucket: "cpa/autogen") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "queue_depth") |> map(fn: (r) => ({metricvalue: r._value}))`

// Answers recorded from a real InfluxDB 1.8.3 with flux-enabled (POST /api/v2/query, the
// client library's dialect).
const (
	// The query above, after writing "queue_depth,app=a value=42.5".
	recordedMetricValue = "#datatype,string,long,double\r\n" +
		"#group,false,false,false\r\n" +
		"#default,_result,,\r\n" +
		",result,table,metricvalue\r\n" +
		",,0,42.5\r\n\r\n"
	// The query without its map().
	recordedValue = "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string\r\n" +
		"#group,false,false,true,true,false,false,true,true,true\r\n" +
		"#default,_result,,,,,,,,\r\n" +
		",result,table,_start,_stop,_time,_value,_field,_measurement,app\r\n" +
		",,0,2026-11-29T23:19:53.939126602Z,2026-11-30T00:19:53.939126602Z,2026-11-30T00:19:53.904571228Z,42.5,value,queue_depth,a\r\n\r\n"
	// A filter matching nothing.
	recordedEmpty = "\r\n\r\n"
)

// request is what the fake InfluxDB saw of one query.
type request struct {
	method, path, org, auth, contentType, query string
	userAgent                                   string
}

// answer is what the fake InfluxDB answers.
type answer struct {
	status  int
	header  map[string]string
	body    string
	delay   time.Duration
	gzipped bool
}

func csvAnswer(body string) answer {
	return answer{status: http.StatusOK, header: map[string]string{"Content-Type": "text/csv; charset=utf-8"}, body: body}
}

// fakeInflux answers the v2 query API like InfluxDB and records every request.
type fakeInflux struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

func (f *fakeInflux) seen() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func newInflux(t *testing.T, respond func(r request) answer) *fakeInflux {
	t.Helper()
	f := &fakeInflux{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/query" && r.URL.Path != "/prefix/api/v2/query" {
			http.NotFound(w, r)
			return
		}
		var body struct {
			Query string `json:"query"`
			Type  string `json:"type"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("decoding the request body: %v", err)
		}
		req := request{
			method: r.Method, path: r.URL.Path, org: r.URL.Query().Get("org"), auth: r.Header.Get("Authorization"),
			contentType: r.Header.Get("Content-Type"), query: body.Query, userAgent: r.Header.Get("User-Agent"),
		}
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		a := respond(req)
		if a.delay > 0 {
			select {
			case <-time.After(a.delay):
			case <-r.Context().Done():
				return
			}
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.gzipped {
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				t.Errorf("Accept-Encoding %q, want gzip", r.Header.Get("Accept-Encoding"))
			}
			w.Header().Set("Content-Encoding", "gzip")
			w.WriteHeader(a.status)
			gz := gzip.NewWriter(w)
			_, _ = gz.Write([]byte(a.body))
			_ = gz.Close()
			return
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(f.Close)
	return f
}

// table is one annotated CSV table: datatypes and names of the columns after result and
// table, and its rows (values after result and table).
func table(n int, datatypes, names string, rows ...string) string {
	cols := len(strings.Split(names, ","))
	var b strings.Builder
	b.WriteString("#datatype,string,long," + datatypes + "\r\n")
	b.WriteString("#group,false,false" + strings.Repeat(",false", cols) + "\r\n")
	b.WriteString("#default,_result,," + strings.Repeat(",", cols-1) + "\r\n")
	b.WriteString(",result,table," + names + "\r\n")
	for _, r := range rows {
		b.WriteString(",," + string(rune('0'+n)) + "," + r + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func cfg(keys map[string]string) collector.Config {
	k := map[string]string{KeyQuery: fluxQuery}
	for key, v := range keys {
		if v == "<unset>" {
			delete(k, key)
			continue
		}
		k[key] = v
	}
	return collector.Config{
		Kind: collector.External, Name: "queue-depth", Type: Type, Namespace: "default",
		Keys: k, Labels: map[string]string{"type": "influxdb"},
	}
}

func opts(address string) Options {
	return Options{Address: address, Token: "flag-token", Org: "flag-org", Clock: clocktesting.NewFakePassiveClock(now)}
}

func collect(t *testing.T, c collector.Collector) ([]collector.Value, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Collect(ctx)
}

func mustNew(t *testing.T, cfg collector.Config, o Options) collector.Collector {
	t.Helper()
	c, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestCollectValue(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"metricvalue (recorded)", recordedMetricValue, "42500m"},
		{"_value without metricvalue (recorded)", recordedValue, "42500m"},
		{"metricvalue over _value", table(0, "double,double", "_value,metricvalue", "1,7"), "7"},
		{"long", table(0, "long", "metricvalue", "-12"), "-12"},
		{"unsignedLong", table(0, "unsignedLong", "_value", "18"), "18"},
		{"rounded to milli-units", table(0, "double", "_value", "0.12345"), "123m"},
		{"zero is a value", table(0, "double", "metricvalue", "0"), "0"},
		{"default value of the column", "#datatype,string,long,double\r\n#group,false,false,false\r\n#default,_result,,3.5\r\n,result,table,_value\r\n,,0,\r\n\r\n", "3500m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newInflux(t, func(request) answer { return csvAnswer(tc.body) })
			c := mustNew(t, cfg(nil), opts(f.URL))
			got, err := collect(t, c)
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			want := []collector.Value{{Labels: map[string]string{"type": "influxdb"}, Value: resource.MustParse(tc.want), Timestamp: now}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCollectRequest(t *testing.T) {
	f := newInflux(t, func(request) answer { return csvAnswer(recordedMetricValue) })
	c := mustNew(t, cfg(nil), opts(f.URL))
	if _, err := collect(t, c); err != nil {
		t.Fatal(err)
	}
	reqs := f.seen()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/api/v2/query" || r.org != "flag-org" || r.auth != "Token flag-token" ||
		r.contentType != "application/json" || r.query != fluxQuery {
		t.Errorf("request %+v, want POST /api/v2/query?org=flag-org with Authorization: Token flag-token and the query as JSON", r)
	}
	if !strings.Contains(r.userAgent, userAgent) {
		t.Errorf("User-Agent %q does not name %s", r.userAgent, userAgent)
	}
}

func TestCollectGzipAndPathPrefix(t *testing.T) {
	f := newInflux(t, func(request) answer {
		a := csvAnswer(recordedMetricValue)
		a.gzipped = true
		return a
	})
	c := mustNew(t, cfg(nil), opts(f.URL+"/prefix/"))
	got, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if v := got[0].Value.String(); v != "42500m" {
		t.Errorf("value %s, want 42500m", v)
	}
	if p := f.seen()[0].path; p != "/prefix/api/v2/query" {
		t.Errorf("path %q, want the prefix kept", p)
	}
}

func TestKeysOverrideOptions(t *testing.T) {
	flag := newInflux(t, func(request) answer { return csvAnswer(recordedMetricValue) })
	own := newInflux(t, func(request) answer { return csvAnswer(recordedMetricValue) })
	tests := []struct {
		name      string
		keys      map[string]string
		server    *fakeInflux
		auth, org string
	}{
		{"flags", nil, flag, "Token flag-token", "flag-org"},
		{"own token and org", map[string]string{KeyToken: "own-token", KeyOrg: "own-org"}, flag, "Token own-token", "own-org"},
		{"own address gets no flag token", map[string]string{KeyAddress: own.URL}, own, "", "flag-org"},
		{"own address with its token", map[string]string{KeyAddress: own.URL, KeyToken: "own-token"}, own, "Token own-token", "flag-org"},
		{"the flag's address as a key keeps the flag token", map[string]string{KeyAddress: flag.URL + "/"}, flag, "Token flag-token", "flag-org"},
		{"empty token key sends none", map[string]string{KeyToken: ""}, flag, "", "flag-org"},
		{"empty org key", map[string]string{KeyOrg: ""}, flag, "Token flag-token", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.server.seen())
			c := mustNew(t, cfg(tc.keys), opts(flag.URL))
			if _, err := collect(t, c); err != nil {
				t.Fatal(err)
			}
			reqs := tc.server.seen()
			if len(reqs) != before+1 {
				t.Fatalf("the expected server saw %d new requests, want 1", len(reqs)-before)
			}
			r := reqs[len(reqs)-1]
			if r.auth != tc.auth || r.org != tc.org {
				t.Errorf("Authorization %q org %q, want %q %q", r.auth, r.org, tc.auth, tc.org)
			}
		})
	}
	t.Run("no flag address", func(t *testing.T) {
		c := mustNew(t, cfg(map[string]string{KeyAddress: own.URL}), Options{Clock: clocktesting.NewFakePassiveClock(now)})
		if _, err := collect(t, c); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCollectErrors(t *testing.T) {
	jsonErr := func(status int, body string, header ...string) answer {
		a := answer{status: status, header: map[string]string{"Content-Type": "application/json"}, body: body}
		for i := 0; i+1 < len(header); i += 2 {
			a.header[header[i]] = header[i+1]
		}
		return a
	}
	tests := []struct {
		name  string
		reply answer
		want  []string
	}{
		{"empty result (recorded)", csvAnswer(recordedEmpty), []string{"the query returned no data; "}},
		{"no body at all", csvAnswer(""), []string{"the query returned no data; "}},
		{"several records", csvAnswer(table(0, "double", "_value", "1", "2") + table(1, "double", "_value", "3")),
			[]string{"returned 3 records in 2 tables", "aggregate in the query"}},
		{"two yields", csvAnswer(table(0, "double", "_value", "1") + strings.Replace(table(0, "double", "_value", "2"), "_result", "_result2", 1)),
			[]string{"returned 2 records in 2 tables"}},
		{"two records in one table", csvAnswer(table(0, "double", "_value", "1", "2")), []string{"returned 2 records in 1 tables"}},
		{"string", csvAnswer(table(0, "string", "_value", "busy")), []string{`column "_value" is the string "busy", not a number`}},
		{"boolean", csvAnswer(table(0, "boolean", "metricvalue", "true")), []string{`column "metricvalue" is bool true, not a number`}},
		{"null", csvAnswer(table(0, "double", "metricvalue", "")), []string{`column "metricvalue" is null`}},
		{"null metricvalue does not fall back", csvAnswer(table(0, "double,double", "_value,metricvalue", "1,")), []string{`column "metricvalue" is null`}},
		{"NaN", csvAnswer(table(0, "double", "_value", "NaN")), []string{`column "_value" is NaN, not a finite number`}},
		{"+Inf", csvAnswer(table(0, "double", "_value", "+Inf")), []string{`column "_value" is +Inf, not a finite number`}},
		{"out of range", csvAnswer(table(0, "double", "_value", "1e300")), []string{"out of range"}},
		{"no value column", csvAnswer(table(0, "double,string", "max,host", "1,a")),
			[]string{`neither a "metricvalue" nor a "_value" column (it has "host", "max", "result", "table")`}},
		{"flux error in the answer", csvAnswer("#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,failed to create physical plan: bounds contain zero time,897\r\n"),
			[]string{"reading the result: failed to create physical plan: bounds contain zero time,897"}},
		{"bad CSV", csvAnswer("not,annotated\r\n"), []string{"reading the result: parsing error, annotations not found"}},
		{"1.8 error (recorded)", jsonErr(500, `{"error":"failed to initialize execute state: no database"}`, "X-Influxdb-Error", "failed to initialize execute state: no database"),
			[]string{"the server answered 500 Internal Server Error: failed to initialize execute state: no database"}},
		{"1.8 syntax error (recorded)", jsonErr(500, `{"error":"loc 1:8-1:14: expected RPAREN, got EOF"}`, "X-Influxdb-Error", "loc 1:8-1:14: expected RPAREN, got EOF"),
			[]string{"500 Internal Server Error: loc 1:8-1:14: expected RPAREN, got EOF"}},
		{"2.x error", jsonErr(400, `{"code":"invalid","message":"compilation failed: error at @1:1-1:5: undefined identifier"}`),
			[]string{"the server answered 400 Bad Request: invalid: compilation failed: error at @1:1-1:5: undefined identifier"}},
		{"unauthorized", jsonErr(401, `{"code":"unauthorized","message":"unauthorized access"}`),
			[]string{"401 Unauthorized: unauthorized: unauthorized access (check the token and the org)"}},
		{"not found", answer{status: 404, header: map[string]string{"Content-Type": "text/plain"}, body: "404 page not found\n"},
			[]string{"404 Not Found: 404 page not found (is the address an InfluxDB 2"}},
		{"long HTML body is clipped", answer{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html>" + strings.Repeat("x", 5000) + "</html>"},
			[]string{"502 Bad Gateway: <html>xxx", "…"}},
		{"server without a message", answer{status: 503}, []string{"503 Service Unavailable: no message"}},
		{"server JSON without a message", jsonErr(503, `{}`), []string{"503 Service Unavailable: unavailable: service temporarily unavailable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newInflux(t, func(request) answer { return tc.reply })
			c := mustNew(t, cfg(nil), opts(f.URL))
			got, err := collect(t, c)
			if err == nil {
				t.Fatalf("Collect = %v, want an error", got)
			}
			if got != nil {
				t.Errorf("values %v with the error, want none", got)
			}
			msg := err.Error()
			for _, w := range append([]string{"influxdb " + f.URL + ": query \"from(bucket"}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if len(msg) > 1000 {
				t.Errorf("error is %d bytes long", len(msg))
			}
		})
	}
}

func TestTokenNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-t0ken-value"
	// A server that echoes what it was sent.
	f := newInflux(t, func(r request) answer {
		return answer{status: 401, header: map[string]string{"Content-Type": "text/plain"}, body: "bad credentials: " + r.auth}
	})
	c := mustNew(t, cfg(map[string]string{KeyToken: secret}), opts(f.URL))
	_, err := collect(t, c)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "bad credentials: Token [token]") {
		t.Errorf("error %v: want the token redacted", err)
	}

	o := opts(f.URL)
	o.Token = secret
	c = mustNew(t, cfg(nil), o)
	if _, err := collect(t, c); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("error %v: want the flag token redacted", err)
	}

	// Creation errors name the key, not the token.
	for _, tok := range []string{secret + "\n", " " + secret, "a\x00" + secret, secret + "é"} {
		_, err := New(cfg(map[string]string{KeyToken: tok}), opts(f.URL))
		if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), `key "token"`) {
			t.Errorf("token %q: error %v, want one naming the key only", tok, err)
		}
		o := opts(f.URL)
		o.Token = tok
		_, err = New(cfg(nil), o)
		if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "--influxdb-token") {
			t.Errorf("flag token %q: error %v, want one naming the flag only", tok, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  collector.Config
		opts Options
		want []string
	}{
		{"no address", cfg(nil), Options{}, []string{`no InfluxDB address: --influxdb-address is not set and key "address" does not name one`}},
		{"no query", cfg(map[string]string{KeyQuery: "<unset>"}), opts("http://influx:8086"), []string{`key "query": is required (a Flux query)`}},
		{"blank query", cfg(map[string]string{KeyQuery: " \n"}), opts("http://influx:8086"), []string{`key "query": is required`}},
		{"bad scheme", cfg(map[string]string{KeyAddress: "ftp://influx"}), opts(""), []string{`key "address": "ftp://influx": the scheme must be http or https`}},
		{"no scheme", cfg(map[string]string{KeyAddress: "influx:8086"}), opts(""), []string{`key "address": "influx:8086": the scheme must be http or https`}},
		{"credentials", cfg(map[string]string{KeyAddress: "http://u:p@influx"}), opts(""), []string{`key "address"`, "credentials in the URL are not supported"}},
		{"query in address", cfg(map[string]string{KeyAddress: "http://influx/?org=x"}), opts(""), []string{`a query or fragment is not supported`}},
		{"not a URL", cfg(map[string]string{KeyAddress: "http://in flux"}), opts(""), []string{`key "address": "http://in flux": not a URL`}},
		{"bad flag address", cfg(nil), opts("influx"), []string{`--influxdb-address "influx": the scheme must be http or https`}},
		{"bad timeout", cfg(map[string]string{KeyRequestTimeout: "soon"}), opts("http://influx"), []string{`key "request-timeout": "soon": not a duration`}},
		{"zero timeout", cfg(map[string]string{KeyRequestTimeout: "0s"}), opts("http://influx"), []string{`key "request-timeout": "0s": must be positive`}},
		{"object metric", collector.Config{Kind: collector.Object, Keys: map[string]string{KeyQuery: "q"}}, opts("http://influx"),
			[]string{"the influxdb collector serves External metrics only, not Object"}},
		{"everything at once", collector.Config{Kind: collector.Pods, Keys: map[string]string{KeyRequestTimeout: "-1s", KeyAddress: "x"}}, Options{},
			[]string{"not Pods", `key "query"`, `key "request-timeout"`, `key "address": "x"`}},
	}
	for _, tc := range tests {
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

func TestRequestTimeout(t *testing.T) {
	f := newInflux(t, func(request) answer {
		a := csvAnswer(recordedMetricValue)
		a.delay = 5 * time.Second
		return a
	})
	c := mustNew(t, cfg(map[string]string{KeyRequestTimeout: "50ms"}), opts(f.URL))
	start := time.Now()
	_, err := collect(t, c)
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms (request-timeout)") {
		t.Errorf("error %v, want the timeout named", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Collect took %v", d)
	}

	// A caller's cancellation is not reported as the timeout.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	c = mustNew(t, cfg(nil), opts(f.URL))
	_, err = c.Collect(ctx)
	if err == nil || strings.Contains(err.Error(), "request-timeout") || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("error %v, want the cancellation", err)
	}
}

func TestMaxBodyBytes(t *testing.T) {
	big := table(0, "double", "_value", strings.Split(strings.Repeat("1,", 5000), ",")[:5000]...)
	for _, gz := range []bool{false, true} {
		f := newInflux(t, func(request) answer {
			a := csvAnswer(big)
			a.gzipped = gz
			return a
		})
		o := opts(f.URL)
		o.MaxBodyBytes = 1000
		c := mustNew(t, cfg(nil), o)
		_, err := collect(t, c)
		if err == nil || !strings.Contains(err.Error(), "the answer is larger than 1000 bytes") {
			t.Errorf("gzip %v: error %v, want the cap named", gz, err)
		}
	}
	// Exactly at the cap is fine.
	f := newInflux(t, func(request) answer { return csvAnswer(recordedMetricValue) })
	o := opts(f.URL)
	o.MaxBodyBytes = int64(len(recordedMetricValue))
	if _, err := collect(t, mustNew(t, cfg(nil), o)); err != nil {
		t.Errorf("an answer of exactly MaxBodyBytes: %v", err)
	}
}

func TestFactoryAndLabels(t *testing.T) {
	f := newInflux(t, func(request) answer { return csvAnswer(recordedMetricValue) })
	r := collector.NewRegistry()
	r.Register(collector.External, Type, Factory(opts(f.URL)), Keys...)
	conf := cfg(nil)
	c, err := r.New(conf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	got[0].Labels["type"] = "changed"
	again, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Labels["type"] != "influxdb" {
		t.Errorf("labels %v: changing a returned value changed the collector", again[0].Labels)
	}
	conf.Labels["type"] = "changed"
	if again, _ = collect(t, c); again[0].Labels["type"] != "influxdb" {
		t.Errorf("labels %v: changing the config changed the collector", again[0].Labels)
	}
	if keys, _ := r.KnownKeys(collector.External, Type); !cmp.Equal(keys, []string{"address", "org", "query", "request-timeout", "token"}) {
		t.Errorf("keys %v", keys)
	}
}
