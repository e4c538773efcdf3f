package schedulecontroller

import (
	"context"
	"math"
	"math/big"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	zv1 "github.com/custompodautoscaler/cpa/api/zalando/v1"
	"github.com/custompodautoscaler/cpa/internal/collector/schedule"
)

// adjust scales the targets of the HPAs whose schedule metrics ask for more
// replicas than the HPA controller will give within its tolerance.
func (c *Controller) adjust(ctx context.Context, now time.Time) {
	hpas, err := c.hpas.List(labels.Everything())
	if err != nil {
		c.opts.Log.Error("listing HPAs from the cache", "error", err)
		return
	}
	missing := map[string]bool{}
	var jobs []func()
	for _, hpa := range hpas {
		d, ok := c.decide(hpa, now, missing)
		if !ok {
			continue
		}
		jobs = append(jobs, func() { c.scale(ctx, hpa, d) })
	}
	c.mu.Lock()
	c.missing = missing
	c.mu.Unlock()
	c.parallel(jobs)
}

// decision is what the adjuster does to one HPA.
type decision struct {
	schedule ScheduleRef
	metric   string
	current  int32
	expected int32
}

// decide returns the replicas hpa's target should have, if the adjuster is to
// scale it. missing collects the schedule metrics whose object is missing.
func (c *Controller) decide(hpa *autoscalingv2.HorizontalPodAutoscaler, now time.Time, missing map[string]bool) (decision, bool) {
	current := hpa.Status.CurrentReplicas
	if current <= 0 {
		return decision{}, false // scaled to zero, or the HPA has not run yet
	}
	if b := hpa.Spec.Behavior; b != nil && b.ScaleUp != nil && b.ScaleUp.SelectPolicy != nil && *b.ScaleUp.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return decision{}, false // the HPA's owner turned scaling up off
	}
	var (
		best      decision
		bestRatio float64
	)
	for i := range hpa.Spec.Metrics {
		m := &hpa.Spec.Metrics[i]
		ref, ok := scheduleMetric(hpa.Namespace, m)
		if !ok {
			continue
		}
		targetMilli := m.Object.Target.AverageValue.MilliValue()
		if targetMilli <= 0 {
			continue
		}
		spec, ok := c.spec(hpa, ref, missing)
		if !ok {
			continue
		}
		r, err := schedule.Evaluate(*spec, now, c.opts.Schedule)
		if err != nil || r.ActiveMax <= 0 {
			continue // an invalid spec is reported by the status loop
		}
		expected := expectedReplicas(r.ActiveMax, targetMilli)
		if expected > int64(best.expected) {
			best = decision{schedule: ref, metric: m.Object.Metric.Name, current: current, expected: int32(min(expected, math.MaxInt32))}
			bestRatio = float64(r.ActiveMax) * 1000 / (float64(targetMilli) * float64(current))
		}
	}
	if best.expected == 0 {
		return decision{}, false
	}
	best.expected = min(best.expected, hpa.Spec.MaxReplicas)
	if best.expected <= current {
		return decision{}, false
	}
	// The HPA controller's test (replica_calculator.go): within the band, edges
	// included, it leaves the target alone.
	if tol := c.tolerance(hpa); bestRatio < 1-tol || bestRatio > 1+tol {
		return decision{}, false // the HPA controller scales this one itself
	}
	return best, true
}

// scheduleMetric returns the schedule object that m describes, if m is an Object
// metric on a ScalingSchedule or ClusterScalingSchedule with a target
// averageValue.
func scheduleMetric(namespace string, m *autoscalingv2.MetricSpec) (ScheduleRef, bool) {
	if m.Type != autoscalingv2.ObjectMetricSourceType || m.Object == nil || m.Object.Target.AverageValue == nil {
		return ScheduleRef{}, false
	}
	d := m.Object.DescribedObject
	gv, err := schema.ParseGroupVersion(d.APIVersion)
	if err != nil || gv.Group != zv1.GroupVersion.Group || (gv.Version != "" && gv.Version != zv1.GroupVersion.Version) {
		return ScheduleRef{}, false
	}
	switch d.Kind {
	case KindScalingSchedule:
		return ScheduleRef{Kind: d.Kind, Namespace: namespace, Name: d.Name}, true
	case KindClusterScalingSchedule:
		return ScheduleRef{Kind: d.Kind, Name: d.Name}, true
	}
	return ScheduleRef{}, false
}

