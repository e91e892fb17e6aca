# Strata — targets a newcomer would guess. Run `make help` for the list.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

GO          ?= go
BIN         := bin
KUBE_BIN    := $(BIN)/kube
STRATA      := $(BIN)/strata
STRATA_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)
LDFLAGS     := -s -w -X strata.dev/strata/internal/version.Version=$(STRATA_VERSION)
# Pinned tool versions, run through `go run` so nothing is installed by hand.
GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
CONTROLLER_GEN := sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
# Go test flags; CI adds -count=1 and a timeout.
TESTFLAGS   ?= -timeout 30m
# A count of runs, not a duration: Go 1.26's fuzzing coordinator can report a
# spurious "context deadline exceeded" when a duration ends (go.dev/issue/75804).
FUZZTIME    ?= 20000x

.PHONY: help build kube kube-previous capi tools test test-capi-upgrade test-unit lint vet demo demo-capi bench chaos generate fuzz clean image

help: ## Show the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## Build bin/strata.
	$(GO) build -buildvcs=true -trimpath -ldflags '$(LDFLAGS)' -o $(STRATA) ./cmd/strata

kube: ## Build the Kubernetes binaries (apiserver, controller-manager, scheduler, etcd, kwok) into bin/kube/<version>; no-op when present.
	hack/kube/build.sh $(KUBE_BIN)

kube-previous: kube ## Build the Kubernetes version before the default (hack/kube-previous) into bin/kube/<version>, for the upgrade test.
	hack/kube/build.sh $(KUBE_BIN) hack/kube-previous

capi: ## Build Cluster API's core manager (and copy its CRDs and webhooks) into bin/capi/<version>; no-op when present.
	hack/capi/build.sh $(BIN)/capi

tools: ## Build the registry (CNCF Distribution) and oras CLI that tests run into bin/tools; no-op when present.
	hack/tools/build.sh $(BIN)/tools

test: kube capi tools ## Run every test, including those on real API servers and registries.
	$(GO) test $(TESTFLAGS) ./...

# The upgrade test needs a second Kubernetes build (about 5 more minutes
# cold), so it has a target of its own; make test skips it when that build
# is missing.
test-capi-upgrade: kube-previous capi tools ## Upgrade a Cluster API cluster's Kubernetes (control plane, then workers) from the previous version.
	STRATA_UPGRADE_TEST=required $(GO) test -count=1 -timeout 20m -v -run '^TestACAPIClusterUpgradesItsControlPlaneThenItsWorkers$$' ./internal/provider/clusterapi

vet: ## go vet.
	$(GO) vet ./...

lint: vet ## go vet and golangci-lint.
	$(GO) run $(GOLANGCI_LINT) run ./...

bench: kube tools ## Run the benchmarks and print their figures.
	$(GO) test -run '^$$' -bench . -benchmem ./...

# make chaos: the full fault schedule; CLUSTERS=N for fewer clusters,
# SEED=N to replay a run, FULL=0 for the short schedule CI runs.
FULL     ?= 1
CLUSTERS ?= 0
SEED     ?= 0
chaos: kube tools ## Roll a version out over 20 clusters while faults come at random (SEED=, CLUSTERS=, FULL=0).
	$(GO) test -count=1 -timeout 60m -v -run '^TestChaos$$' ./test/chaos -args -chaos.full=$(if $(filter 0,$(FULL)),false,true) -chaos.clusters=$(CLUSTERS) -chaos.seed=$(SEED)

image: ## Build the manager's container image (no container engine needed) into bin/strata-image.tar.
	$(GO) run ./hack/image -o $(BIN)/strata-image.tar -version $(STRATA_VERSION)

demo: build kube tools ## Run Strata's main job end to end on this machine.
	hack/demo.sh

demo-capi: build kube capi ## Provision a cluster through Cluster API (ClusterClass local) and scale it.
	hack/demo-capi.sh

fuzz: ## Run each fuzz test for FUZZTIME (default 20000 inputs; a hang fails at 5 minutes).
	$(GO) test -run '^$$' -fuzz '^FuzzParseConstraint$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s -timeout 5m ./internal/pack
	$(GO) test -run '^$$' -fuzz '^FuzzParsePackFiles$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s -timeout 5m ./internal/pack
	$(GO) test -run '^$$' -fuzz '^FuzzReadAndResolve$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s -timeout 5m ./internal/stack

generate: ## Regenerate CRDs and deepcopy code (committed), and the chart's copy of the CRDs.
	$(GO) run $(CONTROLLER_GEN) object paths=./api/... crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	cp config/crd/bases/*.yaml deploy/strata/crds/

clean: ## Remove built binaries (keeps the Kubernetes binaries cache).
	rm -f $(STRATA)
