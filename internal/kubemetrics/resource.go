package kubemetrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsapi "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/custompodautoscaler/cpa/pkg/k8smetric"
)

// resourceSamples is one list of metrics.k8s.io PodMetrics, shared by every Resource and
// ContainerResource spec of a cycle.
type resourceSamples struct {
	items []metricsapi.PodMetrics
}

func (c *cycle) listPodMetrics(ctx context.Context) (*resourceSamples, error) {
	c.resourceOnce.Do(func() {
		if c.g.opts.Clients.Resource == nil {
			c.resourceErr = errors.New("no client for the metrics.k8s.io API")
			return
		}
		sel, err := c.podSelector()
		if err != nil {
			c.resourceErr = err
			return
		}
		list, err := c.g.opts.Clients.Resource.PodMetricses(c.g.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			c.resourceErr = apiError(resourceAPI, err)
			return
		}
		c.resource = &resourceSamples{items: list.Items}
	})
	return c.resource, c.resourceErr
}

// resourceMetric gathers a Resource metric (container empty) or a ContainerResource one.
func (c *cycle) resourceMetric(ctx context.Context, name corev1.ResourceName, container string, target autoscalingv2.MetricTargetType) (*k8smetric.ResourceMetric, error) {
	if target != autoscalingv2.UtilizationMetricType && target != autoscalingv2.AverageValueMetricType {
		return nil, fmt.Errorf("target.type %q is not supported for resource metrics: use %s or %s", target, autoscalingv2.UtilizationMetricType, autoscalingv2.AverageValueMetricType)
	}
	list, err := c.listPodMetrics(ctx)
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
	samples, ts := usage(list.items, name, container)
	if len(samples) == 0 {
		what := string(name)
		if container != "" {
			what += " of container " + container
		}
		return nil, fmt.Errorf("%s returned no %s usage for the pods matching %q (metrics appear about one scrape interval after a pod starts)", resourceAPI, what, c.t.Selector)
	}
	groups := groupPods(pods, samples, readinessRules{
		cpu:                     name == corev1.ResourceCPU,
		now:                     c.g.opts.Clock.Now(),
		cpuInitializationPeriod: c.g.opts.CPUInitializationPeriod,
		initialReadinessDelay:   c.g.opts.InitialReadinessDelay,
	})
	m := &k8smetric.ResourceMetric{
		PodMetricsInfo: groups.samples,
		ReadyPodCount:  groups.ready,
		IgnoredPods:    groups.ignored,
		MissingPods:    groups.missing,
		TotalPods:      len(pods),
		Timestamp:      ts,
	}
	if target == autoscalingv2.UtilizationMetricType {
		if m.Requests, err = requests(pods, name, container); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// usage sums each pod's usage of resource over its containers, or takes the one named
// container's. A pod is left out (and so counts as missing) when one of its containers,
// or the named container, reports no usage of resource. ts is the first sample's time.
func usage(items []metricsapi.PodMetrics, resource corev1.ResourceName, container string) (map[string]k8smetric.PodMetric, time.Time) {
	samples := make(map[string]k8smetric.PodMetric, len(items))
	var ts time.Time
	for i := range items {
		pm := &items[i]
		var sum int64
		found, complete := false, true
		for _, c := range pm.Containers {
			if container != "" && c.Name != container {
				continue
			}
			q, ok := c.Usage[resource]
			if !ok {
				complete = false
				break
			}
			sum += q.MilliValue()
			found = true
		}
		if !found || !complete {
			continue
		}
		if ts.IsZero() {
			ts = pm.Timestamp.Time
		}
		samples[pm.Name] = k8smetric.PodMetric{Timestamp: pm.Timestamp.Time, Window: pm.Window.Duration, Value: sum}
	}
	return samples, ts
}

// requests returns each pod's request of resource, as the HPA computes it: the pod-level
// request when the pod sets one, else the sum over its containers and restartable init
// containers (sidecars); with container set, that container's request only. A container
// without a request is an error, since utilization cannot be computed without one.
func requests(pods []*corev1.Pod, resource corev1.ResourceName, container string) (map[string]int64, error) {
	out := make(map[string]int64, len(pods))
	for _, pod := range pods {
		if container == "" && pod.Spec.Resources != nil {
			if q, ok := pod.Spec.Resources.Requests[resource]; ok && !q.IsZero() {
				out[pod.Name] = q.MilliValue()
				continue
			}
		}
		var sum int64
		matched := false
		check := func(c *corev1.Container) error {
			if container != "" && c.Name != container {
				return nil
			}
			q, ok := c.Resources.Requests[resource]
			if !ok || q.IsZero() {
				return fmt.Errorf("container %s of pod %s has no %s request: a Utilization target needs one (use AverageValue to gather raw usage)", c.Name, pod.Name, resource)
			}
			sum += q.MilliValue()
			matched = true
			return nil
		}
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				if err := check(c); err != nil {
					return nil, err
				}
			}
		}
		for i := range pod.Spec.Containers {
			if err := check(&pod.Spec.Containers[i]); err != nil {
				return nil, err
			}
		}
		if matched {
			out[pod.Name] = sum
		}
	}
	return out, nil
}
