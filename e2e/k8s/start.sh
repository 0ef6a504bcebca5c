#!/usr/bin/env bash
# Starts a local etcd + kube-apiserver on 127.0.0.1 and installs the Gateway API CRDs.
#
#   e2e/k8s/start.sh [--keep-data] [--crds=standard|experimental|none]
#                    [--with-controller-manager] [DIR]
#
# DIR (default .tools/run/k8s) holds the state: pki/, etcd/ (data), kubeconfig,
# cluster.env (ports, KUBECONFIG), *.log and *.pid. Without --keep-data the etcd
# data and certificates are made anew, so every start is a fresh, empty cluster.
# Ports are random free ones unless ETCD_PORT / ETCD_PEER_PORT / APISERVER_PORT
# are set. Extra kube-apiserver flags: SIGNALBOX_APISERVER_EXTRA_ARGS.
# --with-controller-manager also runs kube-controller-manager (namespace deletion,
# garbage collection, EndpointSlices of selector Services, ...; no scheduler or kubelet
# runs, so Pods stay Pending); its controllers: SIGNALBOX_KCM_CONTROLLERS (default "*"),
# extra flags: SIGNALBOX_KCM_EXTRA_ARGS.
# Needs the binaries of e2e/k8s/build.sh. Stop with e2e/k8s/stop.sh [DIR].
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KEEP_DATA=0 CRDS=standard KCM=0 DIR_ARG=""
for a in "$@"; do
  case "$a" in
    --keep-data) KEEP_DATA=1 ;;
    --with-controller-manager) KCM=1 ;;
    --crds=*) CRDS="${a#--crds=}" ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) k8s_die "unknown option $a" ;;
    *) DIR_ARG="$a" ;;
  esac
done
case "$CRDS" in standard|experimental|none) ;; *) k8s_die "--crds must be standard, experimental or none" ;; esac

T0="$(k8s_now)"
if [ "$KCM" = 1 ]; then k8s_need_bins kube-controller-manager; else k8s_need_bins; fi
command -v openssl >/dev/null || k8s_die "openssl is not on PATH (apt-get install -y openssl)"
command -v curl >/dev/null || k8s_die "curl is not on PATH (apt-get install -y curl)"
DIR="$(k8s_dir "$DIR_ARG")"
for p in etcd kube-apiserver kube-controller-manager; do
  if k8s_pid_alive "$DIR" "$p"; then
    k8s_die "$p already runs for $DIR (pid $(cat "$DIR/$p.pid")): run e2e/k8s/stop.sh $DIR_ARG first"
  fi
done
# On any failure from here on, leave nothing running.
on_exit() { local rc=$?; if [ $rc -ne 0 ]; then k8s_stop_proc "$DIR" kube-controller-manager; k8s_stop_proc "$DIR" kube-apiserver; k8s_stop_proc "$DIR" etcd; fi; }
trap on_exit EXIT

# ---------------------------------------------------------------- state, ports
if [ "$KEEP_DATA" = 1 ] && [ -f "$DIR/cluster.env" ]; then
  # shellcheck source=/dev/null
  source "$DIR/cluster.env"
  KCM_PORT="${KCM_PORT:-$(k8s_free_port)}"
else
  rm -rf "$DIR/etcd" "$DIR/pki" "$DIR/kubeconfig" "$DIR/cluster.env"
  ETCD_PORT="${ETCD_PORT:-$(k8s_free_port)}"
  ETCD_PEER_PORT="${ETCD_PEER_PORT:-$(k8s_free_port)}"
  APISERVER_PORT="${APISERVER_PORT:-$(k8s_free_port)}"
  KCM_PORT="${KCM_PORT:-$(k8s_free_port)}"
fi
for f in etcd kube-apiserver kube-controller-manager kubectl-apply; do : >"$DIR/$f.log"; done

