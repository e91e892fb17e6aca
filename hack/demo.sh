#!/usr/bin/env bash
# The demo: Strata's main job end to end on this machine, with nothing but Go.
# It reads real packs, validates and resolves the example profiles and
# clusters, shows what the dev cluster would run, then starts a real local
# control plane with simulated nodes and proves workloads run on it. Later
# issues grow it into `strata up`, where clusters follow their profiles.
set -euo pipefail
cd "$(dirname "$0")/.."

community=../shared/testdata/pack-central
[ -d "$community" ] || { echo "demo: $community is missing (the community packs live beside the repository)" >&2; exit 1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "strata version"
bin/strata version

step "lint the packs: Strata's own and the community's"
bin/strata pack lint packs "$community"

step "validate the example profiles and clusters"
bin/strata profile validate -f examples --packs packs --packs "$community"

step "the dev cluster's stack: layers in install order (values omitted here)"
bin/strata profile render -f examples --cluster examples/cluster-dev.yaml --packs packs --packs "$community" -o json |
  go run ./hack/stacksummary

step "a real control plane with three simulated nodes"
bin/strata sandbox --nodes 3 --check --keep=false
