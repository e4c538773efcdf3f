package schedule

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"

	zv1 "github.com/custompodautoscaler/cpa/api/zalando/v1"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

// Type is the collector type the adapter gives the Object metrics about ScalingSchedules
// and ClusterScalingSchedules (it routes them by the described object's kind, whatever
// their annotations say, as the original did).
const Type = "scaling-schedule"

// The kinds whose Object metrics this collector serves.
const (
	KindScalingSchedule        = "ScalingSchedule"
	KindClusterScalingSchedule = "ClusterScalingSchedule"
)

// ObjectGetter reads a schedule object (the dynamic client does).
type ObjectGetter interface {
	Get(ctx context.Context, ref collector.ObjectRef) (*unstructured.Unstructured, error)
}

// CollectorOptions are what the collectors of one process share.
type CollectorOptions struct {
	Objects ObjectGetter
	// Schedule are the --scaling-schedule-* settings.
	Schedule Options
	// Clock is the time the schedules are evaluated at; nil means the real clock.
	Clock clock.PassiveClock
}

// Factory returns a collector.Factory of schedule collectors.
func Factory(opts CollectorOptions) collector.Factory {
	return func(cfg collector.Config) (collector.Collector, error) { return NewCollector(cfg, opts) }
}

// Collector serves the value of one ScalingSchedule or ClusterScalingSchedule: read
// again on every collection and evaluated at the clock's time.
type Collector struct {
	object, read collector.ObjectRef
	opts         CollectorOptions
}

// NewCollector checks that cfg is an Object metric about a schedule.
func NewCollector(cfg collector.Config, opts CollectorOptions) (collector.Collector, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	var errs []error
	if cfg.Kind != collector.Object {
		errs = append(errs, fmt.Errorf("the scaling-schedule collector serves Object metrics, not %s", cfg.Kind))
	}
	obj := cfg.Object
	if obj.APIVersion != zv1.GroupVersion.String() {
		errs = append(errs, fmt.Errorf("describedObject.apiVersion %q: want %s", obj.APIVersion, zv1.GroupVersion))
	}
	read := obj
	switch obj.Kind {
	case KindScalingSchedule:
		if read.Namespace == "" {
			read.Namespace = cfg.Namespace
		}
	case KindClusterScalingSchedule:
		read.Namespace = ""
	default:
		errs = append(errs, fmt.Errorf("describedObject.kind %q: want %s or %s", obj.Kind, KindScalingSchedule, KindClusterScalingSchedule))
	}
	if obj.Name == "" {
		errs = append(errs, errors.New("the described object has no name"))
	}
	if opts.Objects == nil {
		errs = append(errs, errors.New("this collector has no way to read schedules"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	value := obj
	value.Namespace = read.Namespace
	return &Collector{object: value, read: read, opts: opts}, nil
}

// Collect reads the schedule and returns its value now, ramps included.
func (c *Collector) Collect(ctx context.Context) ([]collector.Value, error) {
	u, err := c.opts.Objects.Get(ctx, c.read)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("referenced %s %s not found", c.read.Kind, c.name())
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", c.read.Kind, c.name(), err)
	}
	var obj struct {
		Spec zv1.ScalingScheduleSpec `json:"spec"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.read.Kind, c.name(), err)
	}
	now := c.opts.Clock.Now()
	res, err := Evaluate(obj.Spec, now, c.opts.Schedule)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.read.Kind, c.name(), err)
	}
	q, err := collector.MilliQuantity(float64(res.Value))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.read.Kind, c.name(), err)
	}
	return []collector.Value{{Object: c.object, Value: q, Timestamp: now.Truncate(time.Second)}}, nil
}

func (c *Collector) name() string {
	if c.read.Namespace == "" {
		return c.read.Name
	}
	return c.read.Namespace + "/" + c.read.Name
}
