/**
 * Readiness metrics (Prometheus, prom-client): how long a route change takes to its outcome,
 * how long each phase takes, probes by result, and the routes by Ready reason (quarantined:
 * Nacked or ProbeFailed, serving their previous state).
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { ReadyReason } from './index.js';

const SECONDS = [0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A histogram of durations in seconds (SECONDS buckets) by one label, in `registry`. */
function secondsHistogram<L extends string>(
  registry: Registry,
  name: string,
  label: L,
  help: string,
): Histogram<L> {
  return new Histogram({ name, help, labelNames: [label], buckets: SECONDS, registers: [registry] });
}

export class ReadinessMetrics {
  readonly routeReady: Histogram<'outcome'>;
  readonly phase: Histogram<'phase'>;
  readonly probes: Counter<'result'>;

  constructor(registry: Registry, reasons: () => Iterable<ReadyReason>) {
    const registers = [registry];
    this.routeReady = secondsHistogram(
      registry,
      'signalbox_route_ready_seconds',
      'outcome',
      'From a route change reaching readiness (a new desired state of the route) to its outcome, by outcome (the Ready reason: Ready, ProbeFailed, Nacked, NoEndpoints, NoDataPlane, EnvoyDisconnected)',
    );
    this.phase = secondsHistogram(
      registry,
      'signalbox_readiness_phase_seconds',
      'phase',
      'Duration of a readiness phase of a Gateway (add: push, ACKs and probes; promote: push, ACKs and probes; drop: push and ACKs; naive: push and ACKs)',
    );
    this.probes = new Counter({
      name: 'signalbox_readiness_probes_total',
      help: 'Readiness probes through Envoy (one per route backend and Envoy, retried until its outcome), by result (ok, wrong-hash, local-reply, connect, timeout, protocol)',
      labelNames: ['result'] as const,
      registers,
    });
    new Gauge({
      name: 'signalbox_readiness_quarantined_routes',
      help: 'Routes whose last change failed (Nacked or ProbeFailed) and that keep serving their previous state',
      registers,
      collect() {
        let n = 0;
        for (const r of reasons()) if (r === 'Nacked' || r === 'ProbeFailed') n++;
        this.set(n);
      },
    });
    const all: ReadyReason[] = [
      'Ready',
      'Proving',
      'Nacked',
      'ProbeFailed',
      'NoEndpoints',
      'NoDataPlane',
      'EnvoyDisconnected',
    ];
    new Gauge({
      name: 'signalbox_readiness_routes',
      help: "Routes by their Ready reason on this replica (this replica's Envoys)",
      labelNames: ['reason'] as const,
      registers,
      collect() {
        const count = new Map<string, number>(all.map((r) => [r, 0]));
        for (const r of reasons()) count.set(r, (count.get(r) ?? 0) + 1);
        for (const [reason, v] of count) this.set({ reason }, v);
      },
    });
  }
}
