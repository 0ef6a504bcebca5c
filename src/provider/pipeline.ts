/**
 * Objects → translator → Envoy snapshots → the cache, shared by the providers. Caches of
 * the translator and of Envoy encodings live across runs; a snapshot is set only when its
 * versions changed, and groups whose Gateway is gone are cleared.
 *
 * Failures are contained: a translation that throws leaves every served snapshot as it
 * was (the run returns undefined); a Gateway that cannot be translated (an internal error
 * on a route attached to it or on the Gateway itself) or whose resources cannot be encoded keeps its
 * last good snapshot (or has none yet), is logged with its group, counted in
 * `signalbox_translation_failures_total{gateway}` and reported on its status
 * (Programmed=False, reason Invalid, the error in the message), while the other Gateways'
 * snapshots are set in the same run.
 */
import { RouteCache, translate } from '../gatewayapi/index.js';
import type { Condition, GatewayAddress, ObjectStatus, TranslateResult } from '../gatewayapi/index.js';
import { previousConditions } from '../gatewayapi/status.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { SnapshotCache } from '../xds/cache/cache.js';
import type { ProtoRegistry } from '../xds/proto.js';
import { EnvoyCache, buildSnapshots } from '../xds/translate/index.js';
import type { Readiness } from '../readiness/index.js';
import { routeKey } from '../readiness/compose.js';
import type { SnapshotsResult } from '../xds/translate/index.js';

export const DEFAULT_CONTROLLER_NAME = 'signalbox.dev/gateway-controller';

/** The `gateway` label of signalbox_translation_failures_total when the whole translation failed. */
export const ALL_GATEWAYS = '*';

/**
 * Runs each Gateway's data plane itself (src/launcher/, `serve --envoy local`): the address
 * each Gateway binds, and which Gateways get an Envoy.
 */
export interface LocalDataPlane {
  /** before translating: the address of each of our Gateways among `objects`, or why it has none */
  assign(objects: unknown[], controllerName: string): ReadonlyMap<string, GatewayAddress>;
  /** after a translation: these Gateways (group → address) have an Envoy, the others none */
  run(gateways: ReadonlyMap<string, string>): void;
}

export interface PipelineOptions {
  cache: SnapshotCache;
  registry: ProtoRegistry;
  log: Logger;
  controllerName: string;
  metrics?: Metrics;
  /** address Envoy listeners bind (default 0.0.0.0) */
  bindAddress?: string;
  /** Gateway status addresses */
  addresses?: string[];
  /** proved readiness: it owns what each Gateway is served (the phase snapshots) */
  readiness?: Readiness;
  /** local Envoys: per-Gateway listener addresses (instead of bindAddress) and an Envoy each */
  local?: LocalDataPlane;
}

/** A Gateway whose latest configuration could not be built. */
export interface GatewayFailure {
  /** node group `<namespace>/<name>` */
  group: string;
  error: string;
  /** when it started failing (RFC 3339) */
  since: string;
  /** Envoy still gets its last good snapshot (false: it never had one) */
  keptSnapshot: boolean;
}

export interface PipelineResult {
  statuses: ObjectStatus[];
  rejected: TranslateResult['rejected'];
  /** groups whose snapshot was set by this run */
  changed: string[];
  /** Gateways whose configuration could not be built by this run (their snapshot is not changed) */
  failures: GatewayFailure[];
}

