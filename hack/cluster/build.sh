#!/usr/bin/env bash
# Builds the local cluster's binaries from the pinned tools modules and caches them by
# version outside the work tree. Later runs find them in the cache and return at once.
# Prometheus is the exception: it is installed from the Debian package if missing.
#
#   hack/cluster/build.sh            build what is missing, print the bin directory
#
# Cache location: $CPA_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/custom-pod-autoscaler).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${CPA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/custom-pod-autoscaler}"
bin="$cache/bin"
mkdir -p "$bin"

log() { printf '[cluster-build] %s\n' "$*" >&2; }

# One build at a time per cache (parallel test packages may all call this on a fresh machine).
# The descriptor is closed for the go commands, so nothing they leave behind keeps the lock.
exec 8>"$bin/.lock"
if ! flock -n 8; then
	log "waiting for another build.sh to finish (lock $bin/.lock)"
	flock 8
fi

# build <tools-dir> <package> <output-name> [ldflags]
build() {
	local dir="$1" pkg="$2" out="$3" ldflags="${4:-}"
	if [[ -x "$bin/$out" ]]; then
		return 0
	fi
	log "building $out from $pkg (first time only; cached in $bin) ..."
	local start=$SECONDS
	(cd "$here/tools/$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$out.tmp" "$pkg") 8>&-
	mv "$bin/$out.tmp" "$bin/$out"
	log "built $out in $((SECONDS - start))s"
}

minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
kv="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

build etcd go.etcd.io/etcd/server/v3 "etcd-$ETCD_VERSION"
build kwok sigs.k8s.io/kwok/cmd/kwok "kwok-$KWOK_VERSION" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
build metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server "metrics-server-$METRICS_SERVER_VERSION"
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
	build kubernetes "k8s.io/kubernetes/cmd/$c" "$c-$KUBE_VERSION" "$kv"
done

# Prometheus comes from the Debian package (/usr/bin/prometheus, 2.x; about 10 s with the
# package lists), not from the Go module: it is installed once per machine, not cached here.
# Without root (and no password-less sudo) it cannot be installed: under CI=true that fails
# the build, since the e2e tests need it; elsewhere the cluster runs without Prometheus.
ensure_prometheus() {
	local prom="${CPA_PROMETHEUS_BIN:-/usr/bin/prometheus}"
	[[ -x $prom ]] && return 0
	local sudo=()
	if ((EUID != 0)); then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			sudo=(sudo -n)
		elif [[ ${CI:-} == true ]]; then
			log "ERROR: Prometheus is missing ($prom) and this user ($(id -un)) cannot install it: not root, no password-less sudo."
			log "       Install the Debian package as root: apt-get update && apt-get install -y prometheus"
			exit 1
		else
			log "WARNING: Prometheus is missing ($prom) and this user cannot install it (not root);"
			log "         the cluster starts without it and the tests that need it skip."
			log "         To add it: sudo apt-get update && sudo apt-get install -y prometheus"
			return 0
		fi
	fi
	if ! command -v apt-get >/dev/null; then
		if [[ ${CI:-} == true ]]; then
			log "ERROR: Prometheus is missing ($prom) and there is no apt-get to install it with"
			exit 1
		fi
		log "WARNING: Prometheus is missing ($prom) and there is no apt-get; the cluster starts without it"
		return 0
	fi
	log "installing Prometheus from the Debian package (apt-get update, apt-get install prometheus; once per machine) ..."
	local start=$SECONDS
	# Its maintainer scripts try to start a service; no init system runs one here, and the
	# cluster starts its own Prometheus anyway.
	if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >&2 8>&-; then
		log "ERROR: could not install the Debian package prometheus (output above)"
		exit 1
	fi
	[[ -x $prom ]] || { log "ERROR: the package prometheus installed, but $prom is not there"; exit 1; }
	log "installed $("$prom" --version 2>&1 | head -n1) in $((SECONDS - start))s"
}
ensure_prometheus
echo "$bin"
