package schedulecontroller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	zv1 "github.com/custompodautoscaler/cpa/api/zalando/v1"
	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector/schedule"
)

// The kinds of the zalando.org/v1 schedule objects.
const (
	KindScalingSchedule        = "ScalingSchedule"
	KindClusterScalingSchedule = "ClusterScalingSchedule"
)

// Event reasons.
const (
	// ReasonScalingAdjusted is the Normal event on an HPA whose target the
	// adjuster scaled.
	ReasonScalingAdjusted = "ScalingAdjusted"
	// ReasonInvalidSchedule is the Warning event on a schedule object whose
	// spec does not validate.
	ReasonInvalidSchedule = "InvalidScalingSchedule"
)

// Defaults of Options.
const (
	// DefaultInterval is the tick of the controller, the original's.
	DefaultInterval = 10 * time.Second
	// DefaultTolerance is --horizontal-pod-autoscaler-tolerance's default, the
	// HPA controller's.
	DefaultTolerance = 0.1
	// DefaultWorkers bounds the status writes and HPA adjustments in flight, the
	// original's errgroup limit.
	DefaultWorkers = 10
)

// maxEventMessage bounds an event's message.
const maxEventMessage = 1000

// ScheduleRef names a ScalingSchedule (Namespace set) or a
// ClusterScalingSchedule (Namespace empty).
type ScheduleRef struct {
	Kind      string
	Namespace string
	Name      string
}

