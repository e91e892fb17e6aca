#!/usr/bin/env bash
# The demo: Strata's main job end to end on this machine, with nothing but Go.
# It reads real packs, validates the example profiles and clusters, starts a
# real local control plane with simulated nodes, converges the dev cluster to
# its stack, shows that it matches, then changes the cluster's profile values
# and shows the plan and the convergence. `strata up` (a tracked issue) will
# replace the sandbox with a management plane where clusters follow profiles.
set -euo pipefail
cd "$(dirname "$0")/.."

community=../shared/testdata/pack-central
[ -d "$community" ] || { echo "demo: $community is missing (the community packs live beside the repository)" >&2; exit 1; }
packs=(--packs packs --packs "$community")
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
work=$(mktemp -d)
sandbox_pid=
cleanup() {
  if [ -n "$sandbox_pid" ]; then kill -INT "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step "strata version"
bin/strata version

step "lint the packs: Strata's own and the community's"
bin/strata pack lint packs "$community" | tail -n +1 | grep -v '^warning:' || true

step "validate the example profiles and clusters"
bin/strata profile validate -f examples "${packs[@]}"

step "the dev cluster's stack, in install order"
bin/strata profile render -f examples --cluster examples/cluster-dev.yaml "${packs[@]}" -o json | go run ./hack/stacksummary

step "a real control plane with three simulated nodes"
bin/strata sandbox --dir "$work/cluster" --nodes 3 > "$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 1 240); do
  grep -q "press Ctrl-C" "$work/sandbox.log" && break
  kill -0 "$sandbox_pid" 2>/dev/null || { cat "$work/sandbox.log"; exit 1; }
  sleep 0.5
done
cat "$work/sandbox.log"
kubeconfig=$work/cluster/kubeconfig

step "converge the dev cluster to its stack"
bin/strata deploy --kubeconfig "$kubeconfig" -f examples --cluster examples/cluster-dev.yaml "${packs[@]}"

step "does the cluster match its stack?"
bin/strata diff --kubeconfig "$kubeconfig" -f examples --cluster examples/cluster-dev.yaml "${packs[@]}"

step "the platform team changes the dev cluster: 3 replicas, and the registry mirror goes"
sed -e 's/{name: replicas, value: "2"}/{name: replicas, value: "3"}/' \
    -e '/- name: registry-mirror/,/version: 1.0.0/d' -e '/overrides:/,$d' examples/cluster-dev.yaml > "$work/cluster-dev.yaml"
bin/strata deploy --kubeconfig "$kubeconfig" -f examples --cluster "$work/cluster-dev.yaml" "${packs[@]}" --dry-run
bin/strata deploy --kubeconfig "$kubeconfig" -f examples --cluster "$work/cluster-dev.yaml" "${packs[@]}"
bin/strata diff --kubeconfig "$kubeconfig" -f examples --cluster "$work/cluster-dev.yaml" "${packs[@]}"

step "done: the sandbox stops now (run 'bin/strata sandbox' to keep one running)"
