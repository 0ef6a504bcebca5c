/**
 * Kubernetes provider: informers (list + watch, @kubernetes/client-node) for every kind
 * the translator reads. Only what is ours reaches the translator and only events on it
 * schedule a translation (see reach.ts: our GatewayClasses, their Gateways, the routes
 * attached to them and the Services, EndpointSlices and Secrets those reference); a
 * translation is coalesced (at most `maxDelayMs` after the first event of a burst,
 * `quietMs` after the last). An informer that fails is restarted after a backoff; its store
 * (and so what is served) is kept meanwhile. A 410 Gone (the API server no longer has the
 * resourceVersion a watch resumes from, e.g. after it restarted) makes client-node relist
 * into the same store: the store is replaced only once the new list arrived, so nothing
 * served is withdrawn meanwhile. Nothing is translated before every informer has listed
 * once, so a start never serves a partial world.
 */
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, ListWatch, Watch } from '@kubernetes/client-node';
import type { KubernetesListObject, KubernetesObject, KubeConfig } from '@kubernetes/client-node';
import type { ObjectStatus } from '../../gatewayapi/index.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { SnapshotCache } from '../../xds/cache/cache.js';
import type { ProtoRegistry } from '../../xds/proto.js';
import { StatusWriter } from '../../status/index.js';
import { Pipeline } from '../pipeline.js';
import { PooledKubeConfig } from './kubeconfig.js';
import { computeReach, emptyReach, inReach, relevantEvent } from './reach.js';
import type { Reach } from './reach.js';

const GW = 'gateway.networking.k8s.io';

interface KindSpec {
  kind: string;
  apiVersion: string;
  path: string;
  list: (kc: KubeConfig) => () => Promise<KubernetesListObject<KubernetesObject>>;
}

const crd = (kind: string, plural: string, version = 'v1'): KindSpec => ({
  kind,
  apiVersion: `${GW}/${version}`,
  path: `/apis/${GW}/${version}/${plural}`,
  list: (kc) => {
    const api = kc.makeApiClient(CustomObjectsApi);
    return () =>
      api.listClusterCustomObject({ group: GW, version, plural }) as Promise<
        KubernetesListObject<KubernetesObject>
      >;
  },
});

export const KINDS: KindSpec[] = [
  crd('GatewayClass', 'gatewayclasses'),
  crd('Gateway', 'gateways'),
  crd('HTTPRoute', 'httproutes'),
  crd('GRPCRoute', 'grpcroutes'),
  crd('ReferenceGrant', 'referencegrants', 'v1beta1'),
  {
    kind: 'Service',
    apiVersion: 'v1',
    path: '/api/v1/services',
    list: (kc) => {
      const api = kc.makeApiClient(CoreV1Api);
      return () => api.listServiceForAllNamespaces();
    },
  },
  {
    kind: 'Secret',
    apiVersion: 'v1',
    path: '/api/v1/secrets',
    list: (kc) => {
      const api = kc.makeApiClient(CoreV1Api);
      return () => api.listSecretForAllNamespaces();
    },
  },
  {
    kind: 'Namespace',
    apiVersion: 'v1',
    path: '/api/v1/namespaces',
    list: (kc) => {
      const api = kc.makeApiClient(CoreV1Api);
      return () => api.listNamespace();
    },
  },
  {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    list: (kc) => {
      const api = kc.makeApiClient(DiscoveryV1Api);
      return () => api.listEndpointSliceForAllNamespaces();
    },
  },
];

export interface KubernetesProviderOptions {
  kubeconfig?: string;
  cache: SnapshotCache;
  registry: ProtoRegistry;
  metrics?: Metrics;
  log: Logger;
  controllerName: string;
  bindAddress?: string;
  /** write status (false on replicas that are not the leader) */
  writeStatus?: () => boolean;
  quietMs?: number;
  maxDelayMs?: number;
  /** status writes per second (token bucket rate) and burst */
  statusQps?: number;
  statusBurst?: number;
}

/** A Watch that reports 410 Gone (as an ERROR event or as the watch request's status). */
class GoneWatch extends Watch {
  constructor(
    kc: KubeConfig,
    private readonly onGone: () => void,
  ) {
    super(kc);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      queryParams,
      (phase: string, obj: unknown, w?: unknown) => {
        if (phase === 'ERROR' && (obj as { code?: number } | undefined)?.code === 410) this.onGone();
        callback(phase, obj, w);
      },
      (err: unknown) => {
        const e = err as { statusCode?: number; code?: number } | null;
        if (e && (e.statusCode === 410 || e.code === 410)) this.onGone();
        done(err);
      },
    );
  }
}

