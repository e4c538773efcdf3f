// Command custom-pod-autoscaler runs one custom autoscaler described by a config.yaml:
// user metric and evaluate logic (shell commands or HTTP calls) decide the replica count
// of any resource with a /scale subresource.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	cpav1 "github.com/custompodautoscaler/cpa/api/custompodautoscaler/v1"
	"github.com/custompodautoscaler/cpa/internal/autoscaler"
	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/internal/cpastatus"
	"github.com/custompodautoscaler/cpa/internal/execute"
	"github.com/custompodautoscaler/cpa/internal/kube"
	"github.com/custompodautoscaler/cpa/internal/kubemetrics"
	"github.com/custompodautoscaler/cpa/internal/restapi"
	"github.com/custompodautoscaler/cpa/internal/runonce"
	"github.com/custompodautoscaler/cpa/internal/scaling"
	"github.com/custompodautoscaler/cpa/internal/target"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `custom-pod-autoscaler runs one custom autoscaler.

Every interval it pipes the scale target (or each of its pods) as JSON to the metric
stage, the gathered metrics to the evaluate stage, and scales the target to the
{"targetReplicas": N} it returns, within minReplicas and maxReplicas.

Usage:
  custom-pod-autoscaler [flags]
  custom-pod-autoscaler --run-once --target deployment.yaml [--pods pods.yaml] [flags]

The configuration file is --config, else $configPath, else /config.yaml; any top-level
key can be overridden by an environment variable of the same name (e.g. interval=10000).
See docs/configuration.md.

Flags:
`

