#!/usr/bin/env bash
# Builds the real Kubernetes test stack binaries from the Go module proxy and
# fetches the Gateway API CRDs. See e2e/k8s/README.md.
#
#   e2e/k8s/build.sh
#
# Produces (paths relative to the repository root):
#   .tools/bin/kube-apiserver, .tools/bin/etcd, .tools/bin/kubectl
#       symlinks into ${SIGNALBOX_CACHE:-$HOME/.cache/signalbox}/k8s/<key>/bin/
#   .tools/gateway-api-crds/{standard,experimental}/*.yaml
#   .tools/k8s-versions.env   (versions of what was built, for other scripts)
#
# <key> hashes go.mod, go.sum, the cmd/ mains, the build recipe and the Go
# version, so a fresh clone on the same machine reuses the binaries at once.
# GOMODCACHE and GOCACHE stay at Go's defaults, outside the clone.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$HERE/versions.env"

TOOLS="$ROOT/.tools"
CACHE_ROOT="${SIGNALBOX_CACHE:-$HOME/.cache/signalbox}/k8s"
BINARIES=(kube-apiserver etcd kubectl kube-controller-manager)

die() { echo "build.sh: ERROR: $*" >&2; exit 1; }
now() { echo "${EPOCHREALTIME/,/.}"; }
STEP="" STEP_T0=""
step() { STEP="$1"; STEP_T0="$(now)"; echo "==> $STEP"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
done_step() { echo "    done in $(since "$STEP_T0")s: $STEP"; }
on_exit() { local rc=$?; [ $rc -eq 0 ] || echo "build.sh: FAILED (exit $rc) during step: ${STEP:-setup}" >&2; }
trap on_exit EXIT

command -v go >/dev/null || die "go is not on PATH (need Go >= 1.25)"
T_ALL="$(now)"

# ---------------------------------------------------------------- versions
K8S_VERSION="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3} $1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2}' "$HERE/go.mod" | head -1)"
[[ "$K8S_VERSION" =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "cannot read the k8s.io/kubernetes version from $HERE/go.mod (got '$K8S_VERSION')"
K8S_MAJOR="${BASH_REMATCH[1]}" K8S_MINOR="${BASH_REMATCH[2]}"
ETCD_VERSION="$(cd "$HERE" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)" \
  || die "cannot resolve the etcd version (go list -m go.etcd.io/etcd/server/v3 failed)"
GO_VERSION="$(go env GOVERSION)"

# The build recipe: anything here changes the cache key.
TAGS="selinux,notest,grpcnotrace"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$K8S_MAJOR -X $pkg.gitMinor=$K8S_MINOR"
  LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

KEY_HASH="$( { cat "$HERE/go.mod" "$HERE/go.sum"; for b in "${BINARIES[@]}"; do cat "$HERE/cmd/$b/main.go"; done
              echo "$GO_VERSION|CGO_ENABLED=0|$TAGS|$LDFLAGS|-trimpath"; } | sha256sum | cut -c1-16)"
KEY="$K8S_VERSION-$KEY_HASH"
CACHE="$CACHE_ROOT/$KEY"
echo "Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, Gateway API $GATEWAY_API_VERSION, $GO_VERSION"
echo "Cache: $CACHE"

mkdir -p "$CACHE/bin" "$TOOLS/bin"
# One build at a time per cache entry (two clones building at once share it).
exec 9>"$CACHE/.lock"
flock 9

# ---------------------------------------------------------------- binaries
missing=()
for b in "${BINARIES[@]}"; do [ -x "$CACHE/bin/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "==> binaries: cached (${BINARIES[*]})"
else
  step "go mod download (module cache: $(go env GOMODCACHE))"
  (cd "$HERE" && go mod download) || die "go mod download failed: is the Go module proxy reachable? ($(go env GOPROXY))"
  done_step

  step "go build ${missing[*]} (cold: minutes; build cache: $(go env GOCACHE))"
  tmp="$(mktemp -d "$CACHE/.build.XXXXXX")"
  pkgs=(); for b in "${missing[@]}"; do pkgs+=("./cmd/$b"); done
  if ! (cd "$HERE" && CGO_ENABLED=0 nice -n 10 go build -trimpath -buildvcs=false -tags "$TAGS" -ldflags "$LDFLAGS" -o "$tmp/" "${pkgs[@]}"); then
    rm -rf "$tmp"; die "go build failed for: ${missing[*]} (see the compiler output above)"
  fi
  for b in "${missing[@]}"; do mv -f "$tmp/$b" "$CACHE/bin/$b"; done
  rm -rf "$tmp"
  done_step
fi

step "link binaries into .tools/bin"
for b in "${BINARIES[@]}"; do ln -sfn "$CACHE/bin/$b" "$TOOLS/bin/$b"; done
"$TOOLS/bin/kube-apiserver" --version | grep -qx "Kubernetes $K8S_VERSION" \
  || die "kube-apiserver reports '$("$TOOLS/bin/kube-apiserver" --version)', expected 'Kubernetes $K8S_VERSION'"
"$TOOLS/bin/etcd" --version >/dev/null || die "etcd --version failed"
"$TOOLS/bin/kubectl" version --client >/dev/null || die "kubectl version --client failed"
done_step

# ---------------------------------------------------------------- Gateway API CRDs
step "Gateway API CRDs $GATEWAY_API_VERSION"
gw_json="$(cd / && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")" \
  || die "go mod download sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION failed: $gw_json"
gw_dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$gw_json")"
[ -d "$gw_dir/config/crd/standard" ] || die "no config/crd/standard in '$gw_dir' (go mod download said: $gw_json)"
for channel in standard experimental; do
  dst="$TOOLS/gateway-api-crds/$channel"
  rm -rf "$dst"; mkdir -p "$dst"
  # kustomization.yaml is no Kubernetes object: leave it out so 'kubectl apply -f DIR' works.
  find "$gw_dir/config/crd/$channel" -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml -exec cp {} "$dst/" \;
  chmod u+w "$dst"/*.yaml
  echo "    $channel: $(find "$dst" -name '*.yaml' | wc -l) files in .tools/gateway-api-crds/$channel"
done
done_step

cat >"$TOOLS/k8s-versions.env" <<EOF
# Written by e2e/k8s/build.sh
K8S_VERSION=$K8S_VERSION
ETCD_VERSION=$ETCD_VERSION
GATEWAY_API_VERSION=$GATEWAY_API_VERSION
K8S_CACHE_DIR=$CACHE
EOF
echo "==> all done in $(since "$T_ALL")s"