/**
 * An object as reach.ts judges it: kind, metadata, spec and status as they are. No copy:
 * objects that are not ours (a busy cluster's EndpointSlices and Secrets) are never
 * normalised; what is ours is, once per object, when translated.
 */
function view(spec: KindSpec, o: KubernetesObject): Record<string, unknown> {
  const x = o as KubernetesObject & { spec?: unknown; status?: unknown };
  return { kind: spec.kind, metadata: x.metadata, spec: x.spec, status: x.status };
}

/** Typed list items carry Date objects and no kind/apiVersion: normalise to API JSON. */
function normalise(spec: KindSpec, o: KubernetesObject): Record<string, unknown> {
  const j = JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
  j.kind = spec.kind;
  j.apiVersion ??= spec.apiVersion;
  return j;
}

export class KubernetesProvider {
  readonly kc = new PooledKubeConfig();
  private informers: {
    spec: KindSpec;
    inf: ListWatch<KubernetesObject>;
    synced: boolean;
  }[] = [];
  /** what was ours at the last translation (judges events) */
  private reach: Reach = emptyReach();
  /** events that scheduled a translation / that were not ours, by kind */
  readonly events = { relevant: 0, ignored: 0, ownWrites: 0 };
  /** per kind: lists after the first one (relists), 410 Gone answers seen */
  readonly relists: Record<string, number> = {};
  readonly gone: Record<string, number> = {};
  private readonly pipeline: Pipeline;
  readonly status: StatusWriter;
  private timer?: NodeJS.Timeout;
  private firstEventAt = 0;
  private stopped = false;
  /** normalised objects by informer object identity (the translator's caches key on identity) */
  private readonly norm = new WeakMap<object, Record<string, unknown>>();
  translations = 0;
  private readonly restarts = new Set<NodeJS.Timeout>();
  /** informer restarts after errors */
  informerRestarts = 0;
  /** event → translation delays of the last runs (ms), for measurement */
  readonly delays: number[] = [];

  constructor(private readonly o: KubernetesProviderOptions) {
    if (o.kubeconfig) this.kc.loadFromFile(o.kubeconfig);
    else this.kc.loadFromDefault();
    this.pipeline = new Pipeline({
      cache: o.cache,
      registry: o.registry,
      log: o.log,
      controllerName: o.controllerName,
      bindAddress: o.bindAddress,
    });
    this.status = new StatusWriter(
      this.kc,
      o.log.child({ component: 'status' }),
      o.statusQps ?? 20,
      o.statusBurst ?? 50,
    );
    this.status.onConflict = () => this.schedule();
  }

