package kubemetrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	custommetrics "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"

	"github.com/custompodautoscaler/cpa/pkg/k8smetric"
)

const (
	resourceAPI = "metrics.k8s.io"
	customAPI   = "custom.metrics.k8s.io"
	externalAPI = "external.metrics.k8s.io"
)

// defaultWindow is the window of custom metric values that report none, as in the HPA.
const defaultWindow = time.Minute

// apiError explains a failed metrics API call. A 503 means the aggregated API server
// behind the APIService is down or not ready; a 404 on a list means the API is not
// registered at all (for custom metrics it may also mean the adapter has no such metric).
func apiError(api string, err error) error {
	switch {
	case apierrors.IsServiceUnavailable(err):
		return fmt.Errorf("the %s API is unavailable (its APIService is registered but the server behind it is not ready): %w", api, err)
	case apierrors.IsNotFound(err) && api == resourceAPI:
		return fmt.Errorf("the %s API is not served (is metrics-server installed and its APIService v1beta1.metrics.k8s.io Available?): %w", api, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: not found (no such metric, or the API is not registered): %w", api, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: forbidden (the autoscaler's service account needs RBAC access to this API): %w", api, err)
	}
	return fmt.Errorf("%s: %w", api, err)
}

func metricSelector(field string, s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return sel, nil
}

func (c *cycle) podsMetric(ctx context.Context, src *autoscalingv2.PodsMetricSource) (*k8smetric.PodsMetric, error) {
	if t := src.Target.Type; t != autoscalingv2.AverageValueMetricType {
		return nil, fmt.Errorf("target.type %q is not supported for Pods metrics: use %s", t, autoscalingv2.AverageValueMetricType)
	}
	if c.g.opts.Clients.Custom == nil {
		return nil, errors.New("no client for the custom.metrics.k8s.io API")
	}
	msel, err := metricSelector("metric.selector", src.Metric.Selector)
	if err != nil {
		return nil, err
	}
	sel, err := c.podSelector()
	if err != nil {
		return nil, err
	}
	pods, err := c.getPods(ctx)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no pods match the target's selector %q", c.t.Selector)
	}
	list, err := c.g.opts.Clients.Custom.NamespacedMetrics(c.g.opts.Namespace).GetForObjects(schema.GroupKind{Kind: "Pod"}, sel, src.Metric.Name, msel)
	if err != nil {
		return nil, apiError(customAPI, err)
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("%s returned no values of %q for the pods matching %q", customAPI, src.Metric.Name, c.t.Selector)
	}
	samples := make(map[string]k8smetric.PodMetric, len(list.Items))
	for i := range list.Items {
		v := &list.Items[i]
		samples[v.DescribedObject.Name] = k8smetric.PodMetric{Timestamp: v.Timestamp.Time, Window: window(v.WindowSeconds), Value: v.Value.MilliValue()}
	}
	groups := groupPods(pods, samples, readinessRules{})
	return &k8smetric.PodsMetric{
		PodMetricsInfo: groups.samples,
		ReadyPodCount:  groups.ready,
		IgnoredPods:    groups.ignored,
		MissingPods:    groups.missing,
		TotalPods:      len(pods),
		Timestamp:      list.Items[0].Timestamp.Time,
	}, nil
}

func window(seconds *int64) time.Duration {
	if seconds == nil || *seconds <= 0 || *seconds > math.MaxInt64/int64(time.Second) {
		return defaultWindow
	}
	return time.Duration(*seconds) * time.Second
}

func (c *cycle) objectMetric(ctx context.Context, src *autoscalingv2.ObjectMetricSource) (*k8smetric.ObjectMetric, error) {
	t := src.Target.Type
	if t != autoscalingv2.ValueMetricType && t != autoscalingv2.AverageValueMetricType {
		return nil, fmt.Errorf("target.type %q is not supported for Object metrics: use %s or %s", t, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType)
	}
	if c.g.opts.Clients.Custom == nil {
		return nil, errors.New("no client for the custom.metrics.k8s.io API")
	}
	ref := src.DescribedObject
	if ref.Kind == "" || ref.Name == "" {
		return nil, errors.New("describedObject needs kind and name")
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("describedObject.apiVersion %q: %w", ref.APIVersion, err)
	}
	msel, err := metricSelector("metric.selector", src.Metric.Selector)
	if err != nil {
		return nil, err
	}
	gk := schema.GroupKind{Group: gv.Group, Kind: ref.Kind}
	var v *custommetrics.MetricValue
	if gk.Group == "" && gk.Kind == "Namespace" {
		// Namespaces are not namespaced: their metrics are root-scoped.
		v, err = c.g.opts.Clients.Custom.RootScopedMetrics().GetForObject(gk, ref.Name, src.Metric.Name, msel)
	} else {
		v, err = c.g.opts.Clients.Custom.NamespacedMetrics(c.g.opts.Namespace).GetForObject(gk, ref.Name, src.Metric.Name, msel)
	}
	if err != nil {
		return nil, apiError(customAPI, err)
	}
	return c.valueMetric(ctx, t, v.Value.MilliValue(), v.Timestamp.Time)
}

func (c *cycle) externalMetric(ctx context.Context, src *autoscalingv2.ExternalMetricSource) (*k8smetric.ExternalMetric, error) {
	t := src.Target.Type
	if t != autoscalingv2.ValueMetricType && t != autoscalingv2.AverageValueMetricType {
		return nil, fmt.Errorf("target.type %q is not supported for External metrics: use %s or %s", t, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType)
	}
	if c.g.opts.Clients.External == nil {
		return nil, errors.New("no client for the external.metrics.k8s.io API")
	}
	msel, err := metricSelector("metric.selector", src.Metric.Selector)
	if err != nil {
		return nil, err
	}
	list, err := c.g.opts.Clients.External.NamespacedMetrics(c.g.opts.Namespace).List(src.Metric.Name, msel)
	if err != nil {
		return nil, apiError(externalAPI, err)
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("%s returned no series of %q for selector %q", externalAPI, src.Metric.Name, msel.String())
	}
	var sum int64
	for i := range list.Items {
		sum = addCapped(sum, list.Items[i].Value.MilliValue())
	}
	return c.valueMetric(ctx, t, sum, list.Items[0].Timestamp.Time)
}

// valueMetric builds an Object or External metric: a Value target carries the count of
// ready pods the HPA multiplies its ratio with, an AverageValue target the raw value.
func (c *cycle) valueMetric(ctx context.Context, t autoscalingv2.MetricTargetType, value int64, ts time.Time) (*k8smetric.ObjectMetric, error) {
	m := &k8smetric.ObjectMetric{Timestamp: ts}
	if t == autoscalingv2.AverageValueMetricType {
		m.Current.AverageValue = &value
		return m, nil
	}
	pods, err := c.getPods(ctx)
	if err != nil {
		return nil, err
	}
	ready := readyRunning(pods)
	m.Current.Value = &value
	m.ReadyPodCount = &ready
	return m, nil
}

// addCapped adds without wrapping around: sums of many large series saturate, as in the HPA.
func addCapped(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}
