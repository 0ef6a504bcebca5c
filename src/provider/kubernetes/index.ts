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
 * successfully once, so a start never serves a partial world: an initial list that fails
 * (RBAC forbids the kind, the API server errors) is retried with backoff, logged and
 * counted, and `start()` resolves only once every kind has listed (`notSynced()` names
 * those still missing).
 */
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, ListWatch, Watch } from '@kubernetes/client-node';
import type { KubernetesListObject, KubernetesObject, KubeConfig } from '@kubernetes/client-node';
import type { ObjectStatus } from '../../gatewayapi/index.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { SnapshotCache } from '../../xds/cache/cache.js';
import type { ProtoRegistry } from '../../xds/proto.js';
import { StatusWriter } from '../../status/index.js';
import type { Readiness } from '../../readiness/index.js';
import { Pipeline } from '../pipeline.js';
import type { GatewayFailure, LocalDataPlane } from '../pipeline.js';
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
  /** proved readiness (Ready conditions in the route statuses) */
  readiness?: Readiness;
  /** local Envoys (serve --envoy local): per-Gateway addresses and an Envoy each */
  local?: LocalDataPlane;
  /** status writes per second (token bucket rate) and burst */
  statusQps?: number;
  statusBurst?: number;
  /** first delay before restarting a failed informer (doubles up to maxBackoffMs; default 1000, 5000) */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/** A Watch that reports 410 Gone (as an ERROR event or as the watch request's status) and events. */
