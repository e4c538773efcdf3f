package podjson

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	clocktesting "k8s.io/utils/clock/testing"
)

type staticPods []corev1.Pod

func (s staticPods) List(context.Context, string, labels.Selector) ([]corev1.Pod, error) {
	return s, nil
}

// BenchmarkCollect50Pods is one collection of 50 pods answering a small JSON document
// over kept-alive connections to one httptest server.
func BenchmarkCollect50Pods(b *testing.B) {
	answers := map[string]string{}
	var pl []corev1.Pod
	for i := range 50 {
		ip := fmt.Sprintf("10.0.0.%d", i+1)
		answers[ip] = `{"http_server": {"rps": 0.5, "latency_ms": [12, 15, 9]}, "build": "v1.2.3"}`
		pl = append(pl, mkpod(fmt.Sprintf("web-%02d", i), ip))
	}
	p := newPods(b, byHost(b, answers))
	cl := &cluster{selector: "app=web"}
	o := options(cl, p, clocktesting.NewFakeClock(now))
	o.Pods = staticPods(pl) // the fake cluster's copies would dominate the figures
	c := newCollector(b, config(map[string]string{"json-key": "$.http_server.rps"}), o)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		vals, err := c.Collect(ctx)
		if err != nil || len(vals) != 50 {
			b.Fatalf("Collect = %d values, %v", len(vals), err)
		}
	}
}
