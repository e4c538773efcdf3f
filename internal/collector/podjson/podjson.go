// Package podjson is the Pods json-path collector (the original's "pod collector"): on
// every collection it GETs a JSON endpoint on each ready pod of the HPA's scale target and
// extracts one number per pod with a JSONPath (json-key) or an ajson expression
// (json-eval), aggregating several numbers with avg, min, max or sum. The JSON handling is
// the External json-path collector's (package httpjson); the numbers become one value per
// pod, which the HPA averages.
//
// Keys:
//
//	json-key         a JSONPath, e.g. "$.http_server.rps" (this or json-eval)
//	json-eval        an ajson expression, e.g. "avg($.workers[*].load)" (this or json-key)
//	aggregator       avg, min, max or sum; required when the path yields several numbers
//	path             the URL path, starting with "/" (required)
//	port             the pod's port, 1-65535 (required)
//	scheme           http (default) or https
//	raw-query        the URL query, without "?", e.g. "foo=bar&baz=bop"
//	request-timeout  a positive Go duration bounding one request (default 15s)
//	connect-timeout  a positive Go duration bounding the TCP (and TLS) connect (default 15s)
//
// Other keys are ignored here (the adapter reports the unknown ones); a malformed known key
// fails New, every problem reported at once.
//
// A collection resolves the scale target's pod selector from its /scale subresource (so
// any scalable kind works, and a changed selector is followed), lists the selected pods,
// and skips those not Ready, terminating, or Ready for less than the configured
// min-pod-ready-age (measured from the Ready condition's lastTransitionTime). It then asks
// the remaining pods, at most Options.MaxConcurrency at a time, at
// scheme://podIP:port/path?raw-query. Redirects are not followed and no proxy is used: the
// request goes to the pod or fails.
//
// Differences from the original:
//   - A pod that gives no value (no IP, a refused connection, a non-2xx status, a body over
//     the size cap, JSON the path finds no number in) makes the collection return the other
//     pods' values together with a *PodsError naming the failed pods, where the original
//     logged the failure and reported success.
//   - No ready pod at all is an error, not an empty success.
//   - Requests run with bounded concurrency instead of one goroutine per pod.
//   - The selector is read from /scale on every collection for any kind, instead of once
//     at creation from a Deployment, StatefulSet or Rollout only, and its match expressions
//     are honoured, not just its match labels.
//   - Connections to pods that are no longer asked are closed after each collection;
//     the others are kept alive for the next one.
package podjson

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector"
	"github.com/custompodautoscaler/cpa/internal/collector/httpjson"
)

// Type is the collector type of Pods metrics this package serves.
const Type = "json-path"

// Keys are the configuration keys the collector reads.
var Keys = []string{KeyJSONKey, KeyJSONEval, KeyAggregator, KeyRequestTimeout, KeyConnectTimeout, KeyPath, KeyPort, KeyScheme, KeyRawQuery}

// Configuration keys; the JSON ones are the External collector's.
const (
	KeyJSONKey        = httpjson.KeyJSONKey
	KeyJSONEval       = httpjson.KeyJSONEval
	KeyAggregator     = httpjson.KeyAggregator
	KeyRequestTimeout = httpjson.KeyRequestTimeout
	KeyConnectTimeout = "connect-timeout"
	KeyPath           = "path"
	KeyPort           = "port"
	KeyScheme         = "scheme"
	KeyRawQuery       = "raw-query"
)

// Defaults.
const (
	DefaultRequestTimeout = httpjson.DefaultRequestTimeout
	DefaultConnectTimeout = httpjson.DefaultConnectTimeout
	DefaultMaxBodyBytes   = httpjson.DefaultMaxBodyBytes
	// DefaultMaxConcurrency is how many pods one collection asks at once.
	DefaultMaxConcurrency = 16
	// DefaultMaxIdleConns is how many idle connections one collector keeps: one per pod
	// for scale targets of up to this many pods.
	DefaultMaxIdleConns = 64
	// DefaultIdleConnTimeout outlives the default 60 s collection interval, so a pod's
	// connection is reused by the next collection.
	DefaultIdleConnTimeout = 90 * time.Second

	bodyExcerpt    = 256      // bytes of an error response's body an error quotes
	reasonBytes    = 300      // bytes of one pod's failure a PodsError quotes
	maxNamedPods   = 3        // failed pods a PodsError names
	maxHeaderBytes = 64 << 10 // response headers of a metrics endpoint are small
	tcpKeepAlive   = 30 * time.Second
	userAgent      = "kube-metrics-adapter"
)

