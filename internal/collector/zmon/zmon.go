// Package zmon is the ZMON collector: it reads the values a ZMON check stored in KairosDB
// through KairosDB's datapoints API, as an External metric (type "zmon", or the legacy
// metric name "zmon-check").
//
// Keys:
//
//	check-id      the ZMON check's ID, a positive integer (required)
//	key           the data point key within the check's result, e.g. "custom.value" or,
//	              from an annotation (a label cannot hold "*"), "custom.*"
//	tag-<name>    a KairosDB tag the data points must carry, e.g. "tag-application:
//	              my-app" (ZMON stores application, alias and entity); several allowed
//	aggregators   a comma-separated list of KairosDB aggregators applied in order, each
//	              over the whole duration: avg, count, diff, last, max, min or sum
//	              (default "last")
//	duration      a Go duration, how far back the query reaches, also each aggregator's
//	              sampling (default 10m); a whole number of milliseconds
//
// Annotations win over selector labels of the same key (the annotation parser merges
// them), which is how "*" patterns are given. Other keys (the selector's "type" label,
// ...) are left to their owners and ignored here. tag-<name> keys are a family, not a
// list: Keys holds the fixed keys, and KnownKey says whether any key is one of this
// collector's; the adapter's check for unknown keys must consult KnownKey, or it reports
// every tag-<name> annotation as unknown (the tags are used all the same).
//
// # Query
//
// Each collection POSTs one query to <endpoint>/api/v1/datapoints/query, with the
// headers Content-Type and Accept application/json, X-Attribution
// kube-metrics-adapter/<check-id> and, when a token is configured, Authorization Bearer.
// For check-id 1234, key "custom.value", tag-application "my-app", aggregators "avg,max"
// and duration 5m the body is (compacted on one line):
//
//	{"start_relative":{"value":5,"unit":"minutes"},
//	 "metrics":[{"name":"zmon.check.1234","limit":10000,
//	   "tags":{"application":["my-app"],"key":["custom.value"]},
//	   "group_by":[{"name":"tag","tags":["key"]}],
//	   "aggregators":[{"name":"avg","sampling":{"value":5,"unit":"minutes"}},
//	                  {"name":"max","sampling":{"value":5,"unit":"minutes"}}]}]}
//
// Without a key, "tags" holds only the tag-<name> keys ({} with none) and "group_by" is
// []. A duration is written in the largest of weeks, days, hours, minutes, seconds and
// milliseconds that measures it exactly (90s is 90 seconds).
//
// # Value
//
// The value is the last data point of the answer's first result ([milliseconds, value]),
// stamped with the point's own time and rounded to milli-units; the External value
// carries the metric selector's labels. An answer without a result or data point is an
// error, as are a non-numeric, NaN or out-of-range value and a malformed answer.
//
// # Token
//
// Options.Token (--token) is sent when set; otherwise, with Options.CredentialsDir
// (--credentials-dir), the token in the Platform IAM file
// <credentials-dir>/<token-name>-token-secret (--zmon-token-name, default "zmon"), read
// at the first collection and again whenever it changes. The token goes only to the
// endpoint's scheme and host, and no error shows it.
//
// Differences from the original:
//   - No data (no result, or a result without data points) is an error; the original
//     returned no value and no error, so the HPA only saw the metric go stale.
//   - Keys are checked when the collector is made, every problem at once: unknown
//     aggregators (the original failed each collection), a check-id that is not a
//     positive integer, an empty key, tag or aggregator, a conflicting tag-key.
//   - A duration is converted exactly; the original rounded to its largest unit (1h30m
//     queried 2 hours) and counted a month as 30 days and a year as 365 (KairosDB's are
//     calendar ones), so those two units are not used.
//   - Spaces around aggregator names are allowed ("avg, max").
package zmon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector"
	"github.com/custompodautoscaler/cpa/internal/collector/token"
)

// Type is the collector type of External metrics this package serves.
const Type = "zmon"

// LegacyMetricName is the External metric name that stands for this collector when the
// selector has no "type" label.
const LegacyMetricName = "zmon-check"

// Configuration keys.
const (
	KeyCheckID     = "check-id"
	KeyKey         = "key"
	KeyAggregators = "aggregators"
	KeyDuration    = "duration"
	// KeyTagPrefix starts the tag-<name> keys.
	KeyTagPrefix = "tag-"
)

