#!/usr/bin/env bash
# Stops the kube-controller-manager, kube-apiserver and etcd of e2e/k8s/start.sh (SIGTERM, SIGKILL after 15 s).
#
#   e2e/k8s/stop.sh [--clean] [DIR]
#
# DIR defaults to .tools/run/k8s. --clean also removes DIR afterwards.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLEAN=0 DIR_ARG=""
for a in "$@"; do
  case "$a" in
    --clean) CLEAN=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    -*) k8s_die "unknown option $a" ;;
    *) DIR_ARG="$a" ;;
  esac
done
d="${DIR_ARG:-$K8S_DEFAULT_DIR}"
[ -d "$d" ] || { k8s_log "nothing to stop: $d does not exist"; exit 0; }
DIR="$(cd "$d" && pwd)"

k8s_stop_proc "$DIR" kube-controller-manager
k8s_stop_proc "$DIR" kube-apiserver
k8s_stop_proc "$DIR" etcd
if [ "$CLEAN" = 1 ]; then
  rm -rf "$DIR"
  k8s_log "removed $DIR"
fi
