//go:build tools

// Package tools pins the metrics-server the local cluster serves metrics.k8s.io with.
package tools

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
