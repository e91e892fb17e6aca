#!/usr/bin/env bash
# Builds Cluster API's core manager from the Go module proxy into a cache
# folder keyed by version, with the CRDs and webhook configuration of the
# same module beside it; does nothing when they are already there.
#
#   hack/capi/build.sh [OUT_ROOT]     (default OUT_ROOT: bin/capi)
#
# Result: OUT_ROOT/<version>/{cluster-api-manager,crds/*.yaml,webhook/manifests.yaml}
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out_root=${1:-$root/bin/capi}
mkdir -p "$out_root" && out_root=$(cd "$out_root" && pwd)

capi_version=$(awk '$1 == "sigs.k8s.io/cluster-api" {print $2; exit} $1 == "require" && $2 == "sigs.k8s.io/cluster-api" {print $3; exit}' "$here/go.mod")
[ -n "$capi_version" ] || { echo "hack/capi/build.sh: no sigs.k8s.io/cluster-api version in $here/go.mod" >&2; exit 1; }
out=$out_root/$capi_version
mkdir -p "$out"

if [ ! -x "$out/cluster-api-manager" ]; then
  echo "building Cluster API's manager $capi_version (first time only; about 4 minutes)" >&2
  # The module's own version stamp, so the manager reports what it is.
  ldflags="-s -w -X sigs.k8s.io/cluster-api/version.gitVersion=$capi_version"
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/cluster-api-manager.tmp" sigs.k8s.io/cluster-api)
  mv "$out/cluster-api-manager.tmp" "$out/cluster-api-manager"
fi

if [ ! -d "$out/crds" ] || [ ! -f "$out/webhook/manifests.yaml" ]; then
  mod_dir=$(cd "$here" && go list -m -f '{{.Dir}}' sigs.k8s.io/cluster-api)
  rm -rf "$out/crds.tmp" "$out/webhook"
  mkdir -p "$out/crds.tmp" "$out/webhook"
  cp "$mod_dir"/config/crd/bases/*.yaml "$out/crds.tmp/"
  cp "$mod_dir/config/webhook/manifests.yaml" "$out/webhook/"
  chmod -R u+w "$out/crds.tmp" "$out/webhook"
  mv "$out/crds.tmp" "$out/crds"
fi

echo "$out"