// Selectors resolves the pod selector of a scale target (kube.Scales does, from /scale).
type Selectors interface {
	Selector(ctx context.Context, ref collector.ObjectRef) (labels.Selector, error)
}

// PodLister lists the pods of a namespace a selector selects (kube.Pods does).
type PodLister interface {
	List(ctx context.Context, namespace string, sel labels.Selector) ([]corev1.Pod, error)
}

// Options are what the collectors of one process share. Selectors and Pods are required.
type Options struct {
	Selectors Selectors
	Pods      PodLister
	// Clock stamps values and ages Ready conditions; nil means the real clock.
	Clock clock.PassiveClock

	// DialContext opens connections to pods (tests, custom networks); nil means a
	// net.Dialer. The connect timeout is applied around it.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSClientConfig verifies https pods; nil means the system roots.
	TLSClientConfig *tls.Config
	// Transport, when set, replaces the collector's own transport: the connect timeout,
	// DialContext, TLSClientConfig, the idle limits and the closing of connections to
	// pods no longer asked are then its owner's business.
	Transport http.RoundTripper

	// RequestTimeout and ConnectTimeout apply unless a key says otherwise; 0 means 15 s.
	RequestTimeout, ConnectTimeout time.Duration
	// MaxBodyBytes caps a response body; 0 means DefaultMaxBodyBytes. A longer body is
	// an error for that pod.
	MaxBodyBytes int64
	// MaxConcurrency bounds the requests in flight in one collection; 0 means
	// DefaultMaxConcurrency.
	MaxConcurrency int
	// MaxIdleConns bounds a collector's idle connections; 0 means DefaultMaxIdleConns,
	// negative disables keep-alive.
	MaxIdleConns int
	// IdleConnTimeout closes a connection idle this long; 0 means DefaultIdleConnTimeout.
	IdleConnTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = DefaultMaxIdleConns
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = DefaultIdleConnTimeout
	}
	return o
}

// Collector collects one Pods json-path metric. Close releases its idle connections.
type Collector struct {
	name, namespace string
	target          collector.ObjectRef
	scheme, port    string
	path, rawQuery  string // escaped, ready to append
	jsonPath        *httpjson.Path
	requestTimeout  time.Duration
	minReadyAge     time.Duration
	opts            Options

	client *http.Client
	own    *http.Transport // nil with Options.Transport
	conns  *conns          // nil with Options.Transport
	// running holds one token while a collection runs: collections of one collector do
	// not overlap, so closing connections to pods no longer asked never hits one in use.
	running chan struct{}
}

var (
	_ collector.Collector = (*Collector)(nil)
	_ io.Closer           = (*Collector)(nil)
)

// Factory returns a collector.Factory building collectors with opts.
func Factory(opts Options) collector.Factory {
	return func(cfg collector.Config) (collector.Collector, error) { return New(cfg, opts) }
}

