# Custom Pod Autoscaler: build, test, demo.
#
#   make demo    the getting-started guide on a real local cluster (builds the cluster on first use)
#   make test    everything CI runs: lint, unit tests, fuzz seeds, end-to-end tests on the local cluster
#
# Binaries built for the local cluster and pinned Go tools are cached outside the work tree in
# $(CPA_CACHE_DIR), so later runs start in seconds.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

CPA_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/custom-pod-autoscaler
export CPA_CACHE_DIR
TOOLS_BIN := $(CPA_CACHE_DIR)/tools
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS_BIN)/staticcheck-$(STATICCHECK_VERSION)
CONTROLLER_GEN_VERSION := v0.23.0
CONTROLLER_GEN := $(TOOLS_BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
HELM_VERSION := v4.3.1
HELM := $(TOOLS_BIN)/helm-$(HELM_VERSION)
CHART := deploy/helm/custom-pod-autoscaler-operator
KMA_CHART := deploy/helm/kube-metrics-adapter
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build test lint unit e2e demo bench cluster-up cluster-down cluster-build fmt help generate verify-generate

all: build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build the programs into bin/
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

fmt: ## format the code
	gofmt -s -w $$(git ls-files '*.go')

$(STATICCHECK):
	@mkdir -p $(TOOLS_BIN)
	@echo "installing staticcheck $(STATICCHECK_VERSION) into $(TOOLS_BIN)"
	GOBIN=$(TOOLS_BIN)/tmp go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS_BIN)/tmp/staticcheck $@

$(CONTROLLER_GEN):
	@mkdir -p $(TOOLS_BIN)
	@echo "installing controller-gen $(CONTROLLER_GEN_VERSION) into $(TOOLS_BIN)"
	GOBIN=$(TOOLS_BIN)/tmp go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(TOOLS_BIN)/tmp/controller-gen $@

$(HELM):
	@mkdir -p $(TOOLS_BIN)
	@echo "installing helm $(HELM_VERSION) into $(TOOLS_BIN)"
	GOBIN=$(TOOLS_BIN)/tmp go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	mv $(TOOLS_BIN)/tmp/helm $@

generate: $(CONTROLLER_GEN) $(HELM) ## regenerate the APIs' deep copies, the CRDs, the operator's RBAC and the install manifests (deploy/)
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/custompodautoscaler/... output:crd:dir=deploy/crd
	$(CONTROLLER_GEN) crd paths=./api/zalando/... output:crd:dir=deploy/helm/kube-metrics-adapter/crds
	$(CONTROLLER_GEN) rbac:roleName=custom-pod-autoscaler-operator paths=./internal/operator/... output:rbac:dir=deploy/rbac
	HELM=$(HELM) hack/gen-install.sh

verify-generate: generate ## fail if make generate changed a generated file (not yet staged or committed)
	@changed="$$(git status --porcelain -- 'api/**/zz_generated.*' deploy | grep -v '^[AM] ' || true)"; \
	if [[ -n "$$changed" ]]; then echo "make generate changed these files; review and commit them:"; echo "$$changed"; exit 1; fi

lint: $(STATICCHECK) $(HELM) verify-generate ## gofmt, go vet, staticcheck, helm lint, generated files up to date
	$(HELM) lint --strict $(CHART) --set mode=cluster
	$(HELM) lint --strict $(CHART) --set mode=namespaced
	$(HELM) lint --strict $(KMA_CHART)
	$(HELM) lint --strict $(KMA_CHART) --set certManager.enabled=true
	$(HELM) lint --strict $(KMA_CHART) --set tls.existingSecret=kma-tls --set tls.caBundle=Y2E=
	@unformatted=$$(gofmt -s -l $$(git ls-files '*.go')); \
	if [[ -n "$$unformatted" ]]; then echo "gofmt -s would change:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go vet -tags e2e ./test/... ./internal/collector/influxdb/
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags e2e ./test/... ./internal/collector/influxdb/

unit: ## unit tests (with the race detector) and fuzz seed corpora
	go test -race -count=1 ./...

e2e: cluster-up $(HELM) ## end-to-end tests on the local cluster (started if not running)
	@# Compile the programs the tests start first, so that no test waits on (or competes
	@# with) a compile of the metrics adapter's API-server libraries.
	go build -o /dev/null ./cmd/... ./test/metricsadapter
	CPA_HELM=$(HELM) go test -tags e2e -count=1 -timeout 30m ./test/e2e/...
	@# The InfluxDB collector against a real influxd 1.8.3 (built once into the cache).
	go test -tags e2e -count=1 -timeout 10m ./internal/collector/influxdb/

test: lint unit e2e ## everything CI runs

demo: ## the getting-started guide on the local cluster
	hack/demo.sh

bench: ## benchmarks: per-pod cycles beside their limits, then the cluster scenario (peak memory, API requests); see docs/benchmarks.md
	go test -run '^$$' -bench . -benchmem -benchtime 3x -timeout 30m ./internal/...
	go test -tags e2e -count=1 -timeout 40m -run 'TestScenario|TestKubeMetricsScenario|TestOperatorScenario|TestAdapterScenario' -v ./test/bench/

cluster-build: ## build and cache the local cluster's binaries
	hack/cluster/build.sh

cluster-up: ## start the local cluster (reuses a running one)
	hack/cluster/cluster.sh up

cluster-down: ## stop the local cluster and delete its state
	hack/cluster/cluster.sh down