type options struct {
	configPath  string
	kubeconfig  string
	runOnce     bool
	targetFile  string
	podsFile    string
	checkConfig bool
	logFormat   string
	showVersion bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if opts.showVersion {
		fmt.Fprintln(stdout, "custom-pod-autoscaler", version)
		return 0
	}
	cfg, err := config.Load(opts.configPath, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "custom-pod-autoscaler: %v\n", err)
		return 2
	}
	if opts.checkConfig {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
		fmt.Fprintf(stdout, "%s: configuration is valid\n", opts.configPath)
		return 0
	}
	level := slog.LevelInfo
	switch {
	case cfg.LogVerbosity >= 1:
		level = slog.LevelDebug
	case opts.runOnce:
		level = slog.LevelWarn // run-once prints its own report; the cycle summary would repeat it
	}
	log := newLogger(stderr, opts.logFormat, level)
	klog.SetSlogLogger(log.With("component", "client-go"))
	for _, w := range cfg.Warnings {
		log.Warn("configuration: "+w, "config", opts.configPath)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if opts.runOnce {
		return runOnce(ctx, cfg, opts, log, stdout, stderr)
	}
	log.Info("starting custom-pod-autoscaler", "version", version, "config", opts.configPath)
	if err := serve(ctx, cfg, opts, log); err != nil {
		log.Error("exiting", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("custom-pod-autoscaler", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	defaultConfig := os.Getenv("configPath")
	if defaultConfig == "" {
		defaultConfig = "/config.yaml"
	}
	fs.StringVar(&o.configPath, "config", defaultConfig, "configuration file (YAML or JSON); default $configPath or /config.yaml")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; default $KUBECONFIG, the in-cluster service account, then ~/.kube/config")
	fs.BoolVar(&o.runOnce, "run-once", false, "run the pipeline once against --target (and --pods) read from files, print every stage's input and output and the decision, scale nothing, need no cluster")
	fs.StringVar(&o.targetFile, "target", "", "with --run-once: file holding the scale target object (YAML or JSON)")
	fs.StringVar(&o.podsFile, "pods", "", "with --run-once: file holding the target's pods (a List, YAML documents or one Pod), for per-pod mode")
	fs.BoolVar(&o.checkConfig, "check-config", false, "validate the configuration, report every problem and exit")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return nil, errors.New("unexpected arguments")
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		fmt.Fprintf(stderr, "--log-format must be text or json, got %q\n", o.logFormat)
		return nil, errors.New("bad --log-format")
	}
	if o.runOnce && o.targetFile == "" {
		fmt.Fprintln(stderr, "--run-once needs --target FILE")
		return nil, errors.New("missing --target")
	}
	if !o.runOnce && (o.targetFile != "" || o.podsFile != "") {
		fmt.Fprintln(stderr, "--target and --pods only apply with --run-once")
		return nil, errors.New("--target without --run-once")
	}
	return o, nil
}

// newLogger returns the process's logger. logVerbosity 0 logs at info level, 1 and up at
// debug level (each command run, hook output).
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	ho := &slog.HandlerOptions{Level: level, ReplaceAttr: readableDurations}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// kubeClients are the runtime's ways to the API server.
type kubeClients struct {
	rest     *rest.Config
	kube     kubernetes.Interface
	dynamic  dynamic.Interface
	disco    discovery.DiscoveryInterface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	scales   scale.ScalesGetter
	requests *kube.RequestCounter
}

func newKubeClients(kubeconfig string) (*kubeClients, error) {
	restCfg, err := kube.RESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	restCfg.UserAgent = "custom-pod-autoscaler/" + version
	restCfg.QPS, restCfg.Burst = 20, 40
	c := &kubeClients{rest: restCfg, requests: &kube.RequestCounter{}}
	c.requests.Instrument(restCfg)
	if c.kube, err = kubernetes.NewForConfig(restCfg); err != nil {
		return nil, err
	}
	if c.dynamic, err = dynamic.NewForConfig(restCfg); err != nil {
		return nil, err
	}
	// Discovery requests take no context: bound them on the client (not on restCfg,
	// whose watches last longer than any timeout).
	discoCfg := rest.CopyConfig(restCfg)
	discoCfg.Timeout = target.DefaultTimeout
	if c.disco, err = discovery.NewDiscoveryClientForConfig(discoCfg); err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(c.disco)
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(cached)
	if c.scales, err = scale.NewForConfig(restCfg, c.mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(cached)); err != nil {
		return nil, err
	}
	return c, nil
}

func serve(ctx context.Context, cfg *config.Config, opts *options, log *slog.Logger) error {
	c, err := newKubeClients(opts.kubeconfig)
	if err != nil {
		return err
	}
	w := target.NewWatcher(*cfg.ScaleTargetRef, cfg.Namespace, target.Clients{Kube: c.kube, Dynamic: c.dynamic, Scales: c.scales, Mapper: c.mapper}, target.Options{Logger: log})
	if err := w.Start(ctx); err != nil {
		return err
	}
	defer w.Stop()

	stages, err := autoscaler.StagesFromConfig(cfg, execute.Options{Logger: log})
	if err != nil {
		return err
	}
	var km autoscaler.KubeMetrics
	if len(cfg.KubernetesMetricSpecs) > 0 {
		clients, err := kubemetrics.NewClients(ctx, c.rest, c.disco, c.mapper)
		if err != nil {
			return err
		}
		km = kubemetrics.New(kubemetrics.Options{
			Specs:                   cfg.KubernetesMetricSpecs,
			Namespace:               cfg.Namespace,
			Clients:                 clients,
			CPUInitializationPeriod: time.Duration(cfg.CPUInitializationPeriod) * time.Second,
			InitialReadinessDelay:   time.Duration(cfg.InitialReadinessDelay) * time.Second,
			Clock:                   clock.RealClock{},
		})
	}
	decider := scaling.NewDecider(cfg.MinReplicas, cfg.MaxReplicas, time.Duration(cfg.DownscaleStabilization)*time.Second, clock.RealClock{})
	onCycle, err := statusReporter(ctx, cfg, c.kube, c.dynamic, decider, log)
	if err != nil {
		return err
	}
	a, err := autoscaler.New(cfg, autoscaler.Options{
		Target: w, Stages: stages, Clock: clock.RealClock{}, Logger: log, APIRequests: c.requests.Count,
		KubeMetrics: km, Decider: decider, OnCycle: onCycle,
	})
	if err != nil {
		return err
	}
	return runAll(ctx, cfg, a, c.kube, log)
}

// runAll runs the loop and, when enabled, the REST API. The first error (a listener that
// cannot start) stops everything.
func runAll(ctx context.Context, cfg *config.Config, a *autoscaler.Autoscaler, kc kubernetes.Interface, log *slog.Logger) error {
	// The cancellable context must exist before the goroutines start: they read ctx when
	// they run.
	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	errc := make(chan error, 2)
	running := 1
	go func() { errc <- a.Run(ctx) }()
	if cfg.APIConfig != nil && cfg.APIConfig.Enabled {
		h, err := apiHandler(cfg, a, kc, log)
		if err != nil {
			cancelAll()
			<-errc
			return err
		}
		running++
		go func() { errc <- restapi.Serve(ctx, cfg.APIConfig, h, log, 10*time.Second) }()
	}
	var first error
	for ; running > 0; running-- {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancelAll()
		}
	}
	return first
}

// apiHandler builds the REST API: its requests share the autoscaler's call slots, at most
// twice perPodConcurrency (at least restapi.DefaultMaxRequests) are in flight, and with
// apiConfig.auth each is checked against the Kubernetes API.
func apiHandler(cfg *config.Config, a *autoscaler.Autoscaler, kc kubernetes.Interface, log *slog.Logger) (http.Handler, error) {
	opts := restapi.Options{
		Logger:         log,
		MaxRequests:    max(restapi.DefaultMaxRequests, 2*autoscaler.PerPodConcurrency(cfg)),
		RequestTimeout: time.Duration(cfg.APIConfig.RequestTimeout) * time.Millisecond,
	}
	if auth := cfg.APIConfig.Auth; auth != nil && auth.Enabled {
		// config.Load made sure CPA_NAME is set.
		ka, err := restapi.NewKubeAuth(kc.AuthenticationV1(), kc.AuthorizationV1(), restapi.KubeAuthOptions{
			Namespace: cfg.Namespace, Name: os.Getenv(CPANameEnv), Logger: log,
		})
		if err != nil {
			return nil, err
		}
		opts.Auth = ka
	}
	return restapi.NewHandler(a, opts), nil
}

// CPANameEnv names the CustomPodAutoscaler the runtime runs for; the operator sets it.
// With it, the runtime writes its part of that resource's status and keeps the
// downscale-stabilization history there.
const CPANameEnv = config.CPANameEnv

// statusReporter restores the stabilization history from the CustomPodAutoscaler's status
// and returns the callback that writes the status after each cycle; nil without CPA_NAME.
func statusReporter(ctx context.Context, cfg *config.Config, kc kubernetes.Interface, dc dynamic.Interface, decider *scaling.Decider, log *slog.Logger) (func(context.Context, *autoscaler.Result, error), error) {
	name := os.Getenv(CPANameEnv)
	if name == "" {
		return nil, nil
	}
	gvr := cpav1.GroupVersion.WithResource("custompodautoscalers")
	rep := cpastatus.New(dc.Resource(gvr).Namespace(cfg.Namespace), name, clock.RealClock{})
	history, err := rep.Restore(ctx)
	if err != nil {
		// The autoscaler still works without its status: say so and go on.
		log.Warn("cannot read the CustomPodAutoscaler's status; starting with no stabilization history", "customPodAutoscaler", name, "error", err)
	} else if cfg.DownscaleStabilization > 0 && len(history) > 0 {
		decider.Restore(history)
		log.Info("restored the downscale-stabilization history from the status", "customPodAutoscaler", name, "recommendations", len(history))
	}
	// Events about the resource: scales and (changed) failures. The broadcaster batches
	// and rate-limits them; it stops with ctx.
	var recorder cpastatus.EventRecorder
	if rep.Object() != nil {
		b := events.NewBroadcaster(&events.EventSinkImpl{Interface: kc.EventsV1()})
		b.StartRecordingToSink(ctx.Done())
		recorder = b.NewRecorder(eventScheme(), "custom-pod-autoscaler")
	}
	opts := cpastatus.ObserverOptions{
		Reporter: rep, Events: recorder, Logger: log,
		Target:      cfg.ScaleTargetRef.Kind + "/" + cfg.ScaleTargetRef.Name,
		MinReplicas: cfg.MinReplicas, MaxReplicas: cfg.MaxReplicas,
	}
	if cfg.DownscaleStabilization > 0 {
		opts.History = decider.History
	}
	ob := cpastatus.NewObserver(opts)
	return func(ctx context.Context, res *autoscaler.Result, cycleErr error) {
		c := cpastatus.Cycle{Err: cycleErr}
		if res != nil {
			c.Metrics, c.Decision, c.Scaled = len(res.Metrics), res.Decision, res.Scaled
		}
		ob.Observe(ctx, c)
	}, nil
}

// eventScheme knows the CustomPodAutoscaler kind, for event references.
func eventScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(cpav1.AddToScheme(s))
	return s
}

