package podjson

import "github.com/custompodautoscaler/cpa/internal/collector/kube"

// The client-go readers of package kube are what the wiring passes in Options.
var (
	_ Selectors = (*kube.Scales)(nil)
	_ PodLister = (*kube.Pods)(nil)
)
