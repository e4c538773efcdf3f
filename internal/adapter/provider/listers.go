package provider

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
)

// PodNames is an ObjectLister over a pod informer's lister (it ignores the resource:
// use it as Options.Pods). Answering from the informer's cache keeps the HPA's queries,
// one per Pods metric per HPA per sync, off the API server.
func PodNames(l corelisters.PodLister) ObjectLister {
	return ObjectListerFunc(func(_ context.Context, _ schema.GroupResource, namespace string, selector labels.Selector) ([]string, error) {
		pods, err := l.Pods(namespace).List(selector)
		if err != nil {
			return nil, err
		}
		names := make([]string, len(pods))
		for i, p := range pods {
			names[i] = p.Name
		}
		return names, nil
	})
}

// MetadataNames is an ObjectLister that lists the objects' metadata from the API server
// on each call, for the rare selector request about a resource other than pods (the HPA
// asks for Object metrics by name). mapper maps the request's resource to a version.
func MetadataNames(mapper meta.RESTMapper, client metadata.Interface) ObjectLister {
	return ObjectListerFunc(func(ctx context.Context, gr schema.GroupResource, namespace string, selector labels.Selector) ([]string, error) {
		gvrs, err := mapper.ResourcesFor(gr.WithVersion(""))
		if err != nil {
			return nil, err
		}
		if len(gvrs) == 0 {
			return nil, fmt.Errorf("no version of %s is known", gr)
		}
		var ri metadata.ResourceInterface = client.Resource(gvrs[0])
		if namespace != "" {
			ri = client.Resource(gvrs[0]).Namespace(namespace)
		}
		list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
		if err != nil {
			return nil, err
		}
		names := make([]string, len(list.Items))
		for i := range list.Items {
			names[i] = list.Items[i].Name
		}
		return names, nil
	})
}
