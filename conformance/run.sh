#!/usr/bin/env bash
# Runs the upstream Gateway API conformance suite against signalbox on the real test stack
# (what `make conformance` runs after building the tools). See conformance/README.md.
#
#   conformance/run.sh [SUITE FLAGS...]      e.g. -run-test=HTTPRouteSimpleSameNamespace
#
# Steps: a fresh cluster (e2e/k8s/start.sh --with-controller-manager, experimental CRDs:
# the claimed HTTPRouteRetry is experimental-channel), the pod runner (Node, scheduler,
# pods as local processes), the GatewayClass, signalbox in Kubernetes mode with local
# Envoys, then the suite with the claimed features (supported-features.txt) and profiles
# GATEWAY-HTTP and GATEWAY-GRPC. Everything it started is stopped on exit (trap), the
# cluster directory removed unless CONFORMANCE_KEEP=1.
#
# Output: the report in conformance/reports/ (CONFORMANCE_REPORT to name another file; a run
# given suite flags such as -run-test writes its report under .tools/run/conformance/ unless
# CONFORMANCE_REPORT says otherwise), logs in .tools/run/conformance/ (suite.log,
# signalbox.log, podrunner.log, the pods' logs under pods/ with CONFORMANCE_KEEP=1).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BIN="$ROOT/.tools/bin"
RUN="${CONFORMANCE_RUN_DIR:-$ROOT/.tools/run/conformance}"
K8S_DIR="$RUN/k8s"
GATEWAY_CLASS="${CONFORMANCE_GATEWAY_CLASS:-signalbox}"
CONTROLLER="signalbox.dev/gateway-controller"

die() { echo "conformance/run.sh: ERROR: $*" >&2; exit 1; }
log() { echo "==> $*"; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

for b in kube-apiserver etcd kubectl kube-controller-manager envoy gateway-conformance.test echo-basic podrunner coredns; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing: run 'make tools conformance-tools' (or 'make conformance')"
done
[ -f "$ROOT/dist/src/cli.js" ] || die "dist/src/cli.js missing: run 'make build'"
[ "$(id -u)" = 0 ] || die "needs root (the pod runner makes network namespaces; Envoys bind ports 80 and 443)"
# shellcheck source=/dev/null
source "$ROOT/.tools/k8s-versions.env"

SB_PID="" PR_PID=""
# stop PID NAME SECONDS: SIGTERM, SIGKILL after SECONDS.
stop_pid() {
  local pid="$1" name="$2" secs="$3"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + secs))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "    $name (pid $pid) still running after ${secs}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  log "teardown"
  stop_pid "$SB_PID" signalbox 15 # its Envoys get SIGTERM, then SIGKILL after 5 s
  stop_pid "$PR_PID" podrunner 20 # stops every pod and removes the namespaces
  if [ "${CONFORMANCE_KEEP:-0}" = 1 ]; then
    "$ROOT/e2e/k8s/stop.sh" "$K8S_DIR" >/dev/null || true
    echo "    kept $RUN"
  else
    "$ROOT/e2e/k8s/stop.sh" --clean "$K8S_DIR" >/dev/null || true
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for SECONDS WHAT PID CMD...: poll CMD every 0.2 s; fail if PID exits or time runs out.
wait_for() {
  local secs="$1" what="$2" pid="$3"; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || die "$what: the process exited (see its log in $RUN)"
    [ $SECONDS -lt $deadline ] || die "$what: not within ${secs}s"
    sleep 0.2
  done
}
# Free ports below the ephemeral range (an outgoing connection cannot take them meanwhile).
# shellcheck source=../e2e/k8s/lib.sh
source "$ROOT/e2e/k8s/lib.sh"
free_port() { k8s_free_port; }

T0="$(now)"
rm -rf "$RUN"
mkdir -p "$RUN"

log "cluster (Kubernetes $K8S_VERSION, Gateway API $GATEWAY_API_VERSION experimental CRDs)"
"$ROOT/e2e/k8s/start.sh" --with-controller-manager --crds=experimental "$K8S_DIR" >"$RUN/k8s-start.log" 2>&1 \
  || { cat "$RUN/k8s-start.log"; die "e2e/k8s/start.sh failed"; }
# shellcheck source=/dev/null
source "$K8S_DIR/cluster.env"
export KUBECONFIG

