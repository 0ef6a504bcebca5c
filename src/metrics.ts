/** Prometheus metrics (prom-client), one registry per signalbox instance. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly connectedNodes = new Gauge({
    name: 'signalbox_xds_connected_nodes',
    help: 'ADS streams currently open, by protocol variant',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });
  readonly pushes = new Counter({
    name: 'signalbox_xds_pushes_total',
    help: 'Discovery responses sent',
    labelNames: ['type', 'mode'] as const,
    registers: [this.registry],
  });
  readonly pushedBytes = new Counter({
    name: 'signalbox_xds_pushed_bytes_total',
    help: 'Encoded bytes of discovery responses sent',
    labelNames: ['type', 'mode'] as const,
    registers: [this.registry],
  });
  readonly acks = new Counter({
    name: 'signalbox_xds_acks_total',
    help: 'Responses ACKed by clients',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly nacks = new Counter({
    name: 'signalbox_xds_nacks_total',
    help: 'Responses NACKed by clients',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly pushAckLatency = new Histogram({
    name: 'signalbox_xds_push_ack_latency_seconds',
    help: 'Time from sending a response to its ACK or NACK',
    labelNames: ['type'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly streamErrors = new Counter({
    name: 'signalbox_xds_stream_errors_total',
    help: 'Requests or streams rejected, by reason (no_node, unknown_type, flood, stale_nonce, ...)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly snapshots = new Counter({
    name: 'signalbox_snapshots_set_total',
    help: 'Snapshots set in the cache',
    registers: [this.registry],
  });
  readonly duplicateNodeIds = new Counter({
    name: 'signalbox_xds_duplicate_node_ids_total',
    help: 'ADS streams opened with the node.id of another stream still connected (each is served as its own Envoy)',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });
  readonly rounds = new Counter({
    name: 'signalbox_xds_rounds_total',
    help: 'Make-before-break rounds by outcome (applied, stopped, superseded, closed) and, when stopped, reason (nack, timeout)',
    labelNames: ['outcome', 'reason'] as const,
    registers: [this.registry],
  });
  readonly k8sEvents = new Counter({
    name: 'signalbox_kubernetes_events_total',
    help: 'Informer events, by kind and whether they concern our Gateways (only those translate)',
    labelNames: ['kind', 'relevant'] as const,
    registers: [this.registry],
  });
  readonly k8sRelists = new Counter({
    name: 'signalbox_kubernetes_relists_total',
    help: 'Lists after the first one (after 410 Gone or an informer restart), by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly k8sGone = new Counter({
    name: 'signalbox_kubernetes_watch_gone_total',
    help: 'Watches answered 410 Gone (resourceVersion too old), by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly k8sTranslationDelay = new Histogram({
    name: 'signalbox_kubernetes_translation_delay_seconds',
    help: 'From the first event of a burst to the translation that covers it',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly translationFailures = new Counter({
    name: 'signalbox_translation_failures_total',
    help: 'Gateways whose Envoy configuration could not be built (their last good snapshot stays served), by Gateway (namespace/name; "*": the whole translation failed)',
    labelNames: ['gateway'] as const,
    registers: [this.registry],
  });
  readonly k8sListFailures = new Counter({
    name: 'signalbox_kubernetes_list_failures_total',
    help: 'Failed informer lists (the informer retries with backoff; nothing is translated before every kind has listed once), by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly k8sSynced = new Gauge({
    name: 'signalbox_kubernetes_informer_synced',
    help: '1 once the informer of this kind has listed successfully (readiness waits for all)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly localEnvoys = new Gauge({
    name: 'signalbox_local_envoys',
    help: 'Envoys signalbox runs itself (serve --envoy local), by state (starting, running, backoff, stopping)',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  readonly localEnvoyRestarts = new Counter({
    name: 'signalbox_local_envoy_restarts_total',
    help: 'Local Envoys that exited on their own and were started again (with backoff), by Gateway (namespace/name)',
    labelNames: ['gateway'] as const,
    registers: [this.registry],
  });
  readonly translationDuration = new Histogram({
    name: 'signalbox_translation_duration_seconds',
    help: 'Time one translation takes: every Gateway API object in reach to the Envoy snapshots of all Gateways (translator and encoding)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly eventPushLatency = new Histogram({
    name: 'signalbox_event_push_latency_seconds',
    help: 'From the first event of a configuration change (Kubernetes informer event, file change) to the first discovery response carrying it to an Envoy of the Gateway (changes of Gateways with no Envoy connected are not observed)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly routeConditions = new Gauge({
    name: 'signalbox_route_conditions',
    help: 'Route parent statuses of the last translation (one per route and parent Gateway), by condition type (Accepted, ResolvedRefs) and status (True, False, Unknown); the Ready condition: signalbox_readiness_routes',
    labelNames: ['type', 'status'] as const,
    registers: [this.registry],
  });
  /** set by the snapshot cache (trackSync): counted at each scrape */
  private outOfSync: () => number = () => 0;
  readonly nodesOutOfSync: Gauge = new Gauge({
    name: 'signalbox_xds_nodes_out_of_sync',
    help: 'Connected ADS streams (Envoys) whose ACKed resources differ from the snapshot they should hold now (a push on its way, a NACK, a stalled round)',
    registers: [this.registry],
    collect: () => this.nodesOutOfSync.set(this.outOfSync()),
  });

  /** The snapshot cache counts the streams out of sync (signalbox_xds_nodes_out_of_sync). */
  trackSync(count: () => number): void {
    this.outOfSync = count;
  }

  /** Current value of a counter or gauge for the given labels (0 when never set). */
  async value(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = this.registry.getSingleMetric(name);
    if (!m) throw new Error(`no metric ${name}`);
    const got = await m.get();
    const want = Object.entries(labels);
    const v = got.values.find((x) => want.every(([k, val]) => String(x.labels[k]) === val));
    return v?.value ?? 0;
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics) {
      collectDefaultMetrics({ register: this.registry, prefix: 'signalbox_' });
      // prom-client's gauges named *_total (promtool: "non-counter metrics should not have
      // _total suffix"); their by-type twins without the suffix stay: sum() them instead
      for (const n of ['active_handles', 'active_requests', 'active_resources'])
        this.registry.removeSingleMetric(`signalbox_nodejs_${n}_total`);
    }
  }
}
