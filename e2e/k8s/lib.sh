# shellcheck shell=bash
# Shared functions of e2e/k8s/{start,stop,restart-apiserver,smoke}.sh. Sourced, not run.

# shellcheck disable=SC2034  # variables used by the scripts that source this file
K8S_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_ROOT="$(cd "$K8S_HERE/../.." && pwd)"
K8S_BIN="${SIGNALBOX_K8S_BIN:-$K8S_ROOT/.tools/bin}"
K8S_CRDS="$K8S_ROOT/.tools/gateway-api-crds"
K8S_DEFAULT_DIR="$K8S_ROOT/.tools/run/k8s"

k8s_die() { echo "$(basename "$0"): ERROR: $*" >&2; exit 1; }
k8s_log() { echo "$(basename "$0"): $*"; }
k8s_now() { echo "${EPOCHREALTIME/,/.}"; }
k8s_since() { awk -v a="$1" -v b="$(k8s_now)" 'BEGIN { printf "%.1f", b - a }'; }

# k8s_dir [DIR]: absolute path of the state directory (created).
k8s_dir() {
  local d="${1:-$K8S_DEFAULT_DIR}"
  mkdir -p "$d" && (cd "$d" && pwd)
}

# k8s_need_bins [MORE-BINARIES...]
# shellcheck disable=SC2120  # the arguments are optional
k8s_need_bins() {
  local b
  for b in etcd kube-apiserver kubectl "$@"; do
    [ -x "$K8S_BIN/$b" ] || k8s_die "$K8S_BIN/$b is missing: run e2e/k8s/build.sh first"
  done
}

# k8s_free_port: a TCP port nobody listens on (and not handed out earlier in this run),
# below the kernel's ephemeral range: a port from that range can be taken by an outgoing
# connection (the API server's to etcd, say) between this pick and the bind, which made
# kube-controller-manager, started last, fail with "address already in use".
K8S_TAKEN_PORTS=" "
k8s_free_port() {
  local used p i lo span
  lo="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
  span=$(( lo - 20000 ))
  [ "$span" -ge 2000 ] || span=30000 # an unusual range: the old behaviour
  used=" $(ss -Htan 2>/dev/null | awk '{n=split($4,a,":"); print a[n]}' | sort -u | tr '\n' ' ')"
  for i in $(seq 1 200); do
    p=$(( 20000 + RANDOM % span ))
    case "$used$K8S_TAKEN_PORTS" in *" $p "*) continue ;; esac
    K8S_TAKEN_PORTS+="$p "
    echo "$p"; return 0
  done
  k8s_die "found no free TCP port"
}

