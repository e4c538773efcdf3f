package execute

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custompodautoscaler/cpa/internal/config"
)

// httpMethod is an http method with the defaults config.Load applies to empty fields.
func httpMethod(timeoutMs int, h config.HTTP) *config.Method {
	m := &config.Method{Type: config.MethodHTTP, Timeout: timeoutMs, HTTP: &h}
	m.SetDefaults()
	return m
}

func newHTTP(t testing.TB, m *config.Method, opts Options) *HTTP {
	t.Helper()
	h, err := NewHTTP(m, opts)
	if err != nil {
		t.Fatalf("NewHTTP: %v", err)
	}
	t.Cleanup(h.CloseIdleConnections)
	return h
}

// seen is what a test server received.
type seen struct {
	method, path, contentType, header, host string
	query                                   map[string][]string
	contentLength                           int64
	body                                    []byte
}

func recordingServer(t *testing.T, status int, reply string) (*httptest.Server, *seen) {
	t.Helper()
	var (
		mu  sync.Mutex
		got seen
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("X-Api-Key"), r.Host, r.URL.Query(), r.ContentLength, body}
		mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestHTTPRun(t *testing.T) {
	input := []byte(`{"resource":{"metadata":{"name":"p"}},"runType":"scaler"}`)
	tests := []struct {
		name   string
		cfg    func(url string) config.HTTP
		status int
		want   string
		check  func(t *testing.T, s *seen)
	}{
		{
			name: "body mode",
			cfg: func(u string) config.HTTP {
				return config.HTTP{Method: "POST", URL: u + "/metric", SuccessCodes: []int{200}, ParameterMode: "body",
					Headers: map[string]string{"X-Api-Key": "k1"}}
			},
			status: 200, want: "5\n",
			check: func(t *testing.T, s *seen) {
				if s.method != "POST" || s.path != "/metric" || s.contentType != "application/json" || s.header != "k1" {
					t.Errorf("request %s %s content-type %q header %q", s.method, s.path, s.contentType, s.header)
				}
				if s.contentLength != int64(len(input)) || !bytes.Equal(s.body, input) {
					t.Errorf("body %q (length %d), want %q", s.body, s.contentLength, input)
				}
			},
		},
		{
			name: "query mode merges with the URL's query",
			cfg: func(u string) config.HTTP {
				return config.HTTP{Method: "GET", URL: u + "/metric?a=1&b=x%20y", SuccessCodes: []int{200}, ParameterMode: "query"}
			},
			status: 200, want: "5\n",
			check: func(t *testing.T, s *seen) {
				if s.method != "GET" || len(s.body) != 0 || s.contentType != "" {
					t.Errorf("request %s body %q content-type %q", s.method, s.body, s.contentType)
				}
				if got := s.query["value"]; len(got) != 1 || got[0] != string(input) {
					t.Errorf("value = %q, want %q", got, input)
				}
				if s.query["a"][0] != "1" || s.query["b"][0] != "x y" {
					t.Errorf("query %v lost the URL's own parameters", s.query)
				}
			},
		},
		{
			name:   "defaults: POST, body, 200",
			cfg:    func(u string) config.HTTP { return config.HTTP{URL: u} },
			status: 200, want: "5\n",
			check: func(t *testing.T, s *seen) {
				if s.method != "POST" || !bytes.Equal(s.body, input) {
					t.Errorf("request %s body %q", s.method, s.body)
				}
			},
		},
		{
			name: "other success code, lower-case method, content-type and host overridden",
			cfg: func(u string) config.HTTP {
				return config.HTTP{Method: "put", URL: u, SuccessCodes: []int{201, 202}, ParameterMode: "body",
					Headers: map[string]string{"content-type": "text/plain", "Host": "metrics.example"}}
			},
			status: 202, want: "5\n",
			check: func(t *testing.T, s *seen) {
				if s.method != "PUT" || s.contentType != "text/plain" || s.host != "metrics.example" {
					t.Errorf("request %s content-type %q host %q", s.method, s.contentType, s.host)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := recordingServer(t, tt.status, "5\n")
			h := newHTTP(t, httpMethod(5000, tt.cfg(srv.URL)), Options{})
			out, err := h.Run(context.Background(), input)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if string(out) != tt.want {
				t.Errorf("output %q, want %q", out, tt.want)
			}
			tt.check(t, got)
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client going away
		select {
		case <-r.Context().Done():
		case <-time.After(100 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("x"), 2000))
	}))
	t.Cleanup(big.Close)
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "boom: metric backend unavailable\n")
	}))
	t.Cleanup(fail.Close)
	failBig := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "start"+strings.Repeat(".", 5000)+"end")
	}))
	t.Cleanup(failBig.Close)
	// A port with nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String() + "/x"
	l.Close()

	tests := []struct {
		name   string
		cfg    config.HTTP
		opts   Options
		timeMs int
		want   string
		prefix bool
		is     error
	}{
		{
			name: "status not in success codes",
			cfg:  config.HTTP{Method: "POST", URL: fail.URL + "/y", SuccessCodes: []int{200}, ParameterMode: "body"},
			want: fmt.Sprintf("http POST %s/y: status 500 (want one of [200]): boom: metric backend unavailable", fail.URL),
		},
		{
			name: "query mode error does not quote the input",
			cfg:  config.HTTP{Method: "GET", URL: fail.URL + "/y?a=1", SuccessCodes: []int{200, 204}, ParameterMode: "query"},
			want: fmt.Sprintf("http GET %s/y?a=1: status 500 (want one of [200 204]): boom: metric backend unavailable", fail.URL),
		},
		{
			name:   "long error body is cut",
			cfg:    config.HTTP{URL: failBig.URL},
			want:   fmt.Sprintf("http POST %s: status 502 (want one of [200]): start", failBig.URL),
			prefix: true,
		},
		{
			name:   "timeout",
			cfg:    config.HTTP{URL: slow.URL},
			timeMs: 100,
			want:   fmt.Sprintf("http POST %s: timed out after 100ms", slow.URL),
			is:     ErrTimeout,
		},
		{
			name: "body over the cap",
			cfg:  config.HTTP{URL: big.URL},
			opts: Options{MaxOutputBytes: 1024},
			want: fmt.Sprintf("http POST %s: response body exceeds 1024 bytes", big.URL),
			is:   ErrOutputTooLarge,
		},
		{
			name: "connection refused",
			cfg:  config.HTTP{URL: closedURL},
			want: fmt.Sprintf("http POST %s: dial tcp %s: connect: connection refused", closedURL, strings.TrimPrefix(strings.TrimSuffix(closedURL, "/x"), "http://")),
		},
		{
			name: "credentials redacted",
			cfg:  config.HTTP{URL: strings.Replace(fail.URL, "http://", "http://user:secret@", 1)},
			want: fmt.Sprintf("http POST %s: status 500 (want one of [200]): boom: metric backend unavailable", strings.Replace(fail.URL, "http://", "http://user:xxxxx@", 1)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeMs
			if timeout == 0 {
				timeout = 5000
			}
			h := newHTTP(t, httpMethod(timeout, tt.cfg), tt.opts)
			start := time.Now()
			out, err := h.Run(context.Background(), []byte(`{"secret-input":1}`))
			if err == nil {
				t.Fatalf("Run returned %q and no error", out)
			}
			if time.Since(start) > hangBound { // e.g. waited for the slow server's 100 s
				t.Errorf("Run took %s", time.Since(start))
			}
			msg := err.Error()
			if tt.prefix {
				if !strings.HasPrefix(msg, tt.want) || !strings.Contains(msg, "bytes omitted") || !strings.HasSuffix(msg, "end") || len(msg) > 2*excerptBytes+200 {
					t.Errorf("error %q, want a cut excerpt after %q", msg, tt.want)
				}
			} else if msg != tt.want {
				t.Errorf("error:\n got %s\nwant %s", msg, tt.want)
			}
			if strings.Contains(msg, "secret-input") {
				t.Errorf("error quotes the input: %s", msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v) = false", tt.is)
			}
		})
	}
}

