#!/usr/bin/env bash
# Builds tools/kstatus (sigs.k8s.io/cli-utils' kstatus as a command) and prints the binary's path.
#
# Cached like tools/build-controlplane.sh: under ~/.cache/rocketmq-operator, in a folder keyed by a hash
# of every input (go.mod, go.sum, main.go, this script, the Go release), built in a temporary folder
# and moved into place under a file lock, so parallel test runs build it once. The module and build
# caches are the control plane's, so a warm machine compiles only what it has not compiled before.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${ROCKETMQ_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rocketmq-operator}
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=local
export GOMODCACHE=${GOMODCACHE_OVERRIDE:-$cache_root/go/mod}
export GOCACHE=${GOCACHE_OVERRIDE:-$cache_root/go/build}
export GOMAXPROCS=${GOMAXPROCS:-2}

go_version=$(go env GOVERSION)
inputs_hash=$(cat "$here/build.sh" "$here/go.mod" "$here/go.sum" "$here/main.go" <(echo "$go_version") |
  sha256sum | cut -c1-12)
dest="$cache_root/kstatus/cli-utils-v0.37.2_${go_version}_$(go env GOOS)-$(go env GOARCH)_$inputs_hash"

if [[ -x "$dest/kstatus" ]]; then
  echo "$dest/kstatus"
  exit 0
fi

mkdir -p "$cache_root/kstatus"
exec 9>"$cache_root/kstatus/.lock"
flock 9
if [[ -x "$dest/kstatus" ]]; then # built by another run while we waited for the lock
  echo "$dest/kstatus"
  exit 0
fi
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "[build-kstatus] building $dest (cold: about two minutes)" >&2
(cd "$here" && go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/kstatus" .) >&2
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "$dest/kstatus"
