// Package v1 is the custompodautoscaler.com/v1 API: the CustomPodAutoscaler resource.
// It depends on the Kubernetes API machinery only, so that other programs can import it.
//
// +kubebuilder:object:generate=true
// +groupName=custompodautoscaler.com
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is custompodautoscaler.com/v1.
	GroupVersion = schema.GroupVersion{Group: "custompodautoscaler.com", Version: "v1"}
	// SchemeBuilder registers the types of this group.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the types of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &CustomPodAutoscaler{}, &CustomPodAutoscalerList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