/** RFC 3339 at second precision, as metav1.Time is serialised. */
export function nowRfc3339(d = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

const MAX_MESSAGE = 1024;

function programmedFailure(f: GatewayFailure): string {
  const m =
    `the Envoy configuration of this Gateway could not be built: ${f.error}; ` +
    (f.keptSnapshot ? 'its last good configuration stays served' : 'nothing is served for it yet');
  return m.length > MAX_MESSAGE ? `${m.slice(0, MAX_MESSAGE - 3)}...` : m;
}

/** Route key (see readiness/compose.ts) → metadata.generation of every route object. */
function routeGenerations(objects: unknown[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const x of objects) {
    const o = x as {
      kind?: unknown;
      metadata?: { namespace?: unknown; name?: unknown; generation?: unknown };
    };
    if (o?.kind !== 'HTTPRoute' && o?.kind !== 'GRPCRoute') continue;
    const md = o.metadata;
    if (typeof md?.name !== 'string') continue;
    out.set(
      routeKey(o.kind, typeof md.namespace === 'string' ? md.namespace : 'default', md.name),
      typeof md.generation === 'number' ? md.generation : 1,
    );
  }
  return out;
}

/** signalbox_route_conditions: the route parent statuses of a translation by condition. */
function countRouteConditions(m: Metrics, statuses: ObjectStatus[]): void {
  const count = new Map<string, number>();
  // the translator's conditions are always there, at 0 when no route has them
  for (const type of ['Accepted', 'ResolvedRefs'])
    for (const status of ['True', 'False']) count.set(`${type}\0${status}`, 0);
  for (const st of statuses) {
    if (st.kind !== 'HTTPRoute' && st.kind !== 'GRPCRoute') continue;
    const parents = (st.status as { parents?: { conditions?: Condition[] }[] }).parents ?? [];
    for (const p of parents)
      for (const c of p.conditions ?? []) {
        const k = `${c.type}\0${c.status}`;
        count.set(k, (count.get(k) ?? 0) + 1);
      }
  }
  m.routeConditions.reset();
  for (const [k, v] of count) {
    const [type, status] = k.split('\0');
    m.routeConditions.set({ type, status }, v);
  }
}

export class Pipeline {
  private readonly routeCache = new RouteCache();
  private readonly envoyCache = new EnvoyCache();
  private groups = new Set<string>();
  private readonly failed = new Map<string, GatewayFailure>();
  runs = 0;

  constructor(private readonly o: PipelineOptions) {}

  /** Gateways whose latest configuration could not be built (for the debug endpoint). */
  failures(): GatewayFailure[] {
    return [...this.failed.values()];
  }

  /**
   * Translate and publish; undefined when translation failed (nothing served changes).
   * `eventAt`: when the first event this run covers happened (ms; default now), for
   * signalbox_event_push_latency_seconds.
   */
  run(objects: unknown[], now = nowRfc3339(), eventAt = Date.now()): PipelineResult | undefined {
    this.runs++;
    const started = performance.now();
    let result: TranslateResult;
    let built: SnapshotsResult;
    let gatewayAddresses: ReadonlyMap<string, GatewayAddress> | undefined;
    try {
      gatewayAddresses = this.o.local?.assign(objects, this.o.controllerName);
      result = translate(objects, {
        controllerName: this.o.controllerName,
        now,
        cache: this.routeCache,
        addresses: this.o.addresses,
        gatewayAddresses,
      });
      built = buildSnapshots(this.o.registry, result.ir, {
        bindAddress: this.o.bindAddress ?? '0.0.0.0',
        cache: this.envoyCache,
      });
      this.o.metrics?.translationDuration.observe((performance.now() - started) / 1000);
    } catch (err) {
      this.o.metrics?.translationFailures.inc({ gateway: ALL_GATEWAYS });
      this.o.log.error({ err }, 'translation failed: keeping the snapshots served');
      return undefined;
    }
    const snaps = built.snapshots;
    // a Gateway fails when it cannot be translated (translator) or encoded (Envoy resources)
    const failures = new Map([...result.failures, ...built.failures]);
    const changed: string[] = [];
    const readiness = this.o.readiness;
    const generations = readiness ? routeGenerations(objects) : undefined;
    for (const [g, s] of snaps) {
      const prev = readiness ? readiness.desiredOf(g) : this.o.cache.getGroup(g);
      const same =
        prev !== undefined && JSON.stringify(prev.allVersions()) === JSON.stringify(s.allVersions());
      if (!same) {
        changed.push(g);
        this.o.cache.noteChange(g, eventAt);
        this.o.log.info(
          { group: g, versions: s.allVersions() },
          readiness ? 'desired snapshot' : 'snapshot set',
        );
      }
      // readiness hears of every run: a route's generation may change without its config
      if (readiness) readiness.desire(g, same ? prev : s, generations!);
      else if (!same) this.o.cache.setSnapshot(g, s);
      const was = this.failed.get(g);
      if (was) {
        this.failed.delete(g);
        this.o.log.info({ group: g, failedSince: was.since }, 'Gateway configuration builds again');
      }
    }
    const failedNow: GatewayFailure[] = [];
    for (const [g, err] of failures) {
      const keptSnapshot = this.o.cache.getGroup(g) !== undefined;
      const f: GatewayFailure = {
        group: g,
        error: err.message,
        since: this.failed.get(g)?.since ?? now,
        keptSnapshot,
      };
      this.failed.set(g, f);
      failedNow.push(f);
      this.o.metrics?.translationFailures.inc({ gateway: g });
      this.o.log.error(
        { group: g, err, keptSnapshot },
        keptSnapshot
          ? 'Gateway configuration could not be built: its last good snapshot stays served'
          : 'Gateway configuration could not be built: no snapshot for it yet',
      );
    }
    for (const g of this.groups) {
      if (!snaps.has(g) && !failures.has(g)) {
        if (readiness) readiness.forget(g);
        else this.o.cache.clearSnapshot(g);
        this.o.log.info({ group: g }, 'Gateway gone: snapshot cleared');
      }
    }
    for (const g of [...this.failed.keys()]) if (!snaps.has(g) && !failures.has(g)) this.failed.delete(g);
    this.groups = new Set([...snaps.keys(), ...failures.keys()]);
    if (this.o.local && gatewayAddresses) {
      // every Gateway with a configuration (or a failed one keeping its last) has its Envoy
      const run = new Map<string, string>();
      for (const g of this.groups) {
        const a = gatewayAddresses.get(g);
        if (a && 'address' in a) run.set(g, a.address);
      }
      this.o.local.run(run);
    }
    const statuses =
      failedNow.length > 0 ? this.notProgrammed(result.statuses, objects, failedNow, now) : result.statuses;
    if (this.o.metrics) countRouteConditions(this.o.metrics, statuses);
    return { statuses, rejected: result.rejected, changed, failures: failedNow };
  }

  /** The Gateways that failed get Programmed=False (reason Invalid) naming the error. */
  private notProgrammed(
    statuses: ObjectStatus[],
    objects: unknown[],
    failed: GatewayFailure[],
    now: string,
  ): ObjectStatus[] {
    const byGroup = new Map(failed.map((f) => [f.group, f]));
    const previous = new Map<string, unknown>();
    for (const x of objects) {
      const o = x as { kind?: unknown; metadata?: { namespace?: unknown; name?: unknown }; status?: unknown };
      if (o?.kind !== 'Gateway') continue;
      previous.set(`${String(o.metadata?.namespace ?? '')}/${String(o.metadata?.name ?? '')}`, o.status);
    }
    return statuses.map((st) => {
      const g = `${st.namespace ?? ''}/${st.name}`;
      const f = st.kind === 'Gateway' ? byGroup.get(g) : undefined;
      if (!f) return st;
      const conds = Array.isArray(st.status.conditions) ? (st.status.conditions as Condition[]) : [];
      const had = previousConditions(previous.get(g)).find((c) => c.type === 'Programmed');
      const generation = conds.find((c) => c.type === 'Accepted')?.observedGeneration ?? 0;
      const programmed: Condition = {
        type: 'Programmed',
        status: 'False',
        reason: 'Invalid',
        message: programmedFailure(f),
        observedGeneration: conds.find((c) => c.type === 'Programmed')?.observedGeneration ?? generation,
        lastTransitionTime:
          had?.status === 'False' && typeof had.lastTransitionTime === 'string'
            ? had.lastTransitionTime
            : now,
      };
      const i = conds.findIndex((c) => c.type === 'Programmed');
      const next = i < 0 ? [...conds, programmed] : conds.map((c, j) => (j === i ? programmed : c));
      return { ...st, status: { ...st.status, conditions: next } };
    });
  }
}
