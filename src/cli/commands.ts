/**
 * The operator commands: `status`, `routes`, `snapshot`, `diff` and `wait` ask a running
 * signalbox (its read-only debug endpoint, `--server`); `translate` works offline. Human
 * tables by default, the data with `-o json` or `-o yaml`.
 *
 * Exit codes: 0 done; 1 the answer is negative (`diff`: differences, `wait`: not Ready in
 * time, `translate`: an input was rejected or a Gateway could not be built); 2 the question
 * could not be answered (signalbox unreachable, no such Gateway or node, bad arguments).
 */
import { readFileSync } from 'node:fs';
import { Option } from 'commander';
import type { Command } from 'commander';
import { DEFAULT_CONTROLLER_NAME } from '../provider/pipeline.js';
import { DebugClient, DEFAULT_SERVER } from './client.js';
import {
  CliError,
  FORMATS,
  UnreachableError,
  oneLine,
  parseDuration,
  parseNamespacedName,
  render,
  short,
  table,
} from './output.js';
import type { Format } from './output.js';
import { parseRouteTarget, routesTable, waitVerdict } from './routes.js';
import type { RoutesDocument, WaitVerdict } from './routes.js';
import { TYPES, differences, streamSync } from './sync.js';
import type { ShortType, SnapshotJson, StreamJson, StreamSync } from './sync.js';

interface Common {
  server: string;
  output: Format;
}

const serverOption = () =>
  new Option('--server <url>', 'the debug address of the signalbox to ask (serve --debug-address)')
    .env('SIGNALBOX_SERVER')
    .default(DEFAULT_SERVER);

const outputOption = () =>
  new Option('-o, --output <format>', 'table (for people), json or yaml (the data)')
    .choices(FORMATS)
    .default('table');

/** Run a command; a CliError is its message on stderr and its exit code. */
function run<A extends unknown[]>(fn: (...a: A) => Promise<number | void>): (...a: A) => Promise<void> {
  return async (...a: A) => {
    try {
      const code = await fn(...a);
      if (code) process.exitCode = code;
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      process.stderr.write(`signalbox: ${err.message}\n`);
      process.exitCode = err.exitCode;
    }
  };
}

const out = (s: string) => process.stdout.write(s);

const TYPE_NAMES: Record<string, ShortType> = {
  cds: 'CDS',
  cluster: 'CDS',
  clusters: 'CDS',
  lds: 'LDS',
  listener: 'LDS',
  listeners: 'LDS',
  eds: 'EDS',
  endpoint: 'EDS',
  endpoints: 'EDS',
  rds: 'RDS',
  route: 'RDS',
  routes: 'RDS',
  sds: 'SDS',
  secret: 'SDS',
  secrets: 'SDS',
};

/** --type: CDS, LDS, EDS, RDS, SDS (or cluster, listener, endpoint, route, secret). */
export function parseType(v: string): ShortType {
  const t = TYPE_NAMES[v.toLowerCase()];
  if (!t)
    throw new CliError(
      `--type "${v}" is not one of ${TYPES.join(', ')} (or cluster, listener, endpoint, route, secret)`,
    );
  return t;
}

/** GET /debug/snapshots/<ns>/<gw> of a node group (undefined: the group is not <namespace>/<name>). */
const groupPath = (g: string): string | undefined => {
  const parts = g.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return `/debug/snapshots/${encodeURIComponent(parts[0])}/${encodeURIComponent(parts[1])}`;
};

interface SnapshotListEntry {
  group: string;
  versions: Record<string, string>;
  nodes: string[];
}

async function gatewaySnapshot(
  c: DebugClient,
  group: string,
  node?: string,
): Promise<SnapshotJson | undefined> {
  // an Envoy whose node.cluster names no Gateway is served nothing: it should hold nothing
  const p = groupPath(group);
  if (!p) return undefined;
  return c.get<SnapshotJson>(p + (node ? `?node=${encodeURIComponent(node)}` : ''), true);
}