// New validates cfg, reporting every problem at once, each naming its key and value.
func New(cfg collector.Config, opts Options) (collector.Collector, error) {
	opts = opts.withDefaults()
	var errs []error
	problem := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	bad := func(key, value string, err error) {
		errs = append(errs, fmt.Errorf("key %q: %q: %w", key, clip.String(value, 200), err))
	}

	if cfg.Kind != collector.Pods {
		problem("the json-path pod collector serves Pods metrics, not %q", cfg.Kind)
	}
	if opts.Selectors == nil || opts.Pods == nil {
		problem("the json-path pod collector needs Options.Selectors and Options.Pods")
	}
	if cfg.Namespace == "" {
		problem("no namespace")
	}
	target := cfg.ScaleTarget
	if target.Namespace == "" {
		target.Namespace = cfg.Namespace
	}
	if target.Kind == "" || target.Name == "" {
		problem("no scale target (kind %q, name %q)", target.Kind, target.Name)
	}
	if cfg.MinPodReadyAge < 0 {
		problem("min-pod-ready-age %s is negative", cfg.MinPodReadyAge)
	}

	agg, err := httpjson.ParseAggregator(cfg.Keys[KeyAggregator])
	if err != nil {
		bad(KeyAggregator, cfg.Keys[KeyAggregator], err)
	}
	var jsonPath *httpjson.Path
	jsonKey, hasKey := cfg.Keys[KeyJSONKey]
	jsonEval, hasEval := cfg.Keys[KeyJSONEval]
	switch {
	case hasKey && hasEval:
		problem("keys %q and %q: set exactly one, not both", KeyJSONKey, KeyJSONEval)
	case hasKey:
		if jsonPath, err = httpjson.NewJSONPath(jsonKey, agg); err != nil {
			bad(KeyJSONKey, jsonKey, err)
		}
	case hasEval:
		if jsonPath, err = httpjson.NewEval(jsonEval, agg); err != nil {
			bad(KeyJSONEval, jsonEval, err)
		}
	default:
		problem("keys %q or %q: one is required", KeyJSONKey, KeyJSONEval)
	}

	var path string
	if p, ok := cfg.Keys[KeyPath]; !ok {
		problem("key %q: is required", KeyPath)
	} else if path, err = parsePath(p); err != nil {
		bad(KeyPath, p, err)
	}

	var port string
	if p, ok := cfg.Keys[KeyPort]; !ok {
		problem("key %q: is required", KeyPort)
	} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		bad(KeyPort, p, errors.New("not a port number (1-65535)"))
	} else {
		port = strconv.Itoa(n)
	}

	scheme := "http"
	if s, ok := cfg.Keys[KeyScheme]; ok {
		if s != "http" && s != "https" {
			bad(KeyScheme, s, errors.New("must be http or https"))
		}
		scheme = s
	}

	rawQuery := cfg.Keys[KeyRawQuery]
	if err := checkRawQuery(rawQuery); err != nil {
		bad(KeyRawQuery, rawQuery, err)
	}

	duration := func(key string, def time.Duration) time.Duration {
		d, err := collector.PositiveDuration(cfg.Keys, key, def)
		if err != nil {
			bad(key, cfg.Keys[key], err)
		}
		return d
	}
	requestTimeout := duration(KeyRequestTimeout, opts.RequestTimeout)
	connectTimeout := duration(KeyConnectTimeout, opts.ConnectTimeout)

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c := &Collector{
		name: cfg.Name, namespace: cfg.Namespace, target: target,
		scheme: scheme, port: port, path: path, rawQuery: rawQuery,
		jsonPath: jsonPath, requestTimeout: requestTimeout, minReadyAge: cfg.MinPodReadyAge,
		opts: opts, running: make(chan struct{}, 1),
	}
	rt := opts.Transport
	if rt == nil {
		c.conns = newConns()
		c.own = c.transport(connectTimeout)
		rt = c.own
	}
	c.client = &http.Client{
		Transport: rt,
		// A pod answers for itself; a redirect elsewhere is not its metric.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// parsePath checks p is an absolute URL path without query or fragment and returns it
// escaped.
func parsePath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", errors.New(`must start with "/"`)
	}
	if strings.ContainsAny(p, "?#") {
		return "", fmt.Errorf(`must not contain "?" or "#" (the query goes in %q)`, KeyRawQuery)
	}
	u, err := url.Parse(p)
	if err != nil {
		return "", fmt.Errorf("not a URL path: %w", errors.Unwrap(err))
	}
	return u.EscapedPath(), nil
}

