#!/usr/bin/env bash
# Installs promtool at .tools/bin/promtool, for `promtool check metrics` on a live /metrics
# scrape (e2e/provider/envoy-fleet.test.ts). From Debian's `prometheus` package: only the
# promtool binary is taken out of the .deb (`apt-get download` + `dpkg-deb`), because
# installing the package runs its postinst, which on a machine without systemd starts a
# Prometheus server through /etc/init.d. The binary is cached outside the clone
# (${SIGNALBOX_CACHE:-~/.cache/signalbox}/promtool/), so a fresh clone reuses it; a promtool
# already on PATH (the package installed) is used as it is.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SIGNALBOX_CACHE:-$HOME/.cache/signalbox}/promtool"
link="$root/.tools/bin/promtool"
mkdir -p "$root/.tools/bin"

runs() { "$1" --version >/dev/null 2>&1; }

# a promtool on PATH that is not our own link
sys="$(PATH="$(printf %s "$PATH" | tr : '\n' | grep -vxF "$root/.tools/bin" | paste -sd:)" command -v promtool || true)"
if [ -n "$sys" ] && runs "$sys"; then
  bin="$sys"
elif runs "$cache/bin/promtool"; then
  bin="$cache/bin/promtool"
else
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "promtool: needs apt-get and dpkg-deb (Debian's prometheus package), or a promtool on PATH" >&2
    exit 1
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  opts=()
  # as root apt would hand the download to the _apt user, who cannot write to $tmp
  [ "$(id -u)" = 0 ] && opts=(-o APT::Sandbox::User=root)
  echo "promtool: downloading Debian's prometheus package (for promtool only)" >&2
  (cd "$tmp" && apt-get "${opts[@]}" download prometheus >&2) ||
    { sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
      $sudo apt-get update >&2 && (cd "$tmp" && apt-get "${opts[@]}" download prometheus >&2); }
  deb="$(ls "$tmp"/prometheus_*.deb | head -n1)"
  mkdir -p "$tmp/x" "$cache/bin"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" ./usr/bin/promtool
  mv "$tmp/x/usr/bin/promtool" "$cache/bin/promtool.new"
  mv "$cache/bin/promtool.new" "$cache/bin/promtool"
  bin="$cache/bin/promtool"
  runs "$bin" || { echo "promtool: $bin does not run here" >&2; exit 1; }
fi
ln -sf "$bin" "$link"
echo "promtool: $("$link" --version 2>&1 | head -n1)" >&2
