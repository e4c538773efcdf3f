package apiserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	cmv1beta1 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta1"
	cmv1beta2 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	emv1beta1 "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	clocktesting "k8s.io/utils/clock/testing"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/custompodautoscaler/cpa/internal/adapter/annotations"
	"github.com/custompodautoscaler/cpa/internal/adapter/provider"
	"github.com/custompodautoscaler/cpa/internal/adapter/store"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

func TestFlags(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	NewOptions().AddFlags(fs)
	// The original's flag names, inherited from the generic API server's options.
	defaults := map[string]string{
		"bind-address": "0.0.0.0", "secure-port": "443", "cert-dir": "apiserver.local.config/certificates",
		"tls-cert-file": "", "tls-private-key-file": "", "tls-cipher-suites": "[]", "tls-min-version": "",
		"tls-sni-cert-key": "[]", "http2-max-streams-per-connection": "0",
		"permit-port-sharing": "false", "permit-address-sharing": "false",
		"authentication-kubeconfig": "", "authentication-skip-lookup": "false",
		"authentication-token-webhook-cache-ttl": "2m0s", "authentication-tolerate-lookup-failure": "false",
		"client-ca-file": "", "requestheader-client-ca-file": "", "requestheader-allowed-names": "[]",
		"requestheader-username-headers": "[x-remote-user]", "requestheader-group-headers": "[x-remote-group]",
		"requestheader-extra-headers-prefix": "[x-remote-extra-]",
		"authorization-kubeconfig":           "", "authorization-always-allow-paths": "[/healthz,/readyz,/livez]",
		"authorization-webhook-cache-authorized-ttl": "5m0s", "authorization-webhook-cache-unauthorized-ttl": "10s",
		"profiling": "false", "contention-profiling": "false", "enable-priority-and-fairness": "false",
	}
	for name, def := range defaults {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("--%s is not registered", name)
			continue
		}
		if f.DefValue != def {
			t.Errorf("--%s defaults to %q, want %q", name, f.DefValue, def)
		}
	}
	// The caller's flags, and the audit flags the original never had.
	for _, name := range []string{"lister-kubeconfig", "enable-custom-metrics-api", "enable-external-metrics-api", "metrics-address", "audit-log-path"} {
		if fs.Lookup(name) != nil {
			t.Errorf("--%s is registered; it is not this package's", name)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		change func(*Options)
		want   string
	}{
		{name: "defaults"},
		{name: "port 0", args: []string{"--secure-port=0"}, want: "--secure-port"},
		{name: "port too high", args: []string{"--secure-port=70000"}, want: "--secure-port"},
		{name: "no name", change: func(o *Options) { o.Name = "" }, want: "name"},
		{name: "no authorization", change: func(o *Options) { o.Authorization = nil }, want: "required"},
		{name: "no serving", change: func(o *Options) { o.SecureServing = nil }, want: "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if tc.change != nil {
				tc.change(o)
			}
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error about %q", err, tc.want)
			}
		})
	}

	ctx := context.Background()
	if err := NewOptions().Run(ctx, nil, nil); err == nil || !strings.Contains(err.Error(), "nothing to serve") {
		t.Errorf("no API: got %v", err)
	}
	o := NewOptions()
	o.Features.EnablePriorityAndFairness = true
	p := provider.New(store.New(time.Minute, clocktesting.NewFakePassiveClock(time.Now()), nil), provider.Options{})
	if err := o.Run(ctx, p, nil); err == nil || !strings.Contains(err.Error(), "priority-and-fairness") {
		t.Errorf("priority and fairness without a client: got %v", err)
	}
}

func TestRunFailsCleanly(t *testing.T) {
	o := NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	missing := filepath.Join(t.TempDir(), "missing")
	if err := fs.Parse([]string{"--cert-dir=", "--authentication-kubeconfig=" + missing}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o.SecureServing.Listener = ln
	o.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port
	p := provider.New(store.New(time.Minute, clocktesting.NewFakePassiveClock(time.Now()), nil), provider.Options{})
	if err := o.Run(context.Background(), p, p); err == nil || !strings.Contains(err.Error(), "authentication") {
		t.Fatalf("got %v, want a delegated authentication error", err)
	}
	// The port is freed when the server cannot be built.
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after the failed Run: %v, want the listener closed", err)
	}
}

// fakeKube answers the TokenReviews and SubjectAccessReviews of delegated
// authentication and authorization: the token "good" is the user "hpa", who may do
// anything; every other user may do nothing.
type fakeKube struct {
	mu   sync.Mutex
	sars []string
}

