package v1

import (
	"os"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// lastAppliedLimit is the size limit of all annotations of an object: a plain kubectl
// apply stores the whole CRD in one. The original's 525 KB CRD broke that apply.
const lastAppliedLimit = 256 << 10

func TestGeneratedCRD(t *testing.T) {
	path := filepath.Join("..", "..", "..", "deploy", "crd", "custompodautoscaler.com_custompodautoscalers.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > lastAppliedLimit/4 {
		t.Errorf("%s is %d bytes; keep it well under the %d-byte annotation limit of kubectl apply", path, len(raw), lastAppliedLimit)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		t.Fatal(err)
	}
	n := crd.Spec.Names
	if crd.Spec.Group != GroupVersion.Group || n.Kind != "CustomPodAutoscaler" || n.Plural != "custompodautoscalers" ||
		len(n.ShortNames) != 1 || n.ShortNames[0] != "cpa" || crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
		t.Errorf("names/scope = %s %+v %s", crd.Spec.Group, n, crd.Spec.Scope)
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("%d versions, want 1", len(crd.Spec.Versions))
	}
	v := crd.Spec.Versions[0]
	if v.Name != GroupVersion.Version || !v.Served || !v.Storage || v.Subresources == nil || v.Subresources.Status == nil {
		t.Errorf("version %s served=%t storage=%t subresources=%+v", v.Name, v.Served, v.Storage, v.Subresources)
	}
	spec := v.Schema.OpenAPIV3Schema.Properties["spec"]
	for _, f := range []string{"provisionRole", "provisionRoleBinding", "provisionServiceAccount", "provisionPod"} {
		if d := spec.Properties[f].Default; d == nil || string(d.Raw) != "true" {
			t.Errorf("spec.%s default = %v, want true", f, d)
		}
	}
	tmpl := spec.Properties["template"]
	for _, f := range []string{"metadata", "spec"} {
		if p := tmpl.Properties[f]; p.XPreserveUnknownFields == nil || !*p.XPreserveUnknownFields {
			t.Errorf("template.%s is pruned: the pod template must be kept as given", f)
		}
	}
}