/** The snapshot of every Gateway the streams serve (undefined: it has none). */
async function snapshotsOf(
  c: DebugClient,
  streams: StreamJson[],
): Promise<Map<string, SnapshotJson | undefined>> {
  const m = new Map<string, SnapshotJson | undefined>();
  for (const g of new Set(streams.map((s) => s.group))) m.set(g, await gatewaySnapshot(c, g));
  return m;
}

const streamLabel = (s: { node: string; stream: number }) => `${s.node} (stream ${s.stream})`;

// ---------- status ----------

interface StatusDocument {
  nodes: StreamSync[];
  /** Gateways with a snapshot and no Envoy connected */
  gatewaysWithoutEnvoy: string[];
}

export function statusTable(doc: StatusDocument): string {
  const lines: string[] = [];
  if (doc.nodes.length === 0) lines.push('no Envoy connected\n');
  else
    lines.push(
      table(
        ['NODE', 'STREAM', 'GATEWAY', ...TYPES],
        doc.nodes.map((s) => [
          s.node + (s.connected ? '' : ' (disconnected)') + (s.duplicateNodeId ? ' (duplicate id)' : ''),
          String(s.stream),
          s.gateway + (s.hasSnapshot ? '' : ' (no snapshot)'),
          ...TYPES.map((t) => s.types[t].state),
        ]),
      ),
    );
  const notes: string[] = [];
  for (const s of doc.nodes)
    for (const t of TYPES) {
      const x = s.types[t];
      if (x.state === 'NACKED') notes.push(`${streamLabel(s)} ${t} NACKED: ${oneLine(x.error ?? '', 1000)}`);
    }
  if (doc.gatewaysWithoutEnvoy.length > 0)
    notes.push(`no Envoy connected for: ${doc.gatewaysWithoutEnvoy.join(', ')}`);
  if (notes.length > 0) lines.push('\n' + notes.join('\n') + '\n');
  return lines.join('');
}

// ---------- diff ----------

export function diffTable(syncs: StreamSync[]): string {
  const parts: string[] = [];
  for (const s of syncs) {
    const n = differences(s);
    const total = TYPES.reduce((a, t) => a + s.types[t].want, 0);
    if (n === 0) {
      parts.push(`${streamLabel(s)} ${s.gateway}: in sync (${total} resources)\n`);
      continue;
    }
    const rows: string[][] = [];
    for (const t of TYPES) {
      const d = s.types[t].diff;
      for (const x of d.added)
        rows.push([t, 'added', x.name, '', short(x.want), x.nacked ? `NACKED: ${oneLine(x.nacked)}` : '']);
      for (const x of d.changed)
        rows.push([
          t,
          'changed',
          x.name,
          short(x.acked),
          short(x.want),
          x.nacked ? `NACKED: ${oneLine(x.nacked)}` : '',
        ]);
      for (const x of d.removed) rows.push([t, 'removed', x.name, short(x.acked), '', '']);
    }
    parts.push(
      `${streamLabel(s)} ${s.gateway}: ${n} difference${n === 1 ? '' : 's'} (ACKED: what it holds, SNAPSHOT: what it should)\n` +
        table(['TYPE', 'CHANGE', 'NAME', 'ACKED', 'SNAPSHOT', 'NOTE'], rows)
          .split('\n')
          .map((l) => (l ? `  ${l}` : l))
          .join('\n'),
    );
  }
  return parts.join('\n');
}

// ---------- snapshot ----------

type AckState = 'ACKED' | 'NACKED' | 'OLDER' | 'NOT ACKED';

interface SnapshotView extends SnapshotJson {
  /** --node: the stream whose state each resource carries */
  stream?: number;
}

