// Command custom-pod-autoscaler-operator provisions CustomPodAutoscaler resources: for
// each one a ServiceAccount, a least-privilege Role and RoleBinding, and a one-replica
// Deployment running the autoscaler, kept as the resource says.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cpav1 "github.com/custompodautoscaler/cpa/api/v1"
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

func run() int {
	var (
		metricsAddr, probeAddr string
		leaderElect            bool
		leaderNamespace        string
		showVersion            bool
		qps                    float64
		burst                  int
	)
	fs := flag.CommandLine
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (/metrics); 0 disables it")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz probes")
	fs.BoolVar(&leaderElect, "leader-elect", false, "elect a leader, so that only one of several replicas reconciles")
	fs.StringVar(&leaderNamespace, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace)")
	fs.Float64Var(&qps, "kube-api-qps", 50, "requests per second to the API server, sustained")
	fs.IntVar(&burst, "kube-api-burst", 100, "requests to the API server in a burst")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	opts := zap.Options{}
	opts.BindFlags(fs)
	flag.Parse()
	if showVersion {
		fmt.Println("custom-pod-autoscaler-operator", version)
		return 0
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(cpav1.AddToScheme(scheme))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "no cluster access")
		return 1
	}
	cfg.UserAgent = "custom-pod-autoscaler-operator/" + version
	cfg.QPS, cfg.Burst = float32(qps), burst
	mopts := ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "custom-pod-autoscaler-operator.custompodautoscaler.com",
		LeaderElectionNamespace:       leaderNamespace,
		LeaderElectionReleaseOnCancel: true,
	}
	if ns := os.Getenv("WATCH_NAMESPACE"); ns != "" {
		mopts.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}}
		log.Info("watching one namespace", "namespace", ns)
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		log.Error(err, "creating the manager")
		return 1
	}
	r := &operator.Reconciler{
		Client:   mgr.GetClient(),
		Scheme:   mgr.GetScheme(),
		Mapper:   mgr.GetRESTMapper(),
		Recorder: mgr.GetEventRecorder("custom-pod-autoscaler-operator"),
	}
	if err := r.SetupWithManager(mgr); err != nil {
		log.Error(err, "setting up the controller")
		return 1
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "adding the health check")
		return 1
	}
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return fmt.Errorf("caches not synced")
		}
		return nil
	}); err != nil {
		log.Error(err, "adding the readiness check")
		return 1
	}
	log.Info("starting", "version", version, "leaderElection", leaderElect)
	start := time.Now()
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "the manager stopped")
		return 1
	}
	log.Info("stopped", "ran", time.Since(start).Round(time.Second))
	return 0
}
