package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/custompodautoscaler/cpa/internal/adapter/apiserver"
	"github.com/custompodautoscaler/cpa/internal/adapter/store"
	"github.com/custompodautoscaler/cpa/internal/collector/influxdb"
	"github.com/custompodautoscaler/cpa/internal/collector/prometheus"
	"github.com/custompodautoscaler/cpa/internal/collector/schedule"
	"github.com/custompodautoscaler/cpa/internal/collector/zmon"
)

// options are the command line's settings. The names and defaults are the original
// adapter's, so its manifests keep working.
type options struct {
	server *apiserver.Options

	kubeconfig, listerKubeconfig string
	qps                          float32
	burst                        int

	enableCustom, enableExternal bool

	prometheusServer, prometheusTokenFile          string
	additionalPrometheus, additionalPrometheusToks map[string]string
	skipperIngress, skipperRouteGroup              bool
	skipperBackendsAnnotations                     []string
	awsExternalMetrics                             bool
	awsRegions                                     []string
	zmonEndpoint, zmonTokenName, token, credsDir   string
	influxAddress, influxToken, influxOrg          string
	scalingSchedule                                bool
	scheduleWindow                                 time.Duration
	scheduleRampSteps                              int
	scheduleTimeZone                               string
	hpaTolerance                                   float64
	scheduleOpts                                   schedule.Options

	metricsAddress        string
	metricsTTL            time.Duration
	gcInterval            time.Duration
	defaultInterval       time.Duration
	resourceUpdate        time.Duration
	disregardIncompatible bool
	maxConcurrent         int
	showVersion           bool

	servers prometheus.Servers
}

func newFlagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kube-metrics-adapter", pflag.ContinueOnError)
	fs.SortFlags = true
	o.server = apiserver.NewOptions()
	o.server.AddFlags(fs)

	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster whose HPAs the adapter serves (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&o.listerKubeconfig, "lister-kubeconfig", "", "the original's name for --kubeconfig; wins when both are set")
	fs.Float32Var(&o.qps, "kube-client-qps", 0, "client-side limit of requests per second to the API server; 0: none, the API server's Priority and Fairness queues the adapter's requests (the original's 0 meant client-go's 5, which throttles an adapter serving a hundred HPAs)")
	fs.IntVar(&o.burst, "kube-client-burst", 0, "requests above --kube-client-qps allowed in a burst (with a limit only); 0: twice --kube-client-qps")

	fs.BoolVar(&o.enableCustom, "enable-custom-metrics-api", true, "serve custom.metrics.k8s.io (v1beta2 and v1beta1): Pods and Object metrics")
	fs.BoolVar(&o.enableExternal, "enable-external-metrics-api", true, "serve external.metrics.k8s.io (v1beta1): External metrics")

	fs.StringVar(&o.prometheusServer, "prometheus-server", "", "URL of the Prometheus server queried by prometheus metrics that name no server of their own; also enables the skipper collector")
	fs.StringVar(&o.prometheusTokenFile, "prometheus-server-token-file", "", "file holding the bearer token sent to --prometheus-server (read again when it changes)")
	fs.StringToStringVar(&o.additionalPrometheus, "additional-prometheus-server", map[string]string{}, "more Prometheus servers as alias=URL (repeatable); a metric picks one with its prometheus-server-alias key")
	fs.StringToStringVar(&o.additionalPrometheusToks, "additional-prometheus-server-token-file", map[string]string{}, "bearer token files of additional servers as alias=path (repeatable)")
	fs.BoolVar(&o.skipperIngress, "skipper-ingress-metrics", false, "serve requests-per-second Object metrics about Ingresses from Skipper's series in Prometheus")
	fs.BoolVar(&o.skipperRouteGroup, "skipper-routegroup-metrics", false, "serve requests-per-second Object metrics about RouteGroups (zalando.org/v1) from Skipper's series in Prometheus")
	fs.StringSliceVar(&o.skipperBackendsAnnotations, "skipper-backends-annotation", nil, "Ingress annotation(s) holding the backends' traffic weights as JSON {\"backend\": percent} (repeatable)")

	fs.BoolVar(&o.awsExternalMetrics, "aws-external-metrics", false, "serve sqs-queue-length External metrics from AWS SQS (credentials from the SDK's default chain: environment, shared config, web identity, instance role)")
	fs.StringSliceVar(&o.awsRegions, "aws-region", nil, "AWS region(s) SQS metrics may name in their region label (repeatable; required with --aws-external-metrics)")

	fs.StringVar(&o.influxAddress, "influxdb-address", "", "InfluxDB URL queried by influxdb metrics that name no address of their own (Flux on the v2 query API)")
	fs.StringVar(&o.influxToken, "influxdb-token", "", "token sent to --influxdb-address (only to it)")
	fs.StringVar(&o.influxOrg, "influxdb-org", "", "InfluxDB organization name or ID of --influxdb-address")
	fs.StringVar(&o.zmonEndpoint, "zmon-kariosdb-endpoint", "", "KairosDB URL of ZMON; enables the zmon collector (the original's spelling)")
	fs.StringVar(&o.zmonTokenName, "zmon-token-name", "zmon", "name of the ZMON token in --credentials-dir (file <dir>/<name>-token-secret)")
	fs.StringVar(&o.token, "token", "", "a static bearer token for ZMON, used instead of --credentials-dir")
	fs.StringVar(&o.credsDir, "credentials-dir", "/meta/credentials", "directory of token files (Platform IAM layout), read again when they change")

	fs.BoolVar(&o.scalingSchedule, "scaling-schedule", false, "serve Object metrics about ScalingSchedules and ClusterScalingSchedules (zalando.org/v1; their CRDs are in the Helm chart)")
	fs.DurationVar(&o.scheduleWindow, "scaling-schedule-default-scaling-window", schedule.DefaultScalingWindow, "ramp before and after a schedule whose spec sets no scalingWindowDurationMinutes")
	fs.IntVar(&o.scheduleRampSteps, "scaling-schedule-ramp-steps", schedule.DefaultRampSteps, "steps of a schedule's ramp")
	fs.StringVar(&o.scheduleTimeZone, "scaling-schedule-default-time-zone", schedule.DefaultTimeZone, "IANA time zone of repeating schedules that name none")
	fs.Float64Var(&o.hpaTolerance, "horizontal-pod-autoscaler-tolerance", 0.1, "the HPA controller's tolerance (kube-controller-manager's flag of that name), for the schedules' replica adjustment")

	fs.StringVar(&o.metricsAddress, "metrics-address", ":7979", "address of the plain-HTTP Prometheus endpoint of the adapter's own metrics (/metrics only)")
	fs.DurationVar(&o.metricsTTL, "metrics-ttl", store.DefaultTTL, "values older than this are no longer served, so the HPA sees a failing source as unavailable instead of scaling on an old value")
	fs.DurationVar(&o.gcInterval, "garbage-collector-interval", 10*time.Minute, "how often expired values are freed (they are never served past --metrics-ttl whatever this is)")
	fs.DurationVar(&o.defaultInterval, "default-collection-interval", time.Minute, "collection interval of metrics with no interval annotation")
	fs.DurationVar(&o.resourceUpdate, "resource-update-interval", 30*time.Second, "ignored: HPAs are watched, not listed periodically")
	_ = fs.MarkDeprecated("resource-update-interval", "HPAs are watched; the flag has no effect")
	fs.BoolVar(&o.disregardIncompatible, "disregard-incompatible-hpas", false, "send no event for metrics no enabled collector serves (they are still logged)")
	fs.IntVar(&o.maxConcurrent, "max-concurrent-collections", 32, "collections running at once across all HPAs")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")

	gofs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(gofs)
	fs.AddGoFlagSet(gofs)
	return fs
}

