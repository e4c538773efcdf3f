// Package autoscaler runs one custom autoscaler: every interval it gathers metrics with
// the user's metric stage, asks the evaluate stage for a replica count, decides (clamp,
// disabled rule, stabilization) and scales the target, running the hooks in between.
package autoscaler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/internal/execute"
	"github.com/custompodautoscaler/cpa/internal/kubemetrics"
	"github.com/custompodautoscaler/cpa/internal/scaling"
	"github.com/custompodautoscaler/cpa/internal/target"
	"github.com/custompodautoscaler/cpa/pkg/evaluate"
	"github.com/custompodautoscaler/cpa/pkg/k8smetric"
	"github.com/custompodautoscaler/cpa/pkg/metric"
	"github.com/custompodautoscaler/cpa/pkg/scale"
)

// Target is the scale target: a view of it and its pods, and a way to scale it.
type Target interface {
	Snapshot(ctx context.Context) (*target.Snapshot, error)
	Pods(ctx context.Context, selector string) ([]*corev1.Pod, error)
	SetReplicas(ctx context.Context, n int32) error
}

// KubeMetrics gathers the Kubernetes metrics kubernetesMetricSpecs ask for. On a partial
// failure it returns what it gathered with the error.
type KubeMetrics interface {
	Gather(ctx context.Context, t kubemetrics.Target) ([]k8smetric.Metric, error)
}

// Stages are the user's logic; a nil hook is not configured. The fields are named after
// the config keys of config.Config.Methods (StagesFromConfig relies on it).
type Stages struct {
	Metric, Evaluate                                                      execute.Runner
	PreMetric, PostMetric, PreEvaluate, PostEvaluate, PreScale, PostScale execute.Runner
}

// TraceFunc sees every stage and hook call: its name, what it was given, what it
// returned and its error. The run-once mode prints them.
type TraceFunc func(step string, input, output []byte, err error)

// Options are an Autoscaler's dependencies.
type Options struct {
	Target Target
	Stages Stages
	Clock  clock.Clock
	Logger *slog.Logger
	Trace  TraceFunc
	// Decider keeps the stabilization history; nil builds one from the config.
	Decider *scaling.Decider
	// KubeMetrics gathers kubernetesMetricSpecs; nil gathers none.
	KubeMetrics KubeMetrics
	// OnCycle, if set, sees the result of every cycle that may scale (not dry runs),
	// after its summary is logged: the status reporter. A cycle whose caller went away
	// (its context ended: an API client disconnected, shutdown) is not reported: it did
	// not fail, it was abandoned.
	OnCycle func(ctx context.Context, res *Result, err error)
	// APIRequests, if set, counts the requests made to the API server so far; each
	// cycle's summary reports how many it made.
	APIRequests func() uint64
}

// Autoscaler is one configured autoscaler. It holds no global state: a process may run
// many.
type Autoscaler struct {
	cfg         *config.Config
	target      Target
	stages      Stages
	clock       clock.Clock
	log         *slog.Logger
	trace       TraceFunc
	decider     *scaling.Decider
	kubeMetrics KubeMetrics
	onCycle     func(ctx context.Context, res *Result, err error)
	concurrency int
	name        string
	apiRequests func() uint64

	// procs holds one token per stage or hook call running now, across the loop and
	// every API request, so that no more than perPodConcurrency processes (or HTTP
	// calls) ever run at once.
	procs chan struct{}
	// scaleLock serialises cycles that may scale: the loop's and the API's non-dry runs.
	// A channel rather than a mutex so that a waiting API request gives up when its
	// client does.
	scaleLock chan struct{}
}

