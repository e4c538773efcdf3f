#!/usr/bin/env bash
# Regenerates hack/cluster/kwok.yaml from the Stage, Metric and ResourceUsage definitions that
# ship inside the pinned kwok module (tools/kwok/go.mod). Run it after changing KWOK_VERSION.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
dir="$(cd "$here/tools/kwok" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
files=(
	stage/node/fast/node-initialize.yaml
	stage/node/heartbeat/node-heartbeat.yaml
	stage/pod/fast/pod-ready.yaml
	stage/pod/fast/pod-complete.yaml
	stage/pod/fast/pod-delete.yaml
	metrics/resource/metrics-resource.yaml
	metrics/usage/usage-from-annotation.yaml
)
{
	cat <<EOF
# kwok configuration for the local cluster (hack/cluster/cluster.sh passes it with --config).
#
# Copied unchanged from sigs.k8s.io/kwok $KWOK_VERSION (KWOK_VERSION in versions.env), directory kustomize/:
#   stage/node/fast/node-initialize.yaml        fake nodes become Ready
#   stage/node/heartbeat/node-heartbeat.yaml    and keep their conditions fresh
#   stage/pod/fast/pod-ready.yaml               pods become Running/Ready with an IP from --cidr
#   stage/pod/fast/pod-complete.yaml            pods owned by Jobs complete
#   stage/pod/fast/pod-delete.yaml              deleted pods go away
#   metrics/resource/metrics-resource.yaml      kubelet-style /metrics/resource (for metrics-server)
#   metrics/usage/usage-from-annotation.yaml    usage from pod annotations kwok.x-k8s.io/usage-{cpu,memory}
# To refresh after a kwok upgrade, run hack/cluster/gen-kwok-config.sh.
EOF
	for f in "${files[@]}"; do
		printf -- '---\n# kustomize/%s\n' "$f"
		cat "$dir/kustomize/$f"
	done
} >"$here/kwok.yaml.tmp"
mv "$here/kwok.yaml.tmp" "$here/kwok.yaml"
echo "wrote $here/kwok.yaml" >&2
