// Package influxdb is the InfluxDB collector: it runs one user-defined Flux query per
// metric through the InfluxDB v2 query API (POST /api/v2/query, with the official client
// library) and serves the query's one number as an External metric (type "influxdb", or
// the legacy metric name "flux-query"). InfluxDB 2.x answers it, and so does InfluxDB 1.8
// with flux-enabled (bucket "db/retention-policy", any org, an empty token when
// authentication is off).
//
// Keys:
//
//	query            the Flux query (required); the annotation parser copies a legacy
//	                 "query-name" query here
//	address          an http or https URL queried instead of --influxdb-address
//	token            the token sent ("Authorization: Token ...") instead of
//	                 --influxdb-token
//	org              the organization (name or ID) instead of --influxdb-org
//	request-timeout  a positive Go duration bounding one query (default
//	                 Options.RequestTimeout, 15s)
//
// Other keys (the metric selector's labels such as "type") are left to their owners.
//
// The query must yield one record. Its value is the record's "metricvalue" column, the
// convention of the original's README (|> map(fn: (r) => ({metricvalue: r._value})), or
// |> rename(columns: {_value: "metricvalue"})), and otherwise its "_value" column; it must
// be a double, long or unsignedLong. No record is an error, not 0; several records (in
// one table or several) are an error naming their count: aggregate in the query, e.g.
// |> group() |> max(). A null, a string, a boolean, NaN and ±Inf are errors too, and so is
// a Flux error in the answer. Values are rounded to milli-units and stamped with the time
// the query was sent (from Options.Clock), since aggregates such as mean() carry no
// _time. Values carry the metric selector's labels. Errors name the address and the
// query, never a token.
//
// Differences from the original:
//   - The original has returned 0 for every query with rows since it moved to the v2 query
//     API (the first record was never decoded); the value is read here.
//   - "_value" is accepted when there is no "metricvalue" column (the original's issue
//     #191); several records, a null or a non-numeric value are errors instead of the
//     first record's value or 0.
//   - The README's example works as written: the query is the "query" key, with no
//     "query-name" label needed (the original required one and crashed on a metric
//     without a selector).
//   - A metric whose "address" differs from --influxdb-address is sent no
//     --influxdb-token, only its own "token" key: otherwise whoever may write an HPA
//     could send the adapter's token to a server of their choosing.
//   - No address at all, an address that is not an http or https URL, and a token that
//     cannot be sent in a header are errors when the metric is created, not at each
//     query; each query has a timeout and the answer a size cap.
package influxdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/query"
	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

// Type is the collector type this package serves, for External metrics.
const Type = "influxdb"

// Configuration keys.
const (
	KeyQuery          = "query"
	KeyAddress        = "address"
	KeyToken          = "token"
	KeyOrg            = "org"
	KeyRequestTimeout = "request-timeout"
)

// Keys are the configuration keys the collector reads.
var Keys = []string{KeyQuery, KeyAddress, KeyToken, KeyOrg, KeyRequestTimeout}

// Result columns the value is read from, in order of preference.
const (
	ValueColumn         = "metricvalue"
	FallbackValueColumn = "_value"
)

// Defaults.
const (
	DefaultRequestTimeout = 15 * time.Second
	DefaultConnectTimeout = 15 * time.Second
	// DefaultMaxBodyBytes caps one (uncompressed) answer: a query for one number that
	// answers more is wrong anyway, and the cap keeps a runaway query from holding the
	// adapter for its whole timeout.
	DefaultMaxBodyBytes = 16 << 20
	// excerpt is how much of the query or of an error body an error quotes.
	excerpt = 200
	// userAgent is appended to the client library's User-Agent.
	userAgent = "kube-metrics-adapter"
)

// Options are what the collectors of one process share: the command line's defaults and
// the HTTP machinery.
type Options struct {
	// Address is --influxdb-address, the server queried when a metric has no address key;
	// empty: every metric must name its server.
	Address string
	// Token is --influxdb-token, sent to Address only (never to a metric's own address).
	Token string
	// Org is --influxdb-org, used when a metric has no org key.
	Org string
	// Transport sends the requests; nil means one transport shared by the collectors of
	// one Factory (or one per New), with a DefaultConnectTimeout dialer.
	Transport http.RoundTripper
	// RequestTimeout bounds one query unless the request-timeout key says otherwise; 0
	// means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes caps one answer; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Clock stamps the values; nil means the real clock.
	Clock clock.PassiveClock
}

