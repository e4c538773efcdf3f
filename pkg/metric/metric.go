// Package metric is the JSON contract of the metric stage: what the runtime pipes to the
// user's metric logic (and the metric hooks) and how it wraps what comes back.
// User logic written in Go can import these types.
package metric

import "encoding/json"

// ResourceMetric is one metric stage result: the name of the resource (the target in
// per-resource mode, the pod in per-pod mode) and the raw output of the stage.
type ResourceMetric struct {
	Resource string `json:"resource,omitempty"`
	Value    string `json:"value,omitempty"`
}

// Info is the input of the metric stage and of the preMetric and postMetric hooks.
// Resource is the full object as JSON: the scale target, or one pod in per-pod mode.
type Info struct {
	Resource          json.RawMessage   `json:"resource"`
	Metrics           []*ResourceMetric `json:"metrics,omitempty"`
	RunType           string            `json:"runType"`
	KubernetesMetrics json.RawMessage   `json:"kubernetesMetrics,omitempty"`
}