func (f *fakeKube) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var out any
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		var tr authenticationv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tr.TypeMeta = metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"}
		if tr.Spec.Token == "good" {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "hpa"}}
		}
		out = &tr
	case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
		var sar authorizationv1.SubjectAccessReview
		if err := json.NewDecoder(r.Body).Decode(&sar); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sar.TypeMeta = metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"}
		sar.Status.Allowed = sar.Spec.User == "hpa"
		if ra := sar.Spec.ResourceAttributes; ra != nil {
			f.mu.Lock()
			f.sars = append(f.sars, fmt.Sprintf("%s %s %s/%s %s", sar.Spec.User, ra.Verb, ra.Group, ra.Resource, ra.Namespace))
			f.mu.Unlock()
		}
		out = &sar
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// writeKubeconfig points a kubeconfig at ts.
func writeKubeconfig(t *testing.T, ts *httptest.Server) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["fake"] = &clientcmdapi.Cluster{Server: ts.URL,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})}
	cfg.AuthInfos["adapter"] = &clientcmdapi.AuthInfo{Token: "adapter"}
	cfg.Contexts["fake"] = &clientcmdapi.Context{Cluster: "fake", AuthInfo: "adapter"}
	cfg.CurrentContext = "fake"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeServingCert writes a self-signed certificate for 127.0.0.1 and returns the
// files and a pool trusting it.
func writeServingCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "adapter-test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// server is one adapter API server run by a test.
type server struct {
	url    string
	client *http.Client
}

// get returns the status and body of GET path with token ("" for none).
func (s *server) get(t *testing.T, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// startServer runs Options parsed from args with the providers on 127.0.0.1 until the
// test ends, and checks then that Run returns promptly.
func startServer(t *testing.T, args []string, pool *x509.CertPool, custom cmprovider.CustomMetricsProvider, external cmprovider.ExternalMetricsProvider) *server {
	t.Helper()
	o := NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.SecureServing.Listener = ln
	o.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, custom, external) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})

	tlsCfg := &tls.Config{RootCAs: pool}
	if pool == nil {
		tlsCfg.InsecureSkipVerify = true // a certificate generated by the server
	}
	s := &server{url: "https://" + ln.Addr().String(), client: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsCfg}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, s.url+"/readyz", nil)
		resp, err := s.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never became ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var t0 = time.Now().Truncate(time.Second)

