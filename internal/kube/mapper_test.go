package kube

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	kubetesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestRefreshingMapperReReadsAtMostOncePerInterval(t *testing.T) {
	d := &fakediscovery.FakeDiscovery{Fake: &kubetesting.Fake{}}
	d.Resources = []*metav1.APIResourceList{{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
		{Name: "deployments", Kind: "Deployment", Namespaced: true},
	}}}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC))
	m := NewRefreshingMapper(d, clk, 30*time.Second)

	if _, err := m.RESTMapping(schema.GroupKind{Group: "apps", Kind: "Deployment"}); err != nil {
		t.Fatalf("Deployment: %v", err)
	}
	// A CRD appears.
	d.Resources = append(d.Resources, &metav1.APIResourceList{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
		{Name: "widgets", Kind: "Widget", Namespaced: true},
	}})
	widget := schema.GroupKind{Group: "example.com", Kind: "Widget"}
	calls := len(d.Actions())
	if _, err := m.RESTMapping(widget); err == nil {
		t.Fatal("a kind found without re-reading discovery: the test is wrong")
	}
	if len(d.Actions()) != calls {
		t.Errorf("a miss within 30 s of the last read re-read discovery")
	}
	clk.Step(31 * time.Second)
	mapping, err := m.RESTMapping(widget)
	if err != nil {
		t.Fatalf("Widget after 31 s: %v", err)
	}
	if len(d.Actions()) == calls {
		t.Error("discovery was not re-read after the interval (or the fake records no reads)")
	}
	if mapping.Resource.Resource != "widgets" {
		t.Errorf("resource = %v", mapping.Resource)
	}
}
