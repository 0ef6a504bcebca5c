/**
 * Status writer: merge-patches the status subresource of GatewayClass, Gateway and route
 * objects with a field manager. Nothing is written when the status equals what the object
 * has (so a burst of events gives one write per changed object); a condition of the
 * object that already describes a newer generation than ours is never overwritten
 * (xds-rules 19); a failed write (conflict, not found, throttled) is retried with backoff
 * on the next drain; writes are rate-limited (token bucket).
 */
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ObjectStatus } from '../gatewayapi/index.js';
import type { Logger } from '../log.js';

export const FIELD_MANAGER = 'signalbox';

const PLURAL: Record<string, string> = {
  GatewayClass: 'gatewayclasses',
  Gateway: 'gateways',
  HTTPRoute: 'httproutes',
  GRPCRoute: 'grpcroutes',
};

interface Cond {
  type?: string;
  observedGeneration?: number;
}

/** Highest observedGeneration among the conditions of a status (ours or others'), per object. */
function maxObserved(status: unknown): number {
  let m = 0;
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const c = v as Cond & Record<string, unknown>;
      if (typeof c.observedGeneration === 'number' && typeof c.type === 'string')
        m = Math.max(m, c.observedGeneration);
      for (const x of Object.values(c)) if (x && typeof x === 'object') walk(x);
    }
  };
  walk(status);
  return m;
}

/** JSON with object keys sorted (the API server re-encodes objects with sorted keys). */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** Does the object's status already hold every field of ours (a merge patch would change nothing)? */
export function sameStatus(ours: Record<string, unknown>, theirs: unknown): boolean {
  const t = (theirs && typeof theirs === 'object' ? theirs : {}) as Record<string, unknown>;
  return Object.keys(ours).every((k) => canonical(ours[k]) === canonical(t[k]));
}

export class StatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly pending = new Map<string, { st: ObjectStatus; tries: number; rv?: string }>();
  /** called after a 409: the object changed since it was translated; translate again from the informer's newer copy */
  onConflict?: () => void;
  conflicts = 0;
  private draining = false;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private tokens: number;
  private last = Date.now();
  writes = 0;
  skipped = 0;
  failures = 0;

  constructor(
    kc: KubeConfig,
    private readonly log: Logger,
    private readonly qps = 20,
    private readonly burst = 50,
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.tokens = burst;
  }

  /** Queue the statuses that differ from the objects' current ones. */
  enqueue(statuses: ObjectStatus[], current: Map<string, Record<string, unknown>>): void {
    for (const st of statuses) {
      if (!PLURAL[st.kind]) continue;
      const k = `${st.kind}/${st.namespace ?? ''}/${st.name}`;
      const obj = current.get(k);
      if (!obj) continue;
      const gen = (obj.metadata as { generation?: number }).generation ?? 0;
      if (sameStatus(st.status, obj.status)) {
        this.pending.delete(k);
        this.skipped++;
        continue;
      }
      // rule 19: the object's status already describes a newer generation than the one we translated
      if (maxObserved(obj.status) > gen) continue;
      const rv = (obj.metadata as { resourceVersion?: string }).resourceVersion;
      this.pending.set(k, { st, tries: this.pending.get(k)?.tries ?? 0, rv });
    }
    if (!this.closed) void this.drain();
  }

  close(): void {
    this.closed = true;
    this.pending.clear();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private async take(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens--;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.tokens) / this.qps) * 1000)));
    }
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.pending.size > 0 && !this.closed) {
        const [k, e] = this.pending.entries().next().value as [
          string,
          { st: ObjectStatus; tries: number; rv?: string },
        ];
        this.pending.delete(k);
        await this.take();
        try {
          await this.patch(e.st, e.rv);
          this.writes++;
          this.log.info({ object: k }, 'status written');
        } catch (err) {
          this.failures++;
          const code = (err as { code?: number }).code;
          if (code === 404) continue; // deleted meanwhile
          if (code === 409) {
            // the object changed after the translation this status comes from: never write a
            // stale status; the informer brings the newer object and we translate again
            this.conflicts++;
            this.log.info({ object: k }, 'status conflict: translating again from the newer object');
            this.onConflict?.();
            continue;
          }
          if (e.tries < 5 && !this.pending.has(k) && !this.closed) {
            // conflict or transient: retry after a backoff unless a newer status replaced it
            const tries = e.tries + 1;
            const t = setTimeout(
              () => {
                this.timers.delete(t);
                if (!this.pending.has(k)) this.pending.set(k, { st: e.st, tries, rv: e.rv });
                void this.drain();
              },
              200 * 2 ** tries,
            );
            this.timers.add(t);
          }
          this.log.warn({ object: k, code, err: String(err).slice(0, 300) }, 'status write failed');
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * A merge patch of the status subresource; with the resourceVersion the status was
   * computed from as a precondition (409 Conflict when the object changed since).
   */
  private async patch(st: ObjectStatus, rv?: string): Promise<void> {
    const [group, version] = st.apiVersion.split('/');
    const opts = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const body = rv ? { metadata: { resourceVersion: rv }, status: st.status } : { status: st.status };
    if (st.namespace) {
      await this.api.patchNamespacedCustomObjectStatus(
        {
          group,
          version,
          namespace: st.namespace,
          plural: PLURAL[st.kind],
          name: st.name,
          body,
          fieldManager: FIELD_MANAGER,
        },
        opts,
      );
    } else {
      await this.api.patchClusterCustomObjectStatus(
        {
          group,
          version,
          plural: PLURAL[st.kind],
          name: st.name,
          body,
          fieldManager: FIELD_MANAGER,
        },
        opts,
      );
    }
  }
}
