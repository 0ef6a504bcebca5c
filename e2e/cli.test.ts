/**
 * The operator CLI (`signalbox status | routes | snapshot | diff | wait | translate`) as a
 * real subprocess (node dist/src/cli.js) against a running signalbox in standalone mode
 * with a real stock Envoy: human and JSON (YAML) output of each; `wait` exits 0 once a route
 * is Ready at its generation and non-zero with the reason for ProbeFailed / NoEndpoints;
 * `status` and `diff` show a NACK with Envoy's own error text; `translate` works offline on
 * e2e/testdata.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { App } from '../src/app.js';
import type { RoutesDocument } from '../src/debug/routes.js';
import type { StreamSync } from '../src/cli/sync.js';
import { TypeUrl } from '../src/xds/resource.js';
import { get, startBackend } from './harness/backend.js';
import type { Backend } from './harness/backend.js';
import { Envoy, freePort, waitFor } from './harness/envoy.js';
import { gateway, gatewayClass, httpRoute, service } from './harness/gateway-objects.js';
import { REJECTED_REGEX_REWRITE, withRoutes } from './harness/resources.js';
import { CLI } from './harness/signalbox.js';
import { replaceFile, startStandalone, yamlOf } from './harness/standalone.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI to its end (killed after 90 s: a hung command fails the test, never the run). */
function cli(args: string[], o: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'make build' first`);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, SIGNALBOX_SERVER: '', ...o.env },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 90_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(o.stdin ?? '');
  });
}

const json = <T>(r: Run): T => {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout.slice(0, 2000)} ${r.stderr.slice(0, 2000)}`);
  }
};

interface StatusDoc {
  nodes: StreamSync[];
  gatewaysWithoutEnvoy: string[];
}

