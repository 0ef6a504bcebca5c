/**
 * Status writer: merge-patches the status subresource of GatewayClass, Gateway and route
 * objects with a field manager. Nothing is written when the status equals what the object
 * has (so a burst of events gives one write per changed object); a condition of the
 * object that already describes a newer generation than ours is never overwritten
 * (xds-rules 19); a failed write (conflict, not found, throttled) is retried with backoff
 * on the next drain; writes are rate-limited (token bucket), GatewayClasses and Gateways
 * before routes (a burst of route creations must not hold back the Gateway's
 * attachedRoutes behind hundreds of route writes), each GatewayClass and Gateway at most
 * once per 250 ms (its newest status then: it changes with every route).
 *
 * The writer remembers what it wrote and the resourceVersions its writes went through. The
 * informer's copy lags behind our own write by one watch event, so a translation in
 * between sees the old status; what it computes is not written again when it equals what
 * we just wrote (no second write, no 409), and a different status computed from it is
 * written with the resourceVersion our write returned as its precondition (the copy and
 * that object differ only by our status; a 409 still stops it if anyone else wrote). And the watch event of our own write (the
 * resourceVersion the patch returned) is recognised by `ownWrite`, so the provider need not
 * translate again for it.
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

/** canonical() of objects already seen (statuses and informer objects are never mutated) */
const canonicalCache = new WeakMap<object, string>();

