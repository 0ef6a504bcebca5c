#!/usr/bin/env bash
# Smoke test of the real Kubernetes test stack: starts a fresh cluster (with
# kube-controller-manager) in its own directory, applies testdata/smoke
# (GatewayClass, Gateway, HTTPRoute, Service, EndpointSlice), reads them back,
# checks the CRDs' validation rejects a bad HTTPRoute, restarts the API server and
# reads them again, deletes the namespace (done by the controller manager), then stops.
#
#   e2e/k8s/smoke.sh
#
# Needs the binaries and CRDs of e2e/k8s/build.sh. Exits non-zero on any failure;
# on failure the state directory (with logs) is kept and its path printed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0="$(k8s_now)"
k8s_need_bins kube-controller-manager
mkdir -p "$K8S_ROOT/.tools/run"
DIR="$(mktemp -d "$K8S_ROOT/.tools/run/smoke.XXXXXX")"
PASSED=0 FAILED=0
finish() {
  local rc=$?
  "$K8S_HERE/stop.sh" "$DIR" >/dev/null 2>&1 || true
  if [ $rc -eq 0 ] && [ $FAILED -eq 0 ]; then
    rm -rf "$DIR"
  else
    echo "smoke: state and logs kept in $DIR" >&2
  fi
  echo "smoke: $PASSED passed, $FAILED failed (in $(k8s_since "$T0")s)"
  [ $rc -eq 0 ] && [ $FAILED -eq 0 ] || exit 1
}
trap finish EXIT

kc() { k8s_kubectl "$DIR" "$@"; }
# check NAME EXPECTED COMMAND...: runs COMMAND, compares its output with EXPECTED.
check() {
  local name="$1" want="$2" got; shift 2
  if got="$("$@" 2>&1)" && [ "$got" = "$want" ]; then
    PASSED=$((PASSED + 1)); echo "ok   $name"
  else
    FAILED=$((FAILED + 1)); echo "FAIL $name: want '$want', got '$got'"
  fi
}

# Helpers for check (functions, so pipes need no quoting).
gateway_kinds() { kc api-resources --api-group=gateway.networking.k8s.io -o name | sort | tr '\n' ' '; }
grep_api_resources() { kc api-resources | grep gateway.networking.k8s.io | grep -c '^httproutes '; }
apply_smoke() { local out; if out="$(kc apply -f "$K8S_HERE/testdata/smoke/" 2>&1)"; then echo applied; else echo "failed: $out"; fi; }
service_net() { kc -n signalbox-smoke get service smoke-svc -o 'jsonpath={.spec.clusterIP}' | cut -d. -f1-3; }
apply_invalid() {
  local out
  if out="$(kc apply --dry-run=server -f "$K8S_HERE/testdata/invalid/httproute-bad-path.yaml" 2>&1)"; then
    echo "accepted: $out"
  elif grep -q 'is invalid' <<<"$out"; then
    echo rejected
  else
    echo "failed otherwise: $out"
  fi
}

"$K8S_HERE/start.sh" --with-controller-manager "$DIR"
echo

check "api-resources lists the standard Gateway API kinds" \
  "backendtlspolicies.gateway.networking.k8s.io gatewayclasses.gateway.networking.k8s.io gateways.gateway.networking.k8s.io grpcroutes.gateway.networking.k8s.io httproutes.gateway.networking.k8s.io listenersets.gateway.networking.k8s.io referencegrants.gateway.networking.k8s.io tcproutes.gateway.networking.k8s.io tlsroutes.gateway.networking.k8s.io udproutes.gateway.networking.k8s.io " \
  gateway_kinds
check "kubectl api-resources | grep gateway.networking.k8s.io finds httproutes" "1" grep_api_resources
check "kubectl apply -f testdata/smoke/" "applied" apply_smoke

verify_objects() {
  local when="$1" ns=(-n signalbox-smoke)
  check "GatewayClass controllerName ($when)" "signalbox.dev/gateway-controller" \
    kc get gatewayclass signalbox-smoke -o 'jsonpath={.spec.controllerName}'
  check "Gateway class and listener ($when)" "signalbox-smoke HTTP/8080" \
    kc get "${ns[@]}" gateway smoke-gw -o 'jsonpath={.spec.gatewayClassName} {.spec.listeners[0].protocol}/{.spec.listeners[0].port}'
  check "HTTPRoute parent and backend ($when)" "smoke-gw smoke-svc:8080" \
    kc get "${ns[@]}" httproute smoke-route -o 'jsonpath={.spec.parentRefs[0].name} {.spec.rules[0].backendRefs[0].name}:{.spec.rules[0].backendRefs[0].port}'
  check "Service got a ClusterIP in 10.0.0.0/24 ($when)" "10.0.0" service_net
  check "EndpointSlice of the Service ($when)" "smoke-svc-manual 192.0.2.10:3000" \
    kc get "${ns[@]}" endpointslices -l kubernetes.io/service-name=smoke-svc -o 'jsonpath={range .items[*]}{.metadata.name} {.endpoints[0].addresses[0]}:{.ports[0].port}{end}'
}
verify_objects "after apply"
check "CRD validation rejects an HTTPRoute path without a leading slash" "rejected" apply_invalid

echo
"$K8S_HERE/restart-apiserver.sh" "$DIR"
verify_objects "after an API server restart"

# kube-controller-manager: the namespace controller empties and removes a deleted namespace.
delete_namespace() {
  local out
  if out="$(kc delete namespace signalbox-smoke --wait=true --timeout=60s 2>&1)" \
    && ! kc get namespace signalbox-smoke >/dev/null 2>&1; then
    echo deleted
  else
    echo "still there: $out"
  fi
}
check "kube-controller-manager deletes a namespace and its objects" "deleted" delete_namespace
