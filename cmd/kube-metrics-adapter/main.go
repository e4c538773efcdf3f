// Command kube-metrics-adapter serves custom.metrics.k8s.io and external.metrics.k8s.io to
// the Horizontal Pod Autoscaler from collectors configured by HPA annotations: a JSON
// field on every pod, an HTTP endpoint, a Prometheus or InfluxDB query, Skipper's request
// rates, an SQS queue's length, a ZMON check, and scaling schedules.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/custompodautoscaler/cpa/internal/adapter/apiserver"
	"github.com/custompodautoscaler/cpa/internal/adapter/collect"
	"github.com/custompodautoscaler/cpa/internal/adapter/discovery"
	"github.com/custompodautoscaler/cpa/internal/adapter/provider"
	"github.com/custompodautoscaler/cpa/internal/adapter/schedulecontroller"
	"github.com/custompodautoscaler/cpa/internal/adapter/store"
	"github.com/custompodautoscaler/cpa/internal/collector"
	"github.com/custompodautoscaler/cpa/internal/collector/httpjson"
	"github.com/custompodautoscaler/cpa/internal/collector/influxdb"
	collkube "github.com/custompodautoscaler/cpa/internal/collector/kube"
	"github.com/custompodautoscaler/cpa/internal/collector/podjson"
	promcollector "github.com/custompodautoscaler/cpa/internal/collector/prometheus"
	"github.com/custompodautoscaler/cpa/internal/collector/schedule"
	"github.com/custompodautoscaler/cpa/internal/collector/sqs"
	"github.com/custompodautoscaler/cpa/internal/collector/zmon"
	"github.com/custompodautoscaler/cpa/internal/kube"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `kube-metrics-adapter serves custom and external metrics to the Horizontal Pod
Autoscaler, collected as HPA annotations configure them:

  metric-config.<pods|object|external>.<metric name>.<collector>/<key>: <value>

Collectors: json-path (Pods: a JSON field on every pod of the scale target; External: an
HTTP endpoint), prometheus (External, and Object with per-replica), skipper (Object
requests-per-second of Ingresses and RouteGroups), influxdb (External, a Flux query),
sqs-queue-length (External, with --aws-external-metrics), zmon (External, with
--zmon-kariosdb-endpoint), and scaling schedules (Object metrics about the zalando.org/v1
ScalingSchedules and ClusterScalingSchedules, with --scaling-schedule).

It runs as an aggregated API server registered as the APIServices
v1beta1/v1beta2.custom.metrics.k8s.io and v1beta1.external.metrics.k8s.io.

Usage:
  kube-metrics-adapter [flags]

Flags:
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	o := &options{}
	fs := newFlagSet(o)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		fmt.Fprint(os.Stderr, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "kube-metrics-adapter: %v\n(see --help)\n", err)
		return 2
	}
	if o.showVersion {
		fmt.Println(version)
		return 0
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "kube-metrics-adapter: invalid flags:\n%v\n", err)
		return 2
	}
	// The adapter's live heap is small (25 MiB with 1000 External metrics) and mostly
	// short-lived request garbage; GOGC=100 lets the heap double it before each
	// collection. 50 keeps the resident memory about 13 MiB lower for a few percent of
	// throughput (docs/benchmarks.md); GOGC in the environment still decides.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(50)
	}
	log := newLogger(fs)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, o, log); err != nil {
		log.Error("kube-metrics-adapter stopped", "err", err)
		return 1
	}
	return 0
}

// newLogger logs text to stderr, at debug level from -v=4 on.
func newLogger(fs *pflag.FlagSet) *slog.Logger {
	level := slog.LevelInfo
	if f := fs.Lookup("v"); f != nil {
		if v, err := strconv.Atoi(f.Value.String()); err == nil && v >= 4 {
			level = slog.LevelDebug
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	klog.SetSlogLogger(log)
	return log
}

// serve runs the adapter until ctx is done.
func serve(ctx context.Context, o *options, log *slog.Logger) error {
	cfg, err := restConfig(o)
	if err != nil {
		return err
	}
	a, err := build(ctx, o, cfg, log)
	if err != nil {
		return err
	}
	return a.run(ctx, o)
}

func restConfig(o *options) (*rest.Config, error) {
	path := o.kubeconfig
	if o.listerKubeconfig != "" {
		path = o.listerKubeconfig
	}
	cfg, err := kube.RESTConfig(path)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 30 * time.Second
	cfg.QPS, cfg.Burst = -1, 0 // client-go: a negative QPS means no client-side limiter
	if o.qps > 0 {
		burst := o.burst
		if burst <= 0 {
			burst = int(2 * o.qps)
		}
		cfg.QPS, cfg.Burst = o.qps, max(burst, 1)
	}
	cfg.UserAgent = "kube-metrics-adapter/" + version
	return cfg, nil
}

// adapter is the wired program.
type adapter struct {
	log       *slog.Logger
	informers informers.SharedInformerFactory
	discovery *discovery.Controller
	scheduler *collect.Scheduler
	store     *store.Store
	provider  *provider.Provider
	registry  *prometheus.Registry
	events    record.EventBroadcaster
	// schedules is the ScalingSchedule controller (--scaling-schedule) and its informers;
	// nil without the flag.
	schedules         *schedulecontroller.Controller
	scheduleInformers dynamicinformer.DynamicSharedInformerFactory
}

func build(ctx context.Context, o *options, cfg *rest.Config, log *slog.Logger) (*adapter, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	clk := clock.RealClock{}
	mapper := kube.NewRefreshingMapper(client.Discovery(), clk, 30*time.Second)
	scales, err := scale.NewForConfig(cfg, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(client.Discovery()))
	if err != nil {
		return nil, err
	}
	o.server.ClientConfig = cfg

	a := &adapter{log: log, registry: prometheus.NewRegistry()}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.store = store.New(o.metricsTTL, clk, store.RESTMapperResolver(mapper))

	reg, err := registerCollectors(o, collkube.NewScales(scales, mapper), collkube.NewPods(client), collkube.NewObjects(dyn, mapper), clk, log)
	if err != nil {
		return nil, err
	}

	a.events = record.NewBroadcaster(record.WithContext(ctx))
	a.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := a.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kube-metrics-adapter"})

	// Only HPAs are cached, without their managedFields.
	a.informers = informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(stripManagedFields))
	hpaInformer := a.informers.Autoscaling().V2().HorizontalPodAutoscalers()
	a.scheduler = collect.New(a.store, collect.Options{
		MaxConcurrent: o.maxConcurrent,
		Clock:         clk,
		Log:           log,
		Reporter:      discovery.Failures{Lister: hpaInformer.Lister(), Recorder: recorder},
		Metrics:       collect.NewMetrics(a.registry),
	})
	scheduleKinds := map[string]bool{}
	if o.scalingSchedule {
		scheduleKinds[schedule.KindScalingSchedule] = true
		scheduleKinds[schedule.KindClusterScalingSchedule] = true
	}
	skipperKinds := map[string]bool{}
	if o.skipperIngress {
		skipperKinds["Ingress"] = true
	}
	if o.skipperRouteGroup {
		skipperKinds["RouteGroup"] = true
	}
	a.discovery, err = discovery.New(hpaInformer.Informer(), reg, a.scheduler, recorder, discovery.Options{
		DefaultInterval:       o.defaultInterval,
		DisregardIncompatible: o.disregardIncompatible,
		SkipperKinds:          skipperKinds,
		ScheduleKinds:         scheduleKinds,
		TTL:                   o.metricsTTL,
		Log:                   log,
	})
	if err != nil {
		return nil, err
	}
	a.provider = provider.New(a.store, provider.Options{Objects: provider.MetadataNames(mapper, meta)})
	if o.scalingSchedule {
		// status.active of every schedule, and the replicas the HPA would leave inside its
		// tolerance band, as the original's scheduled-scaling controller.
		a.scheduleInformers = dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
		ss := a.scheduleInformers.ForResource(schedulecontroller.ScalingSchedulesResource).Informer()
		css := a.scheduleInformers.ForResource(schedulecontroller.ClusterScalingSchedulesResource).Informer()
		a.schedules, err = schedulecontroller.New(
			schedulecontroller.NewInformerSchedules(ss.GetStore(), css.GetStore()),
			hpaInformer.Lister(), schedulecontroller.NewStatusClient(dyn),
			schedulecontroller.NewScaleClient(scales, mapper),
			schedulecontroller.Options{Schedule: o.scheduleOpts, Tolerance: o.hpaTolerance, Log: log, Recorder: recorder,
				Synced: []cache.InformerSynced{ss.HasSynced, css.HasSynced, hpaInformer.Informer().HasSynced}})
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// registerCollectors builds the collector registry the flags enable.
func registerCollectors(o *options, scales *collkube.Scales, pods *collkube.Pods, objects *collkube.Objects, clk clock.PassiveClock, log *slog.Logger) (*collector.Registry, error) {
	reg := collector.NewRegistry()
	reg.Register(collector.Pods, podjson.Type, podjson.Factory(podjson.Options{Selectors: scales, Pods: pods, Clock: clk}), podjson.Keys...)
	reg.Register(collector.External, httpjson.Type, httpjson.Factory(httpjson.Options{Clock: clk}), httpjson.Keys...)
	prom := promcollector.Factory(promcollector.Options{Servers: o.servers, Replicas: scales, Clock: clk})
	reg.Register(collector.External, promcollector.Type, prom, promcollector.Keys...)
	reg.Register(collector.Object, promcollector.Type, prom, promcollector.Keys...)
	if err := registerSkipper(o, reg, objects, scales, clk); err != nil {
		return nil, err
	}
	reg.Register(collector.External, influxdb.Type, influxdb.Factory(influxdb.Options{
		Address: o.influxAddress, Token: o.influxToken, Org: o.influxOrg, Clock: clk,
	}), influxdb.Keys...)
	if o.zmonEndpoint != "" {
		reg.Register(collector.External, zmon.Type, zmon.Factory(zmon.Options{
			Endpoint: o.zmonEndpoint, Token: o.token, CredentialsDir: o.credsDir, TokenName: o.zmonTokenName, Clock: clk,
		}), append(slices.Clone(zmon.Keys), zmon.KeyTagPrefix+"*")...)
	}
	if o.scalingSchedule {
		reg.Register(collector.Object, schedule.Type, schedule.Factory(schedule.CollectorOptions{
			Objects: objects, Schedule: o.scheduleOpts, Clock: clk,
		}))
	}
	if o.awsExternalMetrics {
		reg.Register(collector.External, sqs.Type, sqs.Factory(sqs.Options{Regions: o.awsRegions, Clock: clk}), sqs.Keys...)
	}
	log.Info("collectors enabled", "pods", reg.Types(collector.Pods), "object", reg.Types(collector.Object), "external", reg.Types(collector.External))
	return reg, nil
}

// stripManagedFields drops what the adapter never reads from cached objects.
func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	if h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler); ok {
		delete(h.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
	}
	return obj, nil
}

// run starts everything and waits until ctx is done and everything has stopped.
func (a *adapter) run(ctx context.Context, o *options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 5)
	var wg sync.WaitGroup
	wg.Go(func() { a.scheduler.Run(ctx) })
	a.informers.Start(ctx.Done())
	wg.Go(func() {
		if err := a.discovery.Run(ctx); err != nil {
			errs <- fmt.Errorf("HPA discovery: %w", err)
		}
	})
	wg.Go(func() { a.sweep(ctx, o.gcInterval) })
	if a.schedules != nil {
		a.scheduleInformers.Start(ctx.Done())
		wg.Go(func() {
			if err := a.schedules.Run(ctx); err != nil {
				errs <- fmt.Errorf("scaling schedule controller: %w", err)
			}
		})
	}
	metricsSrv, err := a.serveMetrics(o.metricsAddress, errs)
	if err != nil {
		return err
	}
	var custom cmprovider.CustomMetricsProvider
	var external cmprovider.ExternalMetricsProvider
	if o.enableCustom {
		custom = a.provider
	}
	if o.enableExternal {
		external = a.provider
	}
	wg.Go(func() {
		if err := o.server.Run(ctx, custom, external); err != nil {
			errs <- fmt.Errorf("API server: %w", err)
		}
	})
	a.log.Info("kube-metrics-adapter started", "version", version, "metricsTTL", o.metricsTTL, "defaultCollectionInterval", o.defaultInterval)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	cancel()
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	_ = metricsSrv.Shutdown(shutdownCtx)
	wg.Wait()
	a.informers.Shutdown()
	if a.scheduleInformers != nil {
		a.scheduleInformers.Shutdown()
	}
	a.events.Shutdown()
	return runErr
}

// sweep frees expired values; serving never depends on it.
func (a *adapter) sweep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := a.store.Sweep(); n > 0 {
				a.log.Debug("expired values freed", "count", n)
			}
		}
	}
}

// serveMetrics serves the adapter's own metrics and the API server's at /metrics, and
// nothing else (the original also served pprof there, unauthenticated).
func (a *adapter) serveMetrics(addr string, errs chan<- error) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{a.registry, apiserver.Gatherer()}, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address %s: %w", addr, err)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("metrics endpoint: %w", err)
		}
	}()
	return srv, nil
}