describe('operator CLI against a running signalbox (standalone, real Envoy)', () => {
  let dir: string;
  let app: App;
  let envoy: Envoy;
  let a: Backend;
  let port: number;
  let server: string[];

  const routeState = async (name: string) => {
    const d = (await (
      await fetch(`http://127.0.0.1:${app.debugPort}/debug/routes`)
    ).json()) as RoutesDocument;
    const r = d.routes.find((x) => x.name === name);
    const ready = r?.parents[0]?.conditions.find((c) => c.type === 'Ready');
    return { generation: r?.generation, ready };
  };

  beforeAll(async () => {
    a = await startBackend('a', '127.0.0.2');
    port = await freePort();
    const deadPort = await freePort(); // nobody listens there
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-cli-'));
    writeFileSync(
      join(dir, 'gateway.yaml'),
      yamlOf(gatewayClass(), gateway([{ name: 'http', protocol: 'HTTP', port }])),
    );
    writeFileSync(
      join(dir, 'services.yaml'),
      yamlOf(
        ...service('svc-a', [a]),
        ...service('svc-dead', [{ host: '127.0.0.4', port: deadPort }]),
        ...service('svc-empty', []),
      ),
    );
    writeFileSync(join(dir, 'web.yaml'), yamlOf(httpRoute('web', '/', 'svc-a')));
    app = await startStandalone(dir);
    server = ['--server', `http://127.0.0.1:${app.debugPort}`];
    envoy = await Envoy.start({ nodeId: 'envoy-cli', group: 'default/gw', xdsPort: app.xdsPort });
  });

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    await a?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('wait: exits 0 once the route is Ready at its generation (human and JSON)', async () => {
    const r = await cli(['wait', 'route/default/web', '--timeout', '60s', ...server]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^httproute\/default\/web is Ready at generation 1: default\/gw: proved through 1 Envoy/,
    );
    const j = await cli(['wait', 'httproute/default/web', '--timeout', '5s', '-o', 'json', ...server]);
    expect(j.code).toBe(0);
    expect(json<{ ready: boolean; generation: number; reason: string }>(j)).toMatchObject({
      route: 'httproute/default/web',
      ready: true,
      generation: 1,
      reason: 'Ready',
    });
    expect((await get(`http://127.0.0.1:${port}/x`)).backend).toBe('a');
  });

  test('status: the Envoy SYNCED on every type it was sent, NOT SENT for SDS (table, JSON, --server from the environment)', async () => {
    // the proof's last phase (probe routes dropped) is ACKed by the time the route is Ready
    const doc = await waitFor(
      'every type synced',
      async () => {
        const d = json<StatusDoc>(await cli(['status', '-o', 'json', ...server]));
        return d.nodes.length === 1 && d.nodes[0].types.RDS.state === 'SYNCED' ? d : undefined;
      },
      60_000,
      200,
    );
    const n = doc.nodes[0];
    expect(n).toMatchObject({ node: 'envoy-cli', gateway: 'default/gw', connected: true, mode: 'sotw' });
    expect(Object.fromEntries(Object.entries(n.types).map(([t, x]) => [t, x.state]))).toEqual({
      CDS: 'SYNCED',
      LDS: 'SYNCED',
      EDS: 'SYNCED',
      RDS: 'SYNCED',
      SDS: 'NOT SENT',
    });
    expect(n.types.CDS.snapshotVersion).toBe(app.cache.getGroup('default/gw')!.version(TypeUrl.Cluster));
    const t = await cli(['status'], { env: { SIGNALBOX_SERVER: `http://127.0.0.1:${app.debugPort}` } });
    expect(t.code).toBe(0);
    const [head, row, ...rest] = t.stdout.trimEnd().split('\n');
    expect(head.split(/\s+/)).toEqual(['NODE', 'STREAM', 'GATEWAY', 'CDS', 'LDS', 'EDS', 'RDS', 'SDS']);
    expect(row.split(/\s{2,}/)).toEqual([
      'envoy-cli',
      String(n.stream),
      'default/gw',
      'SYNCED',
      'SYNCED',
      'SYNCED',
      'SYNCED',
      'NOT SENT',
    ]);
    expect(rest).toEqual([]);
    const y = await cli(['status', '-o', 'yaml', '--node', 'envoy-cli', ...server]);
    expect((parse(y.stdout) as StatusDoc).nodes[0].types.LDS.state).toBe('SYNCED');
  });

  test('routes: parents, conditions, phase and reason (table and JSON)', async () => {
    const t = await cli(['routes', ...server]);
    expect(t.code).toBe(0);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0].split(/\s+/)).toEqual([
      'ROUTE',
      'GEN',
      'PARENT',
      'ACCEPTED',
      'RESOLVEDREFS',
      'READY',
      'PHASE',
      'REASON',
      'MESSAGE',
    ]);
    expect(lines[1]).toMatch(
      /^httproute\/default\/web\s+1\s+default\/gw\s+True\s+True\s+True\s+done\s+Ready\s+proved through 1 Envoy/,
    );
    const d = json<RoutesDocument>(await cli(['routes', '-o', 'json', ...server]));
    expect(d.readiness).toBe('proved');
    const web = d.routes.find((r) => r.name === 'web')!;
    expect(web).toMatchObject({ kind: 'HTTPRoute', namespace: 'default', generation: 1 });
    expect(web.parents[0].conditions.map((c) => `${c.type}=${c.status}`)).toEqual([
      'Accepted=True',
      'ResolvedRefs=True',
      'Ready=True',
    ]);
    expect(web.parents[0].readiness).toMatchObject({ phase: 'done', reason: 'Ready', ready: true });
    expect(web.parents[0].readiness?.nodes.map((x) => [x.node, x.probe?.ok])).toEqual([['envoy-cli', true]]);
  });

  test('snapshot: names and versions, --type, --node with its ACK state, the resources in YAML', async () => {
    const snap = app.cache.getGroup('default/gw')!;
    const t = await cli(['snapshot', 'default/gw', '--node', 'envoy-cli', ...server]);
    expect(t.code).toBe(0);
    const lds = [...snap.get(TypeUrl.Listener).values()][0];
    expect(t.stdout).toContain('default/gw as served to envoy-cli');
    expect(t.stdout).toMatch(new RegExp(`LDS\\s+${lds.name}\\s+${lds.hash.slice(0, 8)}\\s+ACKED`));
    expect(t.stdout).not.toMatch(/NOT ACKED|OLDER|NACKED/);
    const j = json<{ resources: Record<string, { name: string; version: string }[]> }>(
      await cli(['snapshot', 'default/gw', '--type', 'cluster', '-o', 'json', ...server]),
    );
    expect(Object.keys(j.resources)).toEqual(['CDS']);
    expect(j.resources.CDS.map((r) => [r.name, r.version])).toEqual(
      [...snap.get(TypeUrl.Cluster).values()].map((r) => [r.name, r.hash]),
    );
    const y = parse(
      (await cli(['snapshot', 'default/gw', '--type', 'LDS', '-o', 'yaml', ...server])).stdout,
    ) as {
      resources: { LDS: { resource: { '@type': string; name: string } }[] };
    };
    expect(y.resources.LDS[0].resource).toMatchObject({
      '@type': TypeUrl.Listener,
      name: lds.name,
    });
    const missing = await cli(['snapshot', 'default/none', ...server]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no snapshot for default/none; Gateways with one: default/gw');
  });

  test('diff: in sync, exit 0 (table and JSON)', async () => {
    const t = await cli(['diff', 'default/gw', ...server]);
    expect(t.stdout).toMatch(/^envoy-cli \(stream \d+\) default\/gw: in sync \(4 resources\)$/m);
    expect(t.code).toBe(0);
    const j = await cli(['diff', 'default/gw', '--node', 'envoy-cli', '-o', 'json', ...server]);
    expect(j.code).toBe(0);
    const d = json<{ node: string; inSync: boolean; types: Record<string, { added: unknown[] }> }[]>(j);
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ node: 'envoy-cli', inSync: true });
    const other = await cli(['diff', 'default/gw', '--node', 'nobody', ...server]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('no Envoy of default/gw with node id nobody is connected');
  });

  test('wait: after an edit, exits 0 at the new generation; non-zero with the reason for ProbeFailed and NoEndpoints', async () => {
    replaceFile(dir, 'web.yaml', yamlOf(httpRoute('web', '/web', 'svc-a')));
    // the edit is read (generation 2) before wait is asked: wait knows only what signalbox saw
    await waitFor('generation 2 seen', async () => (await routeState('web')).generation === 2);
    const r = await cli(['wait', 'route/default/web', '--timeout', '60s', ...server]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('is Ready at generation 2');

    writeFileSync(
      join(dir, 'broken.yaml'),
      yamlOf(httpRoute('dead', '/dead', 'svc-dead'), httpRoute('empty', '/empty', 'svc-empty')),
    );
    for (const [name, reason] of [
      ['dead', 'ProbeFailed'],
      ['empty', 'NoEndpoints'],
    ]) {
      await waitFor(
        `${name} ${reason}`,
        async () => (await routeState(name)).ready?.reason === reason,
        60_000,
      );
      const w = await cli(['wait', `route/default/${name}`, '--timeout', '1s', ...server]);
      expect(w.code).toBe(1);
      expect(w.stdout).toBe('');
      expect(w.stderr).toContain(`httproute/default/${name} is not Ready after 1s: ${reason}: default/gw:`);
      const j = await cli(['wait', `route/default/${name}`, '--timeout', '500ms', '-o', 'json', ...server]);
      expect(j.code).toBe(1);
      expect(json<{ ready: boolean; reason: string }>(j)).toMatchObject({ ready: false, reason });
    }
    const dead = await cli(['wait', 'route/default/dead', '--timeout', '1s', ...server]);
    expect(dead.stderr).toMatch(/envoy-cli/); // the message names the Envoy whose probe failed
    const routes = await cli(['routes', ...server]);
    expect(routes.stdout).toMatch(
      /httproute\/default\/dead\s+1\s+default\/gw\s+True\s+True\s+False\s+done\s+ProbeFailed/,
    );
    expect(routes.stdout).toMatch(
      /httproute\/default\/empty\s+1\s+default\/gw\s+True\s+True\s+False\s+done\s+NoEndpoints/,
    );
    const none = await cli(['wait', 'route/default/nope', '--timeout', '500ms', ...server]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('NotFound: no HTTPRoute or GRPCRoute default/nope');
  });

  test('an unreachable server: exit 2 and what to check', async () => {
    const r = await cli(['status', '--server', `http://127.0.0.1:${await freePort()}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot reach signalbox at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });
});

describe('status, diff and snapshot show a NACK with Envoy’s own error text', () => {
  let dir: string;
  let app: App;
  let envoy: Envoy;
  let a: Backend;
  let server: string[];

  beforeAll(async () => {
    a = await startBackend('a', '127.0.0.2');
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-cli-nack-'));
    writeFileSync(
      join(dir, 'all.yaml'),
      yamlOf(
        gatewayClass(),
        gateway([{ name: 'http', protocol: 'HTTP', port }]),
        ...service('svc-a', [a]),
        httpRoute('web', '/web', 'svc-a'),
      ),
    );
    // no readiness: the snapshot injected below stays what the Envoy should hold
    app = await startStandalone(dir, { readiness: 'off' });
    server = ['--server', `http://127.0.0.1:${app.debugPort}`];
    envoy = await Envoy.start({ nodeId: 'envoy-nack', group: 'default/gw', xdsPort: app.xdsPort });
  });

  afterAll(async () => {
    await envoy?.stop();
    await app?.close();
    await a?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a route configuration Envoy rejects (a regex RE2 refuses, injected below the translator)', async () => {
    const rds = () => app.cache.ledger.get('envoy-nack')?.types.get(TypeUrl.Route);
    const good = app.cache.getGroup('default/gw')!;
    await waitFor('RDS ACKed', () => rds()?.acked?.version === good.version(TypeUrl.Route), 60_000);
    const bad = withRoutes(good, (rc) => {
      const j = rc as unknown as { virtual_hosts: { routes: { route?: Record<string, unknown> }[] }[] };
      for (const vh of j.virtual_hosts)
        for (const r of vh.routes) if (r.route) r.route.regex_rewrite = REJECTED_REGEX_REWRITE;
    });
    app.cache.setSnapshot('default/gw', bad);
    const nack = await waitFor('RDS NACKed', () => rds()?.nacked, 60_000);

    const t = await cli(['status', ...server]);
    expect(t.code).toBe(0);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[1].split(/\s{2,}/)).toEqual([
      'envoy-nack',
      String(app.cache.ledger.get('envoy-nack')!.streamId),
      'default/gw',
      'SYNCED',
      'SYNCED',
      'SYNCED',
      'NACKED',
      'NOT SENT',
    ]);
    const errLine = lines.find((l) => l.includes('RDS NACKED:'))!;
    expect(errLine).toMatch(/^envoy-nack \(stream \d+\) RDS NACKED: /);
    expect(errLine).toMatch(/missing \)|regex|RE2/i);
    // Envoy's text, as the ledger has it
    expect(errLine).toContain(nack.error.replace(/\s+/g, ' ').trim().slice(0, 100));

    const d = json<StatusDoc>(await cli(['status', '-o', 'json', ...server]));
    expect(d.nodes[0].types.RDS).toMatchObject({ state: 'NACKED', error: nack.error });

    const diff = await cli(['diff', 'default/gw', ...server]);
    expect(diff.code).toBe(1);
    const rc = [...bad.get(TypeUrl.Route).values()][0];
    const old = good.get(TypeUrl.Route).get(rc.name)!;
    expect(diff.stdout).toContain('default/gw: 1 difference');
    expect(diff.stdout).toMatch(
      new RegExp(
        `RDS\\s+changed\\s+${rc.name}\\s+${old.hash.slice(0, 8)}\\s+${rc.hash.slice(0, 8)}\\s+NACKED: `,
      ),
    );
    const dj = json<
      { inSync: boolean; types: Record<string, { changed: { name: string; nacked?: string }[] }> }[]
    >(await cli(['diff', 'default/gw', '-o', 'json', ...server]));
    expect(dj[0].inSync).toBe(false);
    expect(dj[0].types.RDS.changed).toEqual([
      { name: rc.name, acked: old.hash, want: rc.hash, nacked: nack.error },
    ]);

    const s = await cli(['snapshot', 'default/gw', '--type', 'RDS', '--node', 'envoy-nack', ...server]);
    expect(s.stdout).toMatch(new RegExp(`RDS\\s+${rc.name}\\s+${rc.hash.slice(0, 8)}\\s+NACKED: `));

    // the fix: the good snapshot again; SYNCED, no difference
    app.cache.setSnapshot('default/gw', good);
    await waitFor(
      'RDS SYNCED again',
      async () =>
        json<StatusDoc>(await cli(['status', '-o', 'json', ...server])).nodes[0].types.RDS.state === 'SYNCED',
      60_000,
      200,
    );
    expect((await cli(['diff', 'default/gw', ...server])).code).toBe(0);
  });
});

