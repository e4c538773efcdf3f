// Package operator reconciles CustomPodAutoscaler resources: it provisions each one's
// ServiceAccount, Role, RoleBinding and one-replica Deployment running the runtime,
// keeps them as the resource says, pauses and resumes autoscalers, and reports status.
package operator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	cpav1 "github.com/custompodautoscaler/cpa/api/v1"
)

// Labels on everything the operator creates.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "custom-pod-autoscaler-operator"
	OwnedByLabel   = "v1.custompodautoscaler.com/owned-by"
	// TemplateHashAnnotation on the Deployment is the hash of the pod template the
	// operator last set: a changed hash, not the defaulted live template, decides a roll.
	TemplateHashAnnotation = "v1.custompodautoscaler.com/template-hash"
)

func ownLabels(cpa *cpav1.CustomPodAutoscaler) map[string]string {
	return map[string]string{ManagedByLabel: ManagedByValue, OwnedByLabel: cpa.Name}
}

func objectMeta(cpa *cpav1.CustomPodAutoscaler, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: cpa.Namespace, Labels: ownLabels(cpa)}
}

// enabled reads an optional flag with its default.
func enabled(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// serviceAccountName is the account the autoscaler runs as: the provisioned one (named
// after the resource), or, when the operator does not provision it, the template's if it
// names one.
func serviceAccountName(cpa *cpav1.CustomPodAutoscaler, spec *corev1.PodSpec) string {
	if !enabled(cpa.Spec.ProvisionServiceAccount, true) && spec.ServiceAccountName != "" {
		return spec.ServiceAccountName
	}
	return cpa.Name
}

func desiredServiceAccount(cpa *cpav1.CustomPodAutoscaler) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: objectMeta(cpa, cpa.Name)}
}

// desiredRole grants what the runtime needs for this target and nothing more: read and
// watch the target (by name), read and patch its /scale subresource, list and watch pods,
// update its own resource's status, record events; the metrics APIs and Argo Rollouts
// only when asked. target is the target's resource as the API server maps its kind.
func desiredRole(cpa *cpav1.CustomPodAutoscaler, target schema.GroupResource) *rbacv1.Role {
	name := cpa.Spec.ScaleTargetRef.Name
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{target.Group}, Resources: []string{target.Resource}, ResourceNames: []string{name}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{target.Group}, Resources: []string{target.Resource + "/scale"}, ResourceNames: []string{name}, Verbs: []string{"get", "patch", "update"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{cpav1.GroupVersion.Group}, Resources: []string{"custompodautoscalers"}, ResourceNames: []string{cpa.Name}, Verbs: []string{"get"}},
		{APIGroups: []string{cpav1.GroupVersion.Group}, Resources: []string{"custompodautoscalers/status"}, ResourceNames: []string{cpa.Name}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if enabled(cpa.Spec.RoleRequiresMetricsServer, false) {
		rules = append(rules,
			rbacv1.PolicyRule{APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			rbacv1.PolicyRule{APIGroups: []string{"custom.metrics.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get"}},
			rbacv1.PolicyRule{APIGroups: []string{"external.metrics.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
		)
	}
	if enabled(cpa.Spec.RoleRequiresArgoRollouts, false) {
		rules = append(rules,
			rbacv1.PolicyRule{APIGroups: []string{"argoproj.io"}, Resources: []string{"rollouts"}, Verbs: []string{"get", "list", "watch"}},
			rbacv1.PolicyRule{APIGroups: []string{"argoproj.io"}, Resources: []string{"rollouts/scale"}, Verbs: []string{"get", "patch", "update"}},
		)
	}
	return &rbacv1.Role{ObjectMeta: objectMeta(cpa, cpa.Name), Rules: rules}
}

func desiredRoleBinding(cpa *cpav1.CustomPodAutoscaler, serviceAccount string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: objectMeta(cpa, cpa.Name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: cpa.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: cpa.Namespace}},
	}
}

// podTemplate decodes the resource's template. Unknown fields are errors: the API server
// would drop them silently when the Deployment is created.
func podTemplate(cpa *cpav1.CustomPodAutoscaler) (metav1.ObjectMeta, corev1.PodSpec, error) {
	var meta metav1.ObjectMeta
	var spec corev1.PodSpec
	if raw := cpa.Spec.Template.Metadata.Raw; len(raw) > 0 {
		if err := strictJSON(raw, &meta); err != nil {
			return meta, spec, fmt.Errorf("spec.template.metadata: %w", err)
		}
	}
	raw := cpa.Spec.Template.Spec.Raw
	if len(raw) == 0 {
		return meta, spec, fmt.Errorf("spec.template.spec: required")
	}
	if err := strictJSON(raw, &spec); err != nil {
		return meta, spec, fmt.Errorf("spec.template.spec: %w", err)
	}
	if len(spec.Containers) == 0 {
		return meta, spec, fmt.Errorf("spec.template.spec.containers: at least one container is required")
	}
	return meta, spec, nil
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// workloadName is the Deployment's name: the template's metadata.name, else the
// resource's name.
func workloadName(cpa *cpav1.CustomPodAutoscaler, meta metav1.ObjectMeta) string {
	if meta.Name != "" {
		return meta.Name
	}
	return cpa.Name
}

// desiredDeployment is the autoscaler's workload: one replica (none while paused) of the
// template, recreated rather than rolled so that two autoscalers never run at once. Every
// container gets scaleTargetRef and namespace in its environment, then each config entry.
func desiredDeployment(cpa *cpav1.CustomPodAutoscaler, meta metav1.ObjectMeta, spec corev1.PodSpec, paused bool) (*appsv1.Deployment, error) {
	ref, err := json.Marshal(cpa.Spec.ScaleTargetRef)
	if err != nil {
		return nil, err
	}
	// CPA_NAME lets the runtime write its part of the resource's status.
	env := []corev1.EnvVar{{Name: "scaleTargetRef", Value: string(ref)}, {Name: "namespace", Value: cpa.Namespace}, {Name: "CPA_NAME", Value: cpa.Name}}
	for _, c := range cpa.Spec.Config {
		env = append(env, corev1.EnvVar{Name: c.Name, Value: c.Value})
	}
	spec = *spec.DeepCopy()
	for i := range spec.Containers {
		spec.Containers[i].Env = append(spec.Containers[i].Env, env...)
	}
	spec.ServiceAccountName = serviceAccountName(cpa, &spec)

	podLabels := merge(meta.Labels, ownLabels(cpa))
	selector := ownLabels(cpa)
	replicas := int32(1)
	if paused {
		replicas = 0
	}
	d := &appsv1.Deployment{
		ObjectMeta: objectMeta(cpa, workloadName(cpa, meta)),
		Spec: appsv1.DeploymentSpec{
			Replicas:             &replicas,
			Selector:             &metav1.LabelSelector{MatchLabels: selector},
			Strategy:             appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			RevisionHistoryLimit: ptr.To[int32](2),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: meta.Annotations},
				Spec:       spec,
			},
		},
	}
	raw, err := json.Marshal(d.Spec.Template)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	d.Annotations = map[string]string{TemplateHashAnnotation: hex.EncodeToString(sum[:8])}
	return d, nil
}
