#!/usr/bin/env bash
# The getting-started guide (cpa-getting-started), for real, on the local cluster:
# the hello-kubernetes Deployment (1 replica, label numPods: "3"), the guide's Python
# metric and evaluate scripts and its config.yaml, and the runtime started as the
# operator would start it (scaleTargetRef, namespace and interval=10000 in its
# environment). The replicas go 1 -> 3, then follow the label as it changes.
#
# Runs non-interactively; cleans up what it created, and stops the cluster if it started it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
example="$repo/examples/python-custom-autoscaler"
ns=cpa-demo
deploy=hello-kubernetes
timeout_s=${DEMO_TIMEOUT:-90}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
fail() { printf '\n\033[31mdemo failed: %s\033[0m\n' "$*" >&2; exit 1; }

work="$(mktemp -d)"
cpa_pid=""
tail_pid=""
started_cluster=""
cleanup() {
	local rc=$?
	step "Cleaning up"
	if [[ -n "$cpa_pid" ]] && kill -0 "$cpa_pid" 2>/dev/null; then
		info "stopping the autoscaler (SIGTERM)"
		kill -TERM "$cpa_pid" 2>/dev/null || true
		wait "$cpa_pid" 2>/dev/null || true
	fi
	[[ -n "$tail_pid" ]] && kill "$tail_pid" 2>/dev/null || true
	if [[ $rc -ne 0 && -f "$work/autoscaler.log" ]]; then
		echo "--- autoscaler log (last 30 lines) ---" >&2
		tail -n 30 "$work/autoscaler.log" >&2 || true
	fi
	if command -v kubectl >/dev/null 2>&1 && [[ -n "${KUBECONFIG:-}" ]]; then
		info "deleting namespace $ns"
		kubectl delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
	fi
	if [[ -n "$started_cluster" ]]; then
		info "stopping the local cluster (the demo started it)"
		"$repo/hack/cluster/cluster.sh" down >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT

step "Starting the local Kubernetes cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok)"
if ! "$repo/hack/cluster/cluster.sh" status >/dev/null 2>&1; then
	started_cluster=1
	info "not running yet; the first run on a fresh machine builds the cluster binaries (several minutes)"
fi
"$repo/hack/cluster/cluster.sh" up
eval "$("$repo/hack/cluster/cluster.sh" env)"
kubectl version 2>/dev/null | sed 's/^/    /'

step "Building the custom-pod-autoscaler runtime"
(cd "$repo" && go build -o "$work/custom-pod-autoscaler" ./cmd/custom-pod-autoscaler)
info "built $work/custom-pod-autoscaler"

# The guide's config runs "python"; Debian ships only python3.
if ! command -v python >/dev/null 2>&1; then
	command -v python3 >/dev/null 2>&1 || fail "the guide's scripts need python (or python3)"
	mkdir -p "$work/bin" && ln -s "$(command -v python3)" "$work/bin/python"
	export PATH="$work/bin:$PATH"
	info "no 'python' on PATH: using $(command -v python3) for it"
fi

step "Creating the managed Deployment (examples/python-custom-autoscaler/deployment.yaml)"
kubectl create namespace "$ns" >/dev/null
kubectl apply -n "$ns" -f "$example/deployment.yaml"
kubectl rollout status -n "$ns" "deployment/$deploy" --timeout=60s | sed 's/^/    /'
kubectl get deployment -n "$ns" "$deploy" --show-labels | sed 's/^/    /'

step "Starting the autoscaler with the guide's config.yaml, metric.py and evaluate.py"
# The guide's image puts the scripts at /; here they stay in the example directory.
sed -e "s#\"/metric.py\"#\"$example/metric.py\"#" -e "s#\"/evaluate.py\"#\"$example/evaluate.py\"#" \
	"$example/config.yaml" >"$work/config.yaml"
sed 's/^/    | /' "$work/config.yaml"
info "environment, as the operator sets it from cpa.yaml: scaleTargetRef, namespace=$ns, interval=10000"
env configPath="$work/config.yaml" \
	scaleTargetRef="{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"$deploy\"}" \
	namespace="$ns" interval=10000 \
	"$work/custom-pod-autoscaler" >"$work/autoscaler.log" 2>&1 &
cpa_pid=$!
tail -n +1 -f "$work/autoscaler.log" 2>/dev/null | sed -u 's/^/    [autoscaler] /' &
tail_pid=$!

# wait_replicas N: wait until the Deployment wants N replicas and has N ready pods.
wait_replicas() {
	local want=$1 deadline=$((SECONDS + timeout_s)) spec ready
	while ((SECONDS < deadline)); do
		kill -0 "$cpa_pid" 2>/dev/null || fail "the autoscaler exited"
		spec=$(kubectl get deployment -n "$ns" "$deploy" -o jsonpath='{.spec.replicas}')
		ready=$(kubectl get deployment -n "$ns" "$deploy" -o jsonpath='{.status.readyReplicas}')
		if [[ "$spec" == "$want" && "${ready:-0}" == "$want" ]]; then
			return 0
		fi
		sleep 1
	done
	fail "replicas did not reach $want within ${timeout_s}s (spec=$spec ready=${ready:-0})"
}

show() {
	kubectl get deployment -n "$ns" "$deploy" --show-labels | sed 's/^/    /'
	kubectl get pods -n "$ns" -o wide | sed 's/^/    /'
}

step "Waiting for the autoscaler to read numPods=3 and scale 1 -> 3"
wait_replicas 3
show

step "Changing the label: numPods=5 (scale up)"
kubectl label deployment -n "$ns" "$deploy" numPods=5 --overwrite | sed 's/^/    /'
wait_replicas 5
show

step "Changing the label: numPods=2 (scale down)"
kubectl label deployment -n "$ns" "$deploy" numPods=2 --overwrite | sed 's/^/    /'
wait_replicas 2
show

step "Demo complete: the replicas followed the numPods label 1 -> 3 -> 5 -> 2"
