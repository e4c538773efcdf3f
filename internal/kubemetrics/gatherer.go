// Package kubemetrics gathers the Kubernetes metrics an autoscaler's kubernetesMetricSpecs
// ask for, from metrics.k8s.io, custom.metrics.k8s.io and external.metrics.k8s.io, with
// the Horizontal Pod Autoscaler's rules for ready, ignored and missing pods.
//
// A cycle makes one request per metrics API and spec at most: the resource metrics of
// all pods are listed once and shared by every Resource and ContainerResource spec, and
// the pods come from the caller (a watch cache), not from the API server.
package kubemetrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	metricsv1beta1 "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"
	customclient "k8s.io/metrics/pkg/client/custom_metrics"
	externalclient "k8s.io/metrics/pkg/client/external_metrics"
	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/pkg/k8smetric"
)

// Clients reach the three metrics APIs. A nil client makes the specs that need it fail
// with a clear error.
type Clients struct {
	Resource metricsv1beta1.PodMetricsesGetter
	Custom   customclient.CustomMetricsClient
	External externalclient.ExternalMetricsClient
}

// Options configure a Gatherer.
type Options struct {
	Specs     []autoscalingv2.MetricSpec
	Namespace string
	Clients   Clients
	// CPUInitializationPeriod and InitialReadinessDelay are the HPA's CPU readiness
	// rules (its --horizontal-pod-autoscaler-* flags of the same names).
	CPUInitializationPeriod time.Duration
	InitialReadinessDelay   time.Duration
	Clock                   clock.PassiveClock
}

// Gatherer gathers the metrics of a fixed list of specs for one target.
type Gatherer struct {
	opts Options
}

// New returns a Gatherer.
func New(opts Options) *Gatherer {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Gatherer{opts: opts}
}

// PodsFunc returns the target's pods that are neither terminating nor finished.
type PodsFunc func(ctx context.Context) ([]*corev1.Pod, error)

// Target is what a cycle knows of the scale target.
type Target struct {
	// Replicas is the /scale subresource's spec.replicas.
	Replicas int32
	// Selector is the /scale subresource's pod selector.
	Selector string
	// Pods is called at most once, by the specs that need the pods.
	Pods PodsFunc
}

// SpecError is the failure of one spec.
type SpecError struct {
	// Index is the spec's position in kubernetesMetricSpecs.
	Index int
	Spec  string
	Err   error
}

func (e SpecError) Error() string {
	return fmt.Sprintf("kubernetesMetricSpecs[%d] (%s): %v", e.Index, e.Spec, e.Err)
}

func (e SpecError) Unwrap() error { return e.Err }

// Error reports the specs that failed; the others were gathered.
type Error struct {
	Failed []SpecError
	Total  int
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		msgs[i] = f.Error()
	}
	what := "all"
	if len(e.Failed) < e.Total {
		what = "some"
	}
	return fmt.Sprintf("failed to gather %s Kubernetes metrics (%d of %d): %s", what, len(e.Failed), e.Total, strings.Join(msgs, "; "))
}

func (e *Error) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f
	}
	return errs
}

// Gather gathers every spec, in order. Specs that fail are left out of the result and
// reported in an *Error; the result then holds what was gathered.
func (g *Gatherer) Gather(ctx context.Context, t Target) ([]k8smetric.Metric, error) {
	c := &cycle{g: g, t: t}
	out := make([]k8smetric.Metric, 0, len(g.opts.Specs))
	var failed []SpecError
	for i := range g.opts.Specs {
		spec := &g.opts.Specs[i]
		m, err := c.gather(ctx, spec)
		if err != nil {
			failed = append(failed, SpecError{Index: i, Spec: Describe(spec), Err: err})
			continue
		}
		m.CurrentReplicas = t.Replicas
		m.Spec = *spec
		out = append(out, *m)
	}
	if len(failed) > 0 {
		return out, &Error{Failed: failed, Total: len(g.opts.Specs)}
	}
	return out, nil
}

