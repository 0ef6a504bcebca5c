/**
 * Translator benchmark (issue 3): one Gateway, 10,000 HTTPRoutes, 1,000 Services with
 * 50,000 endpoints in all.
 *
 *  1. baseline: full translation with no cache (objects → status + IR → Envoy JSON →
 *     encoded resources → Snapshot), time and RSS;
 *  2. one route changed, translated again with the caches warm: compiled rules are cached
 *     per route (RouteCache, keyed by route identity + spec + listener port, dropped when a
 *     Service or ReferenceGrant changes) and encoded Envoy routes per compiled route
 *     (EnvoyCache), so only the changed route is compiled and encoded again; the
 *     RouteConfiguration is assembled from the cached encodings.
 *
 * Prints the figures and the ratio of (2) to (1), both measured in this run.
 *
 *   node dist/bench/translate.js [--routes 10000] [--services 1000] [--endpoints 50] [--trials 5]
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RouteCache, translate } from '../src/gatewayapi/translator.js';
import { protoRegistry } from '../src/xds/proto.js';
import { EnvoyCache, snapshots } from '../src/xds/translate/index.js';
import { TypeUrl } from '../src/xds/resource.js';
import { gateway, gatewayClass } from '../e2e/harness/gateway-objects.js';

const { values } = parseArgs({
  options: {
    routes: { type: 'string', default: '10000' },
    services: { type: 'string', default: '1000' },
    endpoints: { type: 'string', default: '50' },
    trials: { type: 'string', default: '9' },
  },
});
const ROUTES = Number(values.routes);
const SERVICES = Number(values.services);
const EPS = Number(values.endpoints);
const TRIALS = Number(values.trials);
const G = 'gateway.networking.k8s.io/v1';

function objects(): unknown[] {
  const out: unknown[] = [
    gatewayClass(),
    gateway([{ name: 'http', protocol: 'HTTP', port: 8080, allowedRoutes: { namespaces: { from: 'All' } } }]),
  ];
  for (let s = 0; s < SERVICES; s++) {
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace: 'default', name: `svc-${s}` },
      spec: { ports: [{ name: 'http', port: 80 }] },
    });
    out.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        namespace: 'default',
        name: `svc-${s}-a`,
        labels: { 'kubernetes.io/service-name': `svc-${s}` },
      },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 3000 }],
      endpoints: Array.from({ length: EPS }, (_, e) => ({
        addresses: [`10.${(s >> 8) & 255}.${s & 255}.${e + 1}`],
        conditions: { ready: true },
      })),
    });
  }
  for (let r = 0; r < ROUTES; r++) out.push(route(r, 0));
  return out;
}

function route(r: number, version: number): unknown {
  return {
    apiVersion: G,
    kind: 'HTTPRoute',
    metadata: {
      namespace: 'default',
      name: `route-${r}`,
      creationTimestamp: '2026-01-01T00:00:00Z',
      resourceVersion: `${r}-${version}`,
    },
    spec: {
      parentRefs: [{ name: 'gw' }],
      hostnames: [`app-${r % 100}.example.com`],
      rules: [
        {
          matches: [
            {
              path: { type: 'PathPrefix', value: `/r${r}/v${version}` },
              headers: [{ name: 'x-tenant', value: `t${r % 7}` }],
            },
          ],
          filters: [
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: { set: [{ name: 'x-route', value: `route-${r}` }] },
            },
          ],
          backendRefs: [
            { name: `svc-${r % SERVICES}`, port: 80, weight: 90 },
            { name: `svc-${(r + 1) % SERVICES}`, port: 80, weight: 10 },
          ],
        },
        {
          matches: [{ path: { type: 'Exact', value: `/r${r}/exact` } }],
          backendRefs: [{ name: `svc-${r % SERVICES}`, port: 80 }],
        },
      ],
    },
  };
}

const mib = (n: number) => (n / 1024 / 1024).toFixed(0);
const ms = (n: number) => n.toFixed(1);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const reg = protoRegistry();
const input = objects();
// a full collection between phases (never inside a timed region), so that one phase's
// garbage is not collected on the next one's clock
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
gc();
const rss0 = process.memoryUsage().rss;

// 1. baseline: full translation, no caches
const full: number[] = [];
let peakRss = 0;
let rssFirst = 0;
let resources = 0;
for (let t = 0; t < TRIALS; t++) {
  const t0 = performance.now();
  const res = translate(input);
  const snaps = snapshots(reg, res.ir, { bindAddress: '0.0.0.0' });
  full.push(performance.now() - t0);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  if (t === 0) rssFirst = process.memoryUsage().rss;
  const snap = snaps.get('default/gw')!;
  resources = [TypeUrl.Listener, TypeUrl.Route, TypeUrl.Cluster, TypeUrl.Endpoint].reduce(
    (n, ty) => n + snap.get(ty).size,
    0,
  );
  const routeCfg = [...snap.get(TypeUrl.Route).values()][0];
  if (t === 0)
    console.log(
      `route configuration: ${routeCfg.name}, ${(routeCfg.bytes.length / 1024 / 1024).toFixed(1)} MiB encoded`,
    );
}

// 2. one-route change with warm caches
gc();
const routeCache = new RouteCache();
const envoyCache = new EnvoyCache();
let t0 = performance.now();
const warm = translate(input, { cache: routeCache });
const warmSnaps = snapshots(reg, warm.ir, { bindAddress: '0.0.0.0', cache: envoyCache });
const coldCached = performance.now() - t0;
let last = warmSnaps.get('default/gw')!;
const incr: number[] = [];
const current = [...input];
const translateOnly: number[] = [];
let changedTypes = '';
for (let t = 0; t < TRIALS; t++) {
  // one route changes from the previous state (earlier changes stay)
  const changed = current;
  const idx = 2 + 2 * SERVICES + ((t * 37) % ROUTES);
  changed[idx] = route(idx - 2 - 2 * SERVICES, t + 1);
  t0 = performance.now();
  const res = translate(changed, { cache: routeCache });
  const t1 = performance.now();
  const snap = snapshots(reg, res.ir, { bindAddress: '0.0.0.0', cache: envoyCache }).get('default/gw')!;
  incr.push(performance.now() - t0);
  translateOnly.push(t1 - t0);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  const prevSnap = last;
  last = snap;
  changedTypes = [TypeUrl.Listener, TypeUrl.Route, TypeUrl.Cluster, TypeUrl.Endpoint]
    .filter((ty) => snap.version(ty) !== prevSnap.version(ty))
    .map((ty) => ty.split('.').at(-1))
    .join(',');
}

const fullMed = median(full);
const incrMed = median(incr);
console.log(
  `machine: ${cpus().length} cores, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')} (other work on the machine inflates every figure)`,
);
console.log(
  `input: ${ROUTES} HTTPRoutes, ${SERVICES} Services, ${SERVICES * EPS} endpoints; ${resources} Envoy resources`,
);
console.log(
  `full translation (baseline, no cache): median ${ms(fullMed)} ms, min ${ms(Math.min(...full))} ms over ${TRIALS} (goal ≤ 1000 ms)`,
);
console.log(
  `RSS: ${mib(rss0)} MiB with the input loaded, ${mib(rssFirst)} MiB after the first full translation, ` +
    `peak ${mib(peakRss)} MiB over all runs back to back (V8 collects lazily) (goal ≤ 512 MiB)`,
);
console.log(`first translation filling the caches: ${ms(coldCached)} ms`);
console.log(
  `one-route change → new snapshot (per-route caches): median ${ms(incrMed)} ms, max ${ms(Math.max(...incr))} ms ` +
    `(of which objects → IR ${ms(median(translateOnly))} ms) (goal ≤ 50 ms); types changed: ${changedTypes}`,
);
console.log(
  `ratio one-route change / full translation: ${(incrMed / fullMed).toFixed(3)} (×${(fullMed / incrMed).toFixed(1)} faster)`,
);
console.log(
  `route cache: ${routeCache.hits} hits, ${routeCache.misses} misses; envoy route cache: ${envoyCache.hits} hits, ${envoyCache.misses} misses`,
);