// checkRawQuery accepts what can follow "?" verbatim: no fragment, spaces or control
// characters, and every "%" starts an escape.
func checkRawQuery(q string) error {
	for i := 0; i < len(q); i++ {
		switch b := q[i]; {
		case b == '#':
			return errors.New(`must not contain "#"`)
		case b <= ' ' || b == 0x7f:
			return fmt.Errorf("must not contain spaces or control characters (byte %d)", i)
		case b == '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return fmt.Errorf("invalid escape at byte %d", i)
			}
		}
	}
	return nil
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// transport is the collector's own: connections to its pods are kept for the next
// collection, within MaxIdleConns and IdleConnTimeout, and tracked so those to pods no
// longer asked can be closed.
func (c *Collector) transport(connectTimeout time.Duration) *http.Transport {
	dial := c.opts.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: connectTimeout, KeepAlive: tcpKeepAlive}).DialContext
	}
	t := &http.Transport{
		DialContext: c.conns.track(func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, connectTimeout)
			defer cancel()
			return dial(ctx, network, addr)
		}),
		TLSClientConfig:        c.opts.TLSClientConfig.Clone(),
		TLSHandshakeTimeout:    connectTimeout,
		MaxIdleConns:           c.opts.MaxIdleConns,
		MaxIdleConnsPerHost:    1, // one request per pod per collection
		IdleConnTimeout:        c.opts.IdleConnTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	if c.opts.MaxIdleConns < 0 {
		t.MaxIdleConns = 0
		t.DisableKeepAlives = true
	}
	return t
}

// Close closes the collector's connections (with its own transport); it can still
// collect afterwards, opening new ones.
func (c *Collector) Close() error {
	if c.own != nil {
		c.own.CloseIdleConnections()
		c.conns.keepOnly(nil)
	}
	return nil
}

// skipped counts the pods a collection does not ask.
type skipped struct{ notReady, terminating, young int }

func (s skipped) String() string {
	var parts []string
	if s.notReady > 0 {
		parts = append(parts, fmt.Sprintf("%d not Ready", s.notReady))
	}
	if s.terminating > 0 {
		parts = append(parts, fmt.Sprintf("%d terminating", s.terminating))
	}
	if s.young > 0 {
		parts = append(parts, fmt.Sprintf("%d Ready for less than the min-pod-ready-age", s.young))
	}
	return strings.Join(parts, ", ")
}

// eligible returns the pods to ask, sorted by name: Ready, not terminating, and Ready for
// at least the minimum age. A Ready condition without lastTransitionTime (the kubelet
// always sets it) counts as old enough rather than holding the pod back forever.
func (c *Collector) eligible(pods []corev1.Pod, now time.Time) ([]*corev1.Pod, skipped) {
	var out []*corev1.Pod
	var s skipped
	for i := range pods {
		p := &pods[i]
		ready := readyCondition(p)
		switch {
		case p.DeletionTimestamp != nil:
			s.terminating++
		case ready == nil:
			s.notReady++
		case c.minReadyAge > 0 && !ready.LastTransitionTime.IsZero() && now.Sub(ready.LastTransitionTime.Time) < c.minReadyAge:
			s.young++
		default:
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out, s
}

// readyCondition is the pod's Ready condition if it is True.
func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if c := &p.Status.Conditions[i]; c.Type == corev1.PodReady {
			if c.Status == corev1.ConditionTrue {
				return c
			}
			return nil
		}
	}
	return nil
}

