// Package prometheus is the Prometheus collector: it runs one user-defined PromQL query
// per metric as an instant query and serves its one number, as an External metric
// (type "prometheus", or the legacy metric name "prometheus-query") or as a deprecated
// Object metric. Its Server is also what the skipper collector queries through.
//
// Keys:
//
//	query                    the PromQL query (required); the annotation parser copies a
//	                         legacy "query-name" query here
//	prometheus-server        an http or https URL queried instead of --prometheus-server,
//	                         without any token
//	prometheus-server-alias  the alias of an --additional-prometheus-server (with its own
//	                         token file, if any) queried instead
//	request-timeout          a positive Go duration bounding one query (default
//	                         Options.RequestTimeout, 15s)
//
// Other keys (the metric selector's labels such as "type") are left to their owners.
//
// The query must yield one number: an instant vector of exactly one sample, or a scalar.
// No data is an error, not 0 (append "or vector(0)" to the query where no data means 0);
// several series are an error (aggregate them with sum, max, ...); so are range vectors,
// strings, NaN and ±Inf. Values are rounded to milli-units and stamped with the sample's
// time. The request timeout is also sent to Prometheus as the query's evaluation timeout;
// Prometheus warnings are dropped. External values carry the metric selector's labels,
// Object values the described object.
//
// Differences from the original:
//   - The original took an arbitrary first series of a vector, silently left 0 for range
//     vectors and strings, and accepted ±Inf; all are errors here.
//   - prometheus-server and prometheus-server-alias apply to Object metrics too (the
//     original ignored them there), and setting both is an error rather than one winning.
//   - per-replica divides by the scale target's replicas as reported by Options.Replicas
//     (any kind with a scale subresource, not only Deployments and StatefulSets); fewer
//     than 1 replica is an error where the original divided by zero.
//   - A value beyond a Quantity's range is an error instead of wrapping around.
//   - Token files are re-read when they change, and the token is never sent to a host a
//     redirect points at.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

// Type is the collector type this package serves, for External and Object metrics.
const Type = "prometheus"

// Keys are the configuration keys the collector reads.
var Keys = []string{KeyQuery, KeyServer, KeyServerAlias, KeyRequestTimeout}

// Configuration keys.
const (
	KeyQuery          = "query"
	KeyServer         = "prometheus-server"
	KeyServerAlias    = "prometheus-server-alias"
	KeyRequestTimeout = "request-timeout"
)

// Replicas tells the current replicas of a scale target, for per-replica values.
type Replicas interface {
	Replicas(ctx context.Context, target collector.ObjectRef) (int32, error)
}

// Options are what the collectors of one process share.
type Options struct {
	// Servers are the flags' servers (see ParseServers). Without a default server every
	// metric must name its server with a key.
	Servers Servers
	// Replicas serves per-replica metrics; nil makes per-replica an error.
	Replicas Replicas
	// Transport sends the requests; nil means one transport shared by the collectors of
	// one Factory.
	Transport http.RoundTripper
	// RequestTimeout bounds one query unless the request-timeout key says otherwise; 0
	// means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes caps one answer; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Clock sets the query time; nil means the real clock.
	Clock clock.PassiveClock
}

func (o Options) serverOptions() ServerOptions {
	return ServerOptions{Transport: o.Transport, RequestTimeout: o.RequestTimeout, MaxBodyBytes: o.MaxBodyBytes, Clock: o.Clock}.withDefaults()
}

// pool builds each configured server once, so collectors share its token cache.
type pool struct {
	servers Servers
	opts    ServerOptions

	mu    sync.Mutex
	built map[string]*Server // by alias; "" is the default server
}

func newPool(opts Options) *pool {
	return &pool{servers: opts.Servers, opts: opts.serverOptions(), built: map[string]*Server{}}
}

func (p *pool) get(alias string) (*Server, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.built[alias]; ok {
		return s, nil
	}
	cfg := p.servers.Default
	if alias != "" {
		cfg = p.servers.Additional[alias]
	}
	s, err := NewServer(cfg, p.opts)
	if err != nil {
		return nil, err // not kept: a token file may appear later
	}
	p.built[alias] = s
	return s, nil
}

// Factory returns a collector.Factory building collectors with opts, sharing one
// transport and one Server per configured server. Register it for both
// collector.External and collector.Object.
func Factory(opts Options) collector.Factory {
	if opts.Transport == nil {
		opts.Transport = NewTransport()
	}
	p := newPool(opts)
	return func(cfg collector.Config) (collector.Collector, error) { return newCollector(cfg, opts, p) }
}

// Collector collects one Prometheus metric.
type Collector struct {
	server     *Server
	query      string
	kind       collector.Kind
	labels     map[string]string
	object     collector.ObjectRef
	perReplica bool
	target     collector.ObjectRef
	replicas   Replicas
}

