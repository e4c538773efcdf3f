// Package httpjson is the External json-path collector (the original's "HTTP collector"):
// it GETs an endpoint that answers JSON and extracts one number with a JSONPath
// (json-key) or an ajson script expression (json-eval), aggregating several numbers with
// avg, min, max or sum.
//
// Keys:
//
//	endpoint         the http or https URL to GET (required)
//	json-key         a JSONPath, e.g. "$.queue.depth" (this or json-eval)
//	json-eval        an ajson expression, e.g. "avg($.workers[*].load)" (this or json-key)
//	aggregator       avg, min, max or sum; required when the path yields several numbers
//	request-timeout  a positive Go duration bounding one request (default Options.RequestTimeout)
//
// A json-key result that is empty, missing, not a number, NaN or infinite is an error. A
// json-eval expression is computed by the library with its own rules: its functions
// decide what they make of empty input (avg of an empty array is 0), so prefer json-key
// with an aggregator where an empty source must not read as 0.
//
// Other keys (the metric selector's labels such as "type", "interval") are left to their
// owners and ignored here.
package httpjson

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

// Type is the collector type of External metrics this package serves.
const Type = "json-path"

// Keys are the configuration keys the collector reads.
var Keys = []string{KeyEndpoint, KeyJSONKey, KeyJSONEval, KeyAggregator, KeyRequestTimeout}

// Configuration keys.
const (
	KeyEndpoint       = "endpoint"
	KeyJSONKey        = "json-key"
	KeyJSONEval       = "json-eval"
	KeyAggregator     = "aggregator"
	KeyRequestTimeout = "request-timeout"
)

// Defaults, as the original's (15 s to connect, 15 s per request).
const (
	DefaultRequestTimeout = 15 * time.Second
	DefaultConnectTimeout = 15 * time.Second
	DefaultMaxBodyBytes   = 1 << 20
	// bodyExcerpt is how much of an error response's body an error quotes.
	bodyExcerpt = 256
)

// Options are what the collectors of one process share.
type Options struct {
	// Client sends the requests; nil means a client with a DefaultConnectTimeout dialer,
	// shared by the collectors of one Factory. Its own Timeout, if any, applies on top of
	// the request timeout.
	Client *http.Client
	// RequestTimeout bounds one request, body included, unless the request-timeout key
	// says otherwise; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes caps the response body read; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Clock stamps the values; nil means the real clock.
	Clock clock.PassiveClock
}

func (o Options) withDefaults() Options {
	if o.Client == nil {
		o.Client = &http.Client{Transport: collector.NewTransport(DefaultConnectTimeout)}
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

// Collector collects one External json-path metric.
type Collector struct {
	endpoint string
	path     *Path
	timeout  time.Duration
	labels   map[string]string
	opts     Options
}

var _ collector.Collector = (*Collector)(nil)

// Factory returns a collector.Factory building collectors with opts. Its collectors
// share one client (opts.Client, or one made here): a transport per collector would keep
// idle connections and their goroutines per HPA (1000 HPAs cost 30 MiB more that way).
func Factory(opts Options) collector.Factory {
	opts = opts.withDefaults()
	return func(cfg collector.Config) (collector.Collector, error) { return New(cfg, opts) }
}

// New validates cfg's keys, reporting every problem at once, each naming its key and value.
func New(cfg collector.Config, opts Options) (collector.Collector, error) {
	opts = opts.withDefaults()
	var errs []error
	bad := func(key, value string, err error) {
		errs = append(errs, fmt.Errorf("key %q: %q: %w", key, clip.String(value, 200), err))
	}
	if cfg.Kind != "" && cfg.Kind != collector.External {
		errs = append(errs, fmt.Errorf("the json-path HTTP collector serves External metrics, not %s", cfg.Kind))
	}

	endpoint, ok := cfg.Keys[KeyEndpoint]
	switch {
	case !ok || strings.TrimSpace(endpoint) == "":
		errs = append(errs, fmt.Errorf("key %q: is required", KeyEndpoint))
	default:
		if err := checkEndpoint(endpoint); err != nil {
			bad(KeyEndpoint, endpoint, err)
		}
	}

	agg, err := ParseAggregator(cfg.Keys[KeyAggregator])
	if err != nil {
		bad(KeyAggregator, cfg.Keys[KeyAggregator], err)
	}

	var path *Path
	jsonKey, hasKey := cfg.Keys[KeyJSONKey]
	jsonEval, hasEval := cfg.Keys[KeyJSONEval]
	switch {
	case hasKey && hasEval:
		errs = append(errs, fmt.Errorf("keys %q and %q: set exactly one, not both", KeyJSONKey, KeyJSONEval))
	case hasKey:
		if path, err = NewJSONPath(jsonKey, agg); err != nil {
			bad(KeyJSONKey, jsonKey, err)
		}
	case hasEval:
		if path, err = NewEval(jsonEval, agg); err != nil {
			bad(KeyJSONEval, jsonEval, err)
		}
	default:
		errs = append(errs, fmt.Errorf("keys %q or %q: one is required", KeyJSONKey, KeyJSONEval))
	}

	timeout, err := collector.PositiveDuration(cfg.Keys, KeyRequestTimeout, opts.RequestTimeout)
	if err != nil {
		bad(KeyRequestTimeout, cfg.Keys[KeyRequestTimeout], err)
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	labels := make(map[string]string, len(cfg.Labels))
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	return &Collector{endpoint: endpoint, path: path, timeout: timeout, labels: labels, opts: opts}, nil
}

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("the scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	if u.User != nil {
		return errors.New("credentials in the URL are not supported")
	}
	return nil
}

// Collect GETs the endpoint once and returns the one value its path selects.
func (c *Collector) Collect(ctx context.Context) ([]collector.Value, error) {
	body, err := c.fetch(ctx)
	if err != nil {
		return nil, err
	}
	v, err := c.path.Evaluate(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", c.endpoint, err)
	}
	q, err := collector.MilliQuantity(v)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %q: %w", c.endpoint, c.path, err)
	}
	labels := make(map[string]string, len(c.labels))
	for k, l := range c.labels {
		labels[k] = l
	}
	return []collector.Value{{
		Labels:    labels,
		Value:     q,
		Timestamp: c.opts.Clock.Now(),
	}}, nil
}

func (c *Collector) fetch(parent context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", c.endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		if parent.Err() == nil && ctx.Err() != nil {
			return nil, fmt.Errorf("GET %s: no answer within %s: %w", c.endpoint, c.timeout, err)
		}
		return nil, fmt.Errorf("GET %s: %w", c.endpoint, err)
	}
	defer resp.Body.Close()
	limit := c.opts.MaxBodyBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the body: %w", c.endpoint, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("GET %s: %s: %s", c.endpoint, resp.Status, clip.Quote(body, bodyExcerpt))
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: the body is larger than the %d bytes allowed", c.endpoint, limit)
	}
	return body, nil
}