// Collect returns one value per ready pod that answered. Pods that did not answer make
// the error a *PodsError returned with the others' values.
func (c *Collector) Collect(ctx context.Context) ([]collector.Value, error) {
	select {
	case c.running <- struct{}{}:
		defer func() { <-c.running }()
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the previous collection: %w", ctx.Err())
	}
	sel, err := c.opts.Selectors.Selector(ctx, c.target)
	if err != nil {
		return nil, fmt.Errorf("the pod selector of the scale target: %w", err)
	}
	pods, err := c.opts.Pods.List(ctx, c.namespace, sel)
	if err != nil {
		return nil, err
	}
	targets, skip := c.eligible(pods, c.opts.Clock.Now())
	if len(targets) == 0 {
		if len(pods) == 0 {
			return nil, fmt.Errorf("no pod in namespace %q matches the selector %q of the scale target", c.namespace, sel)
		}
		return nil, fmt.Errorf("no ready pod to ask among the %d pods in namespace %q matching %q: %s", len(pods), c.namespace, sel, skip)
	}

	results := c.ask(ctx, targets)
	if c.conns != nil {
		keep := make(map[string]struct{}, len(targets))
		for _, p := range targets {
			keep[net.JoinHostPort(p.Status.PodIP, c.port)] = struct{}{}
		}
		c.conns.keepOnly(keep)
	}

	values := make([]collector.Value, 0, len(targets))
	var failed []PodError
	for i, r := range results {
		p := targets[i]
		if r.err != nil {
			failed = append(failed, PodError{Pod: p.Name, Err: r.err})
			continue
		}
		values = append(values, collector.Value{
			Object:    collector.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: p.Namespace, Name: p.Name},
			Value:     r.value,
			Timestamp: r.at,
		})
	}
	if len(values) == 0 {
		values = nil
	}
	if err := ctx.Err(); err != nil {
		return values, fmt.Errorf("collection interrupted, %d of %d pods answered: %w", len(values), len(targets), err)
	}
	if len(failed) > 0 {
		return values, &PodsError{Asked: len(targets), Failed: failed}
	}
	return values, nil
}

type result struct {
	value resource.Quantity
	at    time.Time
	err   error
}

// ask asks every target, at most MaxConcurrency at a time.
func (c *Collector) ask(ctx context.Context, targets []*corev1.Pod) []result {
	results := make([]result, len(targets))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(c.opts.MaxConcurrency, len(targets)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(targets) {
					return
				}
				if err := ctx.Err(); err != nil {
					results[i].err = err
					continue
				}
				results[i] = c.askPod(ctx, targets[i])
			}
		})
	}
	wg.Wait()
	return results
}

func (c *Collector) askPod(ctx context.Context, p *corev1.Pod) result {
	ip := p.Status.PodIP
	if ip == "" {
		return result{err: errors.New("the pod has no IP yet")}
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return result{err: fmt.Errorf("the pod IP %q is not an IP address", clip.String(ip, 64))}
	}
	u := c.scheme + "://" + net.JoinHostPort(ip, c.port) + c.path
	if c.rawQuery != "" {
		u += "?" + c.rawQuery
	}
	body, err := c.fetch(ctx, u)
	if err != nil {
		return result{err: err}
	}
	v, err := c.jsonPath.Evaluate(body)
	if err != nil {
		return result{err: fmt.Errorf("GET %s: %w", u, err)}
	}
	q, err := collector.MilliQuantity(v)
	if err != nil {
		return result{err: fmt.Errorf("GET %s: %q: %w", u, c.jsonPath, err)}
	}
	return result{value: q, at: c.opts.Clock.Now()}
}

func (c *Collector) fetch(parent context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(parent, c.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.client.Do(req)
	if err != nil {
		// The url.Error would repeat the method and URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if parent.Err() == nil && ctx.Err() != nil {
			return nil, fmt.Errorf("GET %s: no answer within %s: %w", u, c.requestTimeout, err)
		}
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	limit := c.opts.MaxBodyBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if parent.Err() == nil && ctx.Err() != nil {
			return nil, fmt.Errorf("GET %s: reading the body: not done within %s: %w", u, c.requestTimeout, err)
		}
		return nil, fmt.Errorf("GET %s: reading the body: %w", u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, clip.Quote(body, bodyExcerpt))
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: the body is larger than the %d bytes allowed", u, limit)
	}
	return body, nil
}

// PodError is why one pod gave no value.
type PodError struct {
	Pod string
	Err error
}

// PodsError is returned, together with the values of the pods that answered, when some
// asked pods gave no value.
type PodsError struct {
	// Asked is how many pods were asked.
	Asked int
	// Failed are the pods that gave no value, sorted by name.
	Failed []PodError
}

// Error names the first few failed pods and their reasons, each clipped, so the message
// stays short however many pods failed.
func (e *PodsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d pods gave no value: ", len(e.Failed), e.Asked)
	for i, f := range e.Failed {
		if i == maxNamedPods {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "pod %s: %s", clip.String(f.Pod, 253), clip.String(f.Err.Error(), reasonBytes))
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see every pod's error.
func (e *PodsError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f.Err
	}
	return out
}
