#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries from the Go module proxy into
# a cache folder keyed by version, and does nothing for binaries already there.
#
#   hack/kube/build.sh [OUT_ROOT [MODULE]]
#
# OUT_ROOT defaults to bin/kube. MODULE is the Go module whose go.mod names the
# k8s.io/kubernetes version: hack/kube (the default version) unless given, e.g.
# hack/kube-previous for the version an upgrade starts from. Another module
# builds only the three Kubernetes commands; etcd, kwok and the stages do not
# depend on the Kubernetes version and are copied from the default build.
#
# Result: OUT_ROOT/<k8s version>/{kube-apiserver,kube-controller-manager,
# kube-scheduler,etcd,kwok,stages/}
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out_root=${1:-$root/bin/kube}
module=$(cd "${2:-$here}" && pwd)
# Absolute, since the builds below run inside the module.
mkdir -p "$out_root" && out_root=$(cd "$out_root" && pwd)
kwok_version=v0.8.0

k8s_version_of() { awk '$1 == "k8s.io/kubernetes" {print $2; exit} $1 == "require" && $2 == "k8s.io/kubernetes" {print $3; exit}' "$1/go.mod"; }
k8s_version=$(k8s_version_of "$module")
[ -n "$k8s_version" ] || { echo "hack/kube/build.sh: no k8s.io/kubernetes version in $module/go.mod" >&2; exit 1; }
out=$out_root/$k8s_version
mkdir -p "$out"

minor=${k8s_version#v*.}; minor=${minor%%.*}
major=${k8s_version#v}; major=${major%%.*}
# The same stamps the official release build sets; without them the API server
# reports v0.0.0-master and charts with kubeVersion constraints refuse to install.
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

build() { # name package
  local name=$1 pkg=$2
  if [ -x "$out/$name" ]; then return; fi
  echo "building $name $k8s_version (first time only; the whole set takes about 6 minutes)" >&2
  (cd "$module" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
}

build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler

if [ "$module" != "$here" ]; then
  default_out=$("$0" "$out_root" | tail -n 1)
  for name in etcd kwok stages; do
    [ -e "$out/$name" ] || cp -R "$default_out/$name" "$out/$name"
  done
  echo "$out"
  exit 0
fi

build etcd ./etcd

if [ ! -x "$out/kwok" ]; then
  echo "building kwok $kwok_version" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  GOBIN=$tmp CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"
  mv "$tmp/kwok" "$out/kwok"
fi

if [ ! -d "$out/stages" ]; then
  # kwok's "fast" stages move fake nodes and pods to Ready at once; the
  # lease heartbeat keeps nodes Ready for the node lifecycle controller.
  kwok_dir=$(cd "$here" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@$kwok_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$out/stages.tmp"
  stage=$kwok_dir/kustomize/stage
  cp "$stage/node/fast/node-initialize.yaml" "$stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "$stage/pod/fast/pod-ready.yaml" "$stage/pod/fast/pod-complete.yaml" "$stage/pod/fast/pod-delete.yaml" \
     "$out/stages.tmp/"
  chmod u+w "$out"/stages.tmp/*
  mv "$out/stages.tmp" "$out/stages"
fi

echo "$out"
