#!/usr/bin/env bash
# The local Kubernetes cluster for end-to-end tests and the demo: a real control plane
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), kwok, which fakes the
# kubelets (nodes turn Ready and pods Running with loopback IPs, no container runs, and each
# node serves kubelet-style resource metrics), and metrics-server, which scrapes them and serves
# metrics.k8s.io through the aggregation layer, as in a real cluster. Beside it runs a real
# Prometheus server (the Debian package, which build.sh installs if /usr/bin/prometheus is
# missing) that scrapes every 2 s the targets tests list in files under
# $CPA_CLUSTER_DIR/prometheus/targets/*.json (file_sd_configs; test/e2e/framework writes them).
#
# Usage: hack/cluster/cluster.sh <command>
#
#   up        build the binaries if needed (hack/cluster/build.sh), start the cluster, wait until
#             it is ready; reuses a running cluster. Prints the kubeconfig path on stdout.
#   down      stop every process `up` started and delete the etcd data (the next `up` starts
#             empty). `down --purge` also deletes certificates, kubeconfigs and logs.
#   status    what runs; exit status 0 only when the whole cluster is up and ready.
#   env       shell lines for eval: KUBECONFIG, and PATH with a matching kubectl.
#               eval "$(hack/cluster/cluster.sh env)"
#
# Everything lives in $CPA_CLUSTER_DIR (default $CPA_CACHE_DIR/cluster, CPA_CACHE_DIR default
# ${XDG_CACHE_HOME:-$HOME/.cache}/custom-pod-autoscaler): pki/, kubeconfig, etcd/, logs/, run/, bin/,
# prometheus/.
# All components listen on 127.0.0.1 only, on fixed uncommon ports: etcd 12379 (peer 12380),
# kube-apiserver 16443, kube-controller-manager 16257, kube-scheduler 16259, kwok 16250 (also
# the fake nodes' kubelet port), metrics-server 16446, Prometheus 19090 (http://127.0.0.1:19090;
# its config, data and targets in prometheus/). Pod IPs come from 127.1.0.0/16, so every pod IP is a loopback
# address a test can serve on; Service IPs from 10.96.0.0/16 (no kube-proxy: nothing routes them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${CPA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/custom-pod-autoscaler}"
state="${CPA_CLUSTER_DIR:-$cache/cluster}"

readonly ETCD_PORT=12379 ETCD_PEER_PORT=12380
readonly APISERVER_PORT=16443
readonly KCM_PORT=16257 SCHEDULER_PORT=16259
readonly KWOK_PORT=16250 # kwok's kubelet-style server (metrics, /healthz); also the nodes' kubelet port
readonly METRICS_SERVER_PORT=16446
readonly PROMETHEUS_PORT=19090
# The Debian package's binary (build.sh installs it); CPA_PROMETHEUS_BIN names another one.
readonly PROMETHEUS_BIN="${CPA_PROMETHEUS_BIN:-/usr/bin/prometheus}"
readonly POD_CIDR=127.1.0.0/16 SERVICE_CIDR=10.96.0.0/16 SERVICE_IP=10.96.0.1
readonly NODES=(kwok-node-0)
readonly COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok metrics-server)
readonly SA_ISSUER=https://kubernetes.default.svc.cluster.local

pki="$state/pki"
kubeconfig="$state/kubeconfig"
logs="$state/logs"
run="$state/run"
prom="$state/prometheus"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; }

version_of() {
	case "$1" in
	etcd) echo "$ETCD_VERSION" ;;
	kwok) echo "$KWOK_VERSION" ;;
	metrics-server) echo "$METRICS_SERVER_VERSION" ;;
	*) echo "$KUBE_VERSION" ;;
	esac
}

# ---------------------------------------------------------------------------------------------
# processes

pid_of() {
	local f="$run/$1.pid"
	[[ -f $f ]] && cat "$f"
}