func (r ScheduleRef) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Schedules reads the schedule objects from a cache (InformerSchedules reads
// the dynamic informers'). The objects returned are shared: callers must not
// modify them. A missing object is an error for which apierrors.IsNotFound
// holds.
type Schedules interface {
	ListScalingSchedules() ([]*zv1.ScalingSchedule, error)
	ListClusterScalingSchedules() ([]*zv1.ClusterScalingSchedule, error)
	GetScalingSchedule(namespace, name string) (*zv1.ScalingSchedule, error)
	GetClusterScalingSchedule(name string) (*zv1.ClusterScalingSchedule, error)
}

// HPALister lists HPAs from a cache; client-go's
// autoscaling/v2 HorizontalPodAutoscalerLister satisfies it.
type HPALister interface {
	List(selector labels.Selector) ([]*autoscalingv2.HorizontalPodAutoscaler, error)
}

// StatusWriter writes status.active of a schedule object through its /status
// subresource (StatusClient does, with the dynamic client).
type StatusWriter interface {
	SetActive(ctx context.Context, ref ScheduleRef, active bool) error
}

// Scaler sets the replicas of a scale target through its /scale subresource
// (ScaleClient does). It returns the target's spec.replicas before the call and
// whether it changed them: a target already at replicas or above is left alone.
type Scaler interface {
	ScaleUp(ctx context.Context, namespace string, target autoscalingv2.CrossVersionObjectReference, replicas int32) (previous int32, changed bool, err error)
}

// Recorder records events; client-go's record.EventRecorder satisfies it. The
// objects it is given are the typed HPA (as the HPA informer returns it) and
// the typed schedule objects, with their TypeMeta set.
type Recorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Options configure a Controller. The zero value of each field but Schedule
// means its default; Schedule must come from schedule.NewOptions (the
// --scaling-schedule-* flags).
type Options struct {
	// Clock gives now and the ticker; default the real clock.
	Clock clock.WithTicker
	// Interval is the tick; default DefaultInterval.
	Interval time.Duration
	// Tolerance is --horizontal-pod-autoscaler-tolerance; 0 means
	// DefaultTolerance; negative is an error.
	Tolerance float64
	// Schedule are the --scaling-schedule-* options of the computation.
	Schedule schedule.Options
	// Log receives what the controller does and the problems it meets;
	// default discard.
	Log *slog.Logger
	// Recorder records the events; default none.
	Recorder Recorder
	// Workers bounds the concurrent writes of one tick; default DefaultWorkers.
	Workers int
	// Synced are the HasSynced of the informers behind Schedules and the
	// HPALister; Run waits for them before its first tick.
	Synced []cache.InformerSynced
}

// Controller is the scheduled-scaling controller. Build it with New, then Run it.
type Controller struct {
	schedules Schedules
	hpas      HPALister
	status    StatusWriter
	scaler    Scaler
	opts      Options

	mu sync.Mutex
	// written is the last status write per object, so that a tick that comes
	// before the informer has seen the write does not write it again.
	written map[ScheduleRef]writtenStatus
	// invalid is the problem last reported per object.
	invalid map[ScheduleRef]problem
	// missing are the schedule metrics of HPAs whose object was missing last
	// tick (logged once).
	missing map[string]bool
	// listProblem is the cache problem last logged (logged once per change).
	listProblem string
}

type writtenStatus struct {
	uid             types.UID
	resourceVersion string
	active          bool
}

type problem struct {
	uid        types.UID
	generation int64
	message    string
}

// New returns a controller over the schedule objects of schedules, writing their
// status through status. hpas and scaler are the adjuster's: with either nil,
// the controller only keeps the status.
func New(schedules Schedules, hpas HPALister, status StatusWriter, scaler Scaler, opts Options) (*Controller, error) {
	if schedules == nil || status == nil {
		return nil, errors.New("schedulecontroller: schedules and status writer are required")
	}
	if err := opts.Schedule.Validate(); err != nil {
		return nil, fmt.Errorf("schedulecontroller: %w", err)
	}
	if opts.Tolerance < 0 {
		return nil, fmt.Errorf("schedulecontroller: --horizontal-pod-autoscaler-tolerance %v: must not be negative", opts.Tolerance)
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = DefaultTolerance
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{
		schedules: schedules,
		status:    status,
		opts:      opts,
		written:   map[ScheduleRef]writtenStatus{},
		invalid:   map[ScheduleRef]problem{},
		missing:   map[string]bool{},
	}
	if hpas != nil && scaler != nil {
		c.hpas, c.scaler = hpas, scaler
	}
	return c, nil
}

// Run waits for the informers of Options.Synced, then ticks until ctx is done:
// once right away, then every Options.Interval. It returns nil when ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	if len(c.opts.Synced) > 0 && !cache.WaitForCacheSync(ctx.Done(), c.opts.Synced...) {
		return nil // ctx done
	}
	c.opts.Log.Info("scheduled-scaling controller started", "interval", c.opts.Interval, "tolerance", c.opts.Tolerance, "adjuster", c.scaler != nil)
	t := c.opts.Clock.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		c.Tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// Tick runs one round at the clock's now: the status of every schedule object,
// then the adjuster over every HPA.
func (c *Controller) Tick(ctx context.Context) {
	now := c.opts.Clock.Now()
	c.syncStatus(ctx, now)
	if c.scaler != nil {
		c.adjust(ctx, now)
	}
}

// scheduleObject is what the controller needs of a ScalingSchedule or a
// ClusterScalingSchedule.
type scheduleObject struct {
	ref             ScheduleRef
	obj             runtime.Object
	uid             types.UID
	generation      int64
	resourceVersion string
	spec            *zv1.ScalingScheduleSpec
	active          bool
}

func fromScalingSchedule(s *zv1.ScalingSchedule) scheduleObject {
	return scheduleObject{
		ref: ScheduleRef{Kind: KindScalingSchedule, Namespace: s.Namespace, Name: s.Name},
		obj: withTypeMeta(s, KindScalingSchedule), uid: s.UID, generation: s.Generation,
		resourceVersion: s.ResourceVersion, spec: &s.Spec, active: s.Status.Active,
	}
}

func fromClusterScalingSchedule(s *zv1.ClusterScalingSchedule) scheduleObject {
	return scheduleObject{
		ref: ScheduleRef{Kind: KindClusterScalingSchedule, Name: s.Name},
		obj: withTypeMeta(s, KindClusterScalingSchedule), uid: s.UID, generation: s.Generation,
		resourceVersion: s.ResourceVersion, spec: &s.Spec, active: s.Status.Active,
	}
}

// withTypeMeta returns obj, or a copy of it with its apiVersion and kind set, so
// that an event recorder can refer to it.
func withTypeMeta[T interface {
	runtime.Object
	*zv1.ScalingSchedule | *zv1.ClusterScalingSchedule
}](obj T, kind string) runtime.Object {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind == kind && gvk.GroupVersion() == zv1.GroupVersion {
		return obj
	}
	cp := obj.DeepCopyObject()
	cp.GetObjectKind().SetGroupVersionKind(zv1.GroupVersion.WithKind(kind))
	return cp
}

// syncStatus brings status.active of every schedule object up to date.
func (c *Controller) syncStatus(ctx context.Context, now time.Time) {
	var objs []scheduleObject
	ss, err1 := c.schedules.ListScalingSchedules()
	for _, s := range ss {
		objs = append(objs, fromScalingSchedule(s))
	}
	css, err2 := c.schedules.ListClusterScalingSchedules()
	for _, s := range css {
		objs = append(objs, fromClusterScalingSchedule(s))
	}
	// An object the cache cannot convert would otherwise be logged every tick.
	if err := errors.Join(err1, err2); err != nil && err.Error() != c.listProblem {
		c.opts.Log.Error("reading the scaling schedules from the cache; the others are kept up to date", "error", err)
		c.listProblem = err.Error()
	} else if err == nil {
		c.listProblem = ""
	}

	seen := make(map[ScheduleRef]bool, len(objs))
	var writes []func()
	for _, o := range objs {
		seen[o.ref] = true
		r, err := schedule.Evaluate(*o.spec, now, c.opts.Schedule)
		if err != nil {
			c.reportInvalid(o, err)
			continue
		}
		c.clearInvalid(o)
		if !c.needsWrite(o, r.Active) {
			continue
		}
		writes = append(writes, func() { c.writeStatus(ctx, o, r.Active) })
	}
	c.forget(seen)
	c.parallel(writes)
}

// needsWrite reports whether o's status.active must be written to be active.
func (c *Controller) needsWrite(o scheduleObject, active bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.written[o.ref]
	if ok && w.uid == o.uid && w.resourceVersion == o.resourceVersion {
		// The cache has not seen our last write yet: it is what counts.
		return w.active != active
	}
	delete(c.written, o.ref)
	return o.active != active
}

func (c *Controller) writeStatus(ctx context.Context, o scheduleObject, active bool) {
	if err := c.status.SetActive(ctx, o.ref, active); err != nil {
		c.opts.Log.Error("writing status.active", "schedule", o.ref.String(), "active", active, "error", err)
		return
	}
	c.opts.Log.Info("status.active changed", "schedule", o.ref.String(), "active", active)
	c.mu.Lock()
	c.written[o.ref] = writtenStatus{uid: o.uid, resourceVersion: o.resourceVersion, active: active}
	c.mu.Unlock()
}

// reportInvalid logs an invalid spec and records a Warning event on its object,
// once per change of the object or of the problem.
func (c *Controller) reportInvalid(o scheduleObject, err error) {
	p := problem{uid: o.uid, generation: o.generation, message: err.Error()}
	c.mu.Lock()
	old, ok := c.invalid[o.ref]
	c.invalid[o.ref] = p
	c.mu.Unlock()
	if ok && old == p {
		return
	}
	c.opts.Log.Warn("invalid scaling schedule; its status is left alone", "schedule", o.ref.String(), "error", err)
	if c.opts.Recorder != nil {
		c.opts.Recorder.Eventf(o.obj, corev1.EventTypeWarning, ReasonInvalidSchedule, "%s", clip.String("invalid spec: "+err.Error(), maxEventMessage))
	}
}

func (c *Controller) clearInvalid(o scheduleObject) {
	c.mu.Lock()
	_, ok := c.invalid[o.ref]
	delete(c.invalid, o.ref)
	c.mu.Unlock()
	if ok {
		c.opts.Log.Info("scaling schedule is valid again", "schedule", o.ref.String())
	}
}

// forget drops the state of objects that are gone.
func (c *Controller) forget(seen map[ScheduleRef]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ref := range c.written {
		if !seen[ref] {
			delete(c.written, ref)
		}
	}
	for ref := range c.invalid {
		if !seen[ref] {
			delete(c.invalid, ref)
		}
	}
}

// parallel runs fns, at most Options.Workers at a time, and waits for them.
func (c *Controller) parallel(fns []func()) {
	if len(fns) == 0 {
		return
	}
	sem := make(chan struct{}, c.opts.Workers)
	var wg sync.WaitGroup
	for _, fn := range fns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn()
		})
	}
	wg.Wait()
}
