// Package scale is the JSON contract of the preScale and postScale hooks.
package scale

import (
	"encoding/json"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/custompodautoscaler/cpa/pkg/evaluate"
)

// Info describes a scaling decision. Evaluation.TargetReplicas is the final replica count
// (clamped to min/max and stabilized); TargetReplicas is the evaluate stage's raw value.
// CurrentReplicas is the target's replica count before scaling (the original documented
// it but never sent it).
type Info struct {
	Evaluation      evaluate.Evaluation                        `json:"evaluation"`
	Resource        json.RawMessage                            `json:"resource"`
	ScaleTargetRef  *autoscalingv2.CrossVersionObjectReference `json:"scaleTargetRef"`
	Namespace       string                                     `json:"namespace"`
	MinReplicas     int32                                      `json:"minReplicas"`
	MaxReplicas     int32                                      `json:"maxReplicas"`
	TargetReplicas  int32                                      `json:"targetReplicas"`
	CurrentReplicas int32                                      `json:"currentReplicas"`
	RunType         string                                     `json:"runType"`
}