// validate checks the options, reporting every problem at once.
func (o *options) validate() error {
	var errs []error
	if err := o.server.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !o.enableCustom && !o.enableExternal {
		errs = append(errs, errors.New("--enable-custom-metrics-api and --enable-external-metrics-api are both false: nothing to serve"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--metrics-ttl", o.metricsTTL}, {"--garbage-collector-interval", o.gcInterval}, {"--default-collection-interval", o.defaultInterval}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", d.name, d.v))
		}
	}
	if o.defaultInterval > 0 && o.metricsTTL > 0 && o.defaultInterval >= o.metricsTTL {
		errs = append(errs, fmt.Errorf("--default-collection-interval %s is not below --metrics-ttl %s: every value would expire before the next collection", o.defaultInterval, o.metricsTTL))
	}
	if o.maxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-collections %d: must be at least 1", o.maxConcurrent))
	}
	if o.qps < 0 || o.burst < 0 {
		errs = append(errs, errors.New("--kube-client-qps and --kube-client-burst must not be negative"))
	}
	servers, err := prometheus.ParseServers(o.prometheusServer, o.prometheusTokenFile, o.additionalPrometheus, o.additionalPrometheusToks)
	if err != nil {
		errs = append(errs, err)
	}
	o.servers = servers
	if o.influxAddress != "" {
		if err := influxdb.CheckAddress(o.influxAddress); err != nil {
			errs = append(errs, fmt.Errorf("--influxdb-address %q: %w", o.influxAddress, err))
		}
	}
	if err := influxdb.CheckToken(o.influxToken); err != nil {
		errs = append(errs, fmt.Errorf("--influxdb-token: %w", err))
	}
	if o.zmonEndpoint != "" {
		if err := zmon.CheckEndpoint(o.zmonEndpoint); err != nil {
			errs = append(errs, fmt.Errorf("--zmon-kariosdb-endpoint %q: %w", o.zmonEndpoint, err))
		}
	}
	scheduleOpts, err := schedule.NewOptions(o.scheduleWindow, o.scheduleRampSteps, o.scheduleTimeZone)
	if err != nil {
		errs = append(errs, err)
	}
	o.scheduleOpts = scheduleOpts
	if o.hpaTolerance < 0 || o.hpaTolerance >= 1 {
		errs = append(errs, fmt.Errorf("--horizontal-pod-autoscaler-tolerance %g: must be at least 0 and below 1", o.hpaTolerance))
	}
	if o.awsExternalMetrics && len(o.awsRegions) == 0 {
		errs = append(errs, errors.New("--aws-external-metrics needs at least one --aws-region (the regions SQS metrics may name)"))
	}
	if (o.skipperIngress || o.skipperRouteGroup) && o.prometheusServer == "" {
		errs = append(errs, errors.New("--skipper-ingress-metrics and --skipper-routegroup-metrics need --prometheus-server (Skipper's series are read from it)"))
	}
	return errors.Join(errs...)
}
