/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it
 * (client-node has none): every `retryPeriodMs` a candidate reads the Lease; the holder
 * renews renewTime; another candidate takes the Lease over (optimistic concurrency on
 * resourceVersion, leaseTransitions + 1) only once the holder's renewTime has not changed
 * for leaseDurationSeconds of the candidate's own clock (no clock-skew assumption). A
 * leader that cannot renew within `renewDeadlineMs` steps down. On stop, a leader
 * releases the Lease (empty holder) so another replica takes over at once.
 *
 * Candidates also watch the Lease, so they see each renewal when it happens (not up to a
 * retry period later) and try to take over exactly when the lease runs out: a leader that
 * dies is replaced within the lease duration of its last renewal, plus one API round trip.
 */
import { EventEmitter } from 'node:events';
import { CoordinationV1Api, ListWatch, V1MicroTime, Watch } from '@kubernetes/client-node';
import type { KubeConfig, V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../log.js';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSec?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export class LeaderElector extends EventEmitter<{ leading: []; following: [string] }> {
  private readonly api: CoordinationV1Api;
  private leader = false;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** the holder and renewTime last seen, and when (our clock) they last changed */
  private observed = { holder: '', renew: '', at: 0 };
  private lastRenew = 0;
  /** one Lease read-modify-write at a time (the retry loop and the expiry timer share it) */
  private chain: Promise<void> = Promise.resolve();
  private expiryTimer?: NodeJS.Timeout;
  private watchRetry?: NodeJS.Timeout;
  private informer?: ListWatch<V1Lease>;
  /** times this replica became leader */
  acquisitions = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly o: LeaderOptions,
    private readonly log: Logger,
  ) {
    super();
    this.api = kc.makeApiClient(CoordinationV1Api);
  }

  get identity(): string {
    return this.o.identity;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  private get duration(): number {
    return this.o.leaseDurationSec ?? 15;
  }

  start(): void {
    void this.tick();
    this.watchLease();
  }

  /** Watch our Lease: every change is observed when it happens (see observe()). */
  private watchLease(): void {
    const { namespace, name } = this.o;
    const fieldSelector = `metadata.name=${name}`;
    const inf = new ListWatch<V1Lease>(
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      new Watch(this.kc),
      () => this.api.listNamespacedLease({ namespace, fieldSelector }),
      false,
      undefined,
      fieldSelector,
    );
    const seen = (l: V1Lease) => this.observe(l);
    inf.on('add', seen);
    inf.on('update', seen);
    inf.on('delete', () => this.armExpiry(0));
    inf.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.log.debug({ err: String(err).slice(0, 200) }, 'lease watch failed: polling meanwhile, retrying');
      this.watchRetry = setTimeout(() => {
        if (!this.stopped) inf.start().catch(() => undefined);
      }, this.o.retryPeriodMs ?? 2000);
    });
    this.informer = inf;
    inf.start().catch(() => undefined);
  }

  /** Note the holder and renewTime; when another holder's lease runs out, try to take it. */
  private observe(lease: V1Lease): void {
    const holder = lease.spec?.holderIdentity ?? '';
    const renew = lease.spec?.renewTime ? new Date(lease.spec.renewTime).toISOString() : '';
    if (holder !== this.observed.holder || renew !== this.observed.renew)
      this.observed = { holder, renew, at: Date.now() };
    if (this.stopped || holder === this.o.identity) return;
    const duration = (lease.spec?.leaseDurationSeconds ?? this.duration) * 1000;
    this.armExpiry(holder ? this.observed.at + duration + 1 - Date.now() : 0);
  }

  private armExpiry(ms: number): void {
    clearTimeout(this.expiryTimer);
    if (this.stopped) return;
    this.expiryTimer = setTimeout(() => void this.attempt(), Math.max(0, ms));
  }

  /** One tryAcquireOrRenew, after any in flight. */
  private attempt(): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (this.stopped) return;
      try {
        await this.tryAcquireOrRenew();
      } catch (err) {
        this.log.warn({ err: String(err).slice(0, 200) }, 'lease update failed');
      }
    });
    return this.chain;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.expiryTimer);
    clearTimeout(this.watchRetry);
    await this.informer?.stop().catch(() => undefined);
    if (!this.leader) return;
    this.setLeader(false, '');
    try {
      const l = await this.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (l.spec?.holderIdentity === this.o.identity) {
        l.spec.holderIdentity = '';
        await this.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: l });
      }
    } catch {
      /* the others take over after the lease duration */
    }
  }

  private setLeader(v: boolean, holder: string): void {
    if (v === this.leader) return;
    this.leader = v;
    if (v) {
      this.acquisitions++;
      this.log.info({ lease: `${this.o.namespace}/${this.o.name}` }, 'became leader');
      this.emit('leading');
    } else {
      this.log.info({ lease: `${this.o.namespace}/${this.o.name}`, holder }, 'following');
      this.emit('following', holder);
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    await this.attempt();
    if (this.leader && Date.now() - this.lastRenew > (this.o.renewDeadlineMs ?? 10_000))
      this.setLeader(false, '');
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.o.retryPeriodMs ?? 2000);
  }

  private spec(prev?: V1Lease): V1Lease {
    const now = new V1MicroTime();
    const held = prev?.spec?.holderIdentity === this.o.identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.o.name,
        namespace: this.o.namespace,
        resourceVersion: prev?.metadata?.resourceVersion,
      },
      spec: {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: this.duration,
        acquireTime: held && prev?.spec?.acquireTime ? new V1MicroTime(prev.spec.acquireTime) : now,
        renewTime: now,
        leaseTransitions: (prev?.spec?.leaseTransitions ?? 0) + (prev && !held ? 1 : 0),
      },
    };
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const ref = { name: this.o.name, namespace: this.o.namespace };
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease(ref);
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      await this.api.createNamespacedLease({ namespace: this.o.namespace, body: this.spec() });
      this.lastRenew = Date.now();
      this.setLeader(true, this.o.identity);
      return;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    this.observe(lease);
    const duration = (lease.spec?.leaseDurationSeconds ?? this.duration) * 1000;
    const expired = !holder || Date.now() - this.observed.at > duration;
    if (holder !== this.o.identity && !expired) {
      this.setLeader(false, holder);
      return;
    }
    // ours to renew, or expired/released: take it (a conflict means someone else was faster)
    await this.api.replaceNamespacedLease({ ...ref, body: this.spec(lease) });
    this.lastRenew = Date.now();
    this.setLeader(true, this.o.identity);
  }
}
