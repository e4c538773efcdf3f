// Package evaluate is the JSON contract of the evaluate stage.
package evaluate

import (
	"encoding/json"

	"github.com/custompodautoscaler/cpa/pkg/metric"
)

// Evaluation is what the evaluate stage returns: the replica count it wants.
type Evaluation struct {
	TargetReplicas int32 `json:"targetReplicas"`
}

// Info is the input of the evaluate stage and of the preEvaluate and postEvaluate hooks.
// Evaluation is set only for postEvaluate (the raw, unclamped result).
type Info struct {
	Metrics    []*metric.ResourceMetric `json:"metrics"`
	Resource   json.RawMessage          `json:"resource"`
	Evaluation *Evaluation              `json:"evaluation,omitempty"`
	RunType    string                   `json:"runType"`
}
