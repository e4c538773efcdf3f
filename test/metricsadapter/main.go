// Command metricsadapter is a custom and external metrics API server for end-to-end tests,
// built on sigs.k8s.io/custom-metrics-apiserver: a real aggregated API server whose values
// come from a JSON file the test writes, read again on every request.
//
//	metricsadapter --values FILE --secure-port N --tls-cert-file ... [adapter flags]
//
// The file:
//
//	{"custom": [{"resource": "pods", "namespace": "ns", "name": "web-1", "metric": "rps", "value": "10"}],
//	 "external": [{"namespace": "ns", "metric": "queue", "labels": {"queue": "jobs"}, "value": "30"}]}
//
// resource is the described object's resource as the API names it ("pods", "services",
// "deployments.apps", "namespaces" for root-scoped values, with an empty namespace).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider/helpers"
)

// values is the file's content.
type values struct {
	Custom   []customValue   `json:"custom"`
	External []externalValue `json:"external"`
}

type customValue struct {
	Resource  string `json:"resource"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Metric    string `json:"metric"`
	Value     string `json:"value"`
	// WindowSeconds is reported as the value's window when set.
	WindowSeconds *int64 `json:"windowSeconds"`
}

type externalValue struct {
	Namespace string            `json:"namespace"`
	Metric    string            `json:"metric"`
	Labels    map[string]string `json:"labels"`
	Value     string            `json:"value"`
}

// fileProvider serves the values of one file.
type fileProvider struct {
	path    string
	mapper  meta.RESTMapper
	dynamic dynamic.Interface

	mu sync.Mutex
}

func (p *fileProvider) read() (*values, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	raw, err := os.ReadFile(p.path)
	if os.IsNotExist(err) {
		return &values{}, nil
	}
	if err != nil {
		return nil, err
	}
	var v values
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", p.path, err)
	}
	return &v, nil
}

func quantity(s string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return q, apierrors.NewInternalError(fmt.Errorf("value %q: %w", s, err))
	}
	return q, nil
}

func (p *fileProvider) find(info provider.CustomMetricInfo, namespace, name string) (*customValue, error) {
	v, err := p.read()
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	for i := range v.Custom {
		c := &v.Custom[i]
		if c.Resource == info.GroupResource.String() && c.Namespace == namespace && c.Name == name && c.Metric == info.Metric {
			return c, nil
		}
	}
	return nil, nil
}

func (p *fileProvider) metricValue(info provider.CustomMetricInfo, name types.NamespacedName, c *customValue, sel labels.Selector) (*custom_metrics.MetricValue, error) {
	ref, err := helpers.ReferenceFor(p.mapper, name, info)
	if err != nil {
		return nil, err
	}
	q, err := quantity(c.Value)
	if err != nil {
		return nil, err
	}
	mv := &custom_metrics.MetricValue{
		DescribedObject: ref,
		Metric:          custom_metrics.MetricIdentifier{Name: info.Metric},
		Timestamp:       metav1.Now(),
		WindowSeconds:   c.WindowSeconds,
		Value:           q,
	}
	if !sel.Empty() {
		ls, err := metav1.ParseToLabelSelector(sel.String())
		if err != nil {
			return nil, err
		}
		mv.Metric.Selector = ls
	}
	return mv, nil
}

func (p *fileProvider) GetMetricByName(_ context.Context, name types.NamespacedName, info provider.CustomMetricInfo, sel labels.Selector) (*custom_metrics.MetricValue, error) {
	c, err := p.find(info, name.Namespace, name.Name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, provider.NewMetricNotFoundForError(info.GroupResource, info.Metric, name.Name)
	}
	return p.metricValue(info, name, c, sel)
}

func (p *fileProvider) GetMetricBySelector(_ context.Context, namespace string, selector labels.Selector, info provider.CustomMetricInfo, sel labels.Selector) (*custom_metrics.MetricValueList, error) {
	names, err := helpers.ListObjectNames(p.mapper, p.dynamic, namespace, selector, info)
	if err != nil {
		return nil, err
	}
	list := &custom_metrics.MetricValueList{}
	for _, name := range names {
		c, err := p.find(info, namespace, name)
		if err != nil {
			return nil, err
		}
		if c == nil {
			continue
		}
		mv, err := p.metricValue(info, types.NamespacedName{Namespace: namespace, Name: name}, c, sel)
		if err != nil {
			return nil, err
		}
		list.Items = append(list.Items, *mv)
	}
	return list, nil
}

func (p *fileProvider) ListAllMetrics() []provider.CustomMetricInfo {
	v, err := p.read()
	if err != nil {
		klog.ErrorS(err, "reading values")
		return nil
	}
	seen := map[provider.CustomMetricInfo]bool{}
	var out []provider.CustomMetricInfo
	for _, c := range v.Custom {
		info := provider.CustomMetricInfo{GroupResource: schema.ParseGroupResource(c.Resource), Namespaced: c.Namespace != "", Metric: c.Metric}
		if !seen[info] {
			seen[info] = true
			out = append(out, info)
		}
	}
	return out
}

func (p *fileProvider) GetExternalMetric(_ context.Context, namespace string, sel labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	v, err := p.read()
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	list := &external_metrics.ExternalMetricValueList{}
	for _, e := range v.External {
		if e.Namespace != namespace || e.Metric != info.Metric || !sel.Matches(labels.Set(e.Labels)) {
			continue
		}
		q, err := quantity(e.Value)
		if err != nil {
			return nil, err
		}
		list.Items = append(list.Items, external_metrics.ExternalMetricValue{
			MetricName: e.Metric, MetricLabels: e.Labels, Timestamp: metav1.Now(), Value: q,
		})
	}
	return list, nil
}

func (p *fileProvider) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	v, err := p.read()
	if err != nil {
		klog.ErrorS(err, "reading values")
		return nil
	}
	seen := map[string]bool{}
	var out []provider.ExternalMetricInfo
	for _, e := range v.External {
		if !seen[e.Metric] {
			seen[e.Metric] = true
			out = append(out, provider.ExternalMetricInfo{Metric: e.Metric})
		}
	}
	return out
}

func main() {
	logs.InitLogs()
	defer logs.FlushLogs()

	cmd := &basecmd.AdapterBase{Name: "cpa-test-metrics-adapter", DiscoveryInterval: 10 * time.Second}
	var path string
	cmd.Flags().StringVar(&path, "values", "", "JSON file of the metric values to serve (read on every request)")
	logs.AddFlags(cmd.Flags())
	if err := cmd.Flags().Parse(os.Args); err != nil {
		klog.Fatalf("parsing flags: %v", err)
	}
	if path == "" {
		klog.Fatal("--values is required")
	}
	mapper, err := cmd.RESTMapper()
	if err != nil {
		klog.Fatalf("REST mapper: %v", err)
	}
	dc, err := cmd.DynamicClient()
	if err != nil {
		klog.Fatalf("dynamic client: %v", err)
	}
	p := &fileProvider{path: path, mapper: mapper, dynamic: dc}
	cmd.WithCustomMetrics(p)
	cmd.WithExternalMetrics(p)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := cmd.Run(ctx); err != nil {
		klog.Fatalf("running the adapter: %v", err)
	}
}
