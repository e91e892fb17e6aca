#!/usr/bin/env bash
# The demo: Strata's main job end to end on this machine, with nothing but Go.
# Today it starts a real local control plane with simulated nodes and proves
# that workloads run on it; later issues grow it into `strata up` with
# profiles, clusters and updates.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/strata version
bin/strata sandbox --nodes 3 --check --keep=false