log "pod runner"
"$BIN/podrunner" --kubeconfig "$KUBECONFIG" --work-dir "$RUN/pods" --ready-file "$RUN/podrunner.ready" \
  $([ "${CONFORMANCE_KEEP:-0}" = 1 ] && echo --keep-files) \
  --image "echo-basic=$BIN/echo-basic" --image "coredns=$BIN/coredns" >"$RUN/podrunner.log" 2>&1 &
PR_PID=$!
wait_for 60 "pod runner ready" "$PR_PID" test -s "$RUN/podrunner.ready"

log "GatewayClass $GATEWAY_CLASS ($CONTROLLER)"
"$BIN/kubectl" apply -f - >/dev/null <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: $GATEWAY_CLASS
spec:
  controllerName: $CONTROLLER
  description: signalbox, one local stock Envoy per Gateway
EOF

log "signalbox (Kubernetes mode, --envoy local)"
XDS_PORT="$(free_port)"
DEBUG_PORT="$(free_port)"
while [ "$DEBUG_PORT" = "$XDS_PORT" ]; do DEBUG_PORT="$(free_port)"; done
(cd "$ROOT" && exec node dist/src/cli.js serve --kubeconfig "$KUBECONFIG" --controller-name "$CONTROLLER" \
  --no-leader-elect --envoy local --envoy-path "$BIN/envoy" --envoy-concurrency 1 \
  --xds-address "127.0.0.1:$XDS_PORT" --debug-address "127.0.0.1:$DEBUG_PORT" \
  --log-level "${CONFORMANCE_LOG_LEVEL:-info}" --log-format json ${SIGNALBOX_EXTRA_ARGS:-}) >"$RUN/signalbox.log" 2>&1 &
SB_PID=$!
wait_for 60 "signalbox /readyz" "$SB_PID" curl -sf "http://127.0.0.1:$DEBUG_PORT/readyz"
echo "    debug endpoint http://127.0.0.1:$DEBUG_PORT (/debug/envoys, /debug/readiness, /debug/kubernetes)"

FEATURES="$(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$HERE/supported-features.txt" | paste -sd, -)"
VERSION="$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)"
if [ -n "${CONFORMANCE_REPORT:-}" ]; then
  REPORT="$CONFORMANCE_REPORT"
elif [ $# -gt 0 ]; then
  REPORT="$RUN/report.yaml"
else
  REPORT="$HERE/reports/$(date -u +%Y-%m-%d)-signalbox-$VERSION-gateway-api-$GATEWAY_API_VERSION.yaml"
fi
mkdir -p "$(dirname "$REPORT")"

log "suite: profiles GATEWAY-HTTP,GATEWAY-GRPC; features $FEATURES"
T_SUITE="$(now)"
set +e
(cd "$HERE" && "$BIN/gateway-conformance.test" -test.run '^TestConformance$' -test.v -test.timeout "${CONFORMANCE_TIMEOUT:-120m}" \
  -gateway-class "$GATEWAY_CLASS" \
  -conformance-profiles GATEWAY-HTTP,GATEWAY-GRPC \
  -supported-features "$FEATURES" \
  -report-output "$REPORT" \
  -organization signalbox -project signalbox -url "https://github.com/signalbox-dev/signalbox" \
  -version "$VERSION" -contact "signalbox maintainers" \
  -usable-address "${CONFORMANCE_USABLE_ADDRESS:-127.0.11.1}" -unusable-address 10.1.2.3 \
  -cleanup-base-resources=false \
  "$@") >"$RUN/suite.log" 2>&1
SUITE_RC=$?
set -e
echo "    suite exit $SUITE_RC in $(since "$T_SUITE")s (log: $RUN/suite.log)"
grep -E '^\s*--- (PASS|FAIL): TestConformance/[^/ ]+ ' "$RUN/suite.log" | sed -E 's/^\s*//' | sort -k2,2 -k3,3 | awk '{print "    " $0}' || true
echo "    passed: $(grep -cE '^\s*--- PASS: TestConformance/[^/ ]+ ' "$RUN/suite.log" || true), failed: $(grep -cE '^\s*--- FAIL: TestConformance/[^/ ]+ ' "$RUN/suite.log" || true), skipped: $(grep -cE '^\s*--- SKIP: TestConformance/[^/ ]+ ' "$RUN/suite.log" || true)"
[ -f "$REPORT" ] && echo "    report: $REPORT"
echo "==> total $(since "$T0")s"
exit $SUITE_RC
