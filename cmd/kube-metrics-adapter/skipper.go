package main

import (
	"fmt"

	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/collector"
	collkube "github.com/custompodautoscaler/cpa/internal/collector/kube"
	promcollector "github.com/custompodautoscaler/cpa/internal/collector/prometheus"
	"github.com/custompodautoscaler/cpa/internal/collector/skipper"
)

// registerSkipper registers the skipper collector when the flags enable it; it queries
// --prometheus-server (validate made sure it is set).
func registerSkipper(o *options, reg *collector.Registry, objects *collkube.Objects, scales *collkube.Scales, clk clock.PassiveClock) error {
	if !o.skipperIngress && !o.skipperRouteGroup {
		return nil
	}
	server, err := promcollector.NewServer(o.servers.Default, promcollector.ServerOptions{Clock: clk})
	if err != nil {
		return fmt.Errorf("the skipper collector's Prometheus: %w", err)
	}
	reg.Register(collector.Object, skipper.Type, skipper.Factory(skipper.Options{
		Prometheus:         server,
		Objects:            objects,
		Replicas:           scales,
		BackendAnnotations: o.skipperBackendsAnnotations,
		Clock:              clk,
	}), skipper.Keys...)
	return nil
}