// Keys are the fixed configuration keys the collector reads; tag-<name> keys are read
// too (see KnownKey).
var Keys = []string{KeyCheckID, KeyKey, KeyAggregators, KeyDuration}

// KnownKey says whether k is one of the collector's keys: one of Keys, or tag-<name>.
// The adapter's unknown-key check needs it besides Keys, since the tag keys cannot be
// listed.
func KnownKey(k string) bool {
	return slices.Contains(Keys, k) || (strings.HasPrefix(k, KeyTagPrefix) && len(k) > len(KeyTagPrefix))
}

// Aggregators are the KairosDB aggregators the aggregators key accepts, the original's
// set.
var Aggregators = []string{"avg", "count", "diff", "last", "max", "min", "sum"}

// Defaults.
const (
	DefaultDuration   = 10 * time.Minute
	DefaultAggregator = "last"
	// DefaultTokenName is --zmon-token-name's default.
	DefaultTokenName      = "zmon"
	DefaultRequestTimeout = 15 * time.Second
	DefaultConnectTimeout = 15 * time.Second
	// DefaultMaxBodyBytes caps one answer (a query returns at most Limit points per
	// result, but a key pattern may give many results).
	DefaultMaxBodyBytes = 16 << 20
	// Limit is the query's "limit", ZMON's maximum number of data points.
	Limit = 10000
	// QueryPath is appended to the endpoint.
	QueryPath = "/api/v1/datapoints/query"
	// excerpt is how much of a value or an answer an error quotes.
	excerpt = 200
)

// Options are what the collectors of one process share.
type Options struct {
	// Endpoint is the KairosDB URL (--zmon-kariosdb-endpoint, the original's spelling),
	// http or https, maybe with a path prefix; QueryPath is appended.
	Endpoint string
	// Token (--token), if set, is the bearer token sent; it wins over CredentialsDir.
	Token string
	// CredentialsDir (--credentials-dir, /meta/credentials by default there) holds the
	// token file TokenFile(CredentialsDir, TokenName) when Token is empty. Empty with an
	// empty Token: no Authorization header.
	CredentialsDir string
	// TokenName (--zmon-token-name) names the token file; "" means DefaultTokenName.
	TokenName string
	// Transport sends the requests; nil means one transport shared by the collectors of
	// one Factory, with a DefaultConnectTimeout dialer.
	Transport http.RoundTripper
	// RequestTimeout bounds one query, answer included; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes caps one answer; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Clock times the token file's re-reads; nil means the real clock.
	Clock clock.PassiveClock
}

// TokenFile is the Platform IAM file holding the token named name in dir:
// <dir>/<name>-token-secret.
func TokenFile(dir, name string) string {
	return filepath.Join(dir, name+"-token-secret")
}