# running <component>: its recorded process is alive and is really that component.
running() {
	local pid
	pid="$(pid_of "$1")" || return 1
	[[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
	if [[ $1 == prometheus ]]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$PROMETHEUS_BIN --config.file $prom/"
		return
	fi
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "/$1-v"
}

# binary_of <component>: the executable start runs.
binary_of() {
	if [[ $1 == prometheus ]]; then
		echo "$PROMETHEUS_BIN"
	else
		echo "$bin/$1-$(version_of "$1")"
	fi
}

port_owner() { ss -Hltnp "sport = :$1" 2>/dev/null | head -n1; }

# start <component> <port> <args...>: starts the component in its own session so it survives
# this script, with every descriptor closed or redirected to its log.
start() {
	local name="$1" port="$2"
	shift 2
	if running "$name"; then
		return 0
	fi
	local owner
	owner="$(port_owner "$port")"
	[[ -z $owner ]] || die "cannot start $name: port $port is taken by a process this script did not start: $owner"
	local bin_path
	bin_path="$(binary_of "$name")"
	[[ -x $bin_path ]] || die "missing binary $bin_path (hack/cluster/build.sh should have built or installed it)"
	[[ -f $logs/$name.log ]] && mv -f "$logs/$name.log" "$logs/$name.log.prev"
	log "starting $name (log: $logs/$name.log)"
	setsid nohup "$bin_path" "$@" >"$logs/$name.log" 2>&1 </dev/null 9>&- &
	echo $! >"$run/$name.pid"
}

# log_tail <component>: the end of its log, for error messages.
log_tail() {
	if [[ -s $logs/$1.log ]]; then
		log "last lines of $logs/$1.log:"
		tail -n 30 "$logs/$1.log" | sed 's/^/    /' >&2
	fi
}

# wait_until <component> <timeout-seconds> <what> <command...>
wait_until() {
	local name="$1" timeout="$2" what="$3"
	shift 3
	local deadline=$((SECONDS + timeout)) t0=$EPOCHREALTIME
	until "$@" >/dev/null 2>&1; do
		if [[ $name != - ]] && ! running "$name"; then
			log "ERROR: $name exited while waiting for: $what"
			log_tail "$name"
			failed_hint
			exit 1
		fi
		if ((SECONDS >= deadline)); then
			log "ERROR: timed out after ${timeout}s waiting for: $what"
			[[ $name == - ]] || log_tail "$name"
			failed_hint
			exit 1
		fi
		sleep 0.2
	done
	log "ready: $what ($(elapsed "$t0"))"
}

failed_hint() { log "the components that started are left running for inspection; '$here/cluster.sh down' stops them"; }

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }

# alive <pid>: the process exists and is not a zombie (whose parent may never reap it).
alive() {
	local st
	st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

# stop <component...>: SIGTERM to each one's process group, then wait; SIGKILL after 15 s.
stop() {
	local name pid pids=()
	for name in "$@"; do
		if running "$name"; then
			pid="$(pid_of "$name")"
			log "stopping $name (pid $pid)"
			# Started with setsid: the pid leads its own process group.
			kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
		rm -f "$run/$name.pid"
	done
	local deadline=$((SECONDS + 15))
	for pid in "${pids[@]}"; do
		while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
		if alive "$pid"; then
			log "pid $pid did not stop within 15s; killing it"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			while alive "$pid"; do sleep 0.1; done
		fi
	done
}

# Clients first, the API server next, etcd last: a server whose backend is gone shuts down slowly.
stop_all() {
	stop prometheus metrics-server kwok kube-scheduler kube-controller-manager
	stop kube-apiserver
	stop etcd
}

# ---------------------------------------------------------------------------------------------
# certificates and kubeconfigs (made once; `down` keeps them so KUBECONFIG stays valid)

new_ca() { # <name> <common name>
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
		-keyout "$pki/$1.key" -out "$pki/$1.crt" -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

new_cert() { # <ca> <name> <subject> <serverAuth|clientAuth> [subjectAltName]
	local ca="$1" name="$2" subject="$3" usage="$4" san="${5:-}"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$pki/$name.key" -out "$pki/$name.csr" -subj "$subject" 2>/dev/null
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature"
		echo "extendedKeyUsage=$usage"
		[[ -z $san ]] || echo "subjectAltName=$san"
	} >"$pki/$name.ext"
	openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -days 3650 \
		-extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
	rm -f "$pki/$name.csr" "$pki/$name.ext"
}

write_kubeconfig() { # <file> <cert name>
	local b64="base64 -w0"
	cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cpa-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $($b64 <"$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $($b64 <"$pki/$2.crt")
    client-key-data: $($b64 <"$pki/$2.key")
contexts:
- name: cpa-local
  context:
    cluster: cpa-local
    user: $2
current-context: cpa-local
EOF
	chmod 600 "$1.tmp"
	mv "$1.tmp" "$1"
}

readonly PKI_FILES=(ca.crt ca.key front-proxy-ca.crt front-proxy-client.crt front-proxy-client.key
	kube-apiserver.crt kube-apiserver.key loopback-serving.crt loopback-serving.key sa.key sa.pub
	kube-controller-manager.kubeconfig kube-scheduler.kubeconfig kwok.kubeconfig
	aggregated-serving.crt aggregated-serving.key metrics-server.kubeconfig)

ensure_pki() {
	local f complete=true
	for f in "${PKI_FILES[@]}"; do [[ -s $pki/$f ]] || complete=false; done
	[[ -s $kubeconfig ]] || complete=false
	if $complete; then
		return 0
	fi
	if running kube-apiserver; then
		die "files are missing in $pki while the cluster runs; run '$here/cluster.sh down' first"
	fi
	log "creating certificates and kubeconfigs in $pki"
	rm -rf "$pki"
	mkdir -p "$pki"
	chmod 700 "$pki"
	new_ca ca cpa-local-ca
	new_ca front-proxy-ca cpa-local-front-proxy-ca
	new_cert ca kube-apiserver "/CN=kube-apiserver" serverAuth \
		"IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	# Serving certificate of the other loopback servers (controller-manager, scheduler, kwok).
	new_cert ca loopback-serving "/CN=localhost" serverAuth "IP:127.0.0.1,DNS:localhost"
	new_cert ca admin "/O=system:masters/CN=kubernetes-admin" clientAuth
	new_cert ca kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
	new_cert ca kube-scheduler "/CN=system:kube-scheduler" clientAuth
	new_cert ca kwok "/O=system:masters/CN=kwok" clientAuth
	# Aggregated API servers (metrics-server, test adapters) run on 127.0.0.1 behind ExternalName
	# Services; the aggregator checks their certificate against <service>.<namespace>.svc.
	new_cert ca aggregated-serving "/CN=aggregated-api" serverAuth \
		"DNS:*.kube-system.svc,DNS:*.cpa-system.svc,DNS:localhost,IP:127.0.0.1"
	new_cert ca metrics-server "/CN=system:metrics-server" clientAuth
	new_cert front-proxy-ca front-proxy-client "/CN=front-proxy-client" clientAuth
	# Service-account token signing key pair.
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
	openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
	chmod 600 "$pki"/*.key
	for c in kube-controller-manager kube-scheduler kwok metrics-server; do
		write_kubeconfig "$pki/$c.kubeconfig" "$c"
	done
	write_kubeconfig "$kubeconfig" admin
}

# ---------------------------------------------------------------------------------------------
# health checks

etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() {
	curl -fsS --max-time 2 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
		"https://127.0.0.1:$APISERVER_PORT/readyz" | grep -qx ok
}
healthz() { curl -fsS --max-time 2 --cacert "$pki/ca.crt" "https://127.0.0.1:$1/healthz" | grep -qx ok; }
kubectl() { "$bin/kubectl-$KUBE_VERSION" --kubeconfig "$kubeconfig" "$@"; }
node_ready() {
	[[ $(kubectl get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
nodes_ready() {
	local n
	for n in "${NODES[@]}"; do node_ready "$n" || return 1; done
}
default_sa_exists() { kubectl -n default get serviceaccount default; }
prometheus_ready() { curl -fsS --max-time 2 "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null; }

# Prometheus is part of the cluster when its binary is there: build.sh installs it, and fails
# under CI=true when it cannot; elsewhere the cluster runs without it (the tests that need it
# then skip) and says so.
with_prometheus() { [[ -x $PROMETHEUS_BIN ]]; }

all_running() {
	local c
	for c in "${COMPONENTS[@]}"; do running "$c" || return 1; done
	if with_prometheus; then running prometheus || return 1; fi
}

apiservice_available() {
	[[ $(kubectl get apiservice "$1" -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null) == True ]]
}
cluster_ready() {
	all_running && apiserver_ready && nodes_ready && apiservice_available v1beta1.metrics.k8s.io &&
		{ ! with_prometheus || prometheus_ready; }
}

# ---------------------------------------------------------------------------------------------
# commands

lock() {
	mkdir -p "$state"
	exec 9>"$state/.lock"
	if ! flock -n 9; then
		log "waiting for another cluster.sh to finish (lock $state/.lock)"
		flock -w 900 9 || die "could not get the lock $state/.lock within 15 minutes"
	fi
}

ensure_bin_link() {
	mkdir -p "$state/bin"
	ln -sfn "$bin/kubectl-$KUBE_VERSION" "$state/bin/kubectl"
}

node_manifest() {
	local n
	for n in "${NODES[@]}"; do
		cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $n
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/$n/metrics/resource
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $n
    kubernetes.io/os: linux
    type: kwok
spec: {}
EOF
	done
}

# metrics-server's registration, as its release manifest has it, with the Service pointing at
# the process on 127.0.0.1 (an ExternalName: no kube-proxy routes ClusterIPs here).
metrics_server_manifest() {
	cat <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:metrics-server
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:aggregated-metrics-reader
  labels:
    rbac.authorization.k8s.io/aggregate-to-admin: "true"
    rbac.authorization.k8s.io/aggregate-to-edit: "true"
    rbac.authorization.k8s.io/aggregate-to-view: "true"
rules:
- apiGroups: [metrics.k8s.io]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:metrics-server
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:metrics-server}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metrics-server}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: metrics-server:system:auth-delegator
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metrics-server}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: metrics-server-auth-reader
  namespace: kube-system
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metrics-server}
---
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
spec:
  type: ExternalName
  externalName: localhost
  ports:
  - {name: https, port: $METRICS_SERVER_PORT, protocol: TCP}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system, port: $METRICS_SERVER_PORT}
  caBundle: $(base64 -w0 <"$pki/ca.crt")
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
}

# Prometheus scrapes, every 2 s, the targets that tests list in $prom/targets/*.json: each
# file a file_sd list of target groups ([{"targets": ["127.0.0.1:PORT"], "labels": {"job": "x"}}]);
# a file's target labels (job included) win over the scrape config's.
prometheus_config() {
	cat <<EOF
# Written by hack/cluster/cluster.sh up; do not edit.
global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 2s
scrape_configs:
- job_name: e2e
  file_sd_configs:
  - files: ['$prom/targets/*.json']
    refresh_interval: 2s
EOF
}

start_prometheus() {
	if ! with_prometheus; then
		log "WARNING: no Prometheus at $PROMETHEUS_BIN (build.sh could not install it); the cluster runs without it"
		return 0
	fi
	if running prometheus; then
		return 0
	fi
	rm -f "$prom/url"
	mkdir -p "$prom/data" "$prom/targets"
	prometheus_config >"$prom/prometheus.yml.tmp"
	mv "$prom/prometheus.yml.tmp" "$prom/prometheus.yml"
	start prometheus "$PROMETHEUS_PORT" \
		--config.file "$prom/prometheus.yml" \
		--storage.tsdb.path "$prom/data" \
		--storage.tsdb.retention.time 1d \
		--web.listen-address "127.0.0.1:$PROMETHEUS_PORT"
}

# wait_prometheus waits for /-/ready, then writes the URL where test/e2e/framework finds it.
wait_prometheus() {
	with_prometheus || return 0
	wait_until prometheus 60 "Prometheus /-/ready on http://127.0.0.1:$PROMETHEUS_PORT" prometheus_ready
	echo "http://127.0.0.1:$PROMETHEUS_PORT" >"$prom/url"
}

cmd_up() {
	local t0=$EPOCHREALTIME
	lock
	bin="$("$here/build.sh")"
	ensure_bin_link
	ensure_pki
	if cluster_ready; then
		log "cluster already up ($(versions_line)); reusing it"
		check_versions
		echo "$kubeconfig"
		return 0
	fi
	mkdir -p "$state/etcd" "$logs" "$run"
	chmod 700 "$state/etcd"

	start etcd "$ETCD_PORT" \
		--name cpa-local \
		--data-dir "$state/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "cpa-local=http://127.0.0.1:$ETCD_PEER_PORT" \
		--unsafe-no-fsync \
		--log-level warn
	# Prometheus depends on nothing here; it gets ready while the control plane starts.
	start_prometheus
	wait_until etcd 30 "etcd health on 127.0.0.1:$ETCD_PORT" etcd_healthy

	start kube-apiserver "$APISERVER_PORT" \
		--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address 127.0.0.1 \
		--secure-port "$APISERVER_PORT" \
		--advertise-address 127.0.0.1 \
		--endpoint-reconciler-type none \
		--tls-cert-file "$pki/kube-apiserver.crt" \
		--tls-private-key-file "$pki/kube-apiserver.key" \
		--client-ca-file "$pki/ca.crt" \
		--authorization-mode Node,RBAC \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--service-account-issuer "$SA_ISSUER" \
		--service-account-key-file "$pki/sa.pub" \
		--service-account-signing-key-file "$pki/sa.key" \
		--disable-admission-plugins TaintNodesByCondition \
		--allow-privileged \
		--requestheader-client-ca-file "$pki/front-proxy-ca.crt" \
		--requestheader-allowed-names front-proxy-client \
		--requestheader-username-headers X-Remote-User \
		--requestheader-group-headers X-Remote-Group \
		--requestheader-extra-headers-prefix X-Remote-Extra- \
		--proxy-client-cert-file "$pki/front-proxy-client.crt" \
		--proxy-client-key-file "$pki/front-proxy-client.key" \
		--enable-aggregator-routing=false
	wait_until kube-apiserver 90 "kube-apiserver /readyz on https://127.0.0.1:$APISERVER_PORT" apiserver_ready

	# The fake nodes: kwok manages nodes with the annotation kwok.x-k8s.io/node=fake. They are created
	# without the not-ready taint (the TaintNodesByCondition admission plugin is off, and so is the
	# node lifecycle controller), so pods schedule at once.
	node_manifest | kubectl apply --server-side --field-manager cpa-cluster -f - >/dev/null ||
		die "could not create the fake nodes"

	start kube-controller-manager "$KCM_PORT" \
		--kubeconfig "$pki/kube-controller-manager.kubeconfig" \
		--authentication-kubeconfig "$pki/kube-controller-manager.kubeconfig" \
		--authorization-kubeconfig "$pki/kube-controller-manager.kubeconfig" \
		--bind-address 127.0.0.1 \
		--secure-port "$KCM_PORT" \
		--tls-cert-file "$pki/loopback-serving.crt" \
		--tls-private-key-file "$pki/loopback-serving.key" \
		--controllers '*,-node-ipam-controller,-node-lifecycle-controller' \
		--service-account-private-key-file "$pki/sa.key" \
		--root-ca-file "$pki/ca.crt" \
		--use-service-account-credentials \
		--cluster-signing-cert-file "$pki/ca.crt" \
		--cluster-signing-key-file "$pki/ca.key" \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--leader-elect=false \
		--kube-api-qps 100 --kube-api-burst 200
	start kube-scheduler "$SCHEDULER_PORT" \
		--kubeconfig "$pki/kube-scheduler.kubeconfig" \
		--authentication-kubeconfig "$pki/kube-scheduler.kubeconfig" \
		--authorization-kubeconfig "$pki/kube-scheduler.kubeconfig" \
		--bind-address 127.0.0.1 \
		--secure-port "$SCHEDULER_PORT" \
		--tls-cert-file "$pki/loopback-serving.crt" \
		--tls-private-key-file "$pki/loopback-serving.key" \
		--leader-elect=false
	start kwok "$KWOK_PORT" \
		--kubeconfig "$pki/kwok.kubeconfig" \
		--config "$here/kwok.yaml" \
		--manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
		--cidr "$POD_CIDR" \
		--node-ip 127.0.0.1 \
		--node-port "$KWOK_PORT" \
		--server-address "127.0.0.1:$KWOK_PORT" \
		--tls-cert-file "$pki/loopback-serving.crt" \
		--tls-private-key-file "$pki/loopback-serving.key"
	wait_until kube-controller-manager 60 "kube-controller-manager /healthz on 127.0.0.1:$KCM_PORT" healthz "$KCM_PORT"
	wait_until kube-scheduler 60 "kube-scheduler /healthz on 127.0.0.1:$SCHEDULER_PORT" healthz "$SCHEDULER_PORT"
	wait_until kwok 60 "kwok /healthz on 127.0.0.1:$KWOK_PORT" healthz "$KWOK_PORT"
	wait_until kwok 60 "fake node(s) ${NODES[*]} Ready" nodes_ready
	wait_until kube-controller-manager 60 "ServiceAccount default/default" default_sa_exists

	metrics_server_manifest | kubectl apply --server-side --force-conflicts --field-manager cpa-cluster -f - >/dev/null ||
		die "could not register metrics-server (RBAC, Service, APIService)"
	start metrics-server "$METRICS_SERVER_PORT" \
		--bind-address 127.0.0.1 \
		--secure-port "$METRICS_SERVER_PORT" \
		--tls-cert-file "$pki/aggregated-serving.crt" \
		--tls-private-key-file "$pki/aggregated-serving.key" \
		--kubeconfig "$pki/metrics-server.kubeconfig" \
		--authentication-kubeconfig "$pki/metrics-server.kubeconfig" \
		--authorization-kubeconfig "$pki/metrics-server.kubeconfig" \
		--kubelet-certificate-authority "$pki/ca.crt" \
		--kubelet-use-node-status-port \
		--kubelet-preferred-address-types InternalIP \
		--metric-resolution 10s \
		--kubelet-request-timeout 5s
	wait_until metrics-server 90 "APIService v1beta1.metrics.k8s.io Available" apiservice_available v1beta1.metrics.k8s.io
	wait_prometheus
	# Pod metrics follow about two scrapes (20 s) after a pod runs: CPU usage is a rate.
	versions_line >"$run/versions"
	log "cluster up in $(elapsed "$t0"): KUBECONFIG=$kubeconfig"
	log "use it from a shell with: eval \"\$($here/cluster.sh env)\""
	echo "$kubeconfig"
}

versions_line() { echo "kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, metrics-server $METRICS_SERVER_VERSION"; }

check_versions() {
	if [[ -f $run/versions && $(cat "$run/versions") != "$(versions_line)" ]]; then
		log "WARNING: the running cluster was started with $(cat "$run/versions");"
		log "         versions.env now pins $(versions_line). Run '$here/cluster.sh down' and 'up' to switch."
	fi
}

cmd_down() {
	local purge=false
	case "${1:-}" in
	--purge) purge=true ;;
	"") ;;
	*) die "unknown option for down: $1" ;;
	esac
	lock
	stop_all
	local c owner
	for c in $ETCD_PORT $APISERVER_PORT $KCM_PORT $SCHEDULER_PORT $KWOK_PORT $METRICS_SERVER_PORT $PROMETHEUS_PORT; do
		owner="$(port_owner "$c")"
		[[ -z $owner ]] || log "WARNING: port $c is still in use by a process this script did not start: $owner"
	done
	rm -rf "$state/etcd" "$run/versions" "$prom"
	if $purge; then
		# Keep the lock file (held right now); remove everything else.
		find "$state" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
		log "cluster stopped; deleted $state"
	else
		log "cluster stopped; etcd data deleted (certificates and kubeconfig kept in $state)"
	fi
}

cmd_status() {
	bin="$cache/bin"
	local c ok=0
	for c in "${COMPONENTS[@]}"; do
		if running "$c"; then
			printf '%-24s running (pid %s)\n' "$c" "$(pid_of "$c")"
		else
			printf '%-24s stopped\n' "$c"
			ok=1
		fi
	done
	if running prometheus; then
		printf '%-24s running (pid %s) http://127.0.0.1:%s\n' prometheus "$(pid_of prometheus)" "$PROMETHEUS_PORT"
	elif with_prometheus; then
		printf '%-24s stopped\n' prometheus
		ok=1
	else
		printf '%-24s not installed (%s)\n' prometheus "$PROMETHEUS_BIN"
	fi
	if [[ -f $pki/ca.crt ]] && apiserver_ready; then
		printf '%-24s https://127.0.0.1:%s ready\n' "api" "$APISERVER_PORT"
		local n
		for n in "${NODES[@]}"; do
			if node_ready "$n"; then printf '%-24s Ready\n' "node/$n"; else
				printf '%-24s not Ready\n' "node/$n"
				ok=1
			fi
		done
	else
		printf '%-24s not ready\n' "api"
		ok=1
	fi
	printf '%-24s %s\n' "kubeconfig" "$kubeconfig" "state" "$state"
	return $ok
}

cmd_env() {
	printf 'export KUBECONFIG=%q\n' "$kubeconfig"
	printf 'export PROMETHEUS_URL=%q\n' "http://127.0.0.1:$PROMETHEUS_PORT"
	# shellcheck disable=SC2016 # $PATH is for the shell that evals this line.
	printf 'export PATH=%q:"$PATH"\n' "$state/bin"
}

case "${1:-}" in
up) cmd_up ;;
down)
	shift
	cmd_down "$@"
	;;
status) cmd_status ;;
env) cmd_env ;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
