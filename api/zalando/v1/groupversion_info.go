// Package v1 is the zalando.org/v1 API of kube-metrics-adapter's scaling schedules:
// ScalingSchedule (namespaced) and ClusterScalingSchedule (cluster-scoped), with the
// original's schema, short names and printer column, so that existing objects and the
// HPAs that refer to them keep working. It depends on the Kubernetes API machinery only.
//
// +kubebuilder:object:generate=true
// +groupName=zalando.org
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is zalando.org/v1.
	GroupVersion = schema.GroupVersion{Group: "zalando.org", Version: "v1"}
	// SchemeBuilder registers the types of this group.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the types of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&ScalingSchedule{}, &ScalingScheduleList{},
		&ClusterScalingSchedule{}, &ClusterScalingScheduleList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
