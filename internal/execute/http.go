package execute

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/custompodautoscaler/cpa/internal/config"
)

// maxPEMFileBytes caps the certificate and key files read at construction.
const maxPEMFileBytes = 1 << 20

// HTTP calls a URL with the input as the query parameter "value" or as a JSON body; the
// response body is the result. One client and connection pool serve every call, so
// concurrent per-pod calls reuse connections. An HTTP is safe for concurrent use.
type HTTP struct {
	common
	client       *http.Client
	transport    *http.Transport
	method       string
	rawURL       string // as configured, parsed per call
	display      string // "POST https://host/path", credentials redacted, for errors and logs
	header       http.Header
	host         string // a "Host" header, which net/http takes from Request.Host
	queryMode    bool
	successCodes []int
}

// NewHTTP builds the runner for an http method with its defaults applied (config.Load,
// or Method.SetDefaults and a timeout). Certificate and key files are read here;
// errors name the field and the path.
func NewHTTP(m *config.Method, opts Options) (*HTTP, error) {
	c, err := newCommon(m, config.MethodHTTP, opts)
	if err != nil {
		return nil, err
	}
	hc := m.HTTP
	h := &HTTP{common: c, rawURL: hc.URL, header: http.Header{}, method: strings.ToUpper(hc.Method)}
	u, err := url.Parse(hc.URL)
	if err != nil { // validated already
		return nil, fmt.Errorf("method.http.url %q: %v", hc.URL, err)
	}
	h.display = h.method + " " + u.Redacted()
	if hc.ParameterMode == config.ParameterModeQuery {
		h.queryMode = true
	} else {
		h.header.Set("Content-Type", "application/json")
	}

	// Sorted so that repeated names differing only in case keep a stable order.
	for _, name := range slices.Sorted(maps.Keys(hc.Headers)) {
		value := hc.Headers[name]
		switch http.CanonicalHeaderKey(name) {
		case "Host":
			h.host = value
		case "Content-Type":
			h.header.Set(name, value) // replaces the JSON default
		default:
			h.header.Add(name, value)
		}
	}

	h.successCodes = slices.Clone(hc.SuccessCodes)

	tlsConfig, err := loadTLS(hc)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "http" && (hc.CACert != "" || hc.ClientCert != "") {
		c.log.Warn("http method has TLS settings but a plain http URL; they are not used", slog.String("url", u.Redacted()))
	}

	if h.transport, err = newTransport(opts.MaxConnsPerHost, tlsConfig); err != nil {
		return nil, err
	}
	// No client-wide timeout: each call's context carries the method's timeout.
	h.client = &http.Client{Transport: h.transport}
	return h, nil
}

// newTransport is the connection pool of one HTTP runner: at most conns connections per
// host (0 means DefaultMaxConnsPerHost), open and idle.
func newTransport(conns int, tlsConfig *tls.Config) (*http.Transport, error) {
	switch {
	case conns < 0:
		return nil, fmt.Errorf("maximum connections per host must not be negative, got %d", conns)
	case conns == 0:
		conns = DefaultMaxConnsPerHost
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           conns,
		MaxIdleConnsPerHost:    conns,
		MaxConnsPerHost:        conns,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}, nil
}

// loadTLS builds the client TLS configuration: TLS 1.2 or later, the CA from caCert
// (the system roots when absent) and a client certificate from clientCert and clientKey.
func loadTLS(hc *config.HTTP) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if hc.CACert != "" {
		pem, err := readSmallFile(hc.CACert)
		if err != nil {
			return nil, fmt.Errorf("http.caCert %q: %w", hc.CACert, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http.caCert %q: no PEM certificate found", hc.CACert)
		}
		cfg.RootCAs = pool
	}
	if hc.ClientCert != "" { // with its key: validated
		certPEM, err := readSmallFile(hc.ClientCert)
		if err != nil {
			return nil, fmt.Errorf("http.clientCert %q: %w", hc.ClientCert, err)
		}
		keyPEM, err := readSmallFile(hc.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("http.clientKey %q: %w", hc.ClientKey, err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("http.clientCert %q, http.clientKey %q: %w", hc.ClientCert, hc.ClientKey, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Run makes one request with the input and returns the response body.
func (h *HTTP) Run(ctx context.Context, input []byte) ([]byte, error) {
	start := time.Now()
	out, status, err := h.run(ctx, input)
	if h.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []slog.Attr{
			slog.String("request", h.display),
			slog.Duration("duration", time.Since(start)),
			slog.Int("inputBytes", len(input)),
			slog.Int("status", status),
			slog.Int("outputBytes", len(out)),
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		h.log.LogAttrs(ctx, slog.LevelDebug, "http call finished", attrs...)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (h *HTTP) run(ctx context.Context, input []byte) ([]byte, int, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, h.timeout, errTimerFired)
	defer cancel()

	var body io.Reader
	if !h.queryMode {
		body = bytes.NewReader(input) // sets Content-Length
	}
	req, err := http.NewRequestWithContext(ctx, h.method, h.rawURL, body)
	if err != nil {
		return nil, 0, newRunError(fmt.Sprintf("http %s: %v", h.display, err), err)
	}
	if h.queryMode {
		// Appended rather than re-encoded, so the URL's own query stays as written.
		v := "value=" + url.QueryEscape(string(input))
		if req.URL.RawQuery == "" {
			req.URL.RawQuery = v
		} else {
			req.URL.RawQuery += "&" + v
		}
	}
	req.Header = h.header.Clone()
	if h.host != "" {
		req.Host = h.host
	}

	resp, err := h.client.Do(req)
	if err != nil {
		return nil, 0, h.callError(ctx, err)
	}
	defer resp.Body.Close()
	out, over, err := readCapped(resp.Body, h.maxOut)
	ok := slices.Contains(h.successCodes, resp.StatusCode)
	switch {
	case !ok:
		// The status says more than a cut-off body: report it, quoting what was read.
		return nil, resp.StatusCode, newRunError(fmt.Sprintf("http %s: status %d (want one of %v): %s",
			h.display, resp.StatusCode, h.successCodes, excerpt(out, 0, nil, excerptBytes)), &StatusError{Code: resp.StatusCode})
	case err != nil:
		return nil, resp.StatusCode, h.callError(ctx, fmt.Errorf("reading response body: %w", err))
	case over:
		return nil, resp.StatusCode, newRunError(fmt.Sprintf("http %s: response body exceeds %d bytes", h.display, h.maxOut), ErrOutputTooLarge)
	}
	return out, resp.StatusCode, nil
}

// callError explains a failed round trip. The *url.Error that net/http returns quotes the
// full URL, which in query mode holds the whole input: it is left out.
func (h *HTTP) callError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if cause == errTimerFired {
			return newRunError(fmt.Sprintf("http %s: timed out after %s", h.display, h.timeout), ErrTimeout, context.DeadlineExceeded)
		}
		return newRunError(fmt.Sprintf("http %s: interrupted: %v", h.display, cause), ctx.Err(), cause)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return newRunError(fmt.Sprintf("http %s: %v", h.display, err), err)
}

// CloseIdleConnections closes the runner's idle connections; call it when the runner is
// no longer used. Run still works afterwards.
func (h *HTTP) CloseIdleConnections() { h.transport.CloseIdleConnections() }

// StatusError is found with errors.As on the error of a call whose response status was
// not one of the success codes.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("unexpected status %d", e.Code) }

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, over, err := readCapped(f, maxPEMFileBytes)
	if err != nil {
		return nil, err
	}
	if over {
		return nil, fmt.Errorf("file larger than %d bytes", maxPEMFileBytes)
	}
	return b, nil
}
