package prometheus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector"
	"github.com/custompodautoscaler/cpa/internal/collector/token"
)

// Defaults.
const (
	DefaultRequestTimeout = 15 * time.Second
	DefaultConnectTimeout = 15 * time.Second
	// DefaultMaxBodyBytes caps one answer: a query for one number that answers more is
	// wrong anyway, and the cap keeps a runaway query from filling the adapter's memory.
	DefaultMaxBodyBytes = 16 << 20
	// TokenMaxAge is how long a token read from a file is used before the file is read
	// again even though its modification time and size did not change (token.MaxAge).
	TokenMaxAge = token.MaxAge
	// excerpt is how much of the query or of an error body an error quotes.
	excerpt = 200
)

// ServerConfig is one Prometheus server of the command line.
type ServerConfig struct {
	// URL is the server's base URL (http or https, maybe with a path prefix).
	URL string
	// TokenFile, if set, holds the bearer token sent to this server (and only to it).
	TokenFile string
}

// Servers are the Prometheus servers of the command line.
type Servers struct {
	// Default is --prometheus-server; its URL is empty when the flag is unset.
	Default ServerConfig
	// Additional are the --additional-prometheus-server aliases.
	Additional map[string]ServerConfig
}

// Aliases lists the additional servers' aliases, sorted.
func (s Servers) Aliases() []string {
	out := make([]string, 0, len(s.Additional))
	for a := range s.Additional {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// ParseServers validates the Prometheus flags: --prometheus-server,
// --prometheus-server-token-file, --additional-prometheus-server (alias → URL) and
// --additional-prometheus-server-token-file (alias → path). Every problem is reported at
// once, each naming its flag, alias and value. Token files must be readable and not empty
// (they are read again whenever they change, see Server).
func ParseServers(defaultURL, defaultTokenFile string, additional, additionalTokenFiles map[string]string) (Servers, error) {
	var errs []error
	out := Servers{Additional: map[string]ServerConfig{}}
	if defaultURL != "" {
		if err := CheckURL(defaultURL); err != nil {
			errs = append(errs, fmt.Errorf("--prometheus-server %q: %w", clip.String(defaultURL, excerpt), err))
		}
	}
	if defaultTokenFile != "" {
		if defaultURL == "" {
			errs = append(errs, fmt.Errorf("--prometheus-server-token-file %q: --prometheus-server is not set", defaultTokenFile))
		} else if _, err := token.Read(defaultTokenFile); err != nil {
			errs = append(errs, fmt.Errorf("--prometheus-server-token-file: %w", err))
		}
	}
	out.Default = ServerConfig{URL: defaultURL, TokenFile: defaultTokenFile}

	for _, alias := range sortedKeys(additional) {
		u := additional[alias]
		switch {
		case strings.TrimSpace(alias) == "":
			errs = append(errs, fmt.Errorf("--additional-prometheus-server %q: the alias is empty (want name=url)", "="+clip.String(u, excerpt)))
			continue
		case u == "":
			errs = append(errs, fmt.Errorf("--additional-prometheus-server %q: the URL is empty (want name=url)", alias+"="))
			continue
		}
		if err := CheckURL(u); err != nil {
			errs = append(errs, fmt.Errorf("--additional-prometheus-server %q: %q: %w", alias, clip.String(u, excerpt), err))
		}
		out.Additional[alias] = ServerConfig{URL: u}
	}
	for _, alias := range sortedKeys(additionalTokenFiles) {
		path := additionalTokenFiles[alias]
		sc, ok := out.Additional[alias]
		if _, known := additional[alias]; !known {
			errs = append(errs, fmt.Errorf("--additional-prometheus-server-token-file %q: no --additional-prometheus-server has the alias %q (known: %v)",
				alias+"="+path, alias, sortedKeys(additional)))
			continue
		}
		if path == "" {
			errs = append(errs, fmt.Errorf("--additional-prometheus-server-token-file %q: the path is empty", alias+"="))
			continue
		}
		if _, err := token.Read(path); err != nil {
			errs = append(errs, fmt.Errorf("--additional-prometheus-server-token-file %q: %w", alias, err))
		}
		if ok {
			sc.TokenFile = path
			out.Additional[alias] = sc
		}
	}
	if len(errs) > 0 {
		return Servers{}, errors.Join(errs...)
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CheckURL says why s is not a usable Prometheus URL: the scheme must be http or https,
// the host present, and credentials have no place in it (they would show in every error
// and log line naming the server; use a token file).
func CheckURL(s string) error {
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
		return errors.New("credentials in the URL are not supported (use a token file)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("a query or fragment is not supported (the API path is appended)")
	}
	return nil
}

// ServerOptions are what the servers of one process share.
type ServerOptions struct {
	// Transport sends the requests; nil means a transport of the server's own, with a
	// DefaultConnectTimeout dialer. Share one between servers to share connections.
	Transport http.RoundTripper
	// RequestTimeout bounds one query; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes caps one answer; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Clock sets the query time and the token file's re-read; nil means the real clock.
	Clock clock.PassiveClock
}

func (o ServerOptions) withDefaults() ServerOptions {
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

// Server queries one Prometheus server. It is safe for concurrent use.
type Server struct {
	url     string
	api     promv1.API
	clock   clock.PassiveClock
	timeout time.Duration
}

// NewServer returns a Server for cfg. With a token file, the file is read now (a missing
// or empty one is an error) and again whenever its modification time or size changes,
// or TokenMaxAge after it was last read, so rotated tokens are picked up; the token is
// sent only to cfg's scheme and host, never to a server a redirect points at.
func NewServer(cfg ServerConfig, opts ServerOptions) (*Server, error) {
	opts = opts.withDefaults()
	if err := CheckURL(cfg.URL); err != nil {
		return nil, fmt.Errorf("prometheus server %q: %w", clip.String(cfg.URL, excerpt), err)
	}
	u, _ := url.Parse(cfg.URL) // checked above
	var rt http.RoundTripper = &limitedBody{base: opts.Transport, max: opts.MaxBodyBytes}
	if cfg.TokenFile != "" {
		tf := token.NewFile(cfg.TokenFile, opts.Clock)
		if _, err := tf.Token(); err != nil {
			return nil, fmt.Errorf("prometheus server %s: bearer %w", cfg.URL, err)
		}
		rt = token.NewBearer(rt, tf, u)
	}
	client, err := promapi.NewClient(promapi.Config{Address: cfg.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus server %s: %w", cfg.URL, err)
	}
	return &Server{url: cfg.URL, api: promv1.NewAPI(client), clock: opts.Clock, timeout: opts.RequestTimeout}, nil
}

// URL is the server's URL, as configured.
func (s *Server) URL() string { return s.url }

// WithTimeout returns a Server like s whose queries are bounded by d instead (d > 0).
func (s *Server) WithTimeout(d time.Duration) *Server {
	c := *s
	if d > 0 {
		c.timeout = d
	}
	return &c
}

// QueryValue runs query as an instant query at the clock's now and returns its one
// number and the sample's time. An instant vector must hold exactly one sample; a scalar
// is taken as is. No data, several series, a range vector or string, NaN and ±Inf are
// errors: none of them is a number to scale on, and guessing (the original took an
// arbitrary first series) scales on the wrong one. Errors name the server's URL and the
// query. Prometheus warnings are not errors and are dropped.
func (s *Server) QueryValue(ctx context.Context, query string) (float64, time.Time, error) {
	fail := func(format string, args ...any) (float64, time.Time, error) {
		return 0, time.Time{}, fmt.Errorf("prometheus %s: query %q: %w", s.url, clip.String(query, excerpt), fmt.Errorf(format, args...))
	}
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	now := s.clock.Now()
	res, _, err := s.api.Query(qctx, query, now, promv1.WithTimeout(s.timeout))
	if err != nil {
		if ctx.Err() == nil && qctx.Err() != nil {
			return fail("no answer within %s: %w", s.timeout, err)
		}
		var perr *promv1.Error
		if errors.As(err, &perr) && perr.Detail != "" && !strings.Contains(perr.Msg, perr.Detail) {
			return fail("%w: %s", err, clip.Quote([]byte(perr.Detail), excerpt))
		}
		return fail("%w", err)
	}
	var (
		v  float64
		ts model.Time
	)
	switch r := res.(type) {
	case model.Vector:
		switch len(r) {
		case 0:
			return fail("no data (the series may not exist; if no data means 0, append \"or vector(0)\" to the query)")
		case 1:
			if r[0] == nil {
				return fail("a sample is empty")
			}
			v, ts = float64(r[0].Value), r[0].Timestamp
			if r[0].Histogram != nil {
				return fail("the sample %s is a native histogram, not a number", r[0].Metric)
			}
		default:
			return fail("%d series, want one (aggregate them, e.g. sum(...) or max(...))", len(r))
		}
	case *model.Scalar:
		if r == nil {
			return fail("an empty scalar")
		}
		v, ts = float64(r.Value), r.Timestamp
	case model.Matrix:
		return fail("a range vector (matrix), want an instant vector or a scalar (drop the [range] selector or wrap it in a function such as rate)")
	case *model.String:
		return fail("a string, want an instant vector or a scalar")
	default:
		return fail("a result of type %T, want an instant vector or a scalar", res)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fail("%v, not a finite number", v)
	}
	t := now
	if ts != 0 {
		t = ts.Time()
	}
	return v, t, nil
}

// limitedBody fails reading a response body beyond max bytes.
type limitedBody struct {
	base http.RoundTripper
	max  int64
}

func (l *limitedBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &capped{rc: resp.Body, left: l.max, max: l.max}
	return resp, nil
}

type capped struct {
	rc        io.ReadCloser
	left, max int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.tooLarge()
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, c.tooLarge()
	}
	return n, err
}

func (c *capped) Close() error { return c.rc.Close() }

func (c *capped) tooLarge() error {
	return fmt.Errorf("the answer is larger than the %d bytes allowed", c.max)
}
