#!/usr/bin/env bash
# The getting-started guide (cpa-getting-started), for real, on the local cluster:
# the hello-kubernetes Deployment (1 replica, label numPods: "3"), the guide's Python
# metric and evaluate scripts and its config.yaml, and the runtime started as the
# operator would start it (scaleTargetRef, namespace and interval=10000 in its
# environment). The replicas go 1 -> 3, then follow the label as it changes.
#
# Then the kube-metrics-adapter scene: the adapter registered as the cluster's custom and
# external metrics APIs, the README's pod json-path HPA on a Deployment whose pods report
# their request rate as JSON on their own IPs, and the real HPA controller scaling the
# Deployment as the demo changes the load the pods report.
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
adapter_pid=""
endpoints_pid=""
adapter_ns=kma-demo
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
	for pid in "$endpoints_pid" "$adapter_pid"; do
		if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	if [[ $rc -ne 0 && -f "$work/adapter.log" ]]; then
		echo "--- kube-metrics-adapter log (last 30 lines) ---" >&2
		tail -n 30 "$work/adapter.log" >&2 || true
	fi
	if [[ $rc -ne 0 && -f "$work/autoscaler.log" ]]; then
		echo "--- autoscaler log (last 30 lines) ---" >&2
		tail -n 30 "$work/autoscaler.log" >&2 || true
	fi
	if command -v kubectl >/dev/null 2>&1 && [[ -n "${KUBECONFIG:-}" ]]; then
		info "deleting namespaces $ns and $adapter_ns, and the adapter's APIServices"
		kubectl delete namespace "$ns" "$adapter_ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
		if [[ -n "$adapter_pid" ]]; then
			kubectl delete apiservice v1beta1.custom.metrics.k8s.io v1beta2.custom.metrics.k8s.io \
				v1beta1.external.metrics.k8s.io --ignore-not-found >/dev/null 2>&1 || true
			kubectl delete service -n kube-system kube-metrics-adapter-demo --ignore-not-found >/dev/null 2>&1 || true
		fi
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

# fresh_namespace NS: create NS, first waiting for a namespace of a previous run to go.
fresh_namespace() {
	kubectl delete namespace "$1" --ignore-not-found --wait=true --timeout=120s >/dev/null ||
		fail "namespace $1 of a previous run is still being deleted"
	kubectl create namespace "$1" >/dev/null
}

step "Creating the managed Deployment (examples/python-custom-autoscaler/deployment.yaml)"
fresh_namespace "$ns"
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

step "Custom Pod Autoscaler scene complete: the replicas followed the numPods label 1 -> 3 -> 5 -> 2"
kill -TERM "$cpa_pid" 2>/dev/null || true
wait "$cpa_pid" 2>/dev/null || true
kill "$tail_pid" 2>/dev/null || true
cpa_pid="" tail_pid=""

# ---------------------------------------------------------------------------------------
# kube-metrics-adapter
adapter_example="$repo/examples/kube-metrics-adapter"
pki="$(dirname "$KUBECONFIG")/pki"

step "Building kube-metrics-adapter and the demo's pod endpoints"
(cd "$repo" && go build -o "$work/kube-metrics-adapter" ./cmd/kube-metrics-adapter &&
	go build -o "$work/podendpoints" ./hack/podendpoints)
info "built $work/kube-metrics-adapter"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
adapter_port=$(free_port)
metrics_port=$(free_port)

step "Starting kube-metrics-adapter on 127.0.0.1:$adapter_port and registering its APIServices"
"$work/kube-metrics-adapter" --kubeconfig "$KUBECONFIG" \
	--authentication-kubeconfig "$KUBECONFIG" --authorization-kubeconfig "$KUBECONFIG" \
	--bind-address 127.0.0.1 --secure-port "$adapter_port" \
	--tls-cert-file "$pki/aggregated-serving.crt" --tls-private-key-file "$pki/aggregated-serving.key" \
	--metrics-address "127.0.0.1:$metrics_port" >"$work/adapter.log" 2>&1 &
adapter_pid=$!
# The cluster has no kube-proxy: the Service is an ExternalName for the process on loopback.
# caBundle is the cluster CA that signed the adapter's certificate (never insecureSkipTLSVerify).
ca_bundle=$(base64 -w0 <"$pki/ca.crt")
{
	cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: kube-metrics-adapter-demo, namespace: kube-system}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{name: https, port: $adapter_port}]
