#!/usr/bin/env bash
# Builds the test binaries of the local world (kube-apiserver, kube-controller-manager, etcd)
# from their Go modules into .cache/kube/<version>/bin. No registry ships these binaries, and
# envtest's downloader needs hosts this project cannot reach, so they are built from source once
# and reused until the pinned versions change. KUBEBUILDER_ASSETS, when set, wins: then nothing
# is built.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${ROTATOR_KUBE_CACHE:-$root/.cache/kube}/${KUBE_VERSION}-etcd${ETCD_VERSION}"
bin="$cache/bin"

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS: using those binaries, building nothing"
  exit 0
fi
if [[ -x "$bin/kube-apiserver" && -x "$bin/kube-controller-manager" && -x "$bin/etcd" ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache/src" "$bin"
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
export GOPATH="${GOPATH:-$(go env GOPATH)}"

# Kubernetes' own go.mod points every staging module (k8s.io/api, client-go, ...) at v0.0.0 and a
# local path; a consumer must replace each one with the published v0.Y.Z tag.
kube_src="$cache/src/kube"
mkdir -p "$kube_src"
cd "$kube_src"
if [[ ! -f go.mod ]]; then
  go mod init rotator.local/kubebuild >/dev/null 2>&1
  staging_version="v0${KUBE_VERSION#v1}"
  modfile="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  go_line="$(grep -m1 '^go ' "$modfile")"
  sed -i "s/^go .*/$go_line/" go.mod
  {
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo "replace ("
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$modfile" | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >> go.mod
  cat > tools.go <<'GO'
//go:build tools

package kubebuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
GO
  go mod tidy >/dev/null
fi
go build -tags providerless -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION}" \
  -o "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -tags providerless -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION}" \
  -o "$bin/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager

etcd_src="$cache/src/etcd"
mkdir -p "$etcd_src"
cd "$etcd_src"
if [[ ! -f go.mod ]]; then
  go mod init rotator.local/etcdbuild >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null 2>&1
  go mod tidy >/dev/null
fi
go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .
echo "$bin"
