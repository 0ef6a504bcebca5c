#!/usr/bin/env bash
# Builds the Gateway API conformance suite's binaries from the Go module proxy. See
# conformance/README.md.
#
#   conformance/build.sh
#
# Produces (relative to the repository root), each a symlink into
# ${SIGNALBOX_CACHE:-$HOME/.cache/signalbox}/conformance/<name>-<key>/:
#   .tools/bin/gateway-conformance.test  the upstream suite (TestConformance of this module)
#   .tools/bin/echo-basic                the suite's echo server (its package main)
#   .tools/bin/podrunner                 scheduler + kubelet stand-in (podrunner/)
#   .tools/bin/coredns                   CoreDNS for the suite's UDP backend pod (coredns/)
#
# <key> hashes the binary's module files (go.mod, go.sum), its sources here, the build
# recipe and the Go version: another clone on the same machine links them at once, a
# change builds again with Go's build cache. GOMODCACHE and GOCACHE stay at Go's defaults,
# outside the clone.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TOOLS="$ROOT/.tools"
CACHE_ROOT="${SIGNALBOX_CACHE:-$HOME/.cache/signalbox}/conformance"

die() { echo "conformance/build.sh: ERROR: $*" >&2; exit 1; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
command -v go >/dev/null || die "go is not on PATH (need Go >= 1.26)"
T_ALL="$(now)"
GO_VERSION="$(go env GOVERSION)"
LDFLAGS="-s -w"
mkdir -p "$TOOLS/bin" "$CACHE_ROOT"

# build NAME MODULE_DIR MODE PACKAGE SOURCES...   (MODE: test = 'go test -c', bin = 'go build')
build() {
  local name="$1" mod="$2" mode="$3" pkg="$4"; shift 4
  local key
  key="$( { cat "$mod/go.mod" "$mod/go.sum" "$@"; echo "$GO_VERSION|CGO_ENABLED=0|$mode|$pkg|$LDFLAGS|-trimpath"; } | sha256sum | cut -c1-16)"
  local dir="$CACHE_ROOT/$name-$key"
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if [ -x "$dir/$name" ]; then
    echo "==> $name: cached ($dir)"
  else
    local t0; t0="$(now)"
    echo "==> $name: building $pkg (build cache: $(go env GOCACHE))"
    (cd "$mod" && go mod download) || die "go mod download in $mod failed: is the Go module proxy reachable? ($(go env GOPROXY))"
    local tmp="$dir/.build.$$"
    if [ "$mode" = test ]; then
      (cd "$mod" && CGO_ENABLED=0 nice -n 10 go test -c -trimpath -buildvcs=false -ldflags "$LDFLAGS" -o "$tmp" "$pkg") \
        || { rm -f "$tmp"; die "go test -c $pkg failed (see the compiler output above)"; }
    else
      (cd "$mod" && CGO_ENABLED=0 nice -n 10 go build -trimpath -buildvcs=false -ldflags "$LDFLAGS" -o "$tmp" "$pkg") \
        || { rm -f "$tmp"; die "go build $pkg failed (see the compiler output above)"; }
    fi
    mv -f "$tmp" "$dir/$name"
    echo "    done in $(since "$t0")s"
  fi
  exec 9>&-
  ln -sfn "$dir/$name" "$TOOLS/bin/$name"
}

build gateway-conformance.test "$HERE" test . "$HERE/conformance_test.go"
build echo-basic "$HERE" bin sigs.k8s.io/gateway-api/conformance/echo-basic
build podrunner "$HERE" bin ./podrunner $(ls "$HERE"/podrunner/*.go | grep -v _test.go)
build coredns "$HERE/coredns" bin . "$HERE/coredns/main.go"

"$TOOLS/bin/gateway-conformance.test" -test.list 'TestConformance' | grep -qx TestConformance \
  || die "gateway-conformance.test does not list TestConformance"
echo "==> all done in $(since "$T_ALL")s"