// New returns the Autoscaler for a validated config.
func New(cfg *config.Config, opts Options) (*Autoscaler, error) {
	if cfg.ScaleTargetRef == nil || cfg.Metric == nil || cfg.Evaluate == nil {
		return nil, errors.New("config is missing scaleTargetRef, metric or evaluate")
	}
	if opts.Target == nil || opts.Stages.Metric == nil || opts.Stages.Evaluate == nil {
		return nil, errors.New("autoscaler needs a target and the metric and evaluate stages")
	}
	a := &Autoscaler{
		cfg:         cfg,
		target:      opts.Target,
		stages:      opts.Stages,
		clock:       opts.Clock,
		log:         opts.Logger,
		trace:       opts.Trace,
		decider:     opts.Decider,
		kubeMetrics: opts.KubeMetrics,
		onCycle:     opts.OnCycle,
		apiRequests: opts.APIRequests,
		name:        fmt.Sprintf("%s/%s/%s", cfg.ScaleTargetRef.Kind, cfg.Namespace, cfg.ScaleTargetRef.Name),
	}
	if a.clock == nil {
		a.clock = clock.RealClock{}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.decider == nil {
		a.decider = scaling.NewDecider(cfg.MinReplicas, cfg.MaxReplicas, time.Duration(cfg.DownscaleStabilization)*time.Second, a.clock)
	}
	a.concurrency = PerPodConcurrency(cfg)
	a.procs = make(chan struct{}, a.concurrency)
	a.scaleLock = make(chan struct{}, 1)
	return a, nil
}

// PerPodConcurrency is how many stage and hook calls (per-pod metric calls above all) run
// at once, shared by the loop and the REST API.
func PerPodConcurrency(cfg *config.Config) int {
	if cfg.PerPodConcurrency > 0 {
		return cfg.PerPodConcurrency
	}
	return config.DefaultPerPodConcurrency(cfg.Metric)
}

// reportTimeout bounds OnCycle (the status write and event).
const reportTimeout = 10 * time.Second

// Result is what one cycle found and did.
type Result struct {
	Metrics    []*metric.ResourceMetric
	Evaluation *evaluate.Evaluation
	// Decision is nil on a dry run.
	Decision *scaling.Decision
	Scaled   bool
	// KubernetesMetricsTook is how long gathering kubernetesMetricSpecs took; 0 without specs.
	KubernetesMetricsTook time.Duration
}

// gathered is the state a cycle carries from the metric stage on.
type gathered struct {
	snap     *target.Snapshot
	resource json.RawMessage
	metrics  []*metric.ResourceMetric
	kmTook   time.Duration
}

// Metrics runs the metric stage (with its hooks) and returns its results.
func (a *Autoscaler) Metrics(ctx context.Context, runType string) ([]*metric.ResourceMetric, error) {
	g, err := a.gather(ctx, runType)
	if err != nil {
		return nil, err
	}
	return g.metrics, nil
}

// Evaluate runs the metric and evaluate stages. Unless dryRun, it then decides and
// scales, and returns the final replica count; a dry run returns the raw evaluation.
func (a *Autoscaler) Evaluate(ctx context.Context, runType string, dryRun bool) (*evaluate.Evaluation, error) {
	res, err := a.cycle(ctx, runType, dryRun)
	if err != nil {
		return nil, err
	}
	if res.Decision != nil {
		return &evaluate.Evaluation{TargetReplicas: res.Decision.Target}, nil
	}
	return res.Evaluation, nil
}

// RunCycle runs one full cycle (metric, evaluate, decide, scale) and logs its summary.
func (a *Autoscaler) RunCycle(ctx context.Context, runType string) (*Result, error) {
	return a.cycle(ctx, runType, false)
}

func (a *Autoscaler) cycle(ctx context.Context, runType string, dryRun bool) (*Result, error) {
	if !dryRun {
		select {
		case a.scaleLock <- struct{}{}:
			defer func() { <-a.scaleLock }()
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the cycle in progress: %w", context.Cause(ctx))
		}
	}
	start := a.clock.Now()
	var requestsBefore uint64
	if a.apiRequests != nil {
		requestsBefore = a.apiRequests()
	}
	res, err := a.runStages(ctx, runType, dryRun)
	attrs := []any{"target", a.name, "runType", runType, "duration", a.clock.Since(start).Round(time.Millisecond)}
	if a.apiRequests != nil {
		attrs = append(attrs, "apiRequests", a.apiRequests()-requestsBefore)
	}
	abandoned := err != nil && ctx.Err() != nil
	a.logSummary(attrs, dryRun, abandoned, res, err)
	if !dryRun && !abandoned && a.onCycle != nil {
		// A cycle that scaled is reported even if its API client leaves right after:
		// the report gets its own bounded context.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
		a.onCycle(rctx, res, err)
		cancel()
	}
	return res, err
}

func (a *Autoscaler) runStages(ctx context.Context, runType string, dryRun bool) (*Result, error) {
	res := &Result{}
	g, err := a.gather(ctx, runType)
	if err != nil {
		return res, err
	}
	res.Metrics = g.metrics
	res.KubernetesMetricsTook = g.kmTook

	info := evaluate.Info{Metrics: g.metrics, Resource: g.resource, RunType: runType}
	if err := a.hook(ctx, "preEvaluate", a.stages.PreEvaluate, info); err != nil {
		return res, err
	}
	out, err := a.call(ctx, "evaluate", a.stages.Evaluate, info)
	if err != nil {
		return res, fmt.Errorf("evaluate stage: %w", err)
	}
	ev, err := ParseEvaluation(out)
	if err != nil {
		return res, fmt.Errorf("evaluate stage: %w", err)
	}
	res.Evaluation = ev
	info.Evaluation = ev
	if err := a.hook(ctx, "postEvaluate", a.stages.PostEvaluate, info); err != nil {
		return res, err
	}
	if dryRun {
		return res, nil
	}

	dec := a.decider.Decide(g.snap.Replicas, ev.TargetReplicas)
	res.Decision = &dec
	if dec.Disabled {
		return res, nil
	}
	ref := *a.cfg.ScaleTargetRef
	sinfo := scale.Info{
		Evaluation:      evaluate.Evaluation{TargetReplicas: dec.Target},
		Resource:        g.resource,
		ScaleTargetRef:  &ref,
		Namespace:       a.cfg.Namespace,
		MinReplicas:     a.cfg.MinReplicas,
		MaxReplicas:     a.cfg.MaxReplicas,
		TargetReplicas:  ev.TargetReplicas,
		CurrentReplicas: g.snap.Replicas,
		RunType:         runType,
	}
	if err := a.hook(ctx, "preScale", a.stages.PreScale, sinfo); err != nil {
		return res, err
	}
	if dec.Change() {
		if err := a.target.SetReplicas(ctx, dec.Target); err != nil {
			return res, err
		}
		res.Scaled = true
	}
	if err := a.hook(ctx, "postScale", a.stages.PostScale, sinfo); err != nil {
		return res, err
	}
	return res, nil
}

func (a *Autoscaler) gather(ctx context.Context, runType string) (*gathered, error) {
	snap, err := a.target.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	resource, err := json.Marshal(snap.Object.Object)
	if err != nil {
		return nil, fmt.Errorf("encoding the scale target: %w", err)
	}
	g := &gathered{snap: snap, resource: resource}
	// The pods are read once a cycle, by the Kubernetes metrics or the per-pod runs.
	var (
		podsOnce sync.Once
		pods     []*corev1.Pod
		podsErr  error
	)
	getPods := func(ctx context.Context) ([]*corev1.Pod, error) {
		podsOnce.Do(func() { pods, podsErr = a.target.Pods(ctx, snap.Selector) })
		return pods, podsErr
	}
	km, kmTook, err := a.kubernetesMetrics(ctx, snap, getPods)
	if err != nil {
		return nil, err
	}
	g.kmTook = kmTook
	info := metric.Info{Resource: resource, RunType: runType, KubernetesMetrics: km}
	if err := a.hook(ctx, "preMetric", a.stages.PreMetric, info); err != nil {
		return nil, err
	}
	switch a.cfg.RunMode {
	case config.RunModePerResource:
		out, err := a.call(ctx, "metric", a.stages.Metric, info)
		if err != nil {
			return nil, fmt.Errorf("metric stage: %w", err)
		}
		g.metrics = []*metric.ResourceMetric{{Resource: snap.Object.GetName(), Value: string(out)}}
	case config.RunModePerPod:
		pods, err := getPods(ctx)
		if err != nil {
			return nil, err
		}
		g.metrics, err = a.perPod(ctx, pods, runType, km)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown runMode %q", a.cfg.RunMode)
	}
	info.Metrics = g.metrics
	if err := a.hook(ctx, "postMetric", a.stages.PostMetric, info); err != nil {
		return nil, err
	}
	return g, nil
}

// kubernetesMetrics gathers kubernetesMetricSpecs and encodes them for the metric stage.
// With requireKubernetesMetrics any failure fails the cycle; without, each failed spec is
// logged and the stage gets what was gathered. It also returns how long it took.
func (a *Autoscaler) kubernetesMetrics(ctx context.Context, snap *target.Snapshot, pods kubemetrics.PodsFunc) (json.RawMessage, time.Duration, error) {
	if a.kubeMetrics == nil || len(a.cfg.KubernetesMetricSpecs) == 0 {
		return nil, 0, nil
	}
	start := a.clock.Now()
	ms, err := a.kubeMetrics.Gather(ctx, kubemetrics.Target{Replicas: snap.Replicas, Selector: snap.Selector, Pods: pods})
	if err != nil {
		if a.cfg.RequireKubernetesMetrics {
			return nil, 0, fmt.Errorf("requireKubernetesMetrics is true: %w", err)
		}
		var gerr *kubemetrics.Error
		if errors.As(err, &gerr) {
			for _, f := range gerr.Failed {
				a.log.Warn("Kubernetes metric not gathered; going on without it (requireKubernetesMetrics is false)",
					"target", a.name, "spec", fmt.Sprintf("kubernetesMetricSpecs[%d]", f.Index), "metric", f.Spec, "error", f.Err)
			}
		} else {
			a.log.Warn("Kubernetes metrics not gathered; going on without them (requireKubernetesMetrics is false)", "target", a.name, "error", err)
		}
	}
	raw, err := k8smetric.Marshal(ms)
	if err != nil {
		return nil, 0, fmt.Errorf("encoding the Kubernetes metrics: %w", err)
	}
	return raw, a.clock.Since(start), nil
}

// perPod runs the metric stage for every pod, at most a.concurrency at once, and returns
// the results in pod-name order. The first failure cancels the calls still running.
func (a *Autoscaler) perPod(ctx context.Context, pods []*corev1.Pod, runType string, km json.RawMessage) ([]*metric.ResourceMetric, error) {
	results := make([]*metric.ResourceMetric, len(pods))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i, pod := range pods {
		if a.acquire(ctx) != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { a.release(); wg.Done() }()
			p := *pod // shallow copy: informer objects are shared and have no TypeMeta
			p.APIVersion, p.Kind = "v1", "Pod"
			in, err := podInput(&p, runType, km)
			if err != nil {
				cancel(fmt.Errorf("encoding pod %s: %w", pod.Name, err))
				return
			}
			out, err := a.runAcquired(ctx, "metric", a.stages.Metric, in)
			if err != nil {
				cancel(fmt.Errorf("metric stage for pod %s: %w", pod.Name, err))
				return
			}
			results[i] = &metric.ResourceMetric{Resource: pod.Name, Value: string(out)}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return results, nil
}

// podInput encodes the per-pod metric input, the JSON of metric.Info{Resource: pod,
// RunType: runType, KubernetesMetrics: km}, in one pass: marshalling the Info around an
// already encoded pod would re-scan and compact the pod's JSON, a fifth of the runtime's
// CPU per pod. km is already encoded (once per cycle, not per pod).
func podInput(pod *corev1.Pod, runType string, km json.RawMessage) ([]byte, error) {
	resource, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	rt, err := json.Marshal(runType)
	if err != nil {
		return nil, err
	}
	in := make([]byte, 0, len(resource)+len(rt)+len(km)+len(`{"resource":,"runType":,"kubernetesMetrics":}`))
	in = append(in, `{"resource":`...)
	in = append(in, resource...)
	in = append(in, `,"runType":`...)
	in = append(in, rt...)
	if len(km) > 0 {
		in = append(in, `,"kubernetesMetrics":`...)
		in = append(in, km...)
	}
	return append(in, '}'), nil
}

// call marshals input, runs r and reports the call to the trace.
func (a *Autoscaler) call(ctx context.Context, step string, r execute.Runner, input any) ([]byte, error) {
	in, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s input: %w", step, err)
	}
	return a.run(ctx, step, r, in)
}

// acquire waits for one of the perPodConcurrency call slots, or for ctx to end.
func (a *Autoscaler) acquire(ctx context.Context) error {
	select {
	case a.procs <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (a *Autoscaler) release() { <-a.procs }

// run runs r on the encoded input in a call slot and reports the call to the trace.
func (a *Autoscaler) run(ctx context.Context, step string, r execute.Runner, in []byte) ([]byte, error) {
	if err := a.acquire(ctx); err != nil {
		return nil, fmt.Errorf("%s: waiting for a free call slot (perPodConcurrency %d): %w", step, a.concurrency, err)
	}
	defer a.release()
	return a.runAcquired(ctx, step, r, in)
}

// runAcquired is run for a caller that holds a call slot.
func (a *Autoscaler) runAcquired(ctx context.Context, step string, r execute.Runner, in []byte) ([]byte, error) {
	out, err := r.Run(ctx, in)
	if a.trace != nil {
		a.trace(step, in, out, err)
	}
	return out, err
}

// hook runs a configured hook; its output is only logged, its failure stops the cycle.
func (a *Autoscaler) hook(ctx context.Context, name string, r execute.Runner, input any) error {
	if r == nil {
		return nil
	}
	out, err := a.call(ctx, name, r, input)
	if err != nil {
		return fmt.Errorf("%s hook: %w", name, err)
	}
	a.log.Debug("hook ran", "hook", name, "output", string(out))
	return nil
}

func (a *Autoscaler) logSummary(attrs []any, dryRun, abandoned bool, res *Result, err error) {
	if res != nil {
		attrs = append(attrs, "metrics", len(res.Metrics))
		if res.KubernetesMetricsTook > 0 {
			attrs = append(attrs, "kubernetesMetricsDuration", res.KubernetesMetricsTook.Round(time.Microsecond))
		}
		if res.Evaluation != nil {
			attrs = append(attrs, "evaluated", res.Evaluation.TargetReplicas)
		}
		if d := res.Decision; d != nil {
			attrs = append(attrs, "current", d.Current, "replicas", d.Target, "scaled", res.Scaled, "reason", d.Reason)
		}
	}
	switch {
	case abandoned:
		a.log.Info("cycle abandoned: its caller went away or the runtime is stopping; target not scaled", append(attrs, "reason", err)...)
	case err != nil:
		a.log.Error("cycle failed; target not scaled", append(attrs, "error", err)...)
	case dryRun:
		a.log.Info("dry run evaluated", attrs...)
	case res.Decision != nil && res.Decision.Disabled:
		a.log.Info("autoscaling disabled", attrs...)
	case res.Scaled:
		a.log.Info("scaled", attrs...)
	default:
		a.log.Info("no change", attrs...)
	}
}

// Run runs a cycle every interval until ctx is done. The first cycle starts at the next
// multiple of startTime milliseconds since the epoch; cycles never overlap, and a cycle
// that outlasts the interval makes the loop skip the ticks it missed.
func (a *Autoscaler) Run(ctx context.Context) error {
	interval := time.Duration(a.cfg.Interval) * time.Millisecond
	if interval <= 0 || a.cfg.StartTime <= 0 {
		return fmt.Errorf("interval (%d) and startTime (%d) must be positive", a.cfg.Interval, a.cfg.StartTime)
	}
	now := a.clock.Now()
	next := now.Add(time.Duration(a.cfg.StartTime-now.UnixMilli()%a.cfg.StartTime) * time.Millisecond)
	a.log.Info("autoscaler started", "target", a.name, "runMode", a.cfg.RunMode, "interval", interval, "firstCycle", next.Format(time.RFC3339Nano))
	for {
		timer := a.clock.NewTimer(next.Sub(a.clock.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C():
		}
		_, _ = a.RunCycle(ctx, config.RunTypeScaler)
		if ctx.Err() != nil {
			return nil
		}
		next = next.Add(interval)
		if now := a.clock.Now(); !next.After(now) {
			missed := now.Sub(next)/interval + 1
			next = next.Add(missed * interval)
			a.log.Warn("cycle took longer than the interval; skipping missed cycles", "target", a.name, "skipped", int64(missed), "interval", interval)
		}
	}
}
