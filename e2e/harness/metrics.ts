/** Prometheus text exposition helpers, and the metrics an operator needs (issue 11). */

/** What the operator needs, by the metric that answers it. */
export const OPERATOR_METRICS: Record<string, string> = {
  'xDS connections': 'signalbox_xds_connected_nodes',
  pushes: 'signalbox_xds_pushes_total',
  ACKs: 'signalbox_xds_acks_total',
  NACKs: 'signalbox_xds_nacks_total',
  'push→ACK latency': 'signalbox_xds_push_ack_latency_seconds',
  'translation duration': 'signalbox_translation_duration_seconds',
  'event→push latency': 'signalbox_event_push_latency_seconds',
  'route Ready latency': 'signalbox_route_ready_seconds',
  'routes by condition': 'signalbox_route_conditions',
  'routes by Ready reason': 'signalbox_readiness_routes',
  'nodes out of sync': 'signalbox_xds_nodes_out_of_sync',
};

/** Samples of a text exposition: `name{labels}` → value. */
export function samples(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** Metric families of a text exposition (`# TYPE` lines): name → type. */
export function families(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) m.set(t[1], t[2]);
  }
  return m;
}

/** The sum of the samples of `name` whose labels include every `labels` pair. */
export function sampleSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [k, v] of samples(text)) {
    const m = /^([^{]+)(?:\{(.*)\})?$/.exec(k);
    if (!m || m[1] !== name) continue;
    const have = m[2] ?? '';
    if (Object.entries(labels).every(([l, val]) => have.includes(`${l}="${val}"`))) sum += v;
  }
  return sum;
}

/**
 * Every metric family a Grafana dashboard's queries name (panel targets and templating
 * queries; _bucket/_sum/_count of a histogram named as the histogram).
 */
export function dashboardMetrics(dashboard: unknown): Set<string> {
  const exprs: string[] = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object')
      for (const [k, v] of Object.entries(x)) {
        if ((k === 'expr' || k === 'definition') && typeof v === 'string') exprs.push(v);
        else if (k === 'query' && typeof v === 'string') exprs.push(v);
        else walk(v);
      }
  };
  walk(dashboard);
  const out = new Set<string>();
  for (const e of exprs)
    for (const m of e.matchAll(/\bsignalbox_[a-z0-9_]+/g)) out.add(m[0].replace(/_(bucket|sum|count)$/, ''));
  return out;
}
