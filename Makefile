# signalbox — every target works from a fresh clone; caches live outside it
# (${SIGNALBOX_CACHE:-~/.cache/signalbox}, Go's module and build caches, npm's cache).
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
NODE_OPTIONS_JEST := --experimental-vm-modules

.PHONY: all deps protos build tools tools-envoy tools-k8s tools-promtool envoy-fleet k8s-up k8s-down k8s-smoke lint typecheck test test-unit test-e2e bench clean run conformance conformance-tools conformance-smoke test-conformance

all: build

node_modules/.package-lock.json: package.json package-lock.json
	@# npm ci refuses this lock: the registry here lacks other platforms' optional native packages
	npm install --no-audit --no-fund --prefer-offline
	@touch $@

deps: node_modules/.package-lock.json

protos: deps
	scripts/build-native.sh
	node scripts/protos.mjs
	node scripts/gatewayapi-types.mjs

build: protos
	npx tsc -p tsconfig.json

tools: tools-envoy tools-k8s tools-promtool

tools-envoy:
	scripts/install-envoy.sh

# promtool (`promtool check metrics` in e2e), out of Debian's prometheus package; cached
tools-promtool:
	scripts/install-promtool.sh

# etcd, kube-apiserver, kube-controller-manager, kubectl built from the Go module proxy
# (e2e/k8s/go.mod), Gateway API CRDs from the Go module cache. Cold: ~11 min on 2 cores.
tools-k8s:
	e2e/k8s/build.sh

k8s-up: tools-k8s
	e2e/k8s/start.sh --with-controller-manager

k8s-down:
	e2e/k8s/stop.sh

k8s-smoke: tools-k8s
	e2e/k8s/smoke.sh

# The upstream Gateway API conformance suite (conformance/): the suite, its echo-basic
# server, the pod runner and CoreDNS built from the Go module proxy into .tools/bin.
conformance-tools:
	conformance/build.sh

# Pods of the real test stack run as local processes (conformance/podrunner): unit tests, then a check.
conformance-smoke: tools-k8s conformance-tools
	cd conformance && test -z "$$(gofmt -l .)" && go vet ./podrunner/ && go test ./podrunner/
	conformance/podrunner-smoke.sh

# Cluster, pod runner, signalbox with local Envoys, the whole suite (GATEWAY-HTTP and
# GATEWAY-GRPC), teardown; the report goes to conformance/reports/. ARGS: suite flags.
conformance: build tools conformance-tools
	conformance/run.sh $(ARGS)

# What make test runs of it: the pod runner's checks, then the whole suite (about a minute
# once the tools are built: the CI subset is all of it), its report under .tools/run/.
test-conformance: build tools conformance-smoke
	CONFORMANCE_REPORT=$(CURDIR)/.tools/run/conformance-report.yaml conformance/run.sh

# manifests/envoy-fleet/fleet.yaml from gateway.yaml with `signalbox bootstrap` (a test
# checks it is up to date); see manifests/README.md
envoy-fleet: build
	node scripts/envoy-fleet.mjs manifests -o manifests/envoy-fleet/fleet.yaml

typecheck: protos
	npx tsc -p tsconfig.json --noEmit

lint: protos
	npx eslint .
	npx prettier --check .

test-unit: protos
	NODE_OPTIONS=$(NODE_OPTIONS_JEST) npx jest --selectProjects unit

test-e2e: build tools
	NODE_OPTIONS=$(NODE_OPTIONS_JEST) npx jest --selectProjects e2e --runInBand

# The one command that runs every test (CI runs exactly this).
test: deps protos tools build lint test-unit test-e2e k8s-smoke test-conformance

bench: build tools
	node dist/bench/fanout.js
	node dist/bench/wire-bytes.js
	node dist/bench/translate.js
	node dist/bench/k8s.js
	node dist/bench/readiness.js
	node dist/bench/readiness-scale.js

# The demo: signalbox standalone on examples/, one local stock Envoy per Gateway, an echo
# server per example backend; prints the Gateways, the routes' state and curl lines to try.
# Ctrl-C stops everything it started.
run: build tools-envoy
	node dist/src/cli.js demo --config-dir examples --envoy-path $(CURDIR)/.tools/bin/envoy

clean:
	rm -rf dist src/generated protos/vendor
