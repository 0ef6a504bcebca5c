# signalbox — every target works from a fresh clone; caches live outside it
# (${SIGNALBOX_CACHE:-~/.cache/signalbox}, Go's module and build caches, npm's cache).
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
NODE_OPTIONS_JEST := --experimental-vm-modules

.PHONY: all deps protos build tools tools-envoy lint typecheck test test-unit test-e2e bench clean run

all: build

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json

protos: deps
	node scripts/protos.mjs
	node scripts/gatewayapi-types.mjs

build: protos
	npx tsc -p tsconfig.json

tools: tools-envoy

tools-envoy:
	scripts/install-envoy.sh

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
test: deps protos tools build lint test-unit test-e2e

bench: build tools
	node dist/bench/fanout.js
	node dist/bench/wire-bytes.js

run: build
	node dist/src/cli.js serve --envoy-dir e2e/testdata/envoy-folder

clean:
	rm -rf dist src/generated protos/vendor