export function snapshotTable(v: SnapshotView): string {
  const rows: string[][] = [];
  for (const t of TYPES)
    for (const r of v.resources[t] ?? []) {
      const st = (r as { node?: { state: AckState; error?: string } }).node;
      rows.push([
        t,
        r.name,
        short(r.version),
        ...(v.node ? [st ? st.state + (st.error ? `: ${oneLine(st.error)}` : '') : ''] : []),
      ]);
    }
  const head = `${v.group}${v.node ? ` as served to ${v.node} (stream ${v.stream})` : ''}: ${TYPES.map((t) => `${t} ${short(v.versions[t])}`).join(' ')}\n`;
  if (rows.length === 0) return head + 'no resources\n';
  return head + table(['TYPE', 'NAME', 'VERSION', ...(v.node ? ['ACK'] : [])], rows);
}

// ---------- registration ----------

export function registerOperatorCommands(program: Command): void {
  program
    .command('status')
    .summary("each Envoy's sync state per xDS type (SYNCED, STALE, NACKED, NOT SENT)")
    .description(
      "per Envoy (node id and ADS stream) and xDS type: SYNCED (ACKed what its Gateway's snapshot holds now), STALE (ACKed an older content; a newer one is on its way or not sent yet), NACKED (with Envoy's error), NOT SENT; like `istioctl proxy-status`",
    )
    .addOption(serverOption())
    .addOption(outputOption())
    .option('--node <id>', 'only the streams of this node id')
    .option('--gateway <namespace/name>', 'only the Envoys of this Gateway')
    .option('--all', 'disconnected streams too (the ledger keeps the last ones)', false)
    .action(
      run(async (o: Common & { node?: string; gateway?: string; all: boolean }) => {
        const c = new DebugClient(o.server);
        if (o.gateway) parseNamespacedName(o.gateway);
        const list = await c.get<SnapshotListEntry[]>('/debug/snapshots');
        const streams = (await c.get<StreamJson[]>('/debug/nodes')).filter(
          (s) =>
            (o.all || s.connected) && (!o.node || s.id === o.node) && (!o.gateway || s.group === o.gateway),
        );
        const snaps = await snapshotsOf(c, streams);
        const doc: StatusDocument = {
          nodes: streams.map((s) => streamSync(s, snaps.get(s.group))),
          gatewaysWithoutEnvoy: o.node
            ? []
            : list
                .filter((g) => g.nodes.length === 0 && (!o.gateway || g.group === o.gateway))
                .map((g) => g.group),
        };
        if (o.node && doc.nodes.length === 0)
          throw new CliError(
            `no ${o.all ? '' : 'connected '}stream of node ${o.node}${o.gateway ? ` on ${o.gateway}` : ''}`,
          );
        out(render(o.output, doc, () => statusTable(doc)));
      }),
    );

  program
    .command('routes')
    .summary('routes: parents, conditions, readiness phase and reason')
    .description(
      'every HTTPRoute and GRPCRoute: its parent Gateways, conditions (Accepted, ResolvedRefs, Ready), the readiness phase and the reason and message of its state',
    )
    .addOption(serverOption())
    .addOption(outputOption())
    .option('-n, --namespace <namespace>', 'only the routes of this namespace')
    .action(
      run(async (o: Common & { namespace?: string }) => {
        const c = new DebugClient(o.server);
        const doc = await c.get<RoutesDocument>('/debug/routes', true);
        if (!doc)
          throw new CliError(
            `${c.base} has no /debug/routes: it serves no Gateway API objects (--envoy-dir only), or it is older than this command`,
          );
        const view = {
          ...doc,
          routes: doc.routes.filter((r) => !o.namespace || r.namespace === o.namespace),
        };
        out(render(o.output, view, () => routesTable(view)));
      }),
    );

  program
    .command('snapshot')
    .summary("the Envoy resources served to a Gateway's Envoys")
    .description(
      "the Envoy resources signalbox serves a Gateway's Envoys now (table: names and versions; -o yaml|json: the resources, private keys redacted); --node: as served to that Envoy, with what it ACKed of each",
    )
    .argument('<namespace/gateway>', 'the Gateway')
    .addOption(serverOption())
    .addOption(outputOption())
    .option(
      '--type <type>',
      'only this xDS type: CDS, LDS, EDS, RDS, SDS (or cluster, listener, endpoint, route, secret)',
    )
    .option('--node <id>', 'a node id of the Gateway: its snapshot, each resource with its ACK state')
    .action(
      run(async (group: string, o: Common & { type?: string; node?: string }) => {
        const c = new DebugClient(o.server);
        const type = o.type ? parseType(o.type) : undefined;
        parseNamespacedName(group);
        const snap = await gatewaySnapshot(c, group, o.node);
        if (!snap) {
          const list = await c.get<SnapshotListEntry[]>('/debug/snapshots');
          throw new CliError(
            `no snapshot for ${group}; Gateways with one: ${list.map((g) => g.group).join(', ') || 'none'}`,
          );
        }
        const view: SnapshotView = { ...snap, resources: { ...snap.resources } };
        if (type) for (const t of TYPES) if (t !== type) delete view.resources[t];
        if (o.node) {
          const streams = (await c.get<StreamJson[]>('/debug/nodes')).filter(
            (s) => s.id === o.node && s.connected,
          );
          const st = streams.filter((s) => s.group === group).pop();
          if (!st)
            throw new CliError(
              streams.length > 0
                ? `node ${o.node} serves ${streams[0].group}, not ${group}`
                : `no connected stream of node ${o.node}`,
            );
          view.stream = st.stream;
          for (const t of TYPES) {
            const list = view.resources[t];
            if (!list) continue;
            view.resources[t] = list.map((r) => {
              const l = st.types[t]?.resources?.[r.name];
              const state: AckState =
                l?.acked === r.version
                  ? 'ACKED'
                  : l?.nacked === r.version
                    ? 'NACKED'
                    : l?.acked
                      ? 'OLDER'
                      : 'NOT ACKED';
              return { ...r, node: { state, ...(state === 'NACKED' && l?.error ? { error: l.error } : {}) } };
            });
          }
        }
        out(render(o.output, view, () => snapshotTable(view)));
      }),
    );

  program
    .command('diff')
    .summary('what an Envoy has ACKed against what it should have')
    .description(
      'what each Envoy of a Gateway has ACKed against what it should have (the snapshot now), resource by resource: added (it lacks it), changed (it holds another content), removed (it still holds it); exit code 1 when they differ',
    )
    .argument('<namespace/gateway>', 'the Gateway')
    .addOption(serverOption())
    .addOption(outputOption())
    .option('--node <id>', 'only this node id')
    .action(
      run(async (group: string, o: Common & { node?: string }) => {
        const c = new DebugClient(o.server);
        parseNamespacedName(group);
        const snap = await gatewaySnapshot(c, group);
        const all = (await c.get<StreamJson[]>('/debug/nodes')).filter((s) => s.connected);
        const streams = all.filter((s) => s.group === group && (!o.node || s.id === o.node));
        if (streams.length === 0) {
          const elsewhere = o.node ? all.find((s) => s.id === o.node) : undefined;
          throw new CliError(
            elsewhere
              ? `node ${o.node} serves ${elsewhere.group}, not ${group}`
              : `no Envoy of ${group}${o.node ? ` with node id ${o.node}` : ''} is connected${snap ? '' : ' (and it has no snapshot)'}`,
          );
        }
        const syncs = streams.map((s) => streamSync(s, snap));
        const data = syncs.map((s) => ({
          node: s.node,
          stream: s.stream,
          gateway: s.gateway,
          inSync: differences(s) === 0,
          types: Object.fromEntries(TYPES.map((t) => [t, { state: s.types[t].state, ...s.types[t].diff }])),
        }));
        out(render(o.output, data, () => diffTable(syncs)));
        return syncs.some((s) => differences(s) > 0) ? 1 : 0;
      }),
    );

  program
    .command('translate')
    .summary('offline: Envoy resources and status from Gateway API YAML')
    .description(
      "offline, no server: the Envoy resources of each Gateway and every object's status from Gateway API YAML, through the same defaulting, validation and translation as standalone mode (`serve --config-dir`); routes get no Ready condition (nothing is proved offline); exit code 1 when an object is rejected or a Gateway cannot be built",
    )
    .requiredOption(
      '-f, --file <paths...>',
      'YAML or JSON files, folders (their .yaml/.yml/.json files), or - for stdin',
    )
    .addOption(outputOption())
    .option('--type <type>', 'only this xDS type in the output: CDS, LDS, EDS, RDS, SDS')
    .option(
      '--controller-name <name>',
      'GatewayClasses whose spec.controllerName is this are ours',
      DEFAULT_CONTROLLER_NAME,
    )
    .option('--listener-address <ip>', 'address the Envoy listeners of Gateways bind', '0.0.0.0')
    .action(
      run(
        async (o: {
          file: string[];
          output: Format;
          type?: string;
          controllerName: string;
          listenerAddress: string;
        }) => {
          const type = o.type ? parseType(o.type) : undefined;
          // loaded here only: the proto registry and the translator stay out of the other commands
          const { readInputs, translateOffline, translateTable } = await import('./translate.js');
          const inputs = readInputs(o.file, () => readFileSync(0, 'utf8'));
          const res = translateOffline(inputs, {
            controllerName: o.controllerName,
            listenerAddress: o.listenerAddress,
          });
          if (type)
            for (const g of res.gateways) for (const t of TYPES) if (t !== type) delete g.resources[t];
          out(render(o.output, res, () => translateTable(res)));
          return res.errors.length > 0 || res.gatewayFailures.length > 0 ? 1 : 0;
        },
      ),
    );

  program
    .command('wait')
    .summary('wait until a route is Ready at its current generation')
    .description(
      'wait until a route is Ready at its current generation on every parent Gateway: exit code 0 then, 1 with the reason and message when --timeout passes first',
    )
    .argument('<route/namespace/name>', 'the route: route/<ns>/<name> (or httproute/..., grpcroute/...)')
    .addOption(serverOption())
    .addOption(outputOption())
    .option('--timeout <duration>', 'how long to wait: 500ms, 30s, 2m, ...', '60s')
    .addOption(
      new Option('--kind <kind>', 'the route kind, when an HTTPRoute and a GRPCRoute share the name').choices(
        ['HTTPRoute', 'GRPCRoute'],
      ),
    )
    .action(
      run(async (target: string, o: Common & { timeout: string; kind?: string }) => {
        const c = new DebugClient(o.server);
        const t = parseRouteTarget(target, o.kind);
        const timeoutMs = parseDuration(o.timeout);
        const end = Date.now() + timeoutMs;
        let v: WaitVerdict | undefined;
        let lastError: string | undefined;
        for (;;) {
          try {
            const doc = await c.get<RoutesDocument>(
              '/debug/routes',
              true,
              Math.max(1000, Math.min(10_000, end - Date.now())),
            );
            if (!doc) throw new CliError(`${c.base} has no /debug/routes: it serves no Gateway API objects`);
            v = waitVerdict(doc, t);
            lastError = undefined;
            if (v.ready) break;
            if (v.fatal) throw new CliError(`${v.route}: ${v.message}`);
          } catch (err) {
            if (!(err instanceof UnreachableError)) throw err;
            lastError = err.message;
          }
          const left = end - Date.now();
          if (left <= 0) break;
          await new Promise((r) => setTimeout(r, Math.min(250, left)));
        }
        const result = v ?? { route: target, ready: false, reason: 'Unreachable', message: lastError ?? '' };
        if (o.output !== 'table')
          out(render(o.output, { ...result, ...(lastError ? { error: lastError } : {}) }, () => ''));
        if (result.ready) {
          if (o.output === 'table')
            out(
              `${result.route} is Ready at generation ${result.generation}: ${oneLine(result.message, 500)}\n`,
            );
          return 0;
        }
        process.stderr.write(
          `signalbox: ${result.route} is not Ready after ${o.timeout}: ${result.reason}: ${oneLine(result.message, 2000)}${lastError && v ? ` (last: ${lastError})` : ''}\n`,
        );
        return 1;
      }),
    );
}
