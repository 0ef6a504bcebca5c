/**
 * manifests/ as a whole on the real kube-apiserver (e2e/k8s), and the Envoy fleet of
 * manifests/envoy-fleet/ run for real:
 *
 * - fleet.yaml is what `node scripts/envoy-fleet.mjs manifests` renders from gateway.yaml,
 *   and its ConfigMap's bootstrap is exactly `signalbox bootstrap` with the arguments its
 *   annotation records;
 * - every manifest (install.yaml with its PodDisruptionBudget and metrics Service,
 *   gatewayclass.yaml, the fleet, the mTLS Secrets `scripts/envoy-fleet.mjs secrets` makes
 *   with `signalbox certs`) passes `kubectl apply --dry-run=server`; the CRD install line
 *   names the Gateway API version the test stack pins (e2e/k8s/versions.env), and the
 *   Envoy image the version the tests run;
 * - signalbox runs as a real process in Kubernetes mode with the install Deployment's
 *   arguments (as the manifests' ServiceAccount, mTLS ADS), and a real stock Envoy runs with
 *   the fleet Deployment's arguments and the ConfigMap's bootstrap. What differs from a pod,
 *   and nothing else: addresses (ADS dialled at 127.0.0.1:<free port> instead of the
 *   Service name, Envoy admin and signalbox's ports free ports, listeners on 127.0.0.1, the
 *   Gateway's listener port a free one), $(POD_NAME) expanded as the kubelet would, and the
 *   pod's mounts laid out under a temporary folder (the Secret's keys as files, the
 *   ConfigMap's bootstrap, the container's workingDir). The Envoy connects over mTLS, gets
 *   its configuration and answers through it; the route turns Ready;
 * - /metrics of that signalbox passes `promtool check metrics` (Debian's prometheus
 *   package, scripts/install-promtool.sh), has every metric issue 11 asks for, and every
 *   metric the Grafana dashboard (manifests/grafana/signalbox.json) queries.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ENVOY_BIN, freePort, requireEnvoy, waitFor } from '../harness/envoy.js';
import { GATEWAY_API } from '../harness/gateway-objects.js';
import { writeTokenKubeconfig } from '../harness/kubectl.js';
import { OPERATOR_METRICS, dashboardMetrics, families, sampleSum } from '../harness/metrics.js';
import { CLI, SignalboxProcess } from '../harness/signalbox.js';
import { startKubeStack } from '../harness/kube-stack.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const KUBECTL = resolve('.tools/bin/kubectl');
const PROMTOOL = resolve('.tools/bin/promtool');
const FLEET = 'manifests/envoy-fleet/fleet.yaml';
const POD_NAME = 'envoy-gw-5d8f9c7b4-x2x7q';
const SIGNALBOX_POD = 'signalbox-7c9d5b8f6-q4w2e';

const docsOf = (file: string): Any[] =>
  parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as Any)
    .filter(Boolean);
const find = (docs: Any[], kind: string) => {
  const d = docs.find((x) => x.kind === kind);
  if (!d) throw new Error(`no ${kind}`);
  return d;
};

/** GET through Envoy: status and location. */
function get(url: string, host: string): Promise<{ status: number; location?: string }> {
  return new Promise((res, rej) => {
    const req = request(url, { agent: false, headers: { host, connection: 'close' } }, (r) => {
      r.resume();
      r.on('end', () => res({ status: r.statusCode ?? 0, location: r.headers.location }));
      r.on('error', rej);
    });
    req.on('error', rej);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** Leaf paths where two JSON values differ. */
function diffPaths(a: unknown, b: unknown, at = ''): string[] {
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) =>
      diffPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}/${k}`),
    );
  }
  return a === b ? [] : [at];
}

/**
 * A container as a process here: its mounts become folders under `root`, `$(VAR)`
 * references expand from `env`, and a path under a mount is that folder's file.
 */
function podPaths(container: Any, root: string) {
  const mounts = (container.volumeMounts ?? []).map((m: Any) => String(m.mountPath));
  const local = (p: string) =>
    mounts.some((m: string) => p === m || p.startsWith(`${m}/`)) ? join(root, p) : p;
  return {
    local,
    expand: (s: string, env: Record<string, string>) =>
      s.replace(/\$\(([A-Z_]+)\)/g, (_, v: string) => env[v]),
    cwd: container.workingDir ? join(root, container.workingDir) : root,
  };
}

describe('manifests/ and the Envoy fleet on a real API server', () => {
  let dir: string;
  let admin: string;
  let sb: SignalboxProcess | undefined;
  let envoy: ChildProcess | undefined;
  let envoyLogs = '';
  let envoyExited = false;
  let healthPort = 0;
  let secretsFile: string;

  const kubectl = (args: string[], input?: string, kubeconfig = admin) =>
    execFileSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8' });
  const getJson = (what: string, ns = 'default') =>
    JSON.parse(kubectl(['get', what, '-n', ns, '-o', 'json'])) as Any;

  beforeAll(() => {
    requireEnvoy();
    for (const f of [KUBECTL, PROMTOOL, CLI])
      if (!existsSync(f)) throw new Error(`${f} is missing: run 'make tools build' first`);
    dir = mkdtempSync(join(tmpdir(), 'signalbox-envoy-fleet-'));
    startKubeStack(dir);
    admin = join(dir, 'kubeconfig');
  });

  afterAll(async () => {
    if (envoy && !envoyExited) {
      const done = new Promise<void>((r) => envoy!.once('exit', () => r()));
      envoy.kill('SIGTERM');
      const t = setTimeout(() => envoy!.kill('SIGKILL'), 3000);
      await done;
      clearTimeout(t);
    }
    await sb?.kill();
    if (dir) {
      execFileSync('e2e/k8s/stop.sh', [dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('fleet.yaml is what scripts/envoy-fleet.mjs renders; its bootstrap is `signalbox bootstrap`', () => {
    const rendered = execFileSync(process.execPath, ['scripts/envoy-fleet.mjs', 'manifests'], {
      encoding: 'utf8',
    });
    // out of date: run `make envoy-fleet`
    expect(rendered).toBe(readFileSync(FLEET, 'utf8'));
    const cm = find(docsOf(FLEET), 'ConfigMap');
    const cmd = String(cm.metadata.annotations['signalbox.dev/rendered-by']).split(' ');
    expect(cmd.slice(0, 2)).toEqual(['signalbox', 'bootstrap']);
    const bootstrap = execFileSync(process.execPath, [CLI, ...cmd.slice(1)], { encoding: 'utf8' });
    expect(cm.data['envoy.yaml']).toBe(bootstrap);
    // the bootstrap serves the Gateway of gateway.yaml, through the ADS Service of install.yaml
    const gw = find(docsOf('manifests/envoy-fleet/gateway.yaml'), 'Gateway');
    const b = parse(bootstrap) as Any;
    expect(b.node.cluster).toBe(`${gw.metadata.namespace}/${gw.metadata.name}`);
    const svc = docsOf('manifests/install.yaml').find(
      (d) => d.kind === 'Service' && d.metadata.name === 'signalbox',
    );
    const sa = b.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address;
    expect(sa.socket_address).toEqual({
      address: `${svc.metadata.name}.${svc.metadata.namespace}.svc`,
      port_value: svc.spec.ports.find((p: Any) => p.name === 'xds').port,
    });
  });

  test('every manifest passes kubectl apply --dry-run=server; pinned CRD and Envoy versions', () => {
    secretsFile = join(dir, 'secrets.yaml');
    execFileSync(process.execPath, [
      'scripts/envoy-fleet.mjs',
      'secrets',
      '--certs',
      join(dir, 'certs'),
      '-o',
      secretsFile,
    ]);
    // a dry run of namespaced objects needs their namespace
    kubectl(['create', 'namespace', 'signalbox-system', '--save-config']);
    const files = [
      'manifests/install.yaml',
      'manifests/gatewayclass.yaml',
      'manifests/envoy-fleet/gateway.yaml',
      FLEET,
      secretsFile,
    ];
    // every Kubernetes manifest of manifests/ is among them
    const yamls = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? yamls(join(d, e.name)) : /\.ya?ml$/.test(e.name) ? [join(d, e.name)] : [],
      );
    expect(yamls('manifests').sort()).toEqual(files.filter((f) => f.startsWith('manifests/')).sort());
    const out = kubectl(['apply', '--dry-run=server', ...files.flatMap((f) => ['-f', f])]);
    const lines = out.trim().split('\n');
    const docs = files.flatMap(docsOf);
    expect(lines).toHaveLength(docs.length);
    for (const line of lines) expect(line).toMatch(/ (created|configured|unchanged) \(server dry run\)$/);
    for (const d of docs) {
      const group = String(d.apiVersion).includes('/') ? `.${String(d.apiVersion).split('/')[0]}` : '';
      expect(out).toContain(`${String(d.kind).toLowerCase()}${group}/${d.metadata.name} `);
    }
    for (const k of ['PodDisruptionBudget', 'ConfigMap', 'Secret', 'Deployment', 'Service'])
      expect(docs.filter((d) => d.kind === k).length).toBeGreaterThan(0);

    // the CRD install line: the version e2e/k8s/versions.env pins, which this cluster runs
    const pinned = /^GATEWAY_API_VERSION=(\S+)$/m.exec(readFileSync('e2e/k8s/versions.env', 'utf8'))![1];
    for (const f of ['manifests/install.yaml', 'manifests/README.md']) {
      const m = readFileSync(f, 'utf8').match(
        /kubectl apply --server-side -f https:\/\/github\.com\/kubernetes-sigs\/gateway-api\/releases\/download\/(v[0-9.]+)\/standard-install\.yaml/g,
      );
      expect([f, m?.length]).toEqual([f, 1]);
      expect(m![0]).toContain(`/${pinned}/`);
    }
    const crd = getJson('crd/gateways.gateway.networking.k8s.io', '');
    expect(crd.metadata.annotations['gateway.networking.k8s.io/bundle-version']).toBe(pinned);
    expect(crd.metadata.annotations['gateway.networking.k8s.io/channel']).toBe('standard');

    // the Envoy image is the version the tests run; its flags are Envoy's
    const dep = find(docsOf(FLEET), 'Deployment');
    const c = dep.spec.template.spec.containers[0];
    const version = execFileSync(ENVOY_BIN, ['--version'], { encoding: 'utf8' });
    const tag = /:v([0-9.]+)$/.exec(c.image)![1];
    expect(version).toContain(`/${tag}/`);
    const help = spawnSync(ENVOY_BIN, ['--help'], { encoding: 'utf8' });
    for (const a of c.args as string[])
      if (a.startsWith('-')) expect([a, `${help.stdout}`.includes(a)]).toEqual([a, true]);
  });

  test('signalbox (Kubernetes mode, mTLS) and a stock Envoy from the fleet bootstrap: Envoy connects and gets config', async () => {
    // what the pods need in the cluster: the install (ServiceAccount, RBAC, Lease namespace)
    kubectl([
      'apply',
      '-f',
      'manifests/install.yaml',
      '-f',
      'manifests/gatewayclass.yaml',
      '-f',
      secretsFile,
    ]);
    const listenerPort = await freePort();
    const gw = find(docsOf('manifests/envoy-fleet/gateway.yaml'), 'Gateway');
    gw.spec.listeners[0].port = listenerPort; // an address: a free port here
    kubectl(['apply', '-f', '-'], stringify(gw));

    // signalbox as the ServiceAccount of install.yaml
    const token = kubectl(['create', 'token', 'signalbox', '-n', 'signalbox-system', '--duration=1h']).trim();
    const saConfig = join(dir, 'signalbox.kubeconfig');
    writeTokenKubeconfig(admin, token, saConfig);

    const secrets = docsOf(secretsFile);
    const secretOf = (name: string) => secrets.find((s) => s.metadata.name === name);
    /** a Secret volume: its keys as files in `at` */
    const writeSecret = (name: string, at: string) => {
      mkdirSync(at, { recursive: true });
      for (const [k, v] of Object.entries(secretOf(name).data as Record<string, string>))
        writeFileSync(join(at, k), Buffer.from(v, 'base64'), { mode: 0o600 });
    };

    // ---- signalbox: the install Deployment's container, as a process
    const sbDep = docsOf('manifests/install.yaml').find((d) => d.kind === 'Deployment');
    const sbSpec = sbDep.spec.template.spec;
    const sbC = sbSpec.containers[0];
    const sbRoot = join(dir, 'signalbox-pod');
    for (const m of sbC.volumeMounts as Any[]) {
      const vol = sbSpec.volumes.find((v: Any) => v.name === m.name);
      writeSecret(vol.secret.secretName, join(sbRoot, m.mountPath));
    }
    const sbPaths = podPaths(sbC, sbRoot);
    const xdsPort = await freePort();
    healthPort = await freePort();
    const debugPort = await freePort();
    const adapted: Record<string, string | null> = {
      '--xds-address': `127.0.0.1:${xdsPort}`,
      '--health-address': `127.0.0.1:${healthPort}`,
      '--debug-address': null, // SignalboxProcess gives it a free port
    };
    const sbArgs: string[] = [];
    const seen = new Set<string>();
    for (const a of (sbC.args as string[]).slice(1)) {
      const [flag, value] = a.split(/=(.*)/s);
      if (flag in adapted) {
        seen.add(flag);
        if (adapted[flag] !== null) sbArgs.push(`${flag}=${adapted[flag]}`);
      } else
        sbArgs.push(
          value === undefined
            ? flag
            : `${flag}=${sbPaths.local(sbPaths.expand(value, { POD_NAME: SIGNALBOX_POD }))}`,
        );
    }
    expect([...seen].sort()).toEqual(Object.keys(adapted).sort());
    expect(sbC.args[0]).toBe('serve');
    expect(sbArgs).toContain('--kubernetes');
    // the Gateway's listeners bind 127.0.0.1 here (in a pod: 0.0.0.0, the default)
    sbArgs.push('--listener-address', '127.0.0.1');
    sb = await SignalboxProcess.start(sbArgs, debugPort, { ...process.env, KUBECONFIG: saConfig });

    // ---- Envoy: the fleet Deployment's container, as a process
    const docs = docsOf(FLEET);
    const dep = find(docs, 'Deployment');
    const spec = dep.spec.template.spec;
    const c = spec.containers[0];
    const root = join(dir, 'envoy-pod');
    const paths = podPaths(c, root);
    let bootstrapFile = '';
    const original = parse(find(docs, 'ConfigMap').data['envoy.yaml']) as Any;
    const b = structuredClone(original);
    const adminPort = await freePort();
    const xds = b.static_resources.clusters.find((x: Any) => x.name === 'signalbox_xds');
    const sa = xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    sa.address = '127.0.0.1';
    sa.port_value = xdsPort;
    b.admin.address.socket_address.port_value = adminPort;
    // the only changes: addresses
    expect(diffPaths(original, b).sort()).toEqual(
      [
        '/admin/address/socket_address/port_value',
        '/static_resources/clusters/0/load_assignment/endpoints/0/lb_endpoints/0/endpoint/address/socket_address/address',
        '/static_resources/clusters/0/load_assignment/endpoints/0/lb_endpoints/0/endpoint/address/socket_address/port_value',
      ].sort(),
    );
    for (const m of c.volumeMounts as Any[]) {
      const vol = spec.volumes.find((v: Any) => v.name === m.name);
      const at = join(root, m.mountPath);
      if (vol.secret) writeSecret(vol.secret.secretName, at);
      else {
        const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === vol.configMap.name);
        mkdirSync(at, { recursive: true });
        for (const k of Object.keys(cm.data)) {
          bootstrapFile = join(at, k);
          writeFileSync(bootstrapFile, stringify(b));
        }
      }
    }
    expect(existsSync(bootstrapFile)).toBe(true);
    mkdirSync(paths.cwd, { recursive: true });
    expect(c.command).toEqual(['envoy']);
    const env = { POD_NAME };
    const args = (c.args as string[]).map((a) => paths.expand(a, env));
    expect(args).toContain(POD_NAME);
    // -c is relative to workingDir: the bootstrap written above
    expect(resolve(paths.cwd, args[args.indexOf('-c') + 1])).toBe(bootstrapFile);
    envoy = spawn(ENVOY_BIN, args, { cwd: paths.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => {
      envoyLogs = (envoyLogs + d.toString()).slice(-100_000);
    };
    envoy.stdout?.on('data', keep);
    envoy.stderr?.on('data', keep);
    envoy.on('exit', () => (envoyExited = true));
    const alive = () => {
      if (envoyExited) throw new Error(`envoy exited: ${envoyLogs.slice(-3000)}`);
    };

    // the Envoy connects (mTLS, its node id from --service-node) and ACKs its configuration
    type Stream = { id: string; group: string; connected: boolean; types: Record<string, Any> };
    const stream = await waitFor(
      'the Envoy stream',
      async () => {
        alive();
        const nodes = await sb!.json<Stream[]>('/debug/nodes');
        const s = nodes.find((n) => n.id === POD_NAME && n.connected);
        return s?.types.LDS?.acked && s.types.CDS?.acked ? s : undefined;
      },
      60_000,
    );
    expect(stream.group).toBe('default/gw');

    // a route: Envoy serves it (a redirect: no backend is needed), and it turns Ready
    kubectl(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: GATEWAY_API,
        kind: 'HTTPRoute',
        metadata: { name: 'web', namespace: 'default' },
        spec: {
          parentRefs: [{ name: 'gw' }],
          hostnames: ['www.example.com'],
          rules: [
            {
              filters: [
                { type: 'RequestRedirect', requestRedirect: { hostname: 'example.org', statusCode: 302 } },
              ],
            },
          ],
        },
      }),
    );
    const r = await waitFor(
      'the redirect through Envoy',
      async () => {
        alive();
        const res = await get(`http://127.0.0.1:${listenerPort}/a/b`, 'www.example.com');
        return res.status === 302 ? res : undefined;
      },
      60_000,
    );
    // no port in the redirect: the listener's (Gateway API)
    expect(r.location).toBe(`http://example.org:${listenerPort}/a/b`);
    const ready = await waitFor(
      'route Ready',
      () => {
        const c = (getJson('httproute/web').status?.parents?.[0]?.conditions ?? []) as Any[];
        return c.find((x) => x.type === 'Ready' && x.status === 'True');
      },
      60_000,
      250,
    );
    expect(ready.reason).toBe('Ready');
    const dump = JSON.parse(await (await fetch(`http://127.0.0.1:${adminPort}/config_dump`)).text()) as Any;
    const listeners = dump.configs.find((x: Any) => String(x['@type']).endsWith('ListenersConfigDump'));
    expect(JSON.stringify(listeners.dynamic_listeners)).toContain(`"port_value":${listenerPort}`);
    // the Gateway's status: Programmed
    await waitFor('Gateway Programmed', () =>
      ((getJson('gateway/gw').status?.conditions ?? []) as Any[]).some(
        (x) => x.type === 'Programmed' && x.status === 'True',
      ),
    );
    alive();
  });

  test('metrics: promtool check metrics on the live scrape; every metric the Grafana dashboard queries exists', async () => {
    expect(healthPort).toBeGreaterThan(0);
    const scrape = async () => (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    // in sync once every push is ACKed
    await waitFor(
      'no Envoy out of sync',
      async () => sampleSum(await scrape(), 'signalbox_xds_nodes_out_of_sync') === 0,
    );
    const text = await scrape();
    const lint = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: lint.status, out: lint.stdout + lint.stderr }).toEqual({ status: 0, out: '' });

    const fam = families(text);
    for (const [what, name] of Object.entries(OPERATOR_METRICS))
      expect([what, fam.has(name)]).toEqual([what, true]);
    const dashboard = JSON.parse(readFileSync('manifests/grafana/signalbox.json', 'utf8')) as Any;
    const queried = dashboardMetrics(dashboard);
    for (const name of Object.values(OPERATOR_METRICS))
      expect([name, queried.has(name)]).toEqual([name, true]);
    for (const name of queried) expect([name, fam.has(name)]).toEqual([name, true]);
    // every panel queries the data source variable
    for (const p of dashboard.panels as Any[])
      if (p.type !== 'row') expect([p.title, p.datasource?.uid]).toEqual([p.title, '${datasource}']);

    // they count what happened: one Envoy, pushes ACKed, a translation, a change pushed, a route Ready
    expect(sampleSum(text, 'signalbox_xds_connected_nodes')).toBe(1);
    expect(sampleSum(text, 'signalbox_xds_pushes_total')).toBeGreaterThan(0);
    expect(sampleSum(text, 'signalbox_xds_acks_total')).toBeGreaterThan(0);
    expect(sampleSum(text, 'signalbox_xds_nacks_total')).toBe(0);
    expect(sampleSum(text, 'signalbox_xds_push_ack_latency_seconds_count')).toBeGreaterThan(0);
    expect(sampleSum(text, 'signalbox_translation_duration_seconds_count')).toBeGreaterThan(0);
    expect(sampleSum(text, 'signalbox_event_push_latency_seconds_count')).toBeGreaterThan(0);
    expect(sampleSum(text, 'signalbox_route_ready_seconds_count', { outcome: 'Ready' })).toBeGreaterThan(0);
    expect(sampleSum(text, 'signalbox_route_conditions', { type: 'Accepted', status: 'True' })).toBe(1);
    expect(sampleSum(text, 'signalbox_readiness_routes', { reason: 'Ready' })).toBe(1);
    // the metrics Service scrapes the container port that serves this
    const svc = docsOf('manifests/install.yaml').find(
      (d) => d.kind === 'Service' && d.metadata.name === 'signalbox-metrics',
    );
    const port = svc.spec.ports.find((p: Any) => p.name === 'metrics');
    const dep = docsOf('manifests/install.yaml').find((d) => d.kind === 'Deployment');
    const c = dep.spec.template.spec.containers[0];
    const cport = (c.ports as Any[]).find((p) => p.name === port.targetPort);
    expect(c.args).toContain(`--health-address=0.0.0.0:${cport.containerPort}`);
    expect(svc.metadata.annotations['prometheus.io/port']).toBe(String(cport.containerPort));
  });
});
