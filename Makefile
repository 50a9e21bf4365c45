# purchase-policy-controller

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

CONTROLLER_GEN := go tool controller-gen
ENVTEST_ASSETS = $(shell bash hack/envtest-bins.sh)
GO_TEST_FLAGS ?= -count=1
# One build configuration for every target, the Dockerfile's (CGO_ENABLED=0,
# -trimpath): tests, tools and the image's binary then share one build cache,
# so a cold run compiles the dependency tree once, not once per configuration.
export CGO_ENABLED := 0
export GOFLAGS := -trimpath $(filter-out -trimpath,$(GOFLAGS))
CHART := charts/purchase-policy-controller
GENERATED := config/crd/bases config/rbac/role.yaml api/v1alpha1/zz_generated.deepcopy.go $(CHART)/crds $(CHART)/files
# kustomize, built from its Go module (hack/tools/go.mod) on first use.
KUSTOMIZE = $(shell bash hack/tools.sh kustomize)
# The image `make docker-build` builds and `make build-installer` installs.
IMG ?= ghcr.io/tenantpolicy/purchase-policy-controller:0.1.0
CONTAINER_TOOL ?= docker
DEMO_FLAGS ?=
STATICCHECK_CHECKS ?= U1000

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Demo

.PHONY: demo
demo: build ## See it work, no cluster or tenant needed: control plane + simulator + controller, a guided walk-through, then Ctrl-C cleans up (DEMO_FLAGS=--non-interactive to exit after it).
	go build -o bin/demo ./hack/demo
	bin/demo $(DEMO_FLAGS)

##@ Development

.PHONY: manifests
manifests: ## Generate the CRD and RBAC manifests from the Go markers and copy them (and the alerts, dashboards, admission policy) into the Helm chart.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	bash hack/sync-chart.sh

.PHONY: generate
generate: ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: lint
lint: ## staticcheck's dead-code check (U1000) over the whole tree, as a `go tool` (about 2 CPU-minutes cold, seconds warm).
	go tool staticcheck -checks $(STATICCHECK_CHECKS) ./...

.PHONY: verify
verify: ## Regenerate CRD, RBAC, DeepCopy and the chart's copies and fail if any generated file was stale.
	@snap=$$(mktemp -d); trap 'rm -rf "$$snap"' EXIT; \
	cp -r $(GENERATED) "$$snap/"; \
	$(MAKE) --no-print-directory manifests generate >/dev/null; \
	stale=0; for f in $(GENERATED); do \
		diff -ru "$$snap/$$(basename $$f)" "$$f" || stale=1; done; \
	if [ $$stale = 1 ]; then echo "generated files were stale (now regenerated): review and commit them"; exit 1; fi; \
	echo "generated files are up to date"

##@ Test

.PHONY: envtest
envtest: ## Build (once) the kube-apiserver and etcd envtest uses; prints their directory.
	@bash hack/envtest-bins.sh

.PHONY: tools
tools: ## Build (once) helm and kustomize from their Go modules; prints their paths.
	@bash hack/tools.sh helm
	@bash hack/tools.sh kustomize

.PHONY: test
test: manifests generate vet lint envtest tools test-ops ## Run every test CI gates on: unit, envtest, manifests (helm, kustomize, RBAC) and end-to-end.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test $(GO_TEST_FLAGS) ./...

.PHONY: test-ops
test-ops: ## Alerts (promtool), dashboard and alert PromQL, README metrics and alerts tables, Argo CD health check and kstatus (test/ops, a Go module of its own).
	@command -v promtool >/dev/null || { echo "promtool not found: apt-get install -y prometheus (Debian's package; only its binaries are used), or put promtool on PATH"; exit 1; }
	cd test/ops && go vet ./... && go test $(GO_TEST_FLAGS) ./...

FUZZTIME ?= 10s
# package:target of every fuzz target; their seeds (f.Add and testdata/fuzz) run in every `go test`.
FUZZ_TARGETS := internal/m365:FuzzParseRetryAfter internal/m365:FuzzErrorBody \
	internal/m365/licensing:FuzzDecodeList internal/m365/auth:FuzzEntraErrorBody \
	internal/tracking:FuzzSubscriptionClassification internal/plan:FuzzCompute

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 10s): Retry-After, Microsoft/Graph/Entra error bodies, the licensing list decoder, the subscription classification and handover verdict, the desired-state function.
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($$pkg) for $(FUZZTIME)"; \
		go test ./$$pkg -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

.PHONY: test-e2e
test-e2e: envtest ## Run the end-to-end suite alone.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test $(GO_TEST_FLAGS) ./test/...

##@ Build

.PHONY: build
build: ## Build the controller and the simulator into bin/.
	go build -o bin/manager ./cmd
	go build -o bin/m365sim ./cmd/m365sim

.PHONY: build-installer
build-installer: manifests ## Write dist/install.yaml (kustomize build config/default, image IMG): kubectl apply --server-side -f dist/install.yaml.
	@mkdir -p dist && rm -rf bin/installer && mkdir -p bin/installer
	@printf 'resources:\n  - ../../config/default\n' >bin/installer/kustomization.yaml
	cd bin/installer && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build bin/installer >dist/install.yaml
	@echo "wrote dist/install.yaml (image $(IMG))"

.PHONY: docker-build
docker-build: ## Build the controller image IMG with the Dockerfile (CONTAINER_TOOL=docker or podman).
	$(CONTAINER_TOOL) build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the image IMG.
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: build-cli
build-cli: ## Build the kubectl plugin into bin/kubectl-tpp (with bin/ on PATH: `kubectl tpp ...`).
	go build -o bin/kubectl-tpp ./cmd/kubectl-tpp

.PHONY: dist-cli
dist-cli: ## Release archives of the plugin for krew (bin/dist/, VERSION=v0.1.0, PLATFORMS="linux/amd64 ..." to limit) and bin/dist/tpp.yaml, plugins/tpp.yaml rendered for them.
	bash hack/krew-manifest.sh $(or $(VERSION),v0.1.0) $(PLATFORMS)

##@ Scale

BENCH = KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" bin/bench
BENCH_FLAGS ?=

.PHONY: bench-bin
bench-bin:
	go build -o bin/bench ./hack/bench

.PHONY: bench
bench: build envtest bench-bin ## The real binaries at scale: control plane + bin/m365sim (150 ms a call, throttling) + bin/manager with config/manager's args; cold, resync, drift, spec change; table (TENANTS=1000, BENCH_FLAGS="-json f").
	$(BENCH) -tenants $(or $(TENANTS),1000) $(BENCH_FLAGS)

.PHONY: bench-results
bench-results: build envtest bench-bin ## make bench, also writing hack/bench/results/<date>-N<TENANTS>.json (machine, commit, command) to commit.
	$(BENCH) -tenants $(or $(TENANTS),1000) -results $(BENCH_FLAGS)

.PHONY: soak
soak: build envtest bench-bin ## The bench, then hand-made drift and 429s for SOAK (default 5m, TENANTS=50): all corrected once, no early request, heap and goroutines shown.
	$(BENCH) -tenants $(or $(TENANTS),50) -soak $(or $(SOAK),5m) $(BENCH_FLAGS)