describe('translate (offline, no server)', () => {
  const DIR = 'e2e/testdata/gateway-folder';

  test('a folder: resources per Gateway and every object’s status (table, YAML, JSON); stdin', async () => {
    // nothing listens at the server it is given: translate never asks one
    const t = await cli(['translate', '-f', DIR], { env: { SIGNALBOX_SERVER: 'http://127.0.0.1:1' } });
    expect(t.stderr).toBe('');
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^GATEWAY\s+TYPE\s+NAME\s+VERSION$/m);
    expect(t.stdout).toMatch(/^default\/gw\s+LDS\s+listener-18080\s+[0-9a-f]{8}$/m);
    expect(t.stdout).toMatch(/^HTTPRoute\s+default\s+web\s+1\s+gw: Accepted=True ResolvedRefs=True$/m);
    expect(t.stdout).toMatch(/^Gateway\s+default\s+gw\s+1\s+Accepted=True Programmed=True/m);

    const y = await cli([
      'translate',
      '-f',
      `${DIR}/gateway.yaml`,
      `${DIR}/route.yaml`,
      `${DIR}/backend.yaml`,
      '-o',
      'yaml',
    ]);
    expect(y.code).toBe(0);
    const doc = parse(y.stdout) as {
      gateways: {
        group: string;
        resources: Record<string, { name: string; resource: Record<string, unknown> }[]>;
      }[];
      objects: { kind: string; name: string; status: unknown }[];
      errors: unknown[];
    };
    expect(doc.errors).toEqual([]);
    expect(doc.gateways.map((g) => g.group)).toEqual(['default/gw']);
    const cla = doc.gateways[0].resources.EDS[0].resource as {
      endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { port_value: number } } } }[] }[];
    };
    expect(cla.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(8081);
    expect(doc.objects.map((o) => o.kind).sort()).toEqual([
      'EndpointSlice',
      'Gateway',
      'GatewayClass',
      'HTTPRoute',
      'Service',
    ]);

    const stdin = [`${DIR}/gateway.yaml`, `${DIR}/route.yaml`, `${DIR}/backend.yaml`]
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n---\n');
    const j = await cli(['translate', '-f', '-', '-o', 'json', '--type', 'RDS'], { stdin });
    expect(j.code).toBe(0);
    const jd = json<{ gateways: { resources: Record<string, { name: string }[]> }[] }>(j);
    expect(Object.keys(jd.gateways[0].resources)).toEqual(['RDS']);
    expect(jd.gateways[0].resources.RDS.map((r) => r.name)).toEqual(['route-18080']);
  });

  test('a document the API server would reject: reported with its file, exit 1', async () => {
    const r = await cli(['translate', '-f', 'e2e/testdata/gateway-folder/gateway.yaml', '-'], {
      stdin:
        'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: x}\nspec: {hostnames: ["*.*"]}\n',
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^error: - HTTPRoute default\/x: /m);
  });
});
