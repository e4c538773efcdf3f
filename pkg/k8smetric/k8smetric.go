// Package k8smetric is the JSON contract of the Kubernetes metrics the runtime gathers for
// kubernetesMetricSpecs and passes to the metric stage (and its hooks) as
// "kubernetesMetrics". The field names and their mixed casing are those of the original
// Custom Pod Autoscaler, so existing metric scripts keep working.
//
// Every value is in milli-units (a CPU usage of 250m is 250; 1Gi of memory is
// 1073741824000), as the Horizontal Pod Autoscaler computes with them.
package k8smetric

import (
	"encoding/json"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// Metric is what was gathered for one entry of kubernetesMetricSpecs. Exactly one of
// Resource, ContainerResource, Pods, Object and External is set, the one Spec.Type names.
type Metric struct {
	// CurrentReplicas is the target's replica count (its /scale spec.replicas).
	CurrentReplicas int32 `json:"current_replicas"`
	// Spec is the kubernetesMetricSpecs entry, as configured.
	Spec              autoscalingv2.MetricSpec `json:"spec"`
	Resource          *ResourceMetric          `json:"resource,omitempty"`
	ContainerResource *ResourceMetric          `json:"container_resource,omitempty"`
	Pods              *PodsMetric              `json:"pods,omitempty"`
	Object            *ObjectMetric            `json:"object,omitempty"`
	External          *ExternalMetric          `json:"external,omitempty"`
}

// PodMetric is one pod's sample.
type PodMetric struct {
	Timestamp time.Time `json:"Timestamp"`
	// Window is the sample's window in nanoseconds.
	Window time.Duration `json:"Window"`
	Value  int64         `json:"Value"`
}

// PodSet is a set of pod names. It encodes as {"name": {}, ...}.
type PodSet map[string]struct{}

// Add puts name in the set.
func (s PodSet) Add(name string) { s[name] = struct{}{} }

// ResourceMetric is a CPU or memory metric from metrics.k8s.io, for every pod (Resource)
// or one container of every pod (ContainerResource).
type ResourceMetric struct {
	// PodMetricsInfo holds the samples of the ready pods: ignored pods are left out.
	PodMetricsInfo map[string]PodMetric `json:"pod_metrics_info"`
	// Requests holds each pod's resource request (target type Utilization only; null
	// for AverageValue).
	Requests map[string]int64 `json:"requests"`
	// ReadyPodCount counts the pods whose samples are in PodMetricsInfo.
	ReadyPodCount int64 `json:"ready_pod_count"`
	// IgnoredPods are pods the HPA leaves out: Pending pods, and for CPU pods not yet
	// ready or whose sample predates their readiness (cpuInitializationPeriod,
	// initialReadinessDelay).
	IgnoredPods PodSet `json:"ignored_pods"`
	// MissingPods are running pods with no sample.
	MissingPods PodSet `json:"missing_pods"`
	// TotalPods counts every pod the target's selector matches.
	TotalPods int       `json:"total_pods"`
	Timestamp time.Time `json:"timestamp"`
}

// PodsMetric is a custom metric describing each pod (custom.metrics.k8s.io).
type PodsMetric struct {
	PodMetricsInfo map[string]PodMetric `json:"pod_metrics_info"`
	ReadyPodCount  int64                `json:"ready_pod_count"`
	// IgnoredPods are the Pending pods.
	IgnoredPods PodSet    `json:"ignored_pods"`
	MissingPods PodSet    `json:"missing_pods"`
	TotalPods   int       `json:"total_pods"`
	Timestamp   time.Time `json:"timestamp"`
}

// MetricValue is a value (target type Value) or an average value (AverageValue).
type MetricValue struct {
	Value        *int64 `json:"value,omitempty"`
	AverageValue *int64 `json:"average_value,omitempty"`
}

// ObjectMetric is a custom metric describing one object (custom.metrics.k8s.io). For an
// AverageValue target, Current.AverageValue is the object's value, not divided by the
// replica count, as the HPA divides it itself.
type ObjectMetric struct {
	Current MetricValue `json:"current"`
	// ReadyPodCount counts running and ready pods; set for Value targets only.
	ReadyPodCount *int64    `json:"ready_pod_count,omitempty"`
	Timestamp     time.Time `json:"timestamp"`
}

// ExternalMetric is a metric from outside the cluster (external.metrics.k8s.io): the sum
// of every series the selector matches.
type ExternalMetric = ObjectMetric

// Marshal encodes a gathered list as the "kubernetesMetrics" value; an empty list is nil,
// which leaves the field out.
func Marshal(ms []Metric) (json.RawMessage, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	return json.Marshal(ms)
}
