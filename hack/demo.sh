#!/usr/bin/env bash
# The demo: Strata's main job end to end on this machine, with nothing but Go.
# It checks the real packs and the example profiles, starts `strata up` (a
# local management plane with the controllers), publishes the profiles and
# two local clusters, follows them until Ready, then publishes a new version
# of an add-on profile in two waves: the Automatic cluster converges and
# soaks, then the Manual one shows the plan and converges once approved. Last, a fixed build of a pack is
# pushed again to strata up's registry: the clusters see the new digest.
#
#   hack/demo.sh            stops everything at the end
#   KEEP=1 hack/demo.sh     leaves strata up running, and says how to stop it
set -euo pipefail
cd "$(dirname "$0")/.."

community=../shared/testdata/pack-central
[ -d "$community" ] || { echo "demo: $community is missing (the community packs live beside the repository)" >&2; exit 1; }
packs=(--packs packs --packs "$community")
began=$(date +%s%N)
phase_began=$began
# tenths of a second since $1 (nanoseconds), as "12.3"
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

step "strata version"
bin/strata version

step "lint the packs: Strata's own and the community's"
bin/strata pack lint packs "$community" | grep -v '^warning:' || true

step "validate the example profiles and clusters offline"
bin/strata profile validate -f examples "${packs[@]}"

step "strata up: a local management plane with Strata's controllers"
bin/strata up --dir "$state" "${packs[@]}" > "$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 240); do
  grep -q "^Stop with" "$work/up.log" 2>/dev/null && break
  kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.log"; exit 1; }
  sleep 0.5
done
cat "$work/up.log"
export KUBECONFIG=$state/kubeconfig

step "publish the profiles (shared by every project) and two local clusters in project demo"
bin/strata apply -f examples/infra-local.yaml -f examples/addon-hello.yaml -f examples/addon-registry.yaml
bin/strata apply -n demo -f examples/cluster-dev.yaml -f examples/cluster-qa.yaml

step "dev follows its profiles at once: a control plane starts, then its layers"
bin/strata wait -n demo dev --timeout 5m

step "qa waits for approval, even of its first install: the plan, then approve"
bin/strata wait -n demo qa --timeout 2m > /dev/null
bin/strata cluster plan -n demo qa | sed -n '1,20p'   # (sed reads it all: no SIGPIPE)
bin/strata cluster approve -n demo qa
bin/strata wait -n demo qa --profile hello-apps@1.0.0 --timeout 5m

step "the fleet"
bin/strata get clusters -n demo
bin/strata describe cluster -n demo dev | sed -n '1,/^Events/p'

step "the platform team publishes hello-apps 1.1.0 (API backend, masked credentials), rolled out in waves: dev, then qa"
bin/strata apply -f examples/releases/hello-apps-1.1.0.yaml
bin/strata wait -n demo --profile hello-apps@1.1.0 --timeout 5m

step "dev (Automatic) ran 1.1.0 healthy for its wave's soak; then qa's turn came: Manual, it shows the update and waits"
bin/strata rollout status hello-apps 1.1.0 -n strata-system
bin/strata get clusters -n demo
bin/strata cluster plan -n demo qa | sed -n '1,40p'

step "approve qa: it converges to exactly that plan"
bin/strata cluster approve -n demo qa
bin/strata wait -n demo qa --profile hello-apps@1.1.0 --timeout 5m
for _ in $(seq 1 60); do
  bin/strata rollout status hello-apps 1.1.0 -n strata-system | grep -q ": Completed" && break
  sleep 1
done
bin/strata rollout status hello-apps 1.1.0 -n strata-system
bin/strata get clusters -n demo
bin/strata cluster kubeconfig -n demo qa > "$state/qa.kubeconfig"
echo "qa's own kubeconfig: $state/qa.kubeconfig (strata cluster kubeconfig -n demo qa)"

step "a fixed build of pack hello-universe 1.2.0 is pushed again to the registry (strata pack push --force)"
registry=$(grep -m1 -oE 'oci://[0-9.:]+/[a-z]+' "$work/up.log")
rebuilt=$work/rebuilt/hello-universe-1.2.0
mkdir -p "$rebuilt" && cp -r "$community/hello-universe-1.2.0/." "$rebuilt/"
echo "Rebuilt with a fix." > "$rebuilt/NOTES.md"
pushed=$(bin/strata pack push "$rebuilt" "$registry" --plain-http --force -o json)
digest=$(grep -m1 -oE '"digest": "sha256:[0-9a-f]+"' <<<"$pushed" | grep -oE 'sha256:[0-9a-f]+')
echo "hello-universe 1.2.0 is now $digest in $registry"
for _ in $(seq 1 120); do
  bin/strata get clusters -n demo -o json | grep -q "$digest" && break
  sleep 1
done
bin/strata get clusters -n demo -o json | grep -q "$digest" || { echo "dev did not pick up $digest" >&2; exit 1; }
echo "dev (Automatic) runs the new build; qa (Manual) shows it and waits:"
for _ in $(seq 1 120); do
  bin/strata cluster plan -n demo qa 2>/dev/null | grep -q "pushed again" && break
  sleep 1
done
bin/strata cluster plan -n demo qa | sed -n '1,6p'
bin/strata cluster approve -n demo qa
bin/strata wait -n demo qa --timeout 5m
bin/strata get packs -n demo

step "done"
echo "The dashboard showed the same fleet at $(grep -m1 -oE 'http://[0-9.:]+/' "$work/up.log") — run KEEP=1 make demo to keep it up."
echo "The demo took $(since "$began") s."
if [ -n "${KEEP:-}" ]; then
  grep -E "dashboard:|metrics:|health:" "$work/up.log"
  echo "strata up keeps running with the clusters: KUBECONFIG=$KUBECONFIG bin/strata get clusters -n demo"
  echo "Stop it with: bin/strata down --dir $state   (add --purge to remove its state)"
  up_pid=
fi