func (o Options) withDefaults() Options {
	if o.Transport == nil {
		o.Transport = NewTransport()
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// NewTransport returns a transport like http.DefaultTransport's, with a
// DefaultConnectTimeout dialer.
func NewTransport() http.RoundTripper {
	return collector.NewTransport(DefaultConnectTimeout)
}

// Factory returns a collector.Factory building collectors with opts, sharing one
// transport. Register it for collector.External.
func Factory(opts Options) collector.Factory {
	opts = opts.withDefaults()
	return func(cfg collector.Config) (collector.Collector, error) { return New(cfg, opts) }
}

// CheckAddress says why s is not a usable InfluxDB address: the scheme must be http or
// https, the host present, and credentials have no place in it (they would show in every
// error naming the server; use a token). A path prefix is kept (the API path is appended).
func CheckAddress(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("the scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	if u.User != nil {
		return errors.New("credentials in the URL are not supported (use a token)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("a query or fragment is not supported (the API path is appended)")
	}
	return nil
}

// CheckToken says why t cannot be sent in an Authorization header, without quoting it.
func CheckToken(t string) error {
	if strings.TrimSpace(t) != t {
		return errors.New("has leading or trailing white space, such as a final newline (the value is not shown)")
	}
	for _, r := range t {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return errors.New("holds a character not allowed in an HTTP header, such as a control character or non-ASCII (the value is not shown)")
		}
	}
	return nil
}

// Collector collects one InfluxDB metric.
type Collector struct {
	address string
	query   string
	token   string // only to keep it out of errors
	api     api.QueryAPI
	timeout time.Duration
	clock   clock.PassiveClock
	labels  map[string]string
}

var _ collector.Collector = (*Collector)(nil)

// New validates cfg's keys, reporting every problem at once, each naming its key and value
// (never a token's).
func New(cfg collector.Config, opts Options) (collector.Collector, error) {
	opts = opts.withDefaults()
	var errs []error
	bad := func(key, value string, err error) {
		errs = append(errs, fmt.Errorf("key %q: %q: %w", key, clip.String(value, excerpt), err))
	}
	switch cfg.Kind {
	case "", collector.External:
	default:
		errs = append(errs, fmt.Errorf("the influxdb collector serves External metrics only, not %s", cfg.Kind))
	}

	q := cfg.Keys[KeyQuery]
	if strings.TrimSpace(q) == "" {
		errs = append(errs, fmt.Errorf("key %q: is required (a Flux query)", KeyQuery))
	}

	timeout, err := collector.PositiveDuration(cfg.Keys, KeyRequestTimeout, opts.RequestTimeout)
	if err != nil {
		bad(KeyRequestTimeout, cfg.Keys[KeyRequestTimeout], err)
	}

	address, ownAddress := cfg.Keys[KeyAddress]
	switch {
	case ownAddress:
		if err := CheckAddress(address); err != nil {
			bad(KeyAddress, address, err)
		}
	case opts.Address == "":
		errs = append(errs, fmt.Errorf("no InfluxDB address: --influxdb-address is not set and key %q does not name one", KeyAddress))
	default:
		address = opts.Address
		if err := CheckAddress(address); err != nil {
			errs = append(errs, fmt.Errorf("--influxdb-address %q: %w", clip.String(address, excerpt), err))
		}
	}

	token, ownToken := cfg.Keys[KeyToken]
	if ownToken {
		if err := CheckToken(token); err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", KeyToken, err))
		}
	} else if !ownAddress || sameAddress(address, opts.Address) {
		// The flag's token goes to the flag's server only.
		token = opts.Token
		if err := CheckToken(token); err != nil {
			errs = append(errs, fmt.Errorf("--influxdb-token: %w", err))
		}
	}

	org, ok := cfg.Keys[KeyOrg]
	if !ok {
		org = opts.Org
	}

	if len(errs) > 0 {
		return nil, redact(errors.Join(errs...), token, opts.Token)
	}

	httpClient := &http.Client{Transport: &cappedTransport{base: opts.Transport, max: opts.MaxBodyBytes}}
	clientOpts := influxdb2.DefaultOptions().SetHTTPClient(httpClient).SetApplicationName(userAgent)
	client := influxdb2.NewClientWithOptions(address, token, clientOpts)
	return &Collector{
		address: address,
		query:   q,
		token:   token,
		api:     client.QueryAPI(org),
		timeout: timeout,
		clock:   opts.Clock,
		labels:  copyLabels(cfg.Labels),
	}, nil
}

func sameAddress(a, b string) bool {
	return b != "" && strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

func copyLabels(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// Collect runs the query once and returns its one value.
func (c *Collector) Collect(ctx context.Context) ([]collector.Value, error) {
	now := c.clock.Now()
	v, err := c.run(ctx)
	if err == nil {
		var q collector.Value
		if q.Value, err = collector.MilliQuantity(v); err == nil {
			q.Labels = copyLabels(c.labels)
			q.Timestamp = now
			return []collector.Value{q}, nil
		}
	}
	err = fmt.Errorf("influxdb %s: query %q: %w", c.address, clip.String(c.query, excerpt), err)
	return nil, redact(err, c.token)
}

// run sends the query and reads its one value.
func (c *Collector) run(parent context.Context) (float64, error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	res, err := c.api.Query(ctx, c.query)
	if err != nil {
		return 0, c.requestError(parent, ctx, err)
	}
	defer func() { _ = res.Close() }()

	var first *query.FluxRecord
	records := 0
	tables := map[string]bool{} // by result and table: every yield numbers its tables from 0
	for res.Next() {
		records++
		if records == 1 {
			first = res.Record()
		}
		tables[fmt.Sprint(res.Record().Result(), "/", res.Record().Table())] = true
	}
	if err := res.Err(); err != nil {
		if ctx.Err() != nil {
			return 0, c.requestError(parent, ctx, err)
		}
		return 0, fmt.Errorf("reading the result: %s", clip.String(err.Error(), excerpt))
	}
	switch {
	case records == 0:
		return 0, errors.New("the query returned no data; check its bucket, range and filters (an empty result is an error, not 0)")
	case records > 1:
		return 0, fmt.Errorf("the query returned %d records in %d tables, want exactly one: aggregate in the query (e.g. |> group() |> max())", records, len(tables))
	}
	return value(first)
}

// requestError describes a failed request: a timeout names the timeout, an HTTP error its
// status and an excerpt of the server's message.
func (c *Collector) requestError(parent, ctx context.Context, err error) error {
	if ctx.Err() != nil && parent.Err() == nil {
		return fmt.Errorf("no answer within %v (request-timeout)", c.timeout)
	}
	var he *influxhttp.Error
	if !errors.As(err, &he) || he.StatusCode == 0 {
		return err
	}
	status := fmt.Sprintf("%d %s", he.StatusCode, http.StatusText(he.StatusCode))
	detail := strings.TrimSpace(he.Message)
	if he.Code != "" && !strings.HasPrefix(he.Code, fmt.Sprint(he.StatusCode)) {
		detail = strings.TrimSpace(he.Code + ": " + detail)
	}
	if he.Err != nil {
		detail = strings.TrimSpace(detail + " (unreadable error body: " + he.Err.Error() + ")")
	}
	if detail == "" {
		detail = "no message"
	}
	hint := ""
	switch he.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = " (check the token and the org)"
	case http.StatusNotFound:
		hint = " (is the address an InfluxDB 2, or an InfluxDB 1.8 with flux-enabled?)"
	}
	return fmt.Errorf("the server answered %s: %s%s", status, clip.String(detail, excerpt), hint)
}

// value reads the number of r's ValueColumn, else of its FallbackValueColumn.
func value(r *query.FluxRecord) (float64, error) {
	values := r.Values()
	col := ValueColumn
	v, ok := values[col]
	if !ok {
		col = FallbackValueColumn
		if v, ok = values[col]; !ok {
			return 0, fmt.Errorf("the record has neither a %q nor a %q column (it has %s)", ValueColumn, FallbackValueColumn, columns(values))
		}
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case nil:
		return 0, fmt.Errorf("column %q is null", col)
	case string:
		return 0, fmt.Errorf("column %q is the string %q, not a number", col, clip.String(x, excerpt))
	default:
		return 0, fmt.Errorf("column %q is %T %v, not a number", col, v, v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("column %q is %v, not a finite number", col, f)
	}
	return f, nil
}

func columns(values map[string]any) string {
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, fmt.Sprintf("%q", k))
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "no columns"
	}
	return clip.String(strings.Join(names, ", "), excerpt)
}

// redact replaces the non-empty tokens in err's text (a server may echo what it was sent).
func redact(err error, tokens ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, t := range tokens {
		if t != "" && strings.Contains(msg, t) {
			msg = strings.ReplaceAll(msg, t, "[token]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}

// cappedTransport leaves decompression to base, so that the cap applies to what is
// parsed, and caps every answer's body at max bytes.
type cappedTransport struct {
	base http.RoundTripper
	max  int64
}

func (t *cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Accept-Encoding") != "" {
		// The client library asks for gzip and inflates without limit; without the header,
		// an http.Transport asks for gzip itself and inflates transparently.
		req = req.Clone(req.Context())
		req.Header.Del("Accept-Encoding")
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.max, max: t.max}
	return resp, nil
}

// cappedBody fails reads once more than max bytes came.
type cappedBody struct {
	rc        io.ReadCloser
	left, max int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("the answer is larger than %d bytes", b.max)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }
