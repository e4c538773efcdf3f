// Package apiserver builds and runs the adapter's aggregated API server: the
// custom.metrics.k8s.io (v1beta2 and v1beta1) and external.metrics.k8s.io (v1beta1) APIs
// of sigs.k8s.io/custom-metrics-apiserver, served over HTTPS with authentication and
// authorization delegated to the cluster's API server.
//
// # Flags
//
// AddFlags registers the generic API server's flags under their usual names, those the
// original adapter had: secure serving (--bind-address, --secure-port (default 443),
// --cert-dir, --tls-cert-file, --tls-private-key-file, --tls-cipher-suites,
// --tls-min-version, --tls-sni-cert-key, ...), delegated authentication
// (--authentication-kubeconfig, --authentication-skip-lookup,
// --authentication-tolerate-lookup-failure, --client-ca-file, --requestheader-*, ...),
// delegated authorization (--authorization-kubeconfig, --authorization-always-allow-paths,
// ...) and features (--profiling, --contention-profiling, --debug-socket-path,
// --enable-priority-and-fairness). Audit flags are not registered, as in the original.
// Flags that select what to serve (--enable-custom-metrics-api, ...) and the client of
// the cluster (--lister-kubeconfig, ...) belong to the caller.
//
// Without --tls-cert-file and --tls-private-key-file a self-signed certificate for
// localhost is generated, in --cert-dir (in memory when it is ""). Without
// --authentication-kubeconfig and --authorization-kubeconfig the in-cluster
// configuration is used for the delegated TokenReviews and SubjectAccessReviews.
//
// # Metrics
//
// The generic server records its request metrics (apiserver_request_total,
// apiserver_request_duration_seconds, ...) and the library's
// metrics_apiserver_metric_freshness_seconds (the age of the values served, registered by
// Run) in the Kubernetes legacy registry, and serves them on the secure port at /metrics
// to clients authorized for the non-resource URL /metrics. Gatherer offers the same
// families for a separate, plain-HTTP metrics listener.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/spf13/pflag"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics/legacyregistry"
	openapicommon "k8s.io/kube-openapi/pkg/common"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	cmmetrics "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver/metrics"
	generatedcore "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/core"
	generatedcustom "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/custommetrics"
	generatedexternal "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/externalmetrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// DefaultName names the server in logs and titles its OpenAPI document.
const DefaultName = "kube-metrics-adapter"

// Options configure the API server. Build them with NewOptions, register their flags
// with AddFlags, and use them for one Run.
type Options struct {
	SecureServing  *genericoptions.SecureServingOptionsWithLoopback
	Authentication *genericoptions.DelegatingAuthenticationOptions
	Authorization  *genericoptions.DelegatingAuthorizationOptions
	Features       *genericoptions.FeatureOptions

	// Name names the server in logs and titles its OpenAPI document.
	Name string
	// ClientConfig reaches the cluster's API server. Only --enable-priority-and-fairness
	// needs it (to read the flow-control configuration); nil otherwise.
	ClientConfig *rest.Config
}

// NewOptions returns the defaults: port 443 on all addresses, a self-signed certificate
// in apiserver.local.config/certificates, delegated authentication and authorization,
// profiling off, authenticated tokens cached for 2 minutes and authorized answers for 5
// (kube-apiserver's webhook defaults), priority and fairness off (a metrics API is queried by the cluster's controllers, not
// by the crowd the feature protects the main API server from).
func NewOptions() *Options {
	o := &Options{
		SecureServing:  genericoptions.NewSecureServingOptions().WithLoopback(),
		Authentication: genericoptions.NewDelegatingAuthenticationOptions(),
		Authorization:  genericoptions.NewDelegatingAuthorizationOptions(),
		Features:       genericoptions.NewFeatureOptions(),
		Name:           DefaultName,
	}
	o.Features.EnablePriorityAndFairness = false
	// The HPA controller asks for each metric every 15 s (its sync period), past the
	// library's 10 s: nearly every query would wait for a SubjectAccessReview. Five
	// minutes is kube-apiserver's own webhook authorizer default; a revoked grant takes
	// that long to apply.
	o.Authorization.AllowCacheTTL = 5 * time.Minute
	// Likewise kube-apiserver's token webhook default: one TokenReview per caller token
	// every 2 minutes instead of every 10 s.
	o.Authentication.CacheTTL = 2 * time.Minute
	// No pprof unless asked for (--profiling): the original served it, unauthenticated.
	o.Features.EnableProfiling = false
	// Port 0 would "turn serving off": an adapter that serves nothing is a mistake.
	o.SecureServing.Required = true
	return o
}

// AddFlags registers the options' flags on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.SecureServing.AddFlags(fs)
	o.Authentication.AddFlags(fs)
	o.Authorization.AddFlags(fs)
	o.Features.AddFlags(fs)
}

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	if o.SecureServing == nil || o.SecureServing.SecureServingOptions == nil || o.Authentication == nil || o.Authorization == nil || o.Features == nil {
		// The delegated options treat nil as "no authentication, allow all": never by
		// accident.
		return errors.New("the secure serving, authentication, authorization and feature options are all required")
	}
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("the server needs a name"))
	}
	errs = append(errs, o.SecureServing.Validate()...)
	errs = append(errs, o.Authentication.Validate()...)
	errs = append(errs, o.Authorization.Validate()...)
	errs = append(errs, o.Features.Validate()...)
	return errors.Join(errs...)
}

