package v1

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// PausedReplicasAnnotation pauses an autoscaler: the operator scales the target to the
// annotation's replica count and stops the autoscaler, keeping the resource; removing
// the annotation resumes it.
const PausedReplicasAnnotation = "v1.custompodautoscaler.com/paused-replicas"

// CustomPodAutoscalerSpec is what a CustomPodAutoscaler runs and scales.
type CustomPodAutoscalerSpec struct {
	// Template is the pod of the autoscaler: its image holds the runtime and the user's
	// logic. It is kept as given (not pruned); Kubernetes validates it when the
	// operator creates the autoscaler's Deployment, and a rejection is reported in the
	// status.
	Template PodTemplateSpec `json:"template"`
	// ScaleTargetRef is the resource to scale, in the autoscaler's namespace. It needs a
	// /scale subresource.
	// +kubebuilder:validation:XValidation:rule="has(self.apiVersion) && self.apiVersion != ''",message="scaleTargetRef.apiVersion is required (for example apps/v1)"
	ScaleTargetRef autoscalingv1.CrossVersionObjectReference `json:"scaleTargetRef"`
	// Config sets the runtime's configuration keys, as environment variables of the
	// autoscaler's containers.
	// +optional
	// +listType=map
	// +listMapKey=name
	Config []ConfigItem `json:"config,omitempty"`
	// ProvisionRole makes the operator create and own the autoscaler's Role.
	// +optional
	// +kubebuilder:default=true
	ProvisionRole *bool `json:"provisionRole,omitempty"`
	// ProvisionRoleBinding makes the operator create and own the autoscaler's RoleBinding.
	// +optional
	// +kubebuilder:default=true
	ProvisionRoleBinding *bool `json:"provisionRoleBinding,omitempty"`
	// ProvisionServiceAccount makes the operator create and own the autoscaler's
	// ServiceAccount.
	// +optional
	// +kubebuilder:default=true
	ProvisionServiceAccount *bool `json:"provisionServiceAccount,omitempty"`
	// ProvisionPod makes the operator create and own the autoscaler's workload (a
	// one-replica Deployment).
	// +optional
	// +kubebuilder:default=true
	ProvisionPod *bool `json:"provisionPod,omitempty"`
	// RoleRequiresMetricsServer grants the Role read access to the metrics APIs
	// (metrics.k8s.io, custom.metrics.k8s.io, external.metrics.k8s.io), for
	// kubernetesMetricSpecs.
	// +optional
	// +kubebuilder:default=false
	RoleRequiresMetricsServer *bool `json:"roleRequiresMetricsServer,omitempty"`
	// RoleRequiresArgoRollouts is accepted for compatibility and adds nothing: a Rollout
	// target is granted by name like any scale target.
	// +optional
	// +kubebuilder:default=false
	RoleRequiresArgoRollouts *bool `json:"roleRequiresArgoRollouts,omitempty"`
}

// PodTemplateSpec is the autoscaler's pod: metadata and spec, kept as given. The schema
// does not describe them (the full PodSpec schema would make the CRD too large for a
// plain kubectl apply, and CEL cannot see fields a schema leaves open): the operator
// checks them and reports problems in the status.
type PodTemplateSpec struct {
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Metadata runtime.RawExtension `json:"metadata,omitempty"`
	// Spec is a core/v1 PodSpec; it needs at least one container.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Spec runtime.RawExtension `json:"spec"`
}

// ConfigItem is one configuration key of the runtime and its value.
type ConfigItem struct {
	// +kubebuilder:validation:MinLength=1
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CustomPodAutoscalerStatus is what the operator and the autoscaler report.
type CustomPodAutoscalerStatus struct {
	// ObservedGeneration is the generation the operator last provisioned.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (the autoscaler's Deployment is available) and Paused, written by
	// the operator; ScalingActive (the last cycle succeeded) and ScalingLimited (the
	// evaluation was clamped), written by the autoscaler.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// CurrentReplicas and DesiredReplicas are the target's replicas as the last cycle
	// found them and as it decided.
	// +optional
	CurrentReplicas *int32 `json:"currentReplicas,omitempty"`
	// +optional
	DesiredReplicas *int32 `json:"desiredReplicas,omitempty"`
	// LastScaleTime is when the autoscaler last changed the target's replicas.
	// +optional
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`
	// LastEvaluation summarises the last cycle: metrics gathered and replicas evaluated.
	// +optional
	LastEvaluation *EvaluationSummary `json:"lastEvaluation,omitempty"`
	// Recommendations is the downscale-stabilization history, so that it survives a
	// restart of the autoscaler.
	// +optional
	Recommendations []Recommendation `json:"recommendations,omitempty"`
}

// EvaluationSummary is one cycle in brief.
type EvaluationSummary struct {
	Time              metav1.Time `json:"time"`
	Metrics           int32       `json:"metrics"`
	EvaluatedReplicas int32       `json:"evaluatedReplicas"`
}

// Recommendation is one evaluation kept for downscale stabilization.
type Recommendation struct {
	Time     metav1.Time `json:"time"`
	Replicas int32       `json:"replicas"`
}

// CustomPodAutoscaler runs a custom autoscaler for one scale target.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cpa,categories=all
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.scaleTargetRef.name`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.scaleTargetRef.kind`,priority=1
// +kubebuilder:printcolumn:name="Current",type=integer,JSONPath=`.status.currentReplicas`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredReplicas`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CustomPodAutoscaler struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CustomPodAutoscalerSpec   `json:"spec"`
	Status CustomPodAutoscalerStatus `json:"status,omitempty"`
}

// CustomPodAutoscalerList is a list of CustomPodAutoscalers.
//
// +kubebuilder:object:root=true
type CustomPodAutoscalerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CustomPodAutoscaler `json:"items"`
}