func runOnce(ctx context.Context, cfg *config.Config, opts *options, log *slog.Logger, stdout, stderr io.Writer) int {
	t, err := runonce.LoadTarget(opts.targetFile, opts.podsFile)
	if err != nil {
		fmt.Fprintf(stderr, "custom-pod-autoscaler: %v\n", err)
		return 2
	}
	stages, err := autoscaler.StagesFromConfig(cfg, execute.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "custom-pod-autoscaler: %v\n", err)
		return 2
	}
	printer := runonce.NewPrinter(stdout)
	if len(cfg.KubernetesMetricSpecs) > 0 {
		fmt.Fprintln(stdout, "=== note: kubernetesMetricSpecs are not gathered in --run-once mode (it reads no cluster); the metric stage gets no kubernetesMetrics")
	}
	a, err := autoscaler.New(cfg, autoscaler.Options{Target: t, Stages: stages, Logger: log, Trace: printer.Trace})
	if err != nil {
		fmt.Fprintf(stderr, "custom-pod-autoscaler: %v\n", err)
		return 2
	}
	res, err := a.RunCycle(ctx, config.RunTypeScaler)
	if err != nil {
		fmt.Fprintf(stdout, "=== result: the cycle failed, nothing would be scaled\n%v\n", err)
		return 1
	}
	d := res.Decision
	fmt.Fprintf(stdout, "=== decision\nmetrics: %d, evaluated: %d, current replicas: %d, target replicas: %d (%s)\n",
		len(res.Metrics), res.Evaluation.TargetReplicas, d.Current, d.Target, d.Reason)
	switch n, asked := t.Requested(); {
	case d.Disabled:
		fmt.Fprintln(stdout, "autoscaling is disabled for this target; nothing would be scaled")
	case asked:
		fmt.Fprintf(stdout, "would scale %s from %d to %d replicas (run-once never scales)\n", t.Name(), d.Current, n)
	default:
		fmt.Fprintln(stdout, "no change")
	}
	return 0
}

// readableDurations writes durations as "1.5s" rather than slog's default for JSON,
// integer nanoseconds.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
