#!/usr/bin/env bash
# The Cluster API demo: `strata up --capi` runs Cluster API's own manager
# (built from the Go module proxy by `make capi`) and Strata's local
# providers beside the management plane. A Cluster of provider capi is
# made by Cluster API from the ClusterClass "local" — a control plane on
# this machine, kwok nodes as Machines — then Strata applies its layers
# through the kubeconfig Cluster API wrote. Its pool is scaled 2 → 3.
#
#   hack/demo-capi.sh            stops everything at the end
#   KEEP=1 hack/demo-capi.sh     leaves strata up running
set -euo pipefail
cd "$(dirname "$0")/.."

community=../shared/testdata/pack-central
[ -d "$community" ] || { echo "demo: $community is missing (the community packs live beside the repository)" >&2; exit 1; }
packs=(--packs packs --packs "$community")
began=$(date +%s%N)
phase_began=$began
since() { local d=$(( ($(date +%s%N) - $1) / 100000000 )); echo "$((d / 10)).$((d % 10))"; }
step() {
  printf '\033[2m(%s s)\033[0m\n\n\033[1m== %s\033[0m\n' "$(since "$phase_began")" "$*"
  phase_began=$(date +%s%N)
}
work=$(mktemp -d)
state=$work/state
up_pid=
cleanup() {
  if [ -n "$up_pid" ]; then
    bin/strata down --dir "$state" --purge || true
  fi
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# capi_status prints what Cluster API says of capi-dev.
capi_status() { bin/strata describe cluster -n demo capi-dev | grep '^Cluster API:'; }

step "validate the Cluster API example offline"
bin/strata profile validate -f examples/capi -f examples/addon-hello.yaml "${packs[@]}" 2>&1 | grep -v '^note: skipped'

step "strata up --capi: the management plane, Cluster API and Strata's local providers"
bin/strata up --capi --dir "$state" "${packs[@]}" > "$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 360); do
  grep -q "^Stop with" "$work/up.log" 2>/dev/null && break
  kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.log"; exit 1; }
  sleep 0.5
done
cat "$work/up.log"
export KUBECONFIG=$state/kubeconfig

step "publish the profiles and a cluster of provider capi (ClusterClass strata-system/local, 2 workers)"
bin/strata apply -f examples/capi/profile-capi-infra.yaml -f examples/addon-hello.yaml
bin/strata apply -n demo -f examples/capi/cluster-capi-dev.yaml

step "Cluster API makes it (Provisioning), then Strata applies its layers from the network up"
for _ in $(seq 1 600); do
  bin/strata get clusters -n demo | grep -q Provisioning && break
  sleep 0.2
done
bin/strata get clusters -n demo
bin/strata wait -n demo capi-dev --timeout 5m
bin/strata describe cluster -n demo capi-dev | sed -n '1,/^Events/p'

step "scale the pool workers 2 → 3: the machineDeployment's replicas"
sed 's/count: 2/count: 3/' examples/capi/cluster-capi-dev.yaml > "$work/capi-dev-3.yaml"
bin/strata apply -n demo -f "$work/capi-dev-3.yaml"
for _ in $(seq 1 180); do
  capi_status | grep -q "workers 3/3" && break
  sleep 1
done
capi_status
capi_status | grep -q "workers 3/3" || { echo "the pool did not reach 3 workers" >&2; exit 1; }
bin/strata cluster kubeconfig -n demo capi-dev > "$state/capi-dev.kubeconfig"
echo "capi-dev's kubeconfig, as Cluster API wrote it: $state/capi-dev.kubeconfig"

step "done"
echo "The Cluster API demo took $(since "$began") s."
if [ -n "${KEEP:-}" ]; then
  grep -E "dashboard:|cluster API:" "$work/up.log"
  echo "Stop it with: bin/strata down --dir $state   (add --purge to remove its state)"
  up_pid=
fi
