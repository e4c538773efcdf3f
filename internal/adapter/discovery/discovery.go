// Package discovery watches HorizontalPodAutoscalers through an informer and keeps one
// running collector per metric the adapter serves: started when an HPA comes, replaced
// when a metric's configuration changes, stopped (and its values dropped) when the metric
// or the HPA goes.
//
// Configuration problems (a malformed annotation, an unknown collector, a bad key) are
// reported once per change as one Warning event on the HPA naming every problem, while
// the HPA's good metrics keep being collected. An unchanged HPA (its status is updated
// every sync period) costs a comparison, not a parse, and produces no event. (The
// original LISTed every HPA in the cluster every 30 s and re-sent the same event each
// time an HPA's collector could not be built.)
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/custompodautoscaler/cpa/internal/adapter/annotations"
	"github.com/custompodautoscaler/cpa/internal/adapter/collect"
	"github.com/custompodautoscaler/cpa/internal/adapter/store"
	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

// Event reasons.
const (
	ReasonInvalidMetricConfig = "InvalidMetricConfig"
	ReasonMetricConfigValid   = "MetricConfigValid"
	ReasonCollectionFailed    = "CollectionFailed"
	ReasonCollectionRecovered = "CollectionRecovered"
)

// maxEventMessage bounds an event's message (the API server refuses beyond 1 KiB for
// events.k8s.io notes; core events are truncated by clients anyway).
const maxEventMessage = 1000

// Recorder records events (client-go's record.EventRecorder satisfies it).
type Recorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Builder builds a collector and knows its keys (collector.Registry satisfies it).
type Builder interface {
	New(cfg collector.Config) (collector.Collector, error)
	KnownKeys(kind collector.Kind, typ string) ([]string, bool)
}

// Scheduler runs collectors (collect.Scheduler satisfies it).
type Scheduler interface {
	Start(owner store.Owner, job collect.Job)
	Stop(owner store.Owner, key annotations.MetricKey)
	StopAll(owner store.Owner)
}

// Options configure a Controller.
type Options struct {
	// DefaultInterval is the collection interval of metrics with no interval
	// annotation (--default-collection-interval).
	DefaultInterval time.Duration
	// DisregardIncompatible leaves out of events the metrics no enabled collector serves
	// (--disregard-incompatible-hpas); they are still logged.
	DisregardIncompatible bool
	// SkipperKinds are the describedObject kinds whose Object metrics go to the skipper
	// collector (Ingress with --skipper-ingress-metrics, RouteGroup with
	// --skipper-routegroup-metrics).
	SkipperKinds map[string]bool
	// ScheduleKinds are the describedObject kinds (of zalando.org/v1) whose Object
	// metrics go to the scaling-schedule collector (with --scaling-schedule).
	ScheduleKinds map[string]bool
	// TTL is the store's --metrics-ttl: a metric collected less often than that is
	// reported, as its value would be unavailable between expiry and the next collection.
	TTL time.Duration
	// RetryInterval is how soon an HPA whose collector could not be built is tried
	// again (a token file may appear, a CRD may be installed); default 1m.
	RetryInterval time.Duration
	// Workers is how many HPAs are processed at once (default 4).
	Workers int
	Log     *slog.Logger
}

// Controller is the HPA discovery loop. Build it with New, then Run it.
type Controller struct {
	lister    autoscalinglisters.HorizontalPodAutoscalerLister
	synced    cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[types.NamespacedName]
	builder   Builder
	scheduler Scheduler
	recorder  Recorder
	opts      Options

	mu    sync.Mutex
	state map[types.NamespacedName]*hpaState
}

// hpaState is what the controller last did for one HPA.
type hpaState struct {
	annotations map[string]string
	spec        autoscalingv2.HorizontalPodAutoscalerSpec
	metrics     map[annotations.MetricKey]running
	problems    string
	// retry: a collector could not be built; the HPA is synced again even unchanged.
	retry bool
}

type running struct {
	config annotations.MetricConfig
	typ    string
}

// New returns a controller fed by informer; events go through rec.
func New(informer cache.SharedIndexInformer, builder Builder, sched Scheduler, rec Recorder, opts Options) (*Controller, error) {
	if opts.DefaultInterval <= 0 {
		opts.DefaultInterval = time.Minute
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{
		lister:    autoscalinglisters.NewHorizontalPodAutoscalerLister(informer.GetIndexer()),
		synced:    informer.HasSynced,
		queue:     workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName](), workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "hpas"}),
		builder:   builder,
		scheduler: sched,
		recorder:  rec,
		opts:      opts,
		state:     map[types.NamespacedName]*hpaState{},
	}
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	})
	return c, err
}

func (c *Controller) enqueue(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	hpa, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return
	}
	c.queue.Add(types.NamespacedName{Namespace: hpa.Namespace, Name: hpa.Name})
}

