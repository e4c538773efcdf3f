// Command custom-pod-autoscaler-operator provisions CustomPodAutoscaler resources: for
// each one a ServiceAccount, a least-privilege Role and RoleBinding, and a one-replica
// Deployment running the autoscaler, kept as the resource says.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cpav1 "github.com/custompodautoscaler/cpa/api/custompodautoscaler/v1"
	"github.com/custompodautoscaler/cpa/internal/operator"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `custom-pod-autoscaler-operator runs CustomPodAutoscaler resources
(custompodautoscaler.com/v1): for each it creates and keeps a ServiceAccount, a Role and
RoleBinding that grant only what the autoscaler needs, and a one-replica Deployment of
the autoscaler's pod template, all owned by the resource.

Environment:
  WATCH_NAMESPACE  watch only this namespace (a namespaced install); empty: all namespaces
  KUBECONFIG       cluster access when not running in a pod (or --kubeconfig)

Flags:
`

func main() {
	os.Exit(run())
}

// flags are the command line's settings.
type flags struct {
	metricsAddr, metricsCertDir, probeAddr string
	leaderElect                            bool
	leaderNamespace                        string
	showVersion                            bool
	qps                                    float64
	burst                                  int
	concurrency                            int
	zap                                    zap.Options
}

func parseFlags() *flags {
	f := &flags{}
	fs := flag.CommandLine
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (/metrics), served over HTTPS to callers the API server authenticates and authorizes (get on the non-resource URL /metrics); 0 disables it")
	fs.StringVar(&f.metricsCertDir, "metrics-cert-dir", "", "directory holding tls.crt and tls.key for the metrics endpoint, reloaded when they change; empty or missing: a self-signed certificate made at start")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz probes")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader, so that only one of several replicas reconciles")
	fs.StringVar(&f.leaderNamespace, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace)")
	fs.Float64Var(&f.qps, "kube-api-qps", 0, "client-side limit of requests per second to the API server; 0: none, the API server's Priority and Fairness queues the operator's requests with its own flow (GA since Kubernetes 1.29), as controller-runtime's default does")
	fs.IntVar(&f.burst, "kube-api-burst", 0, "requests above --kube-api-qps allowed in a burst (with a limit only); 0: twice --kube-api-qps")
	fs.IntVar(&f.concurrency, "max-concurrent-reconciles", 32, "CustomPodAutoscalers reconciled at once: a reconcile mostly waits on the API server, so a burst of new resources is provisioned in parallel (the API server's Priority and Fairness bounds what it takes in)")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	f.zap.BindFlags(fs)
	flag.Parse()
	return f
}

func run() int {
	f := parseFlags()
	if f.showVersion {
		fmt.Println("custom-pod-autoscaler-operator", version)
		return 0
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))
	log := ctrl.Log.WithName("setup")
	// The heap is mostly the informer caches, which live as long as the process: with
	// Go's default GOGC=100 the heap doubles them before each collection. 50 keeps the
	// process 6-10 MiB smaller with 500 resources for 0.5 s more CPU per 500 created
	// (docs/benchmarks.md); GOGC in the environment still decides.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(50)
	}
	if f.concurrency < 1 {
		log.Error(nil, "--max-concurrent-reconciles must be at least 1", "value", f.concurrency)
		return 2
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "no cluster access")
		return 1
	}
	cfg.UserAgent = "custom-pod-autoscaler-operator/" + version
	cfg.QPS, cfg.Burst = -1, 0 // client-go: a negative QPS means no client-side limiter
	if f.qps > 0 {
		burst := f.burst
		if burst <= 0 {
			burst = int(2 * f.qps)
		}
		cfg.QPS, cfg.Burst = float32(f.qps), max(burst, 1)
	}
	if ns := os.Getenv("WATCH_NAMESPACE"); ns != "" {
		log.Info("watching one namespace", "namespace", ns)
	}
	mgr, err := ctrl.NewManager(cfg, managerOptions(f))
	if err != nil {
		log.Error(err, "creating the manager")
		return 1
	}
	if err := setup(mgr); err != nil {
		log.Error(err, "setting up the manager")
		return 1
	}
	log.Info("starting", "version", version, "leaderElection", f.leaderElect, "maxConcurrentReconciles", f.concurrency, "kubeAPIQPS", cfg.QPS)
	start := time.Now()
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "the manager stopped")
		return 1
	}
	log.Info("stopped", "ran", time.Since(start).Round(time.Second))
	return 0
}

func managerOptions(f *flags) ctrl.Options {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(cpav1.AddToScheme(scheme))
	return ctrl.Options{
		Scheme: scheme,
		Metrics: metricsserver.Options{
			BindAddress:    f.metricsAddr,
			SecureServing:  true,
			FilterProvider: metricsAuthFilter,
			CertDir:        f.metricsCertDir,
			// HTTP/2 stays off: its stream reset and rapid-reset flaws (CVE-2023-44487,
			// CVE-2023-39325) let an unauthenticated caller load the process, and a
			// scrape gains nothing from it.
			TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
		},
		HealthProbeBindAddress:        f.probeAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              "custom-pod-autoscaler-operator.custompodautoscaler.com",
		LeaderElectionNamespace:       f.leaderNamespace,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOptions(os.Getenv("WATCH_NAMESPACE")),
		Controller:                    config.Controller{MaxConcurrentReconciles: f.concurrency},
	}
}

// setup registers the reconciler and the probes.
func setup(mgr ctrl.Manager) error {
	r := &operator.Reconciler{
		Client:   mgr.GetClient(),
		Scheme:   mgr.GetScheme(),
		Mapper:   mgr.GetRESTMapper(),
		Recorder: mgr.GetEventRecorder("custom-pod-autoscaler-operator"),
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("the controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("the health check: %w", err)
	}
	return mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return fmt.Errorf("caches not synced")
		}
		return nil
	})
}

// cacheOptions keeps in memory only what the operator manages: the kinds it creates are
// cached only when they carry its managed-by label, so the cluster's other Deployments,
// ServiceAccounts, Roles and RoleBindings cost it nothing (an object of the same name
// without the label is invisible to its cached client). managedFields are dropped:
// nothing reads them, and they are often the larger part of a small object. With
// namespace set, everything is cached from that namespace only (the selectors apply
// there too: ByObject's nil Namespaces falls back to DefaultNamespaces).
func cacheOptions(namespace string) cache.Options {
	managed := labels.SelectorFromSet(labels.Set{operator.ManagedByLabel: operator.ManagedByValue})
	o := cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ServiceAccount{}: {Label: managed},
			&rbacv1.Role{}:           {Label: managed},
			&rbacv1.RoleBinding{}:    {Label: managed},
			&appsv1.Deployment{}:     {Label: managed},
		},
	}
	if namespace != "" {
		o.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	return o
}