func TestHTTPStatusError(t *testing.T) {
	srv, _ := recordingServer(t, http.StatusServiceUnavailable, "")
	_, err := newHTTP(t, httpMethod(5000, config.HTTP{URL: srv.URL}), Options{}).Run(context.Background(), nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Fatalf("errors.As(*StatusError) on %v: %v", err, se)
	}
	if err.Error() != fmt.Sprintf("http POST %s: status 503 (want one of [200]): ", srv.URL) {
		t.Errorf("error %q", err)
	}
}

func TestHTTPCanceled(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	h := newHTTP(t, httpMethod(60000, config.HTTP{URL: srv.URL}), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := h.Run(ctx, nil)
	if !errors.Is(err, context.Canceled) || err.Error() != fmt.Sprintf("http POST %s: interrupted: context canceled", srv.URL) {
		t.Fatalf("error %v", err)
	}
}

// TestHTTPReusesConnections checks that sequential and concurrent calls share pooled
// connections instead of opening one each.
func TestHTTPReusesConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "1")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	h := newHTTP(t, httpMethod(5000, config.HTTP{URL: srv.URL}), Options{MaxConnsPerHost: 8})
	for range 50 {
		if _, err := h.Run(context.Background(), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 sequential calls opened %d connections, want 1", n)
	}
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if _, err := h.Run(context.Background(), []byte("{}")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := conns.Load(); n > 8 {
		t.Errorf("200 concurrent calls opened %d connections, want at most MaxConnsPerHost 8", n)
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client certificate,
// written as PEM files.
type testPKI struct {
	caFile, clientCert, clientKey string
	pool                          *x509.CertPool
	server                        tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey := genKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		key := genKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	srvDER, srvKey := issue(2, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := issue(3, "client", x509.ExtKeyUsageClientAuth, nil)

	p.caFile = writePEM(t, dir, "ca.crt", "CERTIFICATE", caDER)
	p.clientCert = writePEM(t, dir, "client.crt", "CERTIFICATE", cliDER)
	keyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	p.clientKey = writePEM(t, dir, "client.key", "EC PRIVATE KEY", keyDER)
	return p
}

func genKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHTTPTLS(t *testing.T) {
	pki := newTestPKI(t)
	newTLSServer := func(requireClientCert bool) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cn := "none"
			if len(r.TLS.PeerCertificates) > 0 {
				cn = r.TLS.PeerCertificates[0].Subject.CommonName
			}
			_, _ = io.WriteString(w, cn)
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}
		if requireClientCert {
			srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
			srv.TLS.ClientCAs = pki.pool
		}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	plain := newTLSServer(false)
	mutual := newTLSServer(true)

	tests := []struct {
		name    string
		cfg     config.HTTP
		want    string
		wantErr string
	}{
		{"CA from caCert", config.HTTP{URL: plain.URL, CACert: pki.caFile}, "none", ""},
		{"unknown CA without caCert", config.HTTP{URL: plain.URL}, "", "certificate signed by unknown authority"},
		{"mTLS", config.HTTP{URL: mutual.URL, CACert: pki.caFile, ClientCert: pki.clientCert, ClientKey: pki.clientKey}, "client", ""},
		{"mTLS without a client certificate", config.HTTP{URL: mutual.URL, CACert: pki.caFile}, "", "certificate required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHTTP(t, httpMethod(5000, tt.cfg), Options{})
			out, err := h.Run(context.Background(), []byte("{}"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if string(out) != tt.want {
				t.Errorf("output %q, want %q", out, tt.want)
			}
		})
	}
}

func TestHTTPTransportSettings(t *testing.T) {
	h := newHTTP(t, httpMethod(5000, config.HTTP{URL: "https://example.invalid"}), Options{})
	tr := h.transport
	if tr.TLSClientConfig.MinVersion != tls.VersionTLS12 || tr.TLSClientConfig.InsecureSkipVerify || tr.TLSClientConfig.RootCAs != nil {
		t.Errorf("TLS config %+v", tr.TLSClientConfig)
	}
	if tr.MaxIdleConnsPerHost != DefaultMaxConnsPerHost || tr.MaxConnsPerHost != DefaultMaxConnsPerHost || tr.IdleConnTimeout == 0 || tr.TLSHandshakeTimeout == 0 {
		t.Errorf("transport pool settings %d/%d idle %s handshake %s", tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost, tr.IdleConnTimeout, tr.TLSHandshakeTimeout)
	}
	if h.client.Timeout != 0 || h.timeout != 5*time.Second {
		t.Errorf("client timeout %s, call timeout %s", h.client.Timeout, h.timeout)
	}
}

func TestHTTPConstructionErrors(t *testing.T) {
	pki := newTestPKI(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.crt")
	tests := []struct {
		name string
		m    *config.Method
		opts Options
		want string
	}{
		{"no http block", &config.Method{Type: config.MethodHTTP, Timeout: 1}, Options{}, "invalid configuration: method.http: required for type http"},
		{"bad scheme", httpMethod(1, config.HTTP{URL: "ftp://x/y"}), Options{}, `invalid configuration: method.http.url = "ftp://x/y": must be an absolute http:// or https:// URL`},
		{"no host", httpMethod(1, config.HTTP{URL: "http:///y"}), Options{}, `invalid configuration: method.http.url = "http:///y": must be an absolute http:// or https:// URL`},
		{"unparsable URL", httpMethod(1, config.HTTP{URL: "http://a b/"}), Options{}, `invalid configuration: method.http.url = "http://a b/": not a URL: invalid character " " in host name`},
		{"bad method", httpMethod(1, config.HTTP{URL: "http://x", Method: "GE T"}), Options{}, `invalid configuration: method.http.method = "GE T": not an HTTP method (a token such as GET or POST)`},
		{"bad parameter mode", httpMethod(1, config.HTTP{URL: "http://x", ParameterMode: "form"}), Options{}, `invalid configuration: method.http.parameterMode = "form": must be query or body`},
		{"bad success code", httpMethod(1, config.HTTP{URL: "http://x", SuccessCodes: []int{200, 1000}}), Options{}, `invalid configuration: method.http.successCodes[1] = 1000: not an HTTP status code (100 to 599)`},
		{"bad header name", httpMethod(1, config.HTTP{URL: "http://x", Headers: map[string]string{"X Y": "1"}}), Options{}, `invalid configuration: method.http.headers = "X Y": not a valid header name`},
		{"bad header value", httpMethod(1, config.HTTP{URL: "http://x", Headers: map[string]string{"X-Y": "1\r\nEvil: 1"}}), Options{}, `invalid configuration: method.http.headers[X-Y] = "1\r\nEvil: 1": header values must not contain control characters such as line breaks`},
		{"missing caCert", httpMethod(1, config.HTTP{URL: "https://x", CACert: missing}), Options{}, fmt.Sprintf(`http.caCert %q: open %s: no such file or directory`, missing, missing)},
		{"caCert not PEM", httpMethod(1, config.HTTP{URL: "https://x", CACert: notPEM}), Options{}, fmt.Sprintf(`http.caCert %q: no PEM certificate found`, notPEM)},
		{"clientCert without key", httpMethod(1, config.HTTP{URL: "https://x", ClientCert: pki.clientCert}), Options{}, "invalid configuration: method.http.clientKey: required when clientCert is set"},
		{"clientKey without cert", httpMethod(1, config.HTTP{URL: "https://x", ClientKey: pki.clientKey}), Options{}, "invalid configuration: method.http.clientCert: required when clientKey is set"},
		{"missing clientKey file", httpMethod(1, config.HTTP{URL: "https://x", ClientCert: pki.clientCert, ClientKey: missing}), Options{}, fmt.Sprintf(`http.clientKey %q: open %s: no such file or directory`, missing, missing)},
		{"mismatched pair", httpMethod(1, config.HTTP{URL: "https://x", ClientCert: pki.caFile, ClientKey: pki.clientKey}), Options{}, fmt.Sprintf(`http.clientCert %q, http.clientKey %q: tls: private key does not match public key`, pki.caFile, pki.clientKey)},
		{"negative conns", httpMethod(1, config.HTTP{URL: "http://x"}), Options{MaxConnsPerHost: -1}, "maximum connections per host must not be negative, got -1"},
		{"negative timeout", httpMethod(-5, config.HTTP{URL: "http://x"}), Options{}, "invalid configuration: method.timeout = -5: must be a positive number of milliseconds (leave it out for the default, 5000)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHTTP(tt.m, tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestHTTPNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	srv, _ := recordingServer(t, 500, "x")
	func() {
		h, err := NewHTTP(httpMethod(5000, config.HTTP{URL: srv.URL}), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			_, _ = h.Run(context.Background(), []byte("{}"))
		}
		h.CloseIdleConnections()
	}()
	srv.CloseClientConnections()
	srv.Close()
	waitGoroutines(t, before)
}

func TestHTTPDebugLog(t *testing.T) {
	var buf bytes.Buffer
	srv, _ := recordingServer(t, 200, "12")
	h := newHTTP(t, httpMethod(5000, config.HTTP{URL: srv.URL}), Options{Logger: slogDebug(&buf)})
	if _, err := h.Run(context.Background(), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"http call finished", "status=200", "outputBytes=2", "duration="} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("log %q does not contain %q", buf.String(), w)
		}
	}
}

// BenchmarkHTTPRun measures one call against a local server.
func BenchmarkHTTPRun(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "1\n")
	}))
	defer srv.Close()
	h := newHTTP(b, httpMethod(5000, config.HTTP{URL: srv.URL}), Options{})
	input := benchInput()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out, err := h.Run(ctx, input)
		if err != nil || string(out) != "1\n" {
			b.Fatalf("Run = %q, %v", out, err)
		}
	}
}

// BenchmarkHTTPRunParallel measures concurrent per-pod calls sharing the pool.
func BenchmarkHTTPRunParallel(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "1\n")
	}))
	defer srv.Close()
	h := newHTTP(b, httpMethod(5000, config.HTTP{URL: srv.URL}), Options{})
	input := benchInput()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Run(context.Background(), input); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