// Describe names a spec for messages: its type and metric or resource name.
func Describe(s *autoscalingv2.MetricSpec) string {
	switch {
	case s.Type == autoscalingv2.ResourceMetricSourceType && s.Resource != nil:
		return fmt.Sprintf("Resource %s", s.Resource.Name)
	case s.Type == autoscalingv2.ContainerResourceMetricSourceType && s.ContainerResource != nil:
		return fmt.Sprintf("ContainerResource %s of container %s", s.ContainerResource.Name, s.ContainerResource.Container)
	case s.Type == autoscalingv2.PodsMetricSourceType && s.Pods != nil:
		return fmt.Sprintf("Pods %s", s.Pods.Metric.Name)
	case s.Type == autoscalingv2.ObjectMetricSourceType && s.Object != nil:
		return fmt.Sprintf("Object %s of %s %s", s.Object.Metric.Name, s.Object.DescribedObject.Kind, s.Object.DescribedObject.Name)
	case s.Type == autoscalingv2.ExternalMetricSourceType && s.External != nil:
		return fmt.Sprintf("External %s", s.External.Metric.Name)
	}
	return string(s.Type)
}

// cycle holds what one Gather shares between specs.
type cycle struct {
	g *Gatherer
	t Target

	podsOnce sync.Once
	pods     []*corev1.Pod
	podsErr  error

	selectorOnce sync.Once
	selector     labels.Selector
	selectorErr  error

	resourceOnce sync.Once
	resource     *resourceSamples
	resourceErr  error
}

func (c *cycle) gather(ctx context.Context, s *autoscalingv2.MetricSpec) (*k8smetric.Metric, error) {
	switch s.Type {
	case autoscalingv2.ResourceMetricSourceType:
		if s.Resource == nil {
			return nil, errors.New("resource is not set")
		}
		m, err := c.resourceMetric(ctx, s.Resource.Name, "", s.Resource.Target.Type)
		return &k8smetric.Metric{Resource: m}, err
	case autoscalingv2.ContainerResourceMetricSourceType:
		if s.ContainerResource == nil {
			return nil, errors.New("containerResource is not set")
		}
		if s.ContainerResource.Container == "" {
			return nil, errors.New("containerResource.container is not set")
		}
		m, err := c.resourceMetric(ctx, s.ContainerResource.Name, s.ContainerResource.Container, s.ContainerResource.Target.Type)
		return &k8smetric.Metric{ContainerResource: m}, err
	case autoscalingv2.PodsMetricSourceType:
		if s.Pods == nil {
			return nil, errors.New("pods is not set")
		}
		m, err := c.podsMetric(ctx, s.Pods)
		return &k8smetric.Metric{Pods: m}, err
	case autoscalingv2.ObjectMetricSourceType:
		if s.Object == nil {
			return nil, errors.New("object is not set")
		}
		m, err := c.objectMetric(ctx, s.Object)
		return &k8smetric.Metric{Object: m}, err
	case autoscalingv2.ExternalMetricSourceType:
		if s.External == nil {
			return nil, errors.New("external is not set")
		}
		m, err := c.externalMetric(ctx, s.External)
		return &k8smetric.Metric{External: m}, err
	}
	return nil, fmt.Errorf("unknown metric source type %q", s.Type)
}

func (c *cycle) getPods(ctx context.Context) ([]*corev1.Pod, error) {
	c.podsOnce.Do(func() {
		if c.t.Pods == nil {
			c.podsErr = errors.New("the target's pods are not available")
			return
		}
		c.pods, c.podsErr = c.t.Pods(ctx)
	})
	return c.pods, c.podsErr
}

func (c *cycle) podSelector() (labels.Selector, error) {
	c.selectorOnce.Do(func() {
		if c.t.Selector == "" {
			c.selectorErr = errors.New("the target's /scale subresource reports no pod selector")
			return
		}
		c.selector, c.selectorErr = labels.Parse(c.t.Selector)
		if c.selectorErr != nil {
			c.selectorErr = fmt.Errorf("parsing the target's pod selector %q: %w", c.t.Selector, c.selectorErr)
		}
	})
	return c.selector, c.selectorErr
}