  async start(): Promise<void> {
    for (const spec of KINDS) {
      const list = spec.list(this.kc);
      let lists = 0;
      const counted = () => {
        if (lists++ > 0) {
          this.relists[spec.kind] = (this.relists[spec.kind] ?? 0) + 1;
          this.o.metrics?.k8sRelists.inc({ kind: spec.kind });
          this.o.log.info({ kind: spec.kind }, 'relisting (served config kept until the list arrives)');
        }
        return list();
      };
      const watch = new GoneWatch(this.kc, () => {
        this.gone[spec.kind] = (this.gone[spec.kind] ?? 0) + 1;
        this.o.metrics?.k8sGone.inc({ kind: spec.kind });
        this.o.log.info({ kind: spec.kind }, 'watch answered 410 Gone: relisting');
      });
      const inf = new ListWatch<KubernetesObject>(spec.path, watch, counted, false);
      const entry = { spec, inf, synced: false };
      inf.on('add', (o: KubernetesObject) => this.onEvent(spec, o, 'add'));
      inf.on('update', (o: KubernetesObject) => this.onEvent(spec, o, 'update'));
      inf.on('delete', (o: KubernetesObject) => this.onEvent(spec, o, 'delete'));
      let backoff = 1000;
      inf.on('connect', () => {
        backoff = 1000;
        entry.synced = true;
        this.schedule();
      });
      inf.on('error', (err: unknown) => {
        if (this.stopped) return;
        this.o.log.warn(
          { kind: spec.kind, err: String(err) },
          'informer failed: restarting with backoff (served config kept)',
        );
        const t = setTimeout(() => {
          this.restarts.delete(t);
          if (!this.stopped) inf.start().catch(() => undefined);
        }, backoff);
        backoff = Math.min(5000, backoff * 2);
        this.restarts.add(t);
        this.informerRestarts++;
      });
      this.informers.push(entry);
    }
    await Promise.all(
      this.informers.map((e) =>
        e.inf
          .start()
          .catch((err: unknown) =>
            this.o.log.warn({ kind: e.spec.kind, err: String(err) }, 'informer start failed'),
          ),
      ),
    );
    for (const e of this.informers) e.synced = true;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const t of this.restarts) clearTimeout(t);
    this.status.close();
    await Promise.all(this.informers.map((e) => e.inf.stop().catch(() => undefined)));
    this.kc.close();
  }

  /** Translate again soon (e.g. on becoming leader, to write the status held back meanwhile). */
  resync(): void {
    this.schedule();
  }

  private onEvent(spec: KindSpec, o: KubernetesObject, what: 'add' | 'update' | 'delete'): void {
    const key = `${spec.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
    if (what === 'delete') this.status.forget(key);
    else if (
      this.status.ownWrite(key, o.metadata?.resourceVersion, () => {
        // it was not ours after all (our write's response named another version)
        this.events.ownWrites--;
        this.onEvent(spec, o, what);
      })
    ) {
      // the watch event of our own status write: nothing a translation reads has changed
      this.events.ownWrites++;
      return;
    }
    const relevant = relevantEvent(view(spec, o), this.reach, this.o.controllerName);
    this.o.metrics?.k8sEvents.inc({ kind: spec.kind, relevant: String(relevant) });
    if (relevant) {
      this.events.relevant++;
      this.schedule();
    } else this.events.ignored++;
  }

  private normalised(spec: KindSpec, o: KubernetesObject): Record<string, unknown> {
    let n = this.norm.get(o);
    if (!n) this.norm.set(o, (n = normalise(spec, o)));
    return n;
  }

  private schedule(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (!this.firstEventAt) this.firstEventAt = now;
    const quiet = this.o.quietMs ?? 50;
    const max = this.o.maxDelayMs ?? 500;
    const wait = Math.max(0, Math.min(quiet, this.firstEventAt + max - now));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), wait);
  }

  /** Every object of the kinds that decide the reach (classes, Gateways, routes). */
  private *reachInputs(): Generator<Record<string, unknown>> {
    for (const { spec, inf } of this.informers) {
      if (spec.kind !== 'GatewayClass' && spec.kind !== 'Gateway' && !spec.kind.endsWith('Route')) continue;
      for (const o of inf.list()) yield view(spec, o);
    }
  }

  /** The translator's input: what is ours now (recomputes the reach from the stores). */
  objects(): Record<string, unknown>[] {
    this.reach = computeReach(this.reachInputs(), this.o.controllerName);
    const out: Record<string, unknown>[] = [];
    for (const { spec, inf } of this.informers) {
      for (const o of inf.list()) if (inReach(view(spec, o), this.reach)) out.push(this.normalised(spec, o));
    }
    return out;
  }

  /** Sizes of the current reach (for the debug endpoint). */
  reachSizes(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.reach).map(([k, v]) => [k, (v as Set<string>).size]));
  }

  private run(): void {
    if (!this.informers.every((e) => e.synced)) return;
    this.delays.push(Date.now() - this.firstEventAt);
    this.o.metrics?.k8sTranslationDelay.observe((Date.now() - this.firstEventAt) / 1000);
    if (this.delays.length > 1000) this.delays.shift();
    this.firstEventAt = 0;
    this.translations++;
    const objects = this.objects();
    const res = this.pipeline.run(objects);
    if (!res) return;
    if (this.o.writeStatus && !this.o.writeStatus()) return;
    // after the sessions had their turn to push the new snapshot: comparing every status
    // with the objects' must not delay what Envoy gets
    setImmediate(() => {
      if (!this.stopped) this.enqueueStatus(objects, res.statuses);
    });
  }

  private enqueueStatus(objects: Record<string, unknown>[], statuses: ObjectStatus[]): void {
    const current = new Map<string, Record<string, unknown>>();
    for (const x of objects) {
      const md = x.metadata as { namespace?: string; name?: string };
      current.set(`${String(x.kind)}/${md.namespace ?? ''}/${md.name}`, x);
    }
    // routes that had our parent entries and have none now (their Gateway is gone or no
    // longer ours): our entries are removed, other controllers' stay
    const have = new Set(statuses.map((st) => `${st.kind}/${st.namespace ?? ''}/${st.name}`));
    const extra: ObjectStatus[] = [];
    for (const [k, x] of current) {
      if ((x.kind !== 'HTTPRoute' && x.kind !== 'GRPCRoute') || have.has(k)) continue;
      const parents = (x.status as { parents?: { controllerName?: string }[] } | undefined)?.parents;
      if (!Array.isArray(parents) || !parents.some((p) => p?.controllerName === this.o.controllerName))
        continue;
      const md = x.metadata as { namespace?: string; name: string };
      extra.push({
        apiVersion: String(x.apiVersion),
        kind: String(x.kind),
        namespace: md.namespace,
        name: md.name,
        status: { parents: parents.filter((p) => p?.controllerName !== this.o.controllerName) },
      });
    }
    this.status.enqueue([...statuses, ...extra], current);
  }
}