// Run processes HPAs until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return errors.New("the HPA informer did not sync")
	}
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.work, time.Second) })
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) work(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		if err := c.sync(ctx, key); err != nil {
			c.opts.Log.Warn("syncing HPA failed, retrying", "hpa", key.String(), "err", err)
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// sync brings the collectors of one HPA in line with its current spec and annotations.
func (c *Controller) sync(_ context.Context, key types.NamespacedName) error {
	hpa, err := c.lister.HorizontalPodAutoscalers(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	st := c.state[key]
	c.mu.Unlock()
	annos := relevantAnnotations(hpa.Annotations)
	if st != nil && !st.retry && maps.Equal(st.annotations, annos) && apiequality.Semantic.DeepEqual(st.spec, hpa.Spec) {
		return nil // a status update
	}
	if st == nil {
		st = &hpaState{metrics: map[annotations.MetricKey]running{}}
	}
	next := &hpaState{annotations: annos, spec: *hpa.Spec.DeepCopy(), metrics: map[annotations.MetricKey]running{}}

	configs, perr := annotations.Parse(hpa)
	var problems []string
	if perr != nil {
		var ps annotations.Problems
		if errors.As(perr, &ps) {
			for _, p := range ps {
				problems = append(problems, p.Error())
			}
		} else {
			problems = append(problems, perr.Error())
		}
	}
	for _, mc := range configs {
		cfg, cerr := c.collectorConfig(hpa, mc)
		if cerr == nil {
			if old, ok := st.metrics[mc.Key]; ok && old.typ == cfg.Type && old.config.Equal(mc) {
				next.metrics[mc.Key] = old // unchanged: keeps running, keeps its values
				continue
			}
		}
		var col collector.Collector
		if cerr == nil {
			col, cerr = c.builder.New(cfg)
		}
		if cerr != nil {
			nf := new(collector.NotFoundError)
			if errors.As(cerr, &nf) && c.opts.DisregardIncompatible {
				c.opts.Log.Info("no collector for metric; disregarded", "hpa", key.String(), "metric", mc.Key.String(), "err", cerr)
				continue
			}
			problems = append(problems, fmt.Sprintf("metric %s: %v", mc.Key, cerr))
			next.retry = next.retry || !errors.As(cerr, &nf)
			continue
		}
		problems = append(problems, c.unknownKeys(mc, cfg)...)
		interval := mc.Interval
		if interval <= 0 {
			interval = c.opts.DefaultInterval
		}
		if c.opts.TTL > 0 && interval >= c.opts.TTL {
			problems = append(problems, fmt.Sprintf("metric %s: its interval %s is not below --metrics-ttl %s, so its value is unavailable from the TTL until the next collection", mc.Key, interval, c.opts.TTL))
		}
		c.scheduler.Start(key, collect.Job{Key: mc.Key, Labels: mc.MetricLabels, Type: cfg.Type, Interval: interval, Collector: col})
		next.metrics[mc.Key] = running{config: mc, typ: cfg.Type}
		c.opts.Log.Info("collector started", "hpa", key.String(), "metric", mc.Key.String(), "collector", cfg.Type, "interval", interval)
	}
	for k := range st.metrics {
		if _, keep := next.metrics[k]; !keep {
			c.scheduler.Stop(key, k)
			c.opts.Log.Info("collector stopped", "hpa", key.String(), "metric", k.String())
		}
	}

	next.problems = strings.Join(problems, "; ")
	switch {
	case next.problems != "" && next.problems != st.problems:
		c.opts.Log.Warn("invalid metric configuration", "hpa", key.String(), "problems", next.problems)
		c.recorder.Eventf(hpa, corev1.EventTypeWarning, ReasonInvalidMetricConfig, "%s", clip.String(next.problems, maxEventMessage))
	case next.problems == "" && st.problems != "":
		c.recorder.Eventf(hpa, corev1.EventTypeNormal, ReasonMetricConfigValid, "the metric configuration has no problem any more")
	}
	c.mu.Lock()
	c.state[key] = next
	c.mu.Unlock()
	if next.retry {
		c.queue.AddAfter(key, c.opts.RetryInterval)
	}
	return nil
}

// metricTypeWords are the annotations' words for the metric types.
var metricTypeWords = map[autoscalingv2.MetricSourceType]string{
	autoscalingv2.PodsMetricSourceType:     "pods",
	autoscalingv2.ObjectMetricSourceType:   "object",
	autoscalingv2.ExternalMetricSourceType: "external",
}

// unknownKeys reports the annotation keys of mc its collector does not read (a typo
// such as "schema" for "scheme" would otherwise pass silently); the metric still runs.
// Selector labels are not annotations and are not judged, nor is a legacy query-name's
// query key.
func (c *Controller) unknownKeys(mc annotations.MetricConfig, cfg collector.Config) []string {
	known, ok := c.builder.KnownKeys(cfg.Kind, cfg.Type)
	if !ok {
		return nil
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(mc.Config)) {
		if v, label := mc.MetricLabels[k]; label && v == mc.Config[k] {
			continue
		}
		if qn, legacy := mc.Config[annotations.KeyQueryName]; legacy && (k == annotations.KeyQueryName || k == qn || k == annotations.KeyQuery) {
			continue
		}
		if slices.ContainsFunc(known, func(kn string) bool {
			prefix, wildcard := strings.CutSuffix(kn, "*")
			return kn == k || (wildcard && strings.HasPrefix(k, prefix) && len(k) > len(prefix))
		}) {
			continue
		}
		out = append(out, fmt.Sprintf("annotation %q: the %s collector has no key %q (it reads %s); ignored",
			"metric-config."+metricTypeWords[mc.Key.Type]+"."+mc.Key.Name+"."+mc.CollectorType+"/"+k, cfg.Type, k, strings.Join(known, ", ")))
	}
	return out
}

// forget stops every collector of a deleted HPA and drops its values.
func (c *Controller) forget(key types.NamespacedName) {
	c.mu.Lock()
	_, known := c.state[key]
	delete(c.state, key)
	c.mu.Unlock()
	if known {
		c.scheduler.StopAll(key)
		c.opts.Log.Info("HPA gone; its collectors stopped", "hpa", key.String())
	}
}

// relevantAnnotations are the annotations whose change can change a collector: the
// metric-config ones (kubectl's last-applied copy changes with every apply).
func relevantAnnotations(a map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		if strings.HasPrefix(k, "metric-config.") {
			out[k] = v
		}
	}
	return out
}

// collectorConfig turns a parsed metric into the configuration a collector takes.
func (c *Controller) collectorConfig(hpa *autoscalingv2.HorizontalPodAutoscaler, mc annotations.MetricConfig) (collector.Config, error) {
	ref := hpa.Spec.ScaleTargetRef
	cfg := collector.Config{
		Name:           mc.Key.Name,
		Type:           mc.CollectorType,
		Namespace:      hpa.Namespace,
		Keys:           mc.Config,
		Labels:         mc.MetricLabels,
		ScaleTarget:    collector.ObjectRef{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: hpa.Namespace, Name: ref.Name},
		PerReplica:     mc.PerReplica,
		MinPodReadyAge: mc.MinPodReadyAge,
	}
	switch mc.Key.Type {
	case autoscalingv2.PodsMetricSourceType:
		cfg.Kind = collector.Pods
		if cfg.Type == "" {
			return cfg, fmt.Errorf("no metric-config.pods.%s.<collector>/<key> annotations: a Pods metric needs its collector configured (json-path)", mc.Key.Name)
		}
	case autoscalingv2.ObjectMetricSourceType:
		cfg.Kind = collector.Object
		obj := mc.Key.Object
		cfg.Object = collector.ObjectRef{APIVersion: obj.APIVersion, Kind: obj.Kind, Namespace: hpa.Namespace, Name: obj.Name}
		if c.opts.ScheduleKinds[obj.Kind] && strings.HasPrefix(obj.APIVersion, "zalando.org/") {
			cfg.Type = "scaling-schedule" // as the original: by kind, whatever the annotations say
		} else if c.opts.SkipperKinds[obj.Kind] {
			// As the original: Skipper serves every Object metric about these kinds, and
			// divides by the replicas itself when the HPA compares a plain Value.
			cfg.Type = "skipper"
			cfg.PerReplica = mc.Spec.Object != nil && mc.Spec.Object.Target.Type == autoscalingv2.ValueMetricType
		} else if cfg.Type == "" {
			return cfg, fmt.Errorf("no metric-config.object.%s.<collector>/<key> annotations: an Object metric about a %s needs its collector configured", mc.Key.Name, obj.Kind)
		}
	case autoscalingv2.ExternalMetricSourceType:
		cfg.Kind = collector.External
	default:
		return cfg, fmt.Errorf("metric type %q is not served by the adapter", mc.Key.Type)
	}
	return cfg, nil
}

// Failures implements collect.Reporter: a collection's failure, or its recovery, becomes
// an event on the HPA.
type Failures struct {
	Lister   autoscalinglisters.HorizontalPodAutoscalerLister
	Recorder Recorder
}

var _ collect.Reporter = Failures{}

// CollectionFailed records a Warning event.
func (f Failures) CollectionFailed(owner store.Owner, key annotations.MetricKey, err error) {
	if hpa, gerr := f.Lister.HorizontalPodAutoscalers(owner.Namespace).Get(owner.Name); gerr == nil {
		f.Recorder.Eventf(hpa, corev1.EventTypeWarning, ReasonCollectionFailed, "%s", clip.String(err.Error(), maxEventMessage))
	}
}

// CollectionRecovered records a Normal event.
func (f Failures) CollectionRecovered(owner store.Owner, key annotations.MetricKey) {
	if hpa, gerr := f.Lister.HorizontalPodAutoscalers(owner.Namespace).Get(owner.Name); gerr == nil {
		f.Recorder.Eventf(hpa, corev1.EventTypeNormal, ReasonCollectionRecovered, "metric %s is collected again", key)
	}
}