// spec returns the spec of the schedule object ref from the cache. A missing
// object is logged the first time in a row it is missing for this HPA.
func (c *Controller) spec(hpa *autoscalingv2.HorizontalPodAutoscaler, ref ScheduleRef, missing map[string]bool) (*zv1.ScalingScheduleSpec, bool) {
	var (
		spec *zv1.ScalingScheduleSpec
		err  error
	)
	switch ref.Kind {
	case KindScalingSchedule:
		var s *zv1.ScalingSchedule
		if s, err = c.schedules.GetScalingSchedule(ref.Namespace, ref.Name); err == nil && s != nil {
			spec = &s.Spec
		}
	default:
		var s *zv1.ClusterScalingSchedule
		if s, err = c.schedules.GetClusterScalingSchedule(ref.Name); err == nil && s != nil {
			spec = &s.Spec
		}
	}
	if spec != nil {
		return spec, true
	}
	if err != nil && !apierrors.IsNotFound(err) {
		c.opts.Log.Error("reading a scaling schedule from the cache", "hpa", hpa.Namespace+"/"+hpa.Name, "schedule", ref.String(), "error", err)
		return nil, false
	}
	key := hpa.Namespace + "/" + hpa.Name + " " + ref.String()
	missing[key] = true
	c.mu.Lock()
	known := c.missing[key]
	c.mu.Unlock()
	if !known {
		c.opts.Log.Warn("the HPA's metric refers to a scaling schedule that does not exist; its metric is not adjusted", "hpa", hpa.Namespace+"/"+hpa.Name, "schedule", ref.String())
	}
	return nil, false
}

// tolerance returns the tolerance the HPA controller applies when scaling hpa
// up: its spec.behavior.scaleUp.tolerance, or the flag's.
func (c *Controller) tolerance(hpa *autoscalingv2.HorizontalPodAutoscaler) float64 {
	if b := hpa.Spec.Behavior; b != nil && b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
		if t := b.ScaleUp.Tolerance.AsApproximateFloat64(); t >= 0 {
			return t
		}
	}
	return c.opts.Tolerance
}

// expectedReplicas returns ceil(value / (targetMilli/1000)) exactly, saturating
// at math.MaxInt64; targetMilli > 0.
func expectedReplicas(value, targetMilli int64) int64 {
	n := new(big.Int).Mul(big.NewInt(value), big.NewInt(1000))
	d := big.NewInt(targetMilli)
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	if r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return math.MaxInt64
	}
	return q.Int64()
}

// scale sets the replicas of hpa's target as d says and records the event.
func (c *Controller) scale(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, d decision) {
	target := hpa.Spec.ScaleTargetRef
	log := c.opts.Log.With("hpa", hpa.Namespace+"/"+hpa.Name, "target", target.Kind+"/"+target.Name, "schedule", d.schedule.String(), "metric", d.metric)
	previous, changed, err := c.scaler.ScaleUp(ctx, hpa.Namespace, target, d.expected)
	if err != nil {
		log.Error("adjusting the replicas of the scale target", "replicas", d.expected, "error", err)
		return
	}
	if !changed {
		log.Debug("the scale target already has the expected replicas", "replicas", previous, "expected", d.expected)
		return
	}
	log.Info("adjusted the replicas of the scale target", "from", previous, "to", d.expected)
	if c.opts.Recorder != nil {
		c.opts.Recorder.Eventf(hpa, corev1.EventTypeNormal, ReasonScalingAdjusted,
			"Scaling schedule '%s/%s' adjusted replicas %d -> %d based on metric: %s",
			d.schedule.Kind, d.schedule.Name, previous, d.expected, d.metric)
	}
}
