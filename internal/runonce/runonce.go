// Package runonce lets script authors run an autoscaler's pipeline once with no cluster:
// the target (and its pods) come from files, every stage and hook call is printed with
// its input and output, and the decision is reported but never applied.
package runonce

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/custompodautoscaler/cpa/internal/target"
)

// maxFileBytes bounds the target and pods files.
const maxFileBytes = 64 << 20

// FileTarget is a scale target read from files. SetReplicas only records the request.
type FileTarget struct {
	snap *target.Snapshot
	pods []*corev1.Pod

	mu        sync.Mutex
	requested *int32
}

// LoadTarget reads the target object from targetPath and, if podsPath is not empty, its
// pods (a List, several YAML documents, or one Pod). The current replica count is the
// object's spec.replicas (1 when absent, as the API server defaults it) and the pod
// selector its spec.selector.
func LoadTarget(targetPath, podsPath string) (*FileTarget, error) {
	docs, err := readObjects(targetPath)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("%s: want exactly one object (the scale target), found %d", targetPath, len(docs))
	}
	obj := &unstructured.Unstructured{Object: docs[0]}
	if obj.GetKind() == "" || obj.GetName() == "" {
		return nil, fmt.Errorf("%s: the target needs kind and metadata.name", targetPath)
	}
	replicas := int64(1)
	if v, found, err := unstructured.NestedFieldNoCopy(obj.Object, "spec", "replicas"); err == nil && found {
		var n int64
		ok := false
		switch x := v.(type) {
		case int64:
			n, ok = x, true
		case float64: // JSON numbers decode as float64
			n, ok = int64(x), x == float64(int64(x))
		}
		if !ok || n < 0 || n > 1<<31-1 {
			return nil, fmt.Errorf("%s: spec.replicas = %v is not a replica count", targetPath, v)
		}
		replicas = n
	}
	selector := ""
	if raw, found, _ := unstructured.NestedMap(obj.Object, "spec", "selector"); found {
		var ls metav1.LabelSelector
		if err := remarshal(raw, &ls); err != nil {
			return nil, fmt.Errorf("%s: spec.selector: %w", targetPath, err)
		}
		sel, err := metav1.LabelSelectorAsSelector(&ls)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.selector: %w", targetPath, err)
		}
		selector = sel.String()
	}
	t := &FileTarget{snap: &target.Snapshot{Object: obj, Replicas: int32(replicas), Selector: selector}}
	if podsPath != "" {
		docs, err := readObjects(podsPath)
		if err != nil {
			return nil, err
		}
		for i, d := range docs {
			p := &corev1.Pod{}
			if err := remarshal(d, p); err != nil {
				return nil, fmt.Errorf("%s: object %d is not a Pod: %w", podsPath, i+1, err)
			}
			if p.Kind != "" && p.Kind != "Pod" {
				return nil, fmt.Errorf("%s: object %d is a %s, want Pod", podsPath, i+1, p.Kind)
			}
			t.pods = append(t.pods, p)
		}
	}
	return t, nil
}

// Snapshot returns the target read from the file.
func (t *FileTarget) Snapshot(context.Context) (*target.Snapshot, error) { return t.snap, nil }

// Pods returns the pods read from the file that are neither terminating nor finished,
// sorted by name. The selector is not applied: the file holds the pods to use.
func (t *FileTarget) Pods(context.Context, string) ([]*corev1.Pod, error) {
	return target.Active(t.pods), nil
}

// SetReplicas records the replica count the autoscaler would apply.
func (t *FileTarget) SetReplicas(_ context.Context, n int32) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requested = &n
	return nil
}

// Requested returns the replica count the autoscaler asked for, if it asked.
func (t *FileTarget) Requested() (int32, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.requested == nil {
		return 0, false
	}
	return *t.requested, true
}

// Printer prints stage and hook calls for a person to read. It is safe for concurrent use.
type Printer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewPrinter returns a Printer writing to w.
func NewPrinter(w io.Writer) *Printer { return &Printer{w: w} }

// Trace prints one call; it has the signature of autoscaler.TraceFunc.
func (p *Printer) Trace(step string, input, output []byte, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "=== %s\n--- input:\n%s\n", step, indent(input))
	if err != nil {
		fmt.Fprintf(p.w, "--- error:\n%v\n", err)
	}
	if len(output) > 0 || err == nil {
		fmt.Fprintf(p.w, "--- output:\n%s\n", indent(output))
	}
	fmt.Fprintln(p.w)
}

func indent(b []byte) string {
	var out bytes.Buffer
	if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
		return strings.TrimRight(out.String(), "\n")
	}
	return strings.TrimRight(string(b), "\n")
}

func readObjects(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(io.LimitReader(f, maxFileBytes), 4096)
	var out []map[string]any
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if err == io.EOF {
				break
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if doc == nil {
			continue
		}
		if items, ok := doc["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(doc["kind"]), "List") {
			for i, it := range items {
				m, ok := it.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%s: items[%d] is not an object", path, i)
				}
				out = append(out, m)
			}
			continue
		}
		out = append(out, doc)
	}
	return out, nil
}

func remarshal(in any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// Name is the target's kind and name, for messages.
func (t *FileTarget) Name() string {
	return t.snap.Object.GetKind() + " " + t.snap.Object.GetName()
}