YAML
	for gv in v1beta1.custom.metrics.k8s.io v1beta2.custom.metrics.k8s.io v1beta1.external.metrics.k8s.io; do
		cat <<YAML
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: $gv}
spec:
  group: ${gv#*.}
  version: ${gv%%.*}
  service: {name: kube-metrics-adapter-demo, namespace: kube-system, port: $adapter_port}
  caBundle: $ca_bundle
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
	done
} | kubectl apply --server-side --force-conflicts --field-manager cpa-demo -f - | sed 's/^/    /'
for gv in v1beta1.custom.metrics.k8s.io v1beta2.custom.metrics.k8s.io v1beta1.external.metrics.k8s.io; do
	kubectl wait --for condition=Available --timeout=60s "apiservice/$gv" | sed 's/^/    /' ||
		fail "APIService $gv did not become Available"
done

step "Creating myapp (examples/kube-metrics-adapter/deployment.yaml); its pods report a total load of 2500 requests/s"
fresh_namespace "$adapter_ns"
kubectl apply -n "$adapter_ns" -f "$adapter_example/deployment.yaml" | sed 's/^/    /'
kubectl rollout status -n "$adapter_ns" deployment/myapp --timeout=60s | sed 's/^/    /'
# kwok runs no container: the demo serves each pod's /metrics on the pod's own loopback IP,
# spreading the total load over the pods as a load balancer would.
echo 2500 >"$work/load"
"$work/podendpoints" --namespace "$adapter_ns" --selector app=myapp --port 9090 \
	--load-file "$work/load" >"$work/podendpoints.log" 2>&1 &
endpoints_pid=$!

step "Applying the README's pod json-path HPA (examples/kube-metrics-adapter/hpa.yaml)"
sed -n '/^metadata:/,/^spec:/p' "$adapter_example/hpa.yaml" | sed 's/^/    | /'
kubectl apply -n "$adapter_ns" -f "$adapter_example/hpa.yaml" | sed 's/^/    /'

# wait_app N: wait until myapp wants N replicas and has N ready pods.
wait_app() {
	local want=$1 deadline=$((SECONDS + timeout_s * 2)) spec ready
	while ((SECONDS < deadline)); do
		kill -0 "$adapter_pid" 2>/dev/null || fail "kube-metrics-adapter exited"
		spec=$(kubectl get deployment -n "$adapter_ns" myapp -o jsonpath='{.spec.replicas}')
		ready=$(kubectl get deployment -n "$adapter_ns" myapp -o jsonpath='{.status.readyReplicas}')
		if [[ "$spec" == "$want" && "${ready:-0}" == "$want" ]]; then
			return 0
		fi
		sleep 1
	done
	kubectl describe hpa -n "$adapter_ns" myapp-hpa | sed 's/^/    /' >&2
	fail "myapp did not reach $want replicas within $((timeout_s * 2))s (spec=$spec ready=${ready:-0})"
}

# show_app N: the adapter's values once it has collected all N pods (collections run every
# 5 s), then the HPA.
show_app() {
	local want=$1 path="/apis/custom.metrics.k8s.io/v1beta2/namespaces/$adapter_ns/pods/*/requests-per-second?labelSelector=app%3Dmyapp"
	local deadline=$((SECONDS + 30)) items
	while ((SECONDS < deadline)); do
		items=$(kubectl get --raw "$path" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
		[[ "$items" == "$want" ]] && break
		sleep 1
	done
	info "kubectl get --raw '$path'"
	kubectl get --raw "$path" |
		python3 -c 'import json,sys; [print("      %-32s %s" % (i["describedObject"]["name"], i["value"])) for i in json.load(sys.stdin)["items"]]'
	kubectl get hpa -n "$adapter_ns" myapp-hpa | sed 's/^/    /'
}

step "Waiting for the HPA to scale myapp 1 -> 3 (2500 requests/s over 1 pod, target 1k per pod)"
wait_app 3
show_app 3

step "The load rises to 6000 requests/s: 2000 per pod, so 3 -> 6"
echo 6000 >"$work/load"
wait_app 6
show_app 6

step "The load falls to 1500 requests/s: 250 per pod, so 6 -> 2"
echo 1500 >"$work/load"
wait_app 2
show_app 2

step "kube-metrics-adapter scene complete: the HPA followed the pods' reported load 1 -> 3 -> 6 -> 2"
