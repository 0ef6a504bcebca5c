# signalbox control plane image (Envoy runs beside it, from its own image or package).
# Multi-stage: the build stage has the toolchains; the runtime stage only production
# node_modules, dist/, the native addon and its libre2, running as the non-root `node` user.
# Not built here (no Docker engine on these machines); the same steps run in `make build`.
FROM node:20-bookworm AS build
# Go fetches the pinned Gateway API module (CRDs → types and schemas) through the module proxy
COPY --from=golang:1.26-bookworm /usr/local/go /usr/local/go
ENV PATH=/usr/local/go/bin:$PATH
# libre2-dev + node-gyp's toolchain: native/re2size (RE2 program size, as Envoy checks it)
RUN apt-get update && apt-get install -y --no-install-recommends libre2-dev python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund
COPY . .
RUN scripts/build-native.sh && node scripts/protos.mjs && node scripts/gatewayapi-types.mjs && npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libre2-9 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/native/re2size/build/Release/re2size.node ./native/re2size/build/Release/
COPY --from=build /src/protos ./protos
COPY --from=build /src/package.json ./
USER node
EXPOSE 18000 8081
# /healthz on --health-address (the CMD's 0.0.0.0:8081): the process serves; /readyz also
# needs the providers synced (Kubernetes probes use both, see manifests/install.yaml)
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8081/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli.js"]
# the debug endpoint stays on loopback; probes and /metrics on --health-address. Without the
# --xds-tls-* flags (see manifests/install.yaml) ADS is plaintext: signalbox warns about it.
CMD ["serve", "--xds-address", "0.0.0.0:18000", "--debug-address", "127.0.0.1:19001", "--health-address", "0.0.0.0:8081"]
