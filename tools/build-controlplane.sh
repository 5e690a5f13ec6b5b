#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, etcd, helm) from the Go
# modules pinned in tools/*/go.mod and go.sum, and prints the folder that holds the binaries.
#
# Usage: build-controlplane.sh [MINOR]   (or KUBE_TESTENV_K8S=MINOR)
#   1.36  the default: kube-apiserver and kube-controller-manager from tools/controlplane
#   1.30  the oldest Kubernetes the operator supports (README), from tools/controlplane-1.30; CI runs a
#         subset against it (make test-k8s-oldest). etcd and helm are the same modules for both.
#
# Why a build at all: no package registry ships kube-apiserver or etcd, and the tests must run against
# the real thing, never a mock of it.
#
# The cache folder is keyed by the versions and by a hash of every input that can change a binary
# (go.mod, go.sum, main.go, this script, the Go release), so a changed pin builds into a new folder and
# an old one is never half-overwritten. Building happens in "<dir>.tmp.<pid>" and is moved into place
# last, under a file lock, so parallel runs (pytest-xdist, two terminals) build once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
k8s_minor=${1:-${KUBE_TESTENV_K8S:-1.36}}
case "$k8s_minor" in
  1.36) K8S_VERSION=v1.36.3 k8s_module=controlplane ;;
  1.30) K8S_VERSION=v1.30.14 k8s_module=controlplane-1.30 ;;
  *) echo "build-controlplane.sh: no pinned Kubernetes $k8s_minor (known: 1.36, 1.30)" >&2; exit 2 ;;
esac
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.22.0

cache_root=${ROCKETMQ_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rocketmq-operator}
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=local
# Module and build caches live beside the binaries so "empty ~/.cache/rocketmq-operator" means cold.
export GOMODCACHE=${GOMODCACHE_OVERRIDE:-$cache_root/go/mod}
export GOCACHE=${GOCACHE_OVERRIDE:-$cache_root/go/build}
# Two cores, 24 GiB: the apiserver's generated openapi package alone wants several GiB per compile.
export GOMAXPROCS=${GOMAXPROCS:-2}

go_version=$(go env GOVERSION)
goos=$(go env GOOS)
goarch=$(go env GOARCH)
inputs_hash=$(
  {
    cat "$here/build-controlplane.sh"
    for m in "$k8s_module" etcd helm; do cat "$here/$m/go.mod" "$here/$m/go.sum"; done
    cat "$here/etcd/main.go"
    find "$here/$k8s_module" -name '*.go' -exec cat {} +
    echo "$go_version"
  } | sha256sum | cut -c1-12
)
key="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_${go_version}_${goos}-${goarch}_${inputs_hash}"
dest="$cache_root/controlplane/$key"

complete() { [[ -f "$1/SHA256SUMS" ]] && (cd "$1/bin" && sha256sum --quiet -c ../SHA256SUMS >/dev/null 2>&1); }

if complete "$dest"; then
  echo "$dest/bin"
  exit 0
fi

mkdir -p "$cache_root/controlplane"
# One lock per Kubernetes minor: a cold 1.30 build does not hold up a 1.36 one.
exec 9>"$cache_root/controlplane/.lock-$k8s_minor"
flock 9
if complete "$dest"; then # another run finished the build while we waited for the lock
  echo "$dest/bin"
  exit 0
fi

tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin"
trap 'rm -rf "$tmp"' EXIT

minor=$(cut -d. -f2 <<<"$K8S_VERSION")
major=$(cut -d. -f1 <<<"${K8S_VERSION#v}")
k8s_ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
  k8s_ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
log() { echo "[build-controlplane] $*" >&2; }

log "building kube-apiserver and kube-controller-manager $K8S_VERSION (cold: tens of minutes)"
(cd "$here/$k8s_module" && go build -trimpath -ldflags "$k8s_ld" -o "$tmp/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager) >&2

log "building etcd $ETCD_VERSION"
(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/bin/etcd" .) >&2

log "building helm $HELM_VERSION"
h=helm.sh/helm/v3
helm_ld="-s -w -X $h/internal/version.version=$HELM_VERSION -X $h/internal/version.gitTreeState=clean"
helm_ld+=" -X $h/pkg/chartutil.k8sVersionMajor=$major -X $h/pkg/chartutil.k8sVersionMinor=$minor"
helm_ld+=" -X $h/pkg/lint/rules.k8sVersionMajor=$major -X $h/pkg/lint/rules.k8sVersionMinor=$minor"
(cd "$here/helm" && go build -trimpath -ldflags "$helm_ld" -o "$tmp/bin/helm" "$h/cmd/helm") >&2

# Recorded with the final path, not the temporary one it is built in.
go version -m "$tmp"/bin/* | sed "s#$tmp#$dest#g" >"$tmp/buildinfo.txt"
# SHA256SUMS is written last: its presence marks the folder complete.
(cd "$tmp/bin" && sha256sum -- *) >"$tmp/SHA256SUMS"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "binaries in $dest/bin"
echo "$dest/bin"