func (o Options) withDefaults() Options {
	if o.Transport == nil {
		o.Transport = collector.NewTransport(DefaultConnectTimeout)
	}
	if o.TokenName == "" {
		o.TokenName = DefaultTokenName
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

// shared is what the collectors of one Factory share: the endpoint, the token source
// (and so its file's cache) and the client.
type shared struct {
	opts     Options
	queryURL string
	source   token.Source // nil: no token
	client   *http.Client
	err      error // what is wrong with opts
}

func newShared(opts Options) *shared {
	opts = opts.withDefaults()
	s := &shared{opts: opts}
	var errs []error
	if opts.Endpoint == "" {
		errs = append(errs, errors.New("no KairosDB endpoint: --zmon-kariosdb-endpoint is not set"))
	} else if err := CheckEndpoint(opts.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("--zmon-kariosdb-endpoint %q: %w", clip.String(opts.Endpoint, excerpt), err))
	}
	switch {
	case opts.Token != "":
		if err := token.Check(opts.Token); err != nil {
			errs = append(errs, fmt.Errorf("--token: the token %w", err))
		}
		s.source = token.Static(opts.Token)
	case opts.CredentialsDir != "":
		if strings.ContainsAny(opts.TokenName, `/\`) || opts.TokenName == "." || opts.TokenName == ".." {
			errs = append(errs, fmt.Errorf("--zmon-token-name %q: a name, not a path", opts.TokenName))
		}
		s.source = token.NewFile(TokenFile(opts.CredentialsDir, opts.TokenName), opts.Clock)
	}
	if len(errs) > 0 {
		s.err = errors.Join(errs...)
		return s
	}
	u, _ := url.Parse(opts.Endpoint) // checked above
	s.queryURL = strings.TrimSuffix(opts.Endpoint, "/") + QueryPath
	rt := opts.Transport
	if s.source != nil {
		rt = token.NewBearer(rt, s.source, u)
	}
	s.client = &http.Client{Transport: rt}
	return s
}

// redact replaces the token in s, should an answer quote it.
func (s *shared) redact(msg string) string {
	if s.source == nil {
		return msg
	}
	if tok, err := s.source.Token(); err == nil && tok != "" {
		msg = strings.ReplaceAll(msg, tok, "<redacted>")
	}
	return msg
}

// CheckEndpoint says why s is not a usable KairosDB endpoint: the scheme must be http or
// https and the host present; credentials, a query and a fragment have no place in it.
func CheckEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("not a URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("the scheme must be http or https")
	case u.Host == "":
		return errors.New("no host")
	case u.User != nil:
		return errors.New("credentials in the URL are not supported (use --token or --credentials-dir)")
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "#"):
		return errors.New("a query or fragment is not supported (the API path is appended)")
	}
	return nil
}

// Factory returns a collector.Factory building collectors with opts, sharing one
// client, transport and token source. Register it for collector.External with Keys.
func Factory(opts Options) collector.Factory {
	s := newShared(opts)
	return func(cfg collector.Config) (collector.Collector, error) { return newCollector(cfg, s) }
}

// New validates cfg's keys and opts, reporting every problem at once, each naming its
// key (or flag) and value.
func New(cfg collector.Config, opts Options) (collector.Collector, error) {
	return newCollector(cfg, newShared(opts))
}

// Collector collects one ZMON check's metric.
type Collector struct {
	s       *shared
	checkID int64
	what    string // the check, key and tags, for errors
	body    []byte // the query: relative in time, so the same at every collection
	labels  map[string]string
}

var _ collector.Collector = (*Collector)(nil)

func newCollector(cfg collector.Config, s *shared) (collector.Collector, error) {
	var errs []error
	bad := func(key, value string, err error) {
		errs = append(errs, fmt.Errorf("key %q: %q: %w", key, clip.String(value, excerpt), err))
	}
	if cfg.Kind != "" && cfg.Kind != collector.External {
		errs = append(errs, fmt.Errorf("the zmon collector serves External metrics, not %s", cfg.Kind))
	}
	if s.err != nil {
		errs = append(errs, s.err)
	}

	var checkID int64
	switch v, ok := cfg.Keys[KeyCheckID]; {
	case !ok:
		errs = append(errs, fmt.Errorf("key %q: is required (the ZMON check's ID)", KeyCheckID))
	default:
		id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch {
		case err != nil:
			bad(KeyCheckID, v, errors.New("not an integer"))
		case id <= 0:
			bad(KeyCheckID, v, errors.New("must be positive"))
		default:
			checkID = id
		}
	}

	key, hasKey := cfg.Keys[KeyKey]
	if hasKey && strings.TrimSpace(key) == "" {
		bad(KeyKey, key, errors.New("is empty (leave the key out to query every key of the check)"))
	}

	tags := map[string][]string{}
	for _, k := range sortedKeys(cfg.Keys) {
		name, ok := strings.CutPrefix(k, KeyTagPrefix)
		if !ok {
			continue
		}
		v := cfg.Keys[k]
		switch {
		case name == "":
			bad(k, v, errors.New("no tag name (want tag-<name>, e.g. tag-application)"))
		case strings.TrimSpace(v) == "":
			bad(k, v, errors.New("is empty"))
		default:
			tags[name] = []string{v}
		}
	}
	groupBy := []tagGroup{}
	if hasKey {
		if t, ok := cfg.Keys[KeyTagPrefix+"key"]; ok && t != key {
			errs = append(errs, fmt.Errorf("keys %q (%q) and %q (%q): both set the tag \"key\", differently",
				KeyKey, clip.String(key, excerpt), KeyTagPrefix+"key", clip.String(t, excerpt)))
		}
		tags["key"] = []string{key}
		groupBy = append(groupBy, tagGroup{Name: "tag", Tags: []string{"key"}})
	}

	duration, err := collector.PositiveDuration(cfg.Keys, KeyDuration, DefaultDuration)
	switch {
	case err != nil:
		bad(KeyDuration, cfg.Keys[KeyDuration], err)
	case duration%time.Millisecond != 0:
		bad(KeyDuration, cfg.Keys[KeyDuration], errors.New("must be a whole number of milliseconds"))
	}
	span := relative(duration)

	aggNames := []string{DefaultAggregator}
	if v, ok := cfg.Keys[KeyAggregators]; ok {
		names, err := parseAggregators(v)
		if err != nil {
			bad(KeyAggregators, v, err)
		}
		aggNames = names
	}
	aggs := make([]aggregator, 0, len(aggNames))
	for _, n := range aggNames {
		aggs = append(aggs, aggregator{Name: n, Sampling: span})
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	body, err := json.Marshal(query{
		StartRelative: span,
		Metrics: []metric{{
			Name:        fmt.Sprintf("zmon.check.%d", checkID),
			Limit:       Limit,
			Tags:        tags,
			GroupBy:     groupBy,
			Aggregators: aggs,
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("the KairosDB query: %w", err)
	}
	return &Collector{
		s:       s,
		checkID: checkID,
		what:    describe(checkID, key, hasKey, tags),
		body:    body,
		labels:  copyLabels(cfg.Labels),
	}, nil
}

func describe(checkID int64, key string, hasKey bool, tags map[string][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "zmon check %d", checkID)
	var parts []string
	if hasKey {
		parts = append(parts, fmt.Sprintf("key %q", clip.String(key, excerpt)))
	}
	for _, name := range sortedKeys(tags) {
		if name == "key" && hasKey {
			continue
		}
		parts = append(parts, fmt.Sprintf("tag %s=%q", name, clip.String(tags[name][0], excerpt)))
	}
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	return b.String()
}

func parseAggregators(v string) ([]string, error) {
	var out []string
	for n := range strings.SplitSeq(v, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			return nil, fmt.Errorf("an empty aggregator (want a comma-separated list of %s)", strings.Join(Aggregators, ", "))
		case !slices.Contains(Aggregators, n):
			return nil, fmt.Errorf("unknown aggregator %q (known: %s)", clip.String(n, excerpt), strings.Join(Aggregators, ", "))
		}
		out = append(out, n)
	}
	return out, nil
}

// units are the KairosDB time units used, largest first. KairosDB's months and years are
// calendar ones, which no Go duration measures exactly.
var units = []struct {
	name string
	d    time.Duration
}{
	{"weeks", 7 * 24 * time.Hour},
	{"days", 24 * time.Hour},
	{"hours", time.Hour},
	{"minutes", time.Minute},
	{"seconds", time.Second},
	{"milliseconds", time.Millisecond},
}

// relative writes d (a whole number of milliseconds) in the largest unit measuring it
// exactly.
func relative(d time.Duration) span {
	for _, u := range units {
		if d%u.d == 0 {
			return span{Value: int64(d / u.d), Unit: u.name}
		}
	}
	return span{Value: d.Milliseconds(), Unit: "milliseconds"}
}

// The query of KairosDB's POST /api/v1/datapoints/query, as much of it as is sent.
type query struct {
	StartRelative span     `json:"start_relative"`
	Metrics       []metric `json:"metrics"`
}

type span struct {
	Value int64  `json:"value"`
	Unit  string `json:"unit"`
}

type metric struct {
	Name        string              `json:"name"`
	Limit       int                 `json:"limit"`
	Tags        map[string][]string `json:"tags"`
	GroupBy     []tagGroup          `json:"group_by"`
	Aggregators []aggregator        `json:"aggregators"`
}

type tagGroup struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

type aggregator struct {
	Name     string `json:"name"`
	Sampling span   `json:"sampling"`
}

// response is the part of the query's answer read.
type response struct {
	Queries []struct {
		Results []struct {
			Values []json.RawMessage `json:"values"`
		} `json:"results"`
	} `json:"queries"`
}

// errorResponse is KairosDB's answer to a bad query.
type errorResponse struct {
	Errors []string `json:"errors"`
}

// Collect runs the query once and returns the last data point's value.
func (c *Collector) Collect(ctx context.Context) ([]collector.Value, error) {
	body, err := c.post(ctx)
	if err != nil {
		return nil, err
	}
	v, ts, err := lastPoint(body)
	if err != nil {
		return nil, fmt.Errorf("%s: POST %s: %s", c.what, c.s.queryURL, c.s.redact(err.Error()))
	}
	q, err := collector.MilliQuantity(v)
	if err != nil {
		return nil, fmt.Errorf("%s: POST %s: %w", c.what, c.s.queryURL, err)
	}
	return []collector.Value{{Labels: copyLabels(c.labels), Value: q, Timestamp: ts}}, nil
}

func (c *Collector) post(parent context.Context) ([]byte, error) {
	fail := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%s: POST %s: %s", c.what, c.s.queryURL, c.s.redact(fmt.Sprintf(format, args...)))
	}
	timeout := c.s.opts.RequestTimeout
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.s.queryURL, bytes.NewReader(c.body))
	if err != nil {
		return fail("%v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Attribution", fmt.Sprintf("kube-metrics-adapter/%d", c.checkID))
	resp, err := c.s.client.Do(req)
	if err != nil {
		if parent.Err() == nil && ctx.Err() != nil {
			return fail("no answer within %s: %v", timeout, err)
		}
		return fail("%v", err)
	}
	defer resp.Body.Close()
	limit := c.s.opts.MaxBodyBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if parent.Err() == nil && ctx.Err() != nil {
			return fail("no whole answer within %s: %v", timeout, err)
		}
		return fail("reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorResponse
		if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
			return fail("%s: %s", resp.Status, clip.String(strings.Join(e.Errors, "; "), 2*excerpt))
		}
		return fail("%s: %s", resp.Status, clip.Quote(body, excerpt))
	}
	if int64(len(body)) > limit {
		return fail("the answer is larger than the %d bytes allowed", limit)
	}
	return body, nil
}

// lastPoint returns the value and time of the last data point of the first result.
func lastPoint(body []byte) (float64, time.Time, error) {
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, time.Time{}, fmt.Errorf("not a KairosDB answer: %v: %s", err, clip.Quote(body, excerpt))
	}
	switch {
	case len(r.Queries) == 0:
		return 0, time.Time{}, errors.New("the answer holds no query")
	case len(r.Queries[0].Results) == 0:
		return 0, time.Time{}, errors.New("no result (the check stores no such data)")
	}
	values := r.Queries[0].Results[0].Values
	if len(values) == 0 {
		return 0, time.Time{}, errors.New("no data points in the queried time range (no such key or tags, or the check stopped reporting)")
	}
	raw := values[len(values)-1]
	var point []json.RawMessage
	if err := json.Unmarshal(raw, &point); err != nil || len(point) != 2 {
		return 0, time.Time{}, fmt.Errorf("the last data point %s is not [time, value]", clip.Quote(raw, excerpt))
	}
	tn, err := number(point[0])
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("the last data point's time %w", err)
	}
	ms, err := tn.Int64()
	if err != nil {
		f, ferr := tn.Float64()
		if ferr != nil || math.IsNaN(f) || f < -(1<<62) || f > 1<<62 {
			return 0, time.Time{}, fmt.Errorf("the last data point's time %s is not a time in milliseconds", tn)
		}
		ms = int64(f)
	}
	vn, err := number(point[1])
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("the last data point's value %w", err)
	}
	v, err := vn.Float64()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("the last data point's value %s is out of range", clip.String(vn.String(), excerpt))
	}
	return v, time.UnixMilli(ms).UTC(), nil
}

// number reads raw as a JSON number; a string, null, an object... is an error.
func number(raw json.RawMessage) (json.Number, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("%s is not JSON: %v", clip.Quote(raw, excerpt), err)
	}
	n, ok := v.(json.Number)
	if !ok {
		return "", fmt.Errorf("%s is not a number", clip.Quote(raw, excerpt))
	}
	return n, nil
}

func copyLabels(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