// Run serves custom (nil: custom.metrics.k8s.io is not served) and external (nil:
// external.metrics.k8s.io is not served) until ctx is done, then shuts the server down,
// letting requests in flight finish, and returns. Passing neither is an error. Pass an
// untyped nil, not a nil pointer, to leave an API out.
func (o *Options) Run(ctx context.Context, custom provider.CustomMetricsProvider, external provider.ExternalMetricsProvider) error {
	srv, err := o.newServer(custom, external)
	if err != nil {
		return err
	}
	return srv.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

func (o *Options) newServer(custom provider.CustomMetricsProvider, external provider.ExternalMetricsProvider) (_ *cmapiserver.CustomMetricsAdapterServer, err error) {
	if custom == nil && external == nil {
		return nil, errors.New("neither the custom nor the external metrics API is enabled: nothing to serve")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Features.EnablePriorityAndFairness && o.ClientConfig == nil {
		return nil, errors.New("--enable-priority-and-fairness needs a client of the cluster's API server")
	}
	if err := o.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("creating a self-signed serving certificate: %w", err)
	}

	cfg := genericapiserver.NewRecommendedConfig(cmapiserver.Codecs)
	// OpenAPI first: authentication adds its security definitions to it.
	defs := openAPIDefinitions(custom != nil, external != nil)
	namer := openapinamer.NewDefinitionNamer(cmapiserver.Scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, namer)
	cfg.OpenAPIConfig.Info.Title, cfg.OpenAPIConfig.Info.Version = o.Name, "1.0.0"
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, namer)
	cfg.OpenAPIV3Config.Info.Title, cfg.OpenAPIV3Config.Info.Version = o.Name, "1.0.0"

	if err := o.SecureServing.ApplyTo(&cfg.SecureServing, &cfg.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("secure serving: %w", err)
	}
	defer func() {
		// ApplyTo opened the port: free it if the server is not built after all.
		if err != nil && o.SecureServing.Listener != nil {
			_ = o.SecureServing.Listener.Close()
		}
	}()
	if err := o.Authentication.ApplyTo(&cfg.Authentication, cfg.SecureServing, cfg.OpenAPIConfig); err != nil {
		return nil, fmt.Errorf("delegated authentication: %w", err)
	}
	if err := o.Authorization.ApplyTo(&cfg.Authorization); err != nil {
		return nil, fmt.Errorf("delegated authorization: %w", err)
	}
	var (
		client  kubernetes.Interface
		factory informers.SharedInformerFactory
	)
	if o.Features.EnablePriorityAndFairness {
		c, err := kubernetes.NewForConfig(o.ClientConfig)
		if err != nil {
			return nil, fmt.Errorf("priority and fairness: %w", err)
		}
		client, factory = c, informers.NewSharedInformerFactory(c, 0)
	}
	if err := o.Features.ApplyTo(&cfg.Config, client, factory); err != nil {
		return nil, err
	}
	cfg.EnableMetrics = true
	registerMetrics()

	c := cmapiserver.Config{GenericConfig: &cfg.Config}
	// The server starts the factory's informers (if any) in a post-start hook.
	srv, err := c.Complete(factory).New(o.Name, custom, external)
	if err != nil {
		return nil, fmt.Errorf("building the API server: %w", err)
	}
	return srv, nil
}

// openAPIDefinitions are the library's generated definitions of the APIs served.
func openAPIDefinitions(custom, external bool) openapicommon.GetOpenAPIDefinitions {
	getters := []openapicommon.GetOpenAPIDefinitions{generatedcore.GetOpenAPIDefinitions}
	if custom {
		getters = append(getters, generatedcustom.GetOpenAPIDefinitions)
	}
	if external {
		getters = append(getters, generatedexternal.GetOpenAPIDefinitions)
	}
	return func(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
		out := map[string]openapicommon.OpenAPIDefinition{}
		for _, get := range getters {
			maps.Copy(out, get(ref))
		}
		return out
	}
}

var registerOnce sync.Once

// registerMetrics registers the library's freshness histogram, which it observes on
// every request but never registers itself (unregistered, its observations are lost).
// The registry is global, hence once per process.
func registerMetrics() {
	registerOnce.Do(func() {
		_ = cmmetrics.RegisterMetrics(legacyregistry.Register) // only fails if already registered
	})
}

// apiMetricPrefixes select the API server's own families from the legacy registry.
var apiMetricPrefixes = []string{"apiserver_", "metrics_apiserver_", "authentication_", "authorization_", "authenticated_user_"}

// Gatherer returns the API server's own metric families from the Kubernetes legacy
// registry (those whose names start with apiserver_, metrics_apiserver_,
// authentication_, authorization_ or authenticated_user_), for a caller that serves them
// on its own metrics listener next to its own registry. The process-wide families the
// legacy registry also holds (go_*, process_*, client-go's rest_client_*, ...) are left
// out, since the caller's registry normally exports them too and merging both would
// duplicate them. The request metrics appear once a server is built.
func Gatherer() prometheus.Gatherer {
	return prefixGatherer{g: legacyregistry.DefaultGatherer, prefixes: apiMetricPrefixes}
}

type prefixGatherer struct {
	g        prometheus.Gatherer
	prefixes []string
}

func (p prefixGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := p.g.Gather()
	out := mfs[:0]
	for _, mf := range mfs {
		for _, pre := range p.prefixes {
			if strings.HasPrefix(mf.GetName(), pre) {
				out = append(out, mf)
				break
			}
		}
	}
	return out, err
}
