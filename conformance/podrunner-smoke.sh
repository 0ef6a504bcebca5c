#!/usr/bin/env bash
# Checks the pod runner on the real test stack, without signalbox: a Deployment of the
# suite's echo-basic (downward API env, a literal env, a Secret volume the env points into)
# behind a Service turns Running and Ready with a podIP in the pod CIDR, the EndpointSlice
# controller publishes that address, the echo server answers from the host at podIP:3000
# with the pod's name and namespace (and HTTPS on 8443 with the Secret's certificate),
# `kubectl logs` (through the API server to the runner's kubelet API) shows the request,
# and scaling to zero stops the process and removes the pod's network namespace.
#
#   conformance/podrunner-smoke.sh          (needs root; builds nothing: make conformance-tools)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BIN="$ROOT/.tools/bin"
mkdir -p "$ROOT/.tools/run"
RUN="$(mktemp -d "$ROOT/.tools/run/podrunner-smoke.XXXXXX")"
PR_PID=""
die() { echo "podrunner-smoke: FAIL: $*" >&2; exit 1; }
cleanup() {
  local rc=$?
  if [ -n "$PR_PID" ] && kill -0 "$PR_PID" 2>/dev/null; then
    kill -TERM "$PR_PID"
    local deadline=$((SECONDS + 20))
    while kill -0 "$PR_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -KILL "$PR_PID" 2>/dev/null || true
  fi
  [ $rc -eq 0 ] || { echo "--- podrunner.log"; tail -40 "$RUN/podrunner.log" 2>/dev/null || true; }
  if [ $rc -ne 0 ] || [ "${SMOKE_KEEP:-0}" = 1 ]; then
    "$ROOT/e2e/k8s/stop.sh" "$RUN/k8s" >/dev/null 2>&1 || true
    echo "podrunner-smoke: logs kept in $RUN"
  else
    "$ROOT/e2e/k8s/stop.sh" --clean "$RUN/k8s" >/dev/null 2>&1 || true
    rm -rf "$RUN"
  fi
  exit $rc
}
trap cleanup EXIT
# until SECONDS WHAT CMD...: poll every 0.2 s, bounded.
until_ok() {
  local secs="$1" what="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what: not within ${secs}s"
    sleep 0.2
  done
}
T0=$SECONDS

"$ROOT/e2e/k8s/start.sh" --with-controller-manager --crds=none "$RUN/k8s" >"$RUN/start.log" 2>&1 || { cat "$RUN/start.log"; die "start.sh"; }
# shellcheck source=/dev/null
source "$RUN/k8s/cluster.env"
export KUBECONFIG
k() { "$BIN/kubectl" "$@"; }

# Its own bridge, prefix and CIDR, so it can run beside a conformance run.
"$BIN/podrunner" --kubeconfig "$KUBECONFIG" --node-name smoke-node --bridge sbsmoke0 --prefix sbsmk \
  --pod-cidr 10.245.0.0/24 --ready-file "$RUN/ready" --work-dir "$RUN/work" --keep-files --image "echo-basic=$BIN/echo-basic" >"$RUN/podrunner.log" 2>&1 &
PR_PID=$!
until_ok 60 "pod runner ready" test -s "$RUN/ready"
[ "$(k get node smoke-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ] || die "node not Ready"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=echo.smoke \
  -keyout "$RUN/tls.key" -out "$RUN/tls.crt" 2>/dev/null
k create namespace smoke >/dev/null
k -n smoke create secret tls echo-cert --cert "$RUN/tls.crt" --key "$RUN/tls.key" >/dev/null
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: smoke}
spec:
  selector: {app: echo}
  ports: [{port: 8080, targetPort: 3000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: smoke}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
        - name: echo
          image: registry.k8s.io/gateway-api/echo-basic:v1.5.1
          volumeMounts: [{name: cert, mountPath: /etc/secret-volume}]
          env:
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
            - {name: SERVICE_NAME, value: echo}
            - {name: TLS_SERVER_CERT, value: /etc/secret-volume/crt}
            - {name: TLS_SERVER_PRIVKEY, value: /etc/secret-volume/key}
      volumes:
        - name: cert
          secret:
            secretName: echo-cert
            items: [{key: tls.crt, path: crt}, {key: tls.key, path: key}]
EOF
until_ok 60 "pod Ready" k -n smoke wait pod -l app=echo --for=condition=Ready --timeout=1s
POD="$(k -n smoke get pod -l app=echo -o jsonpath='{.items[0].metadata.name}')"
IP="$(k -n smoke get pod "$POD" -o jsonpath='{.status.podIP}')"
[[ "$IP" == 10.245.0.* ]] || die "podIP '$IP' not in 10.245.0.0/24"
[ "$(k -n smoke get pod "$POD" -o jsonpath='{.status.phase}')" = Running ] || die "pod not Running"
echo "pod $POD Running and Ready at $IP ($((SECONDS - T0))s)"

slice_ip() { k -n smoke get endpointslices -l kubernetes.io/service-name=echo -o jsonpath='{.items[*].endpoints[?(@.conditions.ready==true)].addresses[0]}'; }
slice_has_ip() { [ "$(slice_ip)" = "$IP" ]; }
until_ok 30 "EndpointSlice with $IP" slice_has_ip
echo "EndpointSlice: $(slice_ip)"

body="$(curl -sS --max-time 5 "http://$IP:3000/hello")" || die "no answer from $IP:3000"
python3 - "$body" "$POD" <<'PY' || die "echo answer: $body"
import json, sys
b = json.loads(sys.argv[1])
assert b["pod"] == sys.argv[2] and b["namespace"] == "smoke" and b["path"] == "/hello", b
PY
echo "echo-basic answers from the host: $body"
curl -sS --max-time 5 --cacert "$RUN/tls.crt" --resolve "echo.smoke:8443:$IP" "https://echo.smoke:8443/tls" 2>&1 | tee "$RUN/https.out" | grep -q '"path": "/tls"' \
  || die "no HTTPS answer with the Secret's certificate on $IP:8443"
echo "HTTPS on 8443 with the mounted Secret's certificate"

# pods/log: the API server proxies to the runner's kubelet API (what the suite's mirror tests read)
logs_have_hello() { k -n smoke logs "$POD" -c echo --since=10m --timestamps | grep -q 'Echoing back request made to /hello'; }
until_ok 10 "kubectl logs shows the request" logs_have_hello
LATER="$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
[ -z "$(k -n smoke logs "$POD" -c echo --since-time="$LATER")" ] || die "kubectl logs --since-time in the future is not empty"
echo "kubectl logs (through the API server): $(k -n smoke logs "$POD" -c echo --timestamps | grep -m1 'Echoing back request made to /hello')"

k -n smoke scale deployment echo --replicas=0 >/dev/null
no_pods() { [ -z "$(k -n smoke get pods -o name)" ]; }
no_netns() { ! ip netns list | grep -q '^sbsmk-'; }
until_ok 60 "pod gone" no_pods
until_ok 10 "netns removed" no_netns
if curl -s --max-time 1 "http://$IP:3000/" >/dev/null; then die "$IP:3000 still answers"; fi
echo "scaled to 0: pod deleted, process stopped, network namespace removed"
echo "podrunner-smoke: OK in $((SECONDS - T0))s"
