#!/usr/bin/env bash
# Restarts only the kube-apiserver of e2e/k8s/start.sh, keeping etcd (and so all
# objects), the port, the certificates and the kubeconfig; waits until /readyz is ok.
#
#   e2e/k8s/restart-apiserver.sh [--kill] [--down=SECONDS] [DIR]
#
# The API server gets SIGTERM (graceful: open watches are closed within 2 s) or,
# with --kill, SIGKILL (a crash: connections just break). --down=SECONDS keeps it
# down that long before starting it again (for tests of watch/reconnect behaviour).
# DIR defaults to .tools/run/k8s.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOWN=0 SIG=TERM DIR_ARG=""
for a in "$@"; do
  case "$a" in
    --down=*) DOWN="${a#--down=}" ;;
    --kill) SIG=KILL ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) k8s_die "unknown option $a" ;;
    *) DIR_ARG="$a" ;;
  esac
done
d="${DIR_ARG:-$K8S_DEFAULT_DIR}"
[ -f "$d/cluster.env" ] || k8s_die "no cluster in $d: run e2e/k8s/start.sh first"
DIR="$(cd "$d" && pwd)"
k8s_need_bins
k8s_pid_alive "$DIR" etcd || k8s_die "etcd does not run for $DIR: use e2e/k8s/start.sh --keep-data $DIR_ARG"

T0="$(k8s_now)"
k8s_stop_proc "$DIR" kube-apiserver "$SIG"
[ "$DOWN" = 0 ] || sleep "$DOWN"
t="$(k8s_now)"
k8s_start_apiserver "$DIR"
k8s_wait_ready "$DIR" 60
k8s_log "kube-apiserver ready again, pid $(cat "$DIR/kube-apiserver.pid"), started in $(k8s_since "$t")s (restart took $(k8s_since "$T0")s)"
