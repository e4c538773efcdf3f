// Package v1 is the custompodautoscaler.com/v1 API: the CustomPodAutoscaler resource.
//
// +kubebuilder:object:generate=true
// +groupName=custompodautoscaler.com
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is custompodautoscaler.com/v1.
	GroupVersion = schema.GroupVersion{Group: "custompodautoscaler.com", Version: "v1"}
	// SchemeBuilder registers the types of this group.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the types of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