// newProvider serves a store holding two HPAs' pod values and an External metric.
func newProvider(t *testing.T) *provider.Provider {
	t.Helper()
	s := store.New(time.Hour, clocktesting.NewFakePassiveClock(t0), nil)
	q := func(v int64) resource.Quantity { return *resource.NewQuantity(v, resource.DecimalSI) }
	podsKey := annotations.MetricKey{Type: autoscalingv2.PodsMetricSourceType, Name: "rps"}
	for owner, pods := range map[string][]string{"web": {"web-1", "web-2"}, "api": {"api-1"}} {
		var values []collector.Value
		for i, p := range pods {
			values = append(values, collector.Value{Object: collector.ObjectRef{Name: p}, Value: q(int64(10 * (i + 1))), Timestamp: t0})
		}
		if err := s.Set(store.Owner{Namespace: "default", Name: owner}, podsKey, nil, values); err != nil {
			t.Fatal(err)
		}
	}
	extKey := annotations.MetricKey{Type: autoscalingv2.ExternalMetricSourceType, Name: "queue-length", Selector: "queue=jobs"}
	if err := s.Set(store.Owner{Namespace: "default", Name: "worker"}, extKey, map[string]string{"queue": "jobs"},
		[]collector.Value{{Value: q(30), Timestamp: t0}}); err != nil {
		t.Fatal(err)
	}
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{"app": "web"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-2", Labels: map[string]string{"app": "web"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "api-1", Labels: map[string]string{"app": "api"}}},
	} {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	return provider.New(s, provider.Options{Pods: provider.PodNames(corelisters.NewPodLister(idx))})
}

func TestServe(t *testing.T) {
	kube := &fakeKube{}
	ts := httptest.NewTLSServer(kube)
	defer ts.Close()
	kubeconfig := writeKubeconfig(t, ts)
	certFile, keyFile, pool := writeServingCert(t)
	p := newProvider(t)
	s := startServer(t, []string{
		"--tls-cert-file=" + certFile, "--tls-private-key-file=" + keyFile,
		"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--authentication-skip-lookup",
	}, pool, p, p)

	const podsPath = "/namespaces/default/pods/*/rps?labelSelector=app%3Dweb"
	t.Run("custom v1beta2", func(t *testing.T) {
		code, body := s.get(t, "/apis/custom.metrics.k8s.io/v1beta2"+podsPath, "good")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var list cmv1beta2.MetricValueList
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range list.Items {
			got = append(got, fmt.Sprintf("%s %s/%s %s=%s", it.DescribedObject.Kind, it.DescribedObject.Namespace, it.DescribedObject.Name, it.Metric.Name, it.Value.String()))
			if !it.Timestamp.Time.Equal(t0) || it.WindowSeconds != nil {
				t.Errorf("timestamp %v, window %v", it.Timestamp, it.WindowSeconds)
			}
		}
		if want := []string{"Pod default/web-1 rps=10", "Pod default/web-2 rps=20"}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("custom v1beta1", func(t *testing.T) {
		code, body := s.get(t, "/apis/custom.metrics.k8s.io/v1beta1"+podsPath, "good")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var list cmv1beta1.MetricValueList
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 2 || list.Items[0].MetricName != "rps" || list.Items[0].Value.Value() != 10 {
			t.Errorf("got %+v", list.Items)
		}
	})
	t.Run("custom by name, not found", func(t *testing.T) {
		if code, body := s.get(t, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/web-9/rps", "good"); code != http.StatusNotFound {
			t.Errorf("status %d: %s", code, body)
		}
	})
	t.Run("external", func(t *testing.T) {
		code, body := s.get(t, "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue-length?labelSelector=queue%3Djobs", "good")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var list emv1beta1.ExternalMetricValueList
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 || list.Items[0].MetricName != "queue-length" || list.Items[0].Value.Value() != 30 ||
			list.Items[0].MetricLabels["queue"] != "jobs" {
			t.Errorf("got %+v", list.Items)
		}
		code, body = s.get(t, "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue-length?labelSelector=queue%3Dother", "good")
		if code != http.StatusOK || !strings.Contains(string(body), `"items":[]`) {
			t.Errorf("no value: status %d: %s", code, body)
		}
	})
	t.Run("authentication and authorization are delegated", func(t *testing.T) {
		if code, _ := s.get(t, "/apis/custom.metrics.k8s.io/v1beta2"+podsPath, "bad"); code != http.StatusUnauthorized {
			t.Errorf("bad token: status %d, want 401", code)
		}
		if code, _ := s.get(t, "/apis/custom.metrics.k8s.io/v1beta2"+podsPath, ""); code != http.StatusForbidden {
			t.Errorf("anonymous: status %d, want 403", code)
		}
		kube.mu.Lock()
		defer kube.mu.Unlock()
		if !slices.Contains(kube.sars, "hpa get custom.metrics.k8s.io/pods default") {
			t.Errorf("SubjectAccessReviews: %q", kube.sars)
		}
	})
	t.Run("discovery and OpenAPI", func(t *testing.T) {
		code, body := s.get(t, "/apis/custom.metrics.k8s.io/v1beta2", "good")
		if code != http.StatusOK || !strings.Contains(string(body), `"pods/rps"`) {
			t.Errorf("discovery: status %d: %s", code, body)
		}
		code, body = s.get(t, "/openapi/v2", "good")
		if code != http.StatusOK {
			t.Fatalf("OpenAPI: status %d", code)
		}
		var doc struct {
			Info struct{ Title string } `json:"info"`
		}
		if err := json.Unmarshal(body, &doc); err != nil || doc.Info.Title != DefaultName {
			t.Errorf("OpenAPI title %q (%v)", doc.Info.Title, err)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		code, body := s.get(t, "/metrics", "good")
		if code != http.StatusOK || !strings.Contains(string(body), "apiserver_request_duration_seconds") {
			t.Errorf("/metrics on the secure port: status %d", code)
		}
		mfs, err := Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, mf := range mfs {
			names[mf.GetName()] = true
			if strings.HasPrefix(mf.GetName(), "go_") || strings.HasPrefix(mf.GetName(), "process_") {
				t.Errorf("process-wide family %s gathered", mf.GetName())
			}
		}
		for _, want := range []string{"apiserver_request_duration_seconds", "apiserver_request_total", "metrics_apiserver_metric_freshness_seconds"} {
			if !names[want] {
				t.Errorf("Gatherer lacks %s", want)
			}
		}
	})
}

func TestServeOneAPI(t *testing.T) {
	kube := &fakeKube{}
	ts := httptest.NewTLSServer(kube)
	defer ts.Close()
	kubeconfig := writeKubeconfig(t, ts)
	p := newProvider(t)
	// No certificate given and no --cert-dir: the server generates one in memory.
	s := startServer(t, []string{
		"--cert-dir=", "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--authentication-skip-lookup",
	}, nil, nil, p)
	if code, body := s.get(t, "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue-length", "good"); code != http.StatusOK {
		t.Errorf("external: status %d: %s", code, body)
	}
	if code, _ := s.get(t, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/rps", "good"); code != http.StatusNotFound {
		t.Errorf("custom metrics disabled: status %d, want 404", code)
	}
}