# k8s_pid_alive DIR NAME: true if DIR/NAME.pid names a live NAME process started for DIR.
k8s_pid_alive() {
  local pidfile="$1/$2.pid" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # Guard against a recycled pid: argv[0] must be the binary and the arguments must name DIR.
  local argv0
  argv0="$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1)"
  [ "${argv0##*/}" = "$2" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$1" || return 1
}

# k8s_stop_proc DIR NAME [SIGNAL]: SIGNAL (default TERM), wait up to 15 s, then SIGKILL.
k8s_stop_proc() {
  local dir="$1" name="$2" sig="${3:-TERM}" pid
  if ! k8s_pid_alive "$dir" "$name"; then
    rm -f "$dir/$name.pid"; return 0
  fi
  pid="$(cat "$dir/$name.pid")"
  kill -"$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    k8s_log "$name (pid $pid) ignored SIG$sig for 15 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$dir/$name.pid"
  k8s_log "stopped $name (pid $pid, SIG$sig)"
}

# k8s_spawn DIR NAME ARGS...: start $K8S_BIN/NAME detached, logs to DIR/NAME.log, pid to DIR/NAME.pid.
k8s_spawn() {
  local dir="$1" name="$2"; shift 2
  # setsid: own session, so the caller's terminal or job control does not signal it.
  # stdin/stdout/stderr away from the caller, so a caller reading our output is not held open.
  # With job control off the child is no process-group leader, so setsid execs in place
  # and $! is the server's own pid.
  set +m
  setsid "$K8S_BIN/$name" "$@" </dev/null >>"$dir/$name.log" 2>&1 &
  local pid=$! argv0
  echo "$pid" >"$dir/$name.pid"
  # Until the fork has exec'd setsid and setsid the server, /proc/PID shows bash or setsid:
  # wait for the exec so that k8s_pid_alive's check of argv[0] holds (up to 10 s on a busy box).
  # (cmdline reads empty for a moment while a process execs: that is no reason to stop
  # waiting; only the process being gone is)
  for _ in $(seq 1 200); do
    [ -d "/proc/$pid" ] || break
    argv0="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1)" || true
    [ "${argv0##*/}" = "$name" ] && break
    sleep 0.05
  done
}

# k8s_start_apiserver DIR: starts kube-apiserver with the settings in DIR/cluster.env.
k8s_start_apiserver() {
  local dir="$1"
  # shellcheck source=/dev/null
  source "$dir/cluster.env"
  # Flags as controller-runtime's envtest uses them, plus TLS/client-cert auth from DIR/pki.
  # --endpoint-reconciler-type=none: the API server cannot publish 127.0.0.1 as the endpoint
  #   of the "kubernetes" Service (loopback endpoints are invalid) and would log it forever.
  # --shutdown-watch-termination-grace-period=2s: on SIGTERM, close open watches after 2 s;
  #   without it a server with watch clients (kube-controller-manager, the controller under
  #   test) waits the full 60 s request timeout before it exits.
  # SIGNALBOX_APISERVER_EXTRA_ARGS is a space-separated list of flags: word-split on purpose.
  # shellcheck disable=SC2086
  k8s_spawn "$dir" kube-apiserver \
    --advertise-address=127.0.0.1 \
    --bind-address=127.0.0.1 \
    --secure-port="$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --cert-dir="$dir/pki" \
    --tls-cert-file="$dir/pki/apiserver.crt" \
    --tls-private-key-file="$dir/pki/apiserver.key" \
    --client-ca-file="$dir/pki/ca.crt" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true \
    --disable-admission-plugins=ServiceAccount \
    --authorization-mode=RBAC \
    --service-account-issuer="https://127.0.0.1:$APISERVER_PORT/" \
    --service-account-key-file="$dir/pki/sa.pub" \
    --service-account-signing-key-file="$dir/pki/sa.key" \
    --profiling=false \
    --endpoint-reconciler-type=none \
    --shutdown-watch-termination-grace-period=2s \
    ${SIGNALBOX_APISERVER_EXTRA_ARGS:-}
}

# k8s_start_controller_manager DIR: starts kube-controller-manager (leader election off),
# serving /healthz on 127.0.0.1:$KCM_PORT. Controllers: SIGNALBOX_KCM_CONTROLLERS (default
# "*", every controller that is on by default upstream).
k8s_start_controller_manager() {
  local dir="$1"
  # shellcheck source=/dev/null
  source "$dir/cluster.env"
  # shellcheck disable=SC2086
  k8s_spawn "$dir" kube-controller-manager \
    --kubeconfig="$dir/kubeconfig" \
    --authentication-kubeconfig="$dir/kubeconfig" \
    --authorization-kubeconfig="$dir/kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$KCM_PORT" \
    --cert-dir="$dir/pki/kcm" \
    --leader-elect=false \
    --controllers="${SIGNALBOX_KCM_CONTROLLERS:-*}" \
    --service-account-private-key-file="$dir/pki/sa.key" \
    --root-ca-file="$dir/pki/ca.crt" \
    --cluster-signing-cert-file="$dir/pki/ca.crt" \
    --cluster-signing-key-file="$dir/pki/ca.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --profiling=false \
    ${SIGNALBOX_KCM_EXTRA_ARGS:-}
}

# k8s_wait_controller_manager DIR TIMEOUT_S: waits until its /healthz says ok.
k8s_wait_controller_manager() {
  local dir="$1" timeout="$2" t0 out=""
  t0="$(k8s_now)"
  # shellcheck source=/dev/null
  source "$dir/cluster.env"
  while :; do
    k8s_pid_alive "$dir" kube-controller-manager \
      || { tail -n 30 "$dir/kube-controller-manager.log" >&2; k8s_die "kube-controller-manager exited (log: $dir/kube-controller-manager.log)"; }
    out="$(curl -sk --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz" 2>/dev/null || true)"
    [ "$out" = ok ] && return 0
    if awk -v t="$(k8s_since "$t0")" -v m="$timeout" 'BEGIN { exit !(t > m) }'; then
      tail -n 30 "$dir/kube-controller-manager.log" >&2
      k8s_die "kube-controller-manager not healthy after ${timeout}s (last /healthz: '${out:0:200}')"
    fi
    sleep 0.2
  done
}

# k8s_kubectl DIR ARGS...: kubectl against the cluster in DIR.
k8s_kubectl() {
  local dir="$1"; shift
  "$K8S_BIN/kubectl" --kubeconfig="$dir/kubeconfig" "$@"
}

# k8s_wait_ready DIR TIMEOUT_S: waits until /readyz says ok and the default namespace exists.
k8s_wait_ready() {
  local dir="$1" timeout="$2" t0 out=""
  t0="$(k8s_now)"
  # shellcheck source=/dev/null
  source "$dir/cluster.env"
  while :; do
    k8s_pid_alive "$dir" kube-apiserver \
      || { tail -n 30 "$dir/kube-apiserver.log" >&2; k8s_die "kube-apiserver exited (log: $dir/kube-apiserver.log)"; }
    out="$(curl -s --max-time 2 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
      "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null || true)"
    if [ "$out" = ok ] && k8s_kubectl "$dir" get namespace default -o name >/dev/null 2>&1; then
      return 0
    fi
    if awk -v t="$(k8s_since "$t0")" -v m="$timeout" 'BEGIN { exit !(t > m) }'; then
      tail -n 30 "$dir/kube-apiserver.log" >&2
      k8s_die "kube-apiserver not ready after ${timeout}s (last /readyz: '${out:0:200}'; log: $dir/kube-apiserver.log)"
    fi
    sleep 0.2
  done
}