/** JSON with object keys sorted (the API server re-encodes objects with sorted keys). */
export function canonical(v: unknown): string {
  if (!v || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  const hit = canonicalCache.get(v);
  if (hit !== undefined) return hit;
  const out = Array.isArray(v)
    ? `[${v.map(canonical).join(',')}]`
    : `{${Object.keys(v)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
        .join(',')}}`;
  canonicalCache.set(v, out);
  return out;
}

/** canonical() without the lastTransitionTime values. */
function withoutTimes(status: unknown): string {
  return canonical(status).replace(/"lastTransitionTime":"[^"]*"/g, '"lastTransitionTime":""');
}

/** Does the object's status already hold every field of ours (a merge patch would change nothing)? */
export function sameStatus(ours: Record<string, unknown>, theirs: unknown): boolean {
  const t = (theirs && typeof theirs === 'object' ? theirs : {}) as Record<string, unknown>;
  return Object.keys(ours).every((k) => canonical(ours[k]) === canonical(t[k]));
}

type Pending = { st: ObjectStatus; tries: number; rv?: string };

/** Our last write per object: the resourceVersion it returned, and what it wrote. */
interface Written {
  after?: string;
  status: string;
  /**
   * The resourceVersions the object went through by our own writes alone: the one the
   * first of them was computed from and every one they returned. An informer copy at one of
   * them differs from the object at `after` only by statuses we wrote, so a status
   * translated from it is written with `after` as its precondition (a Gateway's status
   * changes with every route: written from the lagging copy's resourceVersion, most writes
   * were 409s).
   */
  chain: Set<string>;
}

const FIRST = new Set(['GatewayClass', 'Gateway']);

export class StatusWriter {
  private readonly api: CustomObjectsApi;
  /** GatewayClasses and Gateways, drained first */
  private readonly pendingFirst = new Map<string, Pending>();
  /** routes */
  private readonly pendingRest = new Map<string, Pending>();
  private readonly written = new Map<string, Written>();
  /** the object being written now (one write at a time) and watch events held meanwhile */
  private writing?: string;
  /** withoutTimes() of the status being written */
  private writingStatus?: string;
  private held: { rv: string; notOurs: () => void }[] = [];
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
  /** statuses not written again because our own write of them is not in the informer yet */
  inFlightSkips = 0;

  /** GatewayClass/Gateway → when its status was last written (see gatewayIntervalMs) */
  private readonly firstWrittenAt = new Map<string, number>();

  /**
   * `gatewayIntervalMs`: a GatewayClass or Gateway is written at most this often (its newest
   * status waits meanwhile, routes go on). A Gateway's status (attachedRoutes, RoutesReady
   * "N of M") changes with every route: at 5 route creations a second it took two of every
   * four writes of the rate limit, and the routes' Ready waited seconds behind it.
   */
  constructor(
    kc: KubeConfig,
    private readonly log: Logger,
    private readonly qps = 20,
    private readonly burst = 50,
    private readonly gatewayIntervalMs = 250,
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.tokens = burst;
  }

  private queue(kind: string): Map<string, Pending> {
    return FIRST.has(kind) ? this.pendingFirst : this.pendingRest;
  }

  /** Statuses waiting to be written. */
  get pendingCount(): number {
    return this.pendingFirst.size + this.pendingRest.size;
  }

  /**
   * Is this watch event of object `key` (`<Kind>/<namespace>/<name>`) at `resourceVersion`
   * the result of our own write? True when it is, and also while our write of that object
   * is still waiting for its response (the watch event can come first): then `notOurs`
   * is called later if the response names another resourceVersion, or the write failed.
   */
  ownWrite(key: string, resourceVersion: string | undefined, notOurs: () => void = () => undefined): boolean {
    if (!resourceVersion) return false;
    if (this.written.get(key)?.after === resourceVersion) return true;
    if (this.writing !== key) return false;
    this.held.push({ rv: resourceVersion, notOurs });
    return true;
  }

  /** The write of `writing` finished (`after` undefined: failed): settle the events held. */
  private settle(after: string | undefined): void {
    const held = this.held;
    this.held = [];
    this.writing = undefined;
    this.writingStatus = undefined;
    for (const h of held) if (h.rv !== after) h.notOurs();
  }

  /** Forget an object (deleted). */
  forget(key: string): void {
    this.written.delete(key);
    this.seen.delete(key);
    this.firstWrittenAt.delete(key);
  }

  /**
   * Per object, the status and informer copy last handed to enqueue: handed the very same
   * two objects again (readiness re-decorates every status whenever a route's readiness
   * moves, and decorates unchanged ones to the same object), the outcome is the one decided
   * then (written or queued, skipped, or held back by rule 19): nothing to compare.
   */
  private readonly seen = new Map<string, { st: ObjectStatus; obj: Record<string, unknown> }>();

  /** Queue the statuses that differ from the objects' current ones. */
  enqueue(statuses: ObjectStatus[], current: Map<string, Record<string, unknown>>): void {
    for (const st of statuses) {
      if (!PLURAL[st.kind]) continue;
      const k = `${st.kind}/${st.namespace ?? ''}/${st.name}`;
      const obj = current.get(k);
      if (!obj) continue;
      const last = this.seen.get(k);
      if (last?.st === st && last.obj === obj) continue;
      this.seen.set(k, { st, obj });
      const q = this.queue(st.kind);
      const md = obj.metadata as { generation?: number; resourceVersion?: string };
      const gen = md.generation ?? 0;
      const w = this.written.get(k);
      // the informer's copy is one our own writes alone came after
      const behind =
        w !== undefined &&
        w.after !== undefined &&
        md.resourceVersion !== undefined &&
        w.chain.has(md.resourceVersion) &&
        md.resourceVersion !== w.after;
      // what the object has: the status of our write in flight, else of our last write when
      // the copy predates it, else the copy's (comparing with a copy older than our own
      // write would skip a status the object no longer has)
      const has =
        this.writing === k && this.writingStatus !== undefined
          ? { ours: this.writingStatus }
          : behind
            ? { ours: w.status }
            : { copy: obj.status };
      if ('copy' in has ? sameStatus(st.status, has.copy) : has.ours === withoutTimes(st.status)) {
        q.delete(k);
        // ours: on its way to the informer (the copy we translated from predates it, so
        // lastTransitionTime may have been computed afresh: ignored)
        if ('copy' in has) this.skipped++;
        else this.inFlightSkips++;
        continue;
      }
      // rule 19: the object's status already describes a newer generation than the one we translated
      if (maxObserved(obj.status) > gen) continue;
      q.set(k, { st, tries: q.get(k)?.tries ?? 0, rv: md.resourceVersion });
    }
    if (!this.closed) void this.drain();
  }

  /**
   * Graceful shutdown: the writes queued and in flight go out (at the rate limit), for at
   * most `ms`; whatever is left then is dropped (the next leader writes it).
   */
  async flush(ms: number): Promise<{ left: number }> {
    const deadline = Date.now() + ms;
    while ((this.pendingCount > 0 || this.writing !== undefined) && !this.closed && Date.now() < deadline) {
      if (!this.draining) void this.drain();
      await new Promise((r) => setTimeout(r, 20));
    }
    return { left: this.pendingCount + (this.writing !== undefined ? 1 : 0) };
  }

  close(): void {
    this.closed = true;
    this.pendingFirst.clear();
    this.pendingRest.clear();
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

  /** A queued GatewayClass/Gateway not written within gatewayIntervalMs. */
  private dueFirst(): [string, Pending] | undefined {
    const now = Date.now();
    for (const [k, e] of this.pendingFirst)
      if ((this.firstWrittenAt.get(k) ?? 0) + this.gatewayIntervalMs <= now) return [k, e];
    return undefined;
  }

  /** ms until a queued GatewayClass/Gateway may be written (0: now). */
  private firstDueIn(): number {
    const now = Date.now();
    let min = Infinity;
    for (const k of this.pendingFirst.keys())
      min = Math.min(min, (this.firstWrittenAt.get(k) ?? 0) + this.gatewayIntervalMs - now);
    return Math.max(0, min === Infinity ? 0 : min);
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.pendingCount > 0 && !this.closed) {
        const wait = this.pendingRest.size > 0 ? 0 : this.firstDueIn();
        if (wait > 0) {
          // only Gateways written a moment ago are waiting: a route queued meanwhile goes first
          await new Promise((r) => setTimeout(r, Math.min(wait, 20)));
          continue;
        }
        await this.take();
        // after the wait: a Gateway queued meanwhile goes before the routes (unless it was
        // written less than gatewayIntervalMs ago)
        const next = this.dueFirst() ?? this.pendingRest.entries().next().value;
        if (!next) continue;
        const [k, e] = next;
        const q = this.queue(e.st.kind);
        q.delete(k);
        if (FIRST.has(e.st.kind)) this.firstWrittenAt.set(k, Date.now());
        this.writing = k;
        this.writingStatus = withoutTimes(e.st.status);
        try {
          // the precondition is decided now, not when queued: a write of ours may have
          // finished meanwhile
          const prev = this.written.get(k);
          const onOurs = prev?.after !== undefined && e.rv !== undefined && prev.chain.has(e.rv);
          const pre = onOurs ? prev.after : e.rv;
          const after = await this.patch(e.st, pre);
          const chain = onOurs ? prev.chain : new Set<string>(e.rv ? [e.rv] : []);
          if (after) chain.add(after);
          // the oldest go: an informer copy that far behind is a 409 we can afford
          while (chain.size > 64) chain.delete(chain.values().next().value!);
          this.written.set(k, { after, status: withoutTimes(e.st.status), chain });
          this.settle(after);
          this.writes++;
          this.log.info({ object: k, resourceVersion: after }, 'status written');
        } catch (err) {
          this.settle(undefined);
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
          if (e.tries < 5 && !q.has(k) && !this.closed) {
            // transient: retry after a backoff unless a newer status replaced it
            const tries = e.tries + 1;
            const t = setTimeout(
              () => {
                this.timers.delete(t);
                if (!q.has(k)) q.set(k, { st: e.st, tries, rv: e.rv });
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
   * computed from as a precondition (409 Conflict when the object changed since). Returns
   * the object's resourceVersion after the write.
   */
  private async patch(st: ObjectStatus, rv?: string): Promise<string | undefined> {
    const [group, version] = st.apiVersion.split('/');
    const opts = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const body = rv ? { metadata: { resourceVersion: rv }, status: st.status } : { status: st.status };
    let res: unknown;
    if (st.namespace) {
      res = await this.api.patchNamespacedCustomObjectStatus(
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
      res = await this.api.patchClusterCustomObjectStatus(
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
    return (res as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
  }
}