# ---------------------------------------------------------------- certificates
if [ ! -f "$DIR/pki/admin.crt" ]; then
  t="$(k8s_now)"
  mkdir -p "$DIR/pki"
  (
    cd "$DIR/pki"
    umask 077
    ossl() { openssl "$@" 2>>openssl.log || { cat openssl.log >&2; k8s_die "openssl $1 failed"; }; }
    ec() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
    ec ca.key
    ossl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=signalbox-e2e-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
    sign() { # sign NAME SUBJECT EXTFILE-CONTENT
      ec "$1.key"
      ossl req -new -key "$1.key" -subj "$2" -out "$1.csr"
      printf '%s\n' "$3" >"$1.ext"
      ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
        -extfile "$1.ext" -out "$1.crt"
      rm -f "$1.csr" "$1.ext"
    }
    sign apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    sign admin "/O=system:masters/CN=signalbox-e2e-admin" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    ec sa.key
    ossl pkey -in sa.key -pubout -out sa.pub
    chmod 644 ./*.crt sa.pub
  )
  k8s_log "certificates in $DIR/pki ($(k8s_since "$t")s)"
fi

cat >"$DIR/cluster.env" <<EOF
# Written by e2e/k8s/start.sh; sourced by the other e2e/k8s scripts.
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
APISERVER_PORT=$APISERVER_PORT
KCM_PORT=$KCM_PORT
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
KUBECONFIG=$DIR/kubeconfig
EOF

cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: signalbox-e2e
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $DIR/pki/ca.crt
users:
- name: signalbox-e2e-admin
  user:
    client-certificate: $DIR/pki/admin.crt
    client-key: $DIR/pki/admin.key
contexts:
- name: signalbox-e2e
  context:
    cluster: signalbox-e2e
    user: signalbox-e2e-admin
    namespace: default
current-context: signalbox-e2e
EOF

# ---------------------------------------------------------------- etcd
t="$(k8s_now)"
k8s_spawn "$DIR" etcd \
  --name=signalbox-e2e \
  --data-dir="$DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="signalbox-e2e=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true
for i in $(seq 1 150); do
  k8s_pid_alive "$DIR" etcd || { tail -n 30 "$DIR/etcd.log" >&2; k8s_die "etcd exited (log: $DIR/etcd.log)"; }
  [ "$(curl -s --max-time 1 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null)" = '{"health":"true","reason":""}' ] && break
  [ "$i" = 150 ] && { tail -n 30 "$DIR/etcd.log" >&2; k8s_die "etcd not healthy after 30 s (log: $DIR/etcd.log)"; }
  sleep 0.2
done
k8s_log "etcd ready on 127.0.0.1:$ETCD_PORT, pid $(cat "$DIR/etcd.pid") ($(k8s_since "$t")s)"

# ---------------------------------------------------------------- kube-apiserver
t="$(k8s_now)"
k8s_start_apiserver "$DIR"
k8s_wait_ready "$DIR" 60
k8s_log "kube-apiserver ready on https://127.0.0.1:$APISERVER_PORT, pid $(cat "$DIR/kube-apiserver.pid") ($(k8s_since "$t")s)"

# ---------------------------------------------------------------- Gateway API CRDs
if [ "$CRDS" != none ]; then
  t="$(k8s_now)"
  [ -d "$K8S_CRDS/$CRDS" ] || k8s_die "$K8S_CRDS/$CRDS is missing: run e2e/k8s/build.sh first"
  # Server-side apply: the CRDs are too large for the last-applied annotation.
  k8s_kubectl "$DIR" apply --server-side --force-conflicts --field-manager=signalbox-e2e \
    -f "$K8S_CRDS/$CRDS/" >>"$DIR/kubectl-apply.log" 2>&1 \
    || { cat "$DIR/kubectl-apply.log" >&2; k8s_die "applying the Gateway API CRDs failed"; }
  crds="$(k8s_kubectl "$DIR" get -f "$K8S_CRDS/$CRDS/" -o name | grep '^customresourcedefinition\.')" \
    || k8s_die "no CustomResourceDefinitions found in $K8S_CRDS/$CRDS"
  # shellcheck disable=SC2086
  k8s_kubectl "$DIR" wait --for=condition=Established --timeout=60s $crds >>"$DIR/kubectl-apply.log" 2>&1 \
    || { cat "$DIR/kubectl-apply.log" >&2; k8s_die "Gateway API CRDs not Established"; }
  k8s_log "Gateway API CRDs ($CRDS, $(wc -w <<<"$crds") CRDs) applied and Established ($(k8s_since "$t")s)"
fi

# ---------------------------------------------------------------- kube-controller-manager
if [ "$KCM" = 1 ]; then
  t="$(k8s_now)"
  k8s_start_controller_manager "$DIR"
  k8s_wait_controller_manager "$DIR" 60
  k8s_log "kube-controller-manager healthy, pid $(cat "$DIR/kube-controller-manager.pid") ($(k8s_since "$t")s)"
fi

trap - EXIT
echo
k8s_log "cluster ready in $(k8s_since "$T0")s"
echo "  KUBECONFIG=$DIR/kubeconfig"
echo "  server:    https://127.0.0.1:$APISERVER_PORT"
echo "  etcd:      pid $(cat "$DIR/etcd.pid"), http://127.0.0.1:$ETCD_PORT, log $DIR/etcd.log"
echo "  apiserver: pid $(cat "$DIR/kube-apiserver.pid"), log $DIR/kube-apiserver.log"
[ "$KCM" = 0 ] || echo "  kcm:       pid $(cat "$DIR/kube-controller-manager.pid"), log $DIR/kube-controller-manager.log"
echo "  env:       $DIR/cluster.env"
