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
	"maps"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	cpav1 "github.com/custompodautoscaler/cpa/api/custompodautoscaler/v1"
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

// withLabels returns a copy of a with b's labels set over it.
func withLabels(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// enabled reads an optional flag with its default.
func enabled(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// template is the resource's pod template as the operator uses it: the metadata it
// reads, the fields of the spec it needs, and the spec as given, unknown fields included.
type template struct {
	meta metav1.ObjectMeta
	// serviceAccountName is the template's spec.serviceAccountName.
	serviceAccountName string
	// spec is the PodSpec as the user wrote it. It is passed to the API server as it is,
	// so that a field newer than this operator's API version is kept; the server
	// validates it when the Deployment is applied.
	spec map[string]any
}

// serviceAccountName is the account the autoscaler runs as: the provisioned one (named
// after the resource), or, when the operator does not provision it, the template's if it
// names one.
func serviceAccountName(cpa *cpav1.CustomPodAutoscaler, tpl *template) string {
	if !enabled(cpa.Spec.ProvisionServiceAccount, true) && tpl.serviceAccountName != "" {
		return tpl.serviceAccountName
	}
	return cpa.Name
}

func desiredServiceAccount(cpa *cpav1.CustomPodAutoscaler) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: objectMeta(cpa, cpa.Name)}
}

// desiredRole grants what the runtime uses for this target and nothing more: read and
// watch the target and patch its /scale subresource (both by name), list and watch pods,
// read its own resource and apply its status (by name), record events; the metrics APIs
// only when asked. target is the target's resource as the API server maps its kind.
//
// roleRequiresArgoRollouts adds nothing: a Rollout target is already granted by name
// above, and the runtime reads no other Rollout.
func desiredRole(cpa *cpav1.CustomPodAutoscaler, target schema.GroupResource) *rbacv1.Role {
	name := cpa.Spec.ScaleTargetRef.Name
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{target.Group}, Resources: []string{target.Resource}, ResourceNames: []string{name}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{target.Group}, Resources: []string{target.Resource + "/scale"}, ResourceNames: []string{name}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{cpav1.GroupVersion.Group}, Resources: []string{"custompodautoscalers"}, ResourceNames: []string{cpa.Name}, Verbs: []string{"get"}},
		{APIGroups: []string{cpav1.GroupVersion.Group}, Resources: []string{"custompodautoscalers/status"}, ResourceNames: []string{cpa.Name}, Verbs: []string{"patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if enabled(cpa.Spec.RoleRequiresMetricsServer, false) {
		rules = append(rules, metricsRules...)
	}
	return &rbacv1.Role{ObjectMeta: objectMeta(cpa, cpa.Name), Rules: rules}
}

// metricsRules let the runtime read the metrics APIs for kubernetesMetricSpecs.
var metricsRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
	{APIGroups: []string{"custom.metrics.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get"}},
	{APIGroups: []string{"external.metrics.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
}

func desiredRoleBinding(cpa *cpav1.CustomPodAutoscaler, serviceAccount string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: objectMeta(cpa, cpa.Name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: cpa.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: cpa.Namespace}},
	}
}

// podTemplate decodes the resource's template. The metadata must be known fields (the
// operator reads labels, annotations and the name). The spec is checked for what the
// operator needs and otherwise kept as given: the API server, which knows every field of
// its version, validates it when the Deployment is applied.
func podTemplate(cpa *cpav1.CustomPodAutoscaler) (*template, error) {
	tpl := &template{}
	if raw := cpa.Spec.Template.Metadata.Raw; len(raw) > 0 {
		if err := strictJSON(raw, &tpl.meta); err != nil {
			return nil, fmt.Errorf("spec.template.metadata: %w", err)
		}
	}
	raw := cpa.Spec.Template.Spec.Raw
	if len(raw) == 0 {
		return nil, fmt.Errorf("spec.template.spec: required")
	}
	// The typed decode checks the types of the fields this operator knows.
	var spec corev1.PodSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("spec.template.spec: %w", err)
	}
	if len(spec.Containers) == 0 {
		return nil, fmt.Errorf("spec.template.spec.containers: at least one container is required")
	}
	// utiljson keeps integers as int64, as unstructured objects need.
	if err := utiljson.Unmarshal(raw, &tpl.spec); err != nil {
		return nil, fmt.Errorf("spec.template.spec: %w", err)
	}
	tpl.serviceAccountName = spec.ServiceAccountName
	return tpl, nil
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// workloadName is the Deployment's name: the template's metadata.name, else the
// resource's name.
func workloadName(cpa *cpav1.CustomPodAutoscaler, tpl *template) string {
	if tpl.meta.Name != "" {
		return tpl.meta.Name
	}
	return cpa.Name
}

// desiredDeployment is the autoscaler's workload: one replica (none while paused) of the
// template, recreated rather than rolled so that two autoscalers never run at once. Every
// container gets scaleTargetRef and namespace in its environment, then each config entry.
// It is unstructured so that template fields this operator does not know pass through.
func desiredDeployment(cpa *cpav1.CustomPodAutoscaler, tpl *template, paused bool) (*unstructured.Unstructured, error) {
	ref, err := json.Marshal(cpa.Spec.ScaleTargetRef)
	if err != nil {
		return nil, err
	}
	// CPA_NAME lets the runtime write its part of the resource's status.
	env := []any{
		map[string]any{"name": "scaleTargetRef", "value": string(ref)},
		map[string]any{"name": "namespace", "value": cpa.Namespace},
		map[string]any{"name": "CPA_NAME", "value": cpa.Name},
	}
	for _, c := range cpa.Spec.Config {
		env = append(env, map[string]any{"name": c.Name, "value": c.Value})
	}
	spec := runtime.DeepCopyJSON(tpl.spec) // the decoded template is never changed in place
	containers, _ := spec["containers"].([]any)
	for i, c := range containers {
		m, ok := c.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("spec.template.spec.containers[%d]: not an object", i)
		}
		own, _ := m["env"].([]any)
		m["env"] = append(append([]any{}, own...), env...)
	}
	spec["serviceAccountName"] = serviceAccountName(cpa, tpl)

	podMeta := map[string]any{"labels": toAny(withLabels(tpl.meta.Labels, ownLabels(cpa)))}
	if len(tpl.meta.Annotations) > 0 {
		podMeta["annotations"] = toAny(tpl.meta.Annotations)
	}
	podTemplate := map[string]any{"metadata": podMeta, "spec": spec}
	raw, err := json.Marshal(podTemplate) // maps marshal in key order: a stable hash
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	replicas := int64(1)
	if paused {
		replicas = 0
	}
	d := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata": map[string]any{
			"name":        workloadName(cpa, tpl),
			"namespace":   cpa.Namespace,
			"labels":      toAny(ownLabels(cpa)),
			"annotations": map[string]any{TemplateHashAnnotation: hex.EncodeToString(sum[:8])},
		},
		"spec": map[string]any{
			"replicas":             replicas,
			"selector":             map[string]any{"matchLabels": toAny(ownLabels(cpa))},
			"strategy":             map[string]any{"type": "Recreate"},
			"revisionHistoryLimit": int64(2),
			"template":             podTemplate,
		},
	}}
	return d, nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
