package kubemetrics

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	metricsclientset "k8s.io/metrics/pkg/client/clientset/versioned"
	customclient "k8s.io/metrics/pkg/client/custom_metrics"
	externalclient "k8s.io/metrics/pkg/client/external_metrics"
)

// requestTimeout bounds each metrics API request: the custom and external metrics
// clients take no context, so the transport's timeout is their only bound.
const requestTimeout = 30 * time.Second

// rediscoverEvery is how often the custom metrics API's preferred version is looked up
// again, so an adapter installed or upgraded later is found.
const rediscoverEvery = 10 * time.Minute

// NewClients returns clients of the three metrics APIs. The custom metrics client finds
// the API's version through discovery, again every few minutes until ctx is done.
func NewClients(ctx context.Context, cfg *rest.Config, disco discovery.DiscoveryInterface, mapper meta.RESTMapper) (Clients, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.Timeout == 0 || cfg.Timeout > requestTimeout {
		cfg.Timeout = requestTimeout
	}
	rm, err := metricsclientset.NewForConfig(cfg)
	if err != nil {
		return Clients{}, err
	}
	ext, err := externalclient.NewForConfig(cfg)
	if err != nil {
		return Clients{}, err
	}
	apis := customclient.NewAvailableAPIsGetter(disco)
	go customclient.PeriodicallyInvalidate(apis, rediscoverEvery, ctx.Done())
	return Clients{
		Resource: rm.MetricsV1beta1(),
		Custom:   customclient.NewForConfig(cfg, mapper, apis),
		External: ext,
	}, nil
}
