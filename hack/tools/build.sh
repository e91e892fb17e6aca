#!/usr/bin/env bash
# Builds the tools tests run beside Strata — the CNCF Distribution registry
# and the oras CLI — from the Go module proxy into OUT (default bin/tools);
# does nothing for a tool already there.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/bin/tools}
mkdir -p "$out" && out=$(cd "$out" && pwd)

build() { # name module@version
  if [ -x "$out/$1" ]; then return; fi
  echo "building $1 ($2; first time only)" >&2
  GOBIN="$out" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$2"
}

build registry github.com/distribution/distribution/v3/cmd/registry@v3.1.2
build oras oras.land/oras/cmd/oras@v1.3.6