var _ collector.Collector = (*Collector)(nil)

// New validates cfg's keys, reporting every problem at once, each naming its key and value.
func New(cfg collector.Config, opts Options) (collector.Collector, error) {
	return newCollector(cfg, opts, newPool(opts))
}

func newCollector(cfg collector.Config, opts Options, p *pool) (collector.Collector, error) {
	var errs []error
	bad := func(key, value string, err error) {
		errs = append(errs, fmt.Errorf("key %q: %q: %w", key, clip.String(value, excerpt), err))
	}
	kind := cfg.Kind
	switch kind {
	case "":
		kind = collector.External
	case collector.External, collector.Object:
	default:
		errs = append(errs, fmt.Errorf("the prometheus collector serves External and Object metrics, not %s", cfg.Kind))
	}

	query := cfg.Keys[KeyQuery]
	if strings.TrimSpace(query) == "" {
		errs = append(errs, fmt.Errorf("key %q: is required (a PromQL query)", KeyQuery))
	}

	timeout, err := collector.PositiveDuration(cfg.Keys, KeyRequestTimeout, p.opts.RequestTimeout)
	if err != nil {
		bad(KeyRequestTimeout, cfg.Keys[KeyRequestTimeout], err)
	}

	var server *Server
	adhoc, hasAdhoc := cfg.Keys[KeyServer]
	alias, hasAlias := cfg.Keys[KeyServerAlias]
	switch {
	case hasAdhoc && hasAlias:
		errs = append(errs, fmt.Errorf("keys %q (%q) and %q (%q): set at most one", KeyServer, clip.String(adhoc, excerpt), KeyServerAlias, clip.String(alias, excerpt)))
	case hasAdhoc:
		// An ad-hoc server gets no token: the flags' tokens are for the flags' servers.
		s, err := NewServer(ServerConfig{URL: adhoc}, p.opts)
		if err != nil {
			if cerr := CheckURL(adhoc); cerr != nil {
				err = cerr
			}
			bad(KeyServer, adhoc, err)
		}
		server = s
	case hasAlias:
		if _, ok := p.servers.Additional[alias]; !ok {
			known := p.servers.Aliases()
			if len(known) == 0 {
				bad(KeyServerAlias, alias, errors.New("no --additional-prometheus-server is configured"))
			} else {
				bad(KeyServerAlias, alias, fmt.Errorf("no --additional-prometheus-server has this alias (known: %s)", strings.Join(known, ", ")))
			}
			break
		}
		s, err := p.get(alias)
		if err != nil {
			bad(KeyServerAlias, alias, err)
		}
		server = s
	case p.servers.Default.URL == "":
		errs = append(errs, fmt.Errorf("no Prometheus server: --prometheus-server is not set and neither key %q nor %q names one", KeyServer, KeyServerAlias))
	default:
		s, err := p.get("")
		if err != nil {
			errs = append(errs, fmt.Errorf("--prometheus-server: %w", err))
		}
		server = s
	}

	errs = append(errs, collector.CheckPerReplica(cfg, opts.Replicas != nil)...)

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c := &Collector{
		server:     server.WithTimeout(timeout),
		query:      query,
		kind:       kind,
		perReplica: cfg.PerReplica,
		target:     cfg.ScaleTarget,
		replicas:   opts.Replicas,
	}
	if kind == collector.Object {
		c.object = cfg.Object
	} else {
		c.labels = copyLabels(cfg.Labels)
	}
	return c, nil
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
	v, ts, err := c.server.QueryValue(ctx, c.query)
	if err != nil {
		return nil, err
	}
	if c.perReplica {
		if v, err = PerReplica(ctx, c.replicas, c.target, v); err != nil {
			return nil, err
		}
	}
	q, err := collector.MilliQuantity(v)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: query %q: %w", c.server.URL(), clip.String(c.query, excerpt), err)
	}
	val := collector.Value{Object: c.object, Value: q, Timestamp: ts}
	if c.kind == collector.External {
		val.Labels = copyLabels(c.labels)
	}
	return []collector.Value{val}, nil
}

// PerReplica divides v by target's current replicas; fewer than 1 is an error (the
// original divided by zero).
func PerReplica(ctx context.Context, r Replicas, target collector.ObjectRef, v float64) (float64, error) {
	name := fmt.Sprintf("%s %s/%s", target.Kind, target.Namespace, target.Name)
	n, err := r.Replicas(ctx, target)
	if err != nil {
		return 0, fmt.Errorf("per-replica: the replicas of %s: %w", name, err)
	}
	if n < 1 {
		return 0, fmt.Errorf("per-replica: %s has %d replicas, cannot divide by fewer than 1", name, n)
	}
	return v / float64(n), nil
}
