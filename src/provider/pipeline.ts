/**
 * Objects → translator → Envoy snapshots → the cache, shared by the providers. Caches of
 * the translator and of Envoy encodings live across runs; a snapshot is set only when its
 * versions changed, and groups whose Gateway is gone are cleared. A failure leaves the
 * served snapshots as they were.
 */
import { RouteCache, translate } from '../gatewayapi/index.js';
import type { ObjectStatus, TranslateResult } from '../gatewayapi/index.js';
import type { Logger } from '../log.js';
import type { SnapshotCache } from '../xds/cache/cache.js';
import type { ProtoRegistry } from '../xds/proto.js';
import { EnvoyCache, snapshots } from '../xds/translate/index.js';

export const DEFAULT_CONTROLLER_NAME = 'signalbox.dev/gateway-controller';

export interface PipelineOptions {
  cache: SnapshotCache;
  registry: ProtoRegistry;
  log: Logger;
  controllerName: string;
  /** address Envoy listeners bind (default 0.0.0.0) */
  bindAddress?: string;
  /** Gateway status addresses */
  addresses?: string[];
}

export interface PipelineResult {
  statuses: ObjectStatus[];
  rejected: TranslateResult['rejected'];
  /** groups whose snapshot was set by this run */
  changed: string[];
}

/** RFC 3339 at second precision, as metav1.Time is serialised. */
export function nowRfc3339(d = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

export class Pipeline {
  private readonly routeCache = new RouteCache();
  private readonly envoyCache = new EnvoyCache();
  private groups = new Set<string>();
  runs = 0;

  constructor(private readonly o: PipelineOptions) {}

  /** Translate and publish; undefined when translation failed (nothing served changes). */
  run(objects: unknown[], now = nowRfc3339()): PipelineResult | undefined {
    this.runs++;
    let result: TranslateResult;
    let snaps: ReturnType<typeof snapshots>;
    try {
      result = translate(objects, {
        controllerName: this.o.controllerName,
        now,
        cache: this.routeCache,
        addresses: this.o.addresses,
      });
      snaps = snapshots(this.o.registry, result.ir, {
        bindAddress: this.o.bindAddress ?? '0.0.0.0',
        cache: this.envoyCache,
      });
    } catch (err) {
      this.o.log.error({ err }, 'translation failed: keeping the snapshots served');
      return undefined;
    }
    const changed: string[] = [];
    for (const [g, s] of snaps) {
      const prev = this.o.cache.getGroup(g);
      if (!prev || JSON.stringify(prev.allVersions()) !== JSON.stringify(s.allVersions())) {
        this.o.cache.setSnapshot(g, s);
        changed.push(g);
        this.o.log.info({ group: g, versions: s.allVersions() }, 'snapshot set');
      }
    }
    for (const g of this.groups) {
      if (!snaps.has(g)) {
        this.o.cache.clearSnapshot(g);
        this.o.log.info({ group: g }, 'Gateway gone: snapshot cleared');
      }
    }
    this.groups = new Set(snaps.keys());
    return { statuses: result.statuses, rejected: result.rejected, changed };
  }
}
