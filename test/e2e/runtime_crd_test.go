//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// createScalableCRD creates a namespaced CRD of kind Widget in a group unique to this
// test (<random>.e2e.cpa.test), version v1, with spec.replicas, status.replicas and a
// scale subresource; it waits until the CRD is established and served, and deletes it
// when the test ends. It returns the GroupVersionResource of the widgets.
func createScalableCRD(t *testing.T, e *testEnv) schema.GroupVersionResource {
	t.Helper()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	group := "g" + hex.EncodeToString(suffix) + ".e2e.cpa.test"
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
	name := "widgets." + group
	replicasSchema := map[string]any{"type": "object", "properties": map[string]any{"replicas": map[string]any{"type": "integer", "format": "int32"}}}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"group": group,
			"scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type":       "object",
					"properties": map[string]any{"spec": replicasSchema, "status": replicasSchema},
				}},
				"subresources": map[string]any{
					"status": map[string]any{},
					"scale":  map[string]any{"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"},
				},
			}},
		},
	}}
	crds := e.c.Dynamic.Resource(crdGVR)
	if _, err := crds.Create(e.ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating CRD %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := crds.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting CRD %s: %v", name, err)
		}
	})
	framework.EventuallyCtx(e.ctx, t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		u, err := crds.Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if jstr(c, "type") == "Established" && jstr(c, "status") == "True" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("CRD %s not established: conditions %v", name, conds)
	})
	// Discovery (what the runtime's REST mapper reads) lags a little behind Established.
	framework.EventuallyCtx(e.ctx, t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		rl, err := e.c.Client.Discovery().ServerResourcesForGroupVersion(group + "/v1")
		if err != nil {
			return false, fmt.Sprintf("discovery of %s/v1: %v", group, err)
		}
		for _, r := range rl.APIResources {
			if r.Name == "widgets/scale" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("discovery of %s/v1 lists no widgets/scale: %v", group, rl.APIResources)
	})
	return gvr
}

// A custom resource with a scale subresource (a CRD made by the test) is a target too:
// per-resource mode gets the Widget and its spec.replicas goes to the evaluated 4.
func TestRuntimeCustomResource(t *testing.T) {
	t.Parallel()
	requirePython3(t)
	e := newTestEnv(t, 2*time.Minute)
	gvr := createScalableCRD(t, e)
	apiVersion := gvr.GroupVersion().String()
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       "Widget",
		"metadata":   map[string]any{"name": "gadget", "labels": map[string]any{"want": "4"}},
		"spec":       map[string]any{"replicas": int64(1)},
	}}
	if _, err := e.c.Dynamic.Resource(gvr).Namespace(e.ns).Create(e.ctx, w, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the Widget: %v", err)
	}
	get := customReplicas(gvr, e.ns, "gadget")

	r := newRecorder(t)
	// The metric is the Widget's "want" label, as in the guide.
	metric := r.script("metric", `exec python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["resource"]["metadata"]["labels"]["want"])' <"$in"`)
	evaluate := r.script("evaluate", `exec python3 -c 'import json,sys; print(json.dumps({"targetReplicas": int(json.load(sys.stdin)["metrics"][0]["value"])}))' <"$in"`)
	p := startCPA(t, cpaSpec{Namespace: e.ns, Target: targetRef{APIVersion: apiVersion, Kind: "Widget", Name: "gadget"}, Config: jsonConfig(t, map[string]any{
		"runMode":  "per-resource",
		"interval": 500,
		"metric":   shellMethod(metric, 0),
		"evaluate": shellMethod(evaluate, 0),
	})})
	p.waitReplicas(e.ctx, 20*time.Second, get, 4)
	scaled := p.waitMsg(5*time.Second, 1, "scaled")[0]
	if scaled.num("current") != 1 || scaled.num("replicas") != 4 || scaled.str("target") != "Widget/"+e.ns+"/gadget" {
		t.Errorf("scaling log line %v: want target Widget/%s/gadget, current 1, replicas 4", scaled, e.ns)
	}
	// The /scale subresource agrees, and the next cycles see 4 and leave it.
	sc, err := e.c.Dynamic.Resource(gvr).Namespace(e.ns).Get(e.ctx, "gadget", metav1.GetOptions{}, "scale")
	if err != nil {
		t.Fatalf("reading the Widget's /scale: %v", err)
	}
	if n, _, _ := unstructured.NestedInt64(sc.Object, "spec", "replicas"); n != 4 {
		t.Errorf("the Widget's /scale says spec.replicas %d, want 4", n)
	}
	p.waitLog(10*time.Second, 1, "no change at 4", func(l logEntry) bool { return l.str("msg") == "no change" && l.num("current") == 4 })

	in := r.calls("metric")[0].JSON
	if jstr(in, "resource", "apiVersion") != apiVersion || jstr(in, "resource", "kind") != "Widget" ||
		jstr(in, "resource", "metadata", "name") != "gadget" || jnum(in, "resource", "spec", "replicas") != 1 || jstr(in, "runType") != "scaler" {
		t.Errorf("first metric input %.400s: want the Widget gadget (%s) with spec.replicas 1, runType scaler", r.calls("metric")[0].Raw, apiVersion)
	}
	if errs := p.logsWithMsg("cycle failed; target not scaled"); len(errs) > 0 {
		t.Errorf("%d cycles failed, the first: %v", len(errs), errs[0])
	}
}
