package scale_test

import (
	"encoding/json"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/custompodautoscaler/cpa/pkg/evaluate"
	"github.com/custompodautoscaler/cpa/pkg/metric"
	"github.com/custompodautoscaler/cpa/pkg/scale"
)

// TestWireFormat pins the JSON that user logic reads: the keys are the original Custom
// Pod Autoscaler's, so autoscalers written for it keep working.
func TestWireFormat(t *testing.T) {
	resource := json.RawMessage(`{"kind":"Deployment"}`)
	metrics := []*metric.ResourceMetric{{Resource: "app", Value: "3\n"}}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"metric input", metric.Info{Resource: resource, RunType: "scaler"},
			`{"resource":{"kind":"Deployment"},"runType":"scaler"}`},
		{"postMetric input", metric.Info{Resource: resource, Metrics: metrics, RunType: "api"},
			`{"resource":{"kind":"Deployment"},"metrics":[{"resource":"app","value":"3\n"}],"runType":"api"}`},
		{"evaluate input", evaluate.Info{Metrics: metrics, Resource: resource, RunType: "api_dry_run"},
			`{"metrics":[{"resource":"app","value":"3\n"}],"resource":{"kind":"Deployment"},"runType":"api_dry_run"}`},
		{"postEvaluate input", evaluate.Info{Metrics: []*metric.ResourceMetric{}, Resource: resource, Evaluation: &evaluate.Evaluation{TargetReplicas: 2}, RunType: "scaler"},
			`{"metrics":[],"resource":{"kind":"Deployment"},"evaluation":{"targetReplicas":2},"runType":"scaler"}`},
		{"scale hooks input", scale.Info{
			Evaluation: evaluate.Evaluation{TargetReplicas: 5}, Resource: resource,
			ScaleTargetRef: &autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
			Namespace:      "default", MinReplicas: 1, MaxReplicas: 5, TargetReplicas: 9, CurrentReplicas: 3, RunType: "scaler"},
			`{"evaluation":{"targetReplicas":5},"resource":{"kind":"Deployment"},"scaleTargetRef":{"kind":"Deployment","name":"app","apiVersion":"apps/v1"},"namespace":"default","minReplicas":1,"maxReplicas":5,"targetReplicas":9,"currentReplicas":3,"runType":"scaler"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
