#!/usr/bin/env bash
# Moves the wrapper module to another Kubernetes release: rewrites go.mod so that it
# requires k8s.io/kubernetes VERSION and replaces every staging module that
# release's go.mod points at ./staging/... with the matching k8s.io/NAME v0.N.P,
# then runs go mod tidy. Review and commit go.mod/go.sum, then run build.sh.
#
#   e2e/k8s/update-k8s.sh v1.35.4
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "update-k8s.sh: ERROR: $*" >&2; exit 1; }

VERSION="${1:-}"
[[ "$VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "usage: $0 v1.N.P"
STAGING="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

json="$(cd / && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$VERSION")" \
  || die "the Go module proxy does not serve k8s.io/kubernetes@$VERSION: $json"
gomod="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
[ -f "$gomod" ] || die "no go.mod for k8s.io/kubernetes@$VERSION ($json)"
mapfile -t staging < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod" | sort -u)
[ ${#staging[@]} -gt 0 ] || die "no ./staging replace directives in $gomod"
go_line="$(awk '$1 == "go" {print $2; exit}' "$gomod")"
godebug_line="$(awk '$1 == "godebug" {print $2; exit}' "$gomod")"

cd "$HERE"
{
  sed -n '1,/^module /p' go.mod
  echo
  echo "go $go_line"
  [ -z "$godebug_line" ] || { echo; echo "godebug $godebug_line"; }
  echo
  echo "require k8s.io/kubernetes $VERSION"
  echo
  echo "replace ("
  for m in "${staging[@]}"; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING"; done
  echo ")"
} >go.mod.new
mv go.mod.new go.mod
rm -f go.sum
# The mains import client-go, component-base and kubectl directly: ask for the release's
# staging version rather than the v0.0.0 placeholder k8s.io/kubernetes requires.
go mod edit -require="k8s.io/client-go@$STAGING" -require="k8s.io/component-base@$STAGING" \
  -require="k8s.io/kubectl@$STAGING"
go mod tidy || die "go mod tidy failed: check that the proxy serves the $STAGING staging modules"
echo "go.mod now requires k8s.io/kubernetes $VERSION with ${#staging[@]} staging modules at $STAGING;"
echo "etcd: $(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3). Next: e2e/k8s/build.sh"