class GoneWatch extends Watch {
  constructor(
    kc: KubeConfig,
    private readonly onGone: () => void,
    private readonly onEvent: () => void = () => undefined,
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
        else this.onEvent();
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

/** An API error as one line: HTTP status and the Status message when there is one. */
function describe(err: unknown): string {
  const e = err as { code?: unknown; statusCode?: unknown; body?: unknown; message?: unknown } | null;
  const code = e?.code ?? e?.statusCode;
  let msg = typeof e?.message === 'string' ? e.message : String(err);
  if (typeof e?.body === 'string') {
    try {
      const b = JSON.parse(e.body) as { message?: unknown };
      if (typeof b.message === 'string') msg = b.message;
    } catch {
      // not a Status
    }
  } else if (e?.body && typeof (e.body as { message?: unknown }).message === 'string')
    msg = (e.body as { message: string }).message;
  return typeof code === 'number' ? `HTTP ${code}: ${msg}` : msg;
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
    restart: (err: unknown) => void;
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
  /** failed lists, by kind (a failed initial list keeps the provider not synced) */
  readonly listFailures: Record<string, number> = {};
  /** the last list error per kind not synced yet */
  private readonly lastListError = new Map<string, string>();
  private allSynced = false;
  private lastRun?: { objects: Record<string, unknown>[]; statuses: ObjectStatus[] };
  private onSynced?: { resolve: () => void; reject: (err: Error) => void };
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
      metrics: o.metrics,
      readiness: o.readiness,
      local: o.local,
    });
    // readiness moves on its own (ACKs, probes): the statuses are decorated and written again
    o.readiness?.on('changed', () => {
      const last = this.lastRun;
      if (!last || this.stopped || (this.o.writeStatus && !this.o.writeStatus())) return;
      this.enqueueStatus(last.objects, last.statuses);
    });
    this.status = new StatusWriter(
      this.kc,
      o.log.child({ component: 'status' }),
      o.statusQps ?? 20,
      o.statusBurst ?? 50,
    );
    this.status.onConflict = () => this.schedule();
  }

  /**
   * Start every informer; resolves once each has listed successfully (a failed list is
   * retried with backoff meanwhile, so this may take as long as RBAC or the API server
   * refuse). Rejects only when stopped first.
   */
  async start(): Promise<void> {
    const synced = new Promise<void>((resolve, reject) => (this.onSynced = { resolve, reject }));
    for (const spec of KINDS) {
      const list = spec.list(this.kc);
      let lists = 0;
      const initialBackoff = this.o.backoffMs ?? 1000;
      let backoff = initialBackoff;
      this.o.metrics?.k8sSynced.set({ kind: spec.kind }, 0);
      const counted = async () => {
        if (lists > 0) {
          this.relists[spec.kind] = (this.relists[spec.kind] ?? 0) + 1;
          this.o.metrics?.k8sRelists.inc({ kind: spec.kind });
          this.o.log.info({ kind: spec.kind }, 'relisting (served config kept until the list arrives)');
        }
        let l: KubernetesListObject<KubernetesObject>;
        try {
          l = await list();
        } catch (err) {
          this.listFailures[spec.kind] = (this.listFailures[spec.kind] ?? 0) + 1;
          this.o.metrics?.k8sListFailures.inc({ kind: spec.kind });
          if (!entry.synced) this.lastListError.set(spec.kind, describe(err));
          throw err;
        }
        lists++;
        backoff = initialBackoff;
        // ListWatch puts the items in its store right after this resolves; the translation
        // this schedules runs on a timer, after that
        if (!entry.synced) {
          entry.synced = true;
          this.lastListError.delete(spec.kind);
          this.o.metrics?.k8sSynced.set({ kind: spec.kind }, 1);
          this.o.log.info({ kind: spec.kind, items: l.items.length }, 'informer listed');
          this.checkSynced();
        }
        this.schedule();
        return l;
      };
      const watch = new GoneWatch(
        this.kc,
        () => {
          this.gone[spec.kind] = (this.gone[spec.kind] ?? 0) + 1;
          this.o.metrics?.k8sGone.inc({ kind: spec.kind });
          this.o.log.info({ kind: spec.kind }, 'watch answered 410 Gone: relisting');
        },
        () => (backoff = initialBackoff),
      );
      const inf = new ListWatch<KubernetesObject>(spec.path, watch, counted, false);
      inf.on('add', (o: KubernetesObject) => this.onEvent(spec, o, 'add'));
      inf.on('update', (o: KubernetesObject) => this.onEvent(spec, o, 'update'));
      inf.on('delete', (o: KubernetesObject) => this.onEvent(spec, o, 'delete'));
      const restart = (err: unknown) => {
        if (this.stopped) return;
        this.o.log.warn(
          { kind: spec.kind, err: describe(err), synced: entry.synced, retryInMs: backoff },
          entry.synced
            ? 'informer failed: restarting with backoff (served config kept)'
            : 'initial list failed: retrying with backoff (nothing is translated before every kind has listed)',
        );
        const t = setTimeout(() => {
          this.restarts.delete(t);
          if (!this.stopped) inf.start().catch(restart);
        }, backoff);
        backoff = Math.min(this.o.maxBackoffMs ?? 5000, backoff * 2);
        this.restarts.add(t);
        this.informerRestarts++;
      };
      inf.on('error', restart);
      // the closures above read it once the informers run (below, after this loop)
      const entry = { spec, inf, synced: false, restart };
      this.informers.push(entry);
    }
    // a start that rejects (not through the error event, e.g. credentials) restarts the same way
    for (const e of this.informers) e.inf.start().catch(e.restart);
    await synced;
  }

  private checkSynced(): void {
    if (this.allSynced || !this.informers.every((e) => e.synced)) return;
    this.allSynced = true;
    this.o.log.info({ kinds: this.informers.length }, 'every informer has listed: translating');
    this.onSynced?.resolve();
  }

  /** Every informer has listed successfully once (until then nothing is translated). */
  get synced(): boolean {
    return this.allSynced;
  }

  /** Kinds whose initial list has not succeeded yet, with the last error. */
  notSynced(): { kind: string; failures: number; lastError?: string }[] {
    return this.informers
      .filter((e) => !e.synced)
      .map((e) => ({
        kind: e.spec.kind,
        failures: this.listFailures[e.spec.kind] ?? 0,
        ...(this.lastListError.has(e.spec.kind) ? { lastError: this.lastListError.get(e.spec.kind) } : {}),
      }));
  }

  /** Gateways whose latest configuration could not be built. */
  gatewayFailures(): GatewayFailure[] {
    return this.pipeline.failures();
  }

  /**
   * The routes of the last translation with the status signalbox writes for them (Ready
   * conditions included) and their generation, for GET /debug/routes.
   */
  routeStatuses(): {
    kind: string;
    namespace?: string;
    name: string;
    generation: number;
    status: Record<string, unknown>;
  }[] {
    const last = this.lastRun;
    if (!last) return [];
    const gen = new Map<string, number>();
    for (const x of last.objects) {
      const md = x.metadata as { namespace?: string; name?: string; generation?: number };
      gen.set(`${String(x.kind)}/${md.namespace ?? ''}/${md.name}`, md.generation ?? 1);
    }
    const routes = last.statuses.filter((s) => s.kind === 'HTTPRoute' || s.kind === 'GRPCRoute');
    return (this.o.readiness ? this.o.readiness.decorate(routes) : routes).map((s) => ({
      kind: s.kind,
      namespace: s.namespace,
      name: s.name,
      generation: gen.get(`${s.kind}/${s.namespace ?? ''}/${s.name}`) ?? 1,
      status: s.status,
    }));
  }

  /**
   * Graceful shutdown, before the Lease is released: no new translation, and the status
   * writes queued or in flight go out (for at most `ms`).
   */
  async quiesce(ms: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const { left } = await this.status.flush(ms);
    if (left > 0)
      this.o.log.warn({ left }, 'shutdown: status writes not done in time (the next leader writes them)');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (!this.allSynced) this.onSynced?.reject(new Error('stopped before every informer had listed'));
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
    const quiet = this.o.quietMs ?? 10;
    const max = this.o.maxDelayMs ?? 300;
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
    if (!this.allSynced) return;
    this.delays.push(Date.now() - this.firstEventAt);
    this.o.metrics?.k8sTranslationDelay.observe((Date.now() - this.firstEventAt) / 1000);
    if (this.delays.length > 1000) this.delays.shift();
    const eventAt = this.firstEventAt || undefined;
    this.firstEventAt = 0;
    this.translations++;
    const objects = this.objects();
    const res = this.pipeline.run(objects, undefined, eventAt);
    if (!res) return;
    this.lastRun = { objects, statuses: res.statuses };
    if (this.o.writeStatus && !this.o.writeStatus()) return;
    // after the sessions had their turn to push the new snapshot: comparing every status
    // with the objects' must not delay what Envoy gets
    setImmediate(() => {
      if (!this.stopped) this.enqueueStatus(objects, res.statuses);
    });
  }

  private statusTargets(
    objects: Record<string, unknown>[],
    statuses: ObjectStatus[],
  ): { current: Map<string, Record<string, unknown>>; extra: ObjectStatus[] } {
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
    return { current, extra };
  }

  /** what enqueueStatus derives from one translation's objects and statuses (readiness re-enqueues them often) */
  private statusInputs?: {
    objects: Record<string, unknown>[];
    statuses: ObjectStatus[];
    current: Map<string, Record<string, unknown>>;
    extra: ObjectStatus[];
  };

  private enqueueStatus(objects: Record<string, unknown>[], statuses: ObjectStatus[]): void {
    const cached = this.statusInputs;
    const { current, extra } =
      cached && cached.objects === objects && cached.statuses === statuses
        ? cached
        : (this.statusInputs = { objects, statuses, ...this.statusTargets(objects, statuses) });
    const decorated = this.o.readiness ? this.o.readiness.decorate(statuses) : statuses;
    this.status.enqueue([...decorated, ...extra], current);
  }
}
