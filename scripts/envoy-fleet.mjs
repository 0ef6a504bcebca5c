#!/usr/bin/env node
/**
 * The Envoy fleet of one Gateway in a cluster (see manifests/README.md), rendered with
 * signalbox's own commands (dist/src/cli.js: run `make build` first):
 *
 *   node scripts/envoy-fleet.mjs manifests [--gateway-file manifests/envoy-fleet/gateway.yaml] [-o fleet.yaml]
 *     the bootstrap ConfigMap (`signalbox bootstrap`), Deployment, Service and
 *     PodDisruptionBudget of the Envoys of the Gateway that file defines;
 *     manifests/envoy-fleet/fleet.yaml is this for the example Gateway default/gw
 *     (`make envoy-fleet` writes it; a test checks it is up to date)
 *
 *   node scripts/envoy-fleet.mjs secrets --certs <dir> [--gateway-file ...] [-o secrets.yaml]
 *     `signalbox certs --out <dir> --gateway <namespace>/<name>` (the CA in <dir> is reused),
 *     then the two Secrets: signalbox-system/signalbox-xds-tls (signalbox's server
 *     certificate and the CA that signs clients) and <namespace>/envoy-<name>-xds-tls (the
 *     Gateway's client certificate); they hold private keys: never commit them
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import * as prettier from 'prettier';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(root, 'dist/src/cli.js');

/** The Envoy image: the version scripts/install-envoy.sh pins for the tests. */
export function envoyVersion() {
  const m = /ENVOY_VERSION="\$\{ENVOY_VERSION:-([0-9.]+)\}"/.exec(
    readFileSync(join(root, 'scripts/install-envoy.sh'), 'utf8'),
  );
  if (!m) throw new Error('no ENVOY_VERSION in scripts/install-envoy.sh');
  return m[1];
}

/** Where signalbox's ADS Service answers (manifests/install.yaml) and where the Envoys keep their files. */
export const XDS_ADDRESS = 'signalbox.signalbox-system.svc:18000';
const WORKDIR = '/etc/envoy';
const ADMIN_PORT = 19000;

function signalbox(args) {
  return execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

function readGateway(file) {
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS());
  const gws = docs.filter((d) => d?.kind === 'Gateway');
  if (gws.length !== 1) throw new Error(`${file}: expected one Gateway, found ${gws.length}`);
  const gw = gws[0];
  const ns = gw.metadata.namespace ?? 'default';
  return {
    ns,
    name: gw.metadata.name,
    group: `${ns}/${gw.metadata.name}`,
    listeners: gw.spec.listeners ?? [],
  };
}

/** The `signalbox bootstrap` arguments of the fleet's ConfigMap. */
export function bootstrapArgs(gw) {
  return [
    'bootstrap',
    '--node-id',
    `envoy-${gw.name}`,
    '--gateway',
    gw.group,
    '--xds-address',
    XDS_ADDRESS,
    '--admin-port',
    String(ADMIN_PORT),
    // relative to the container's workingDir (/etc/envoy), where the Secret is mounted
    '--tls-cert',
    'xds-tls/tls.crt',
    '--tls-key',
    'xds-tls/tls.key',
    '--tls-ca',
    'xds-tls/ca.crt',
  ];
}

function fleet(gw) {
  const app = `envoy-${gw.name}`;
  const labels = {
    'app.kubernetes.io/name': 'signalbox-envoy',
    'app.kubernetes.io/instance': gw.name,
    'app.kubernetes.io/part-of': 'signalbox',
  };
  const selector = { 'app.kubernetes.io/name': 'signalbox-envoy', 'app.kubernetes.io/instance': gw.name };
  const args = bootstrapArgs(gw);
  const bootstrap = signalbox(args);
  const ports = gw.listeners.map((l) => ({ name: l.name, port: l.port }));
  if (ports.length === 0) throw new Error(`Gateway ${gw.group} has no listeners`);
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `${app}-bootstrap`,
      namespace: gw.ns,
      labels,
      annotations: { 'signalbox.dev/rendered-by': `signalbox ${args.join(' ')}` },
    },
    data: { 'envoy.yaml': bootstrap },
  };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: app, namespace: gw.ns, labels },
    spec: {
      replicas: 2,
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels,
          // a new bootstrap rolls the pods
          annotations: {
            'signalbox.dev/bootstrap-sha256': createHash('sha256').update(bootstrap).digest('hex'),
          },
        },
        spec: {
          securityContext: {
            runAsNonRoot: true,
            // the envoy user of the envoyproxy/envoy image
            runAsUser: 101,
            runAsGroup: 101,
            fsGroup: 101,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'envoy',
              image: `envoyproxy/envoy:v${envoyVersion()}`,
              command: ['envoy'],
              // node.id is per pod (--service-node overrides the bootstrap's node.id)
              args: [
                '-c',
                'bootstrap/envoy.yaml',
                '--service-node',
                '$(POD_NAME)',
                '--disable-hot-restart',
                '--concurrency',
                '2',
                '--log-level',
                'info',
                '--drain-time-s',
                '5',
              ],
              workingDir: WORKDIR,
              env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
              ports: ports.map((p) => ({ name: p.name, containerPort: p.port, protocol: 'TCP' })),
              // a listener is bound once signalbox has served this Envoy its configuration
              readinessProbe: { tcpSocket: { port: ports[0].name }, periodSeconds: 5 },
              resources: { requests: { cpu: '250m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'bootstrap', mountPath: `${WORKDIR}/bootstrap`, readOnly: true },
                { name: 'xds-tls', mountPath: `${WORKDIR}/xds-tls`, readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: 'bootstrap', configMap: { name: `${app}-bootstrap` } },
            // `node scripts/envoy-fleet.mjs secrets`; 288 = 0440 (group: fsGroup)
            { name: 'xds-tls', secret: { secretName: `${app}-xds-tls`, defaultMode: 288 } },
          ],
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: app, namespace: gw.ns, labels },
    spec: {
      type: 'LoadBalancer',
      selector,
      ports: ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.name, protocol: 'TCP' })),
    },
  };
  const pdb = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: app, namespace: gw.ns, labels },
    spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
  };
  return [configMap, deployment, service, pdb];
}

function secrets(gw, certs) {
  signalbox(['certs', '--out', certs, '--gateway', gw.group]);
  const b64 = (f) => readFileSync(join(certs, f)).toString('base64');
  const stem = `gateway-${gw.ns}_${gw.name}`;
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'signalbox-xds-tls', namespace: 'signalbox-system' },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64('server.crt'), 'tls.key': b64('server.key'), 'ca.crt': b64('ca.crt') },
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: `envoy-${gw.name}-xds-tls`,
        namespace: gw.ns,
        labels: { 'app.kubernetes.io/part-of': 'signalbox' },
      },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(`${stem}.crt`), 'tls.key': b64(`${stem}.key`), 'ca.crt': b64('ca.crt') },
    },
  ];
}

async function render(header, docs) {
  const text =
    header + docs.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
  const options = (await prettier.resolveConfig(join(root, 'manifests/x.yaml'))) ?? {};
  return prettier.format(text, { ...options, parser: 'yaml' });
}

async function main(argv) {
  const [cmd, ...rest] = argv;
  const opt = (name, dflt) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : dflt;
  };
  const file = opt('--gateway-file', join(root, 'manifests/envoy-fleet/gateway.yaml'));
  const out = opt('-o');
  const gw = readGateway(file);
  let text;
  if (cmd === 'manifests') {
    text = await render(
      `# The Envoy fleet of Gateway ${gw.group}: generated by \`node scripts/envoy-fleet.mjs manifests\`\n` +
        '# (`make envoy-fleet`) from gateway.yaml; do not edit. See manifests/README.md.\n',
      fleet(gw),
    );
  } else if (cmd === 'secrets') {
    const certs = opt('--certs');
    if (!certs) throw new Error('secrets needs --certs <dir>');
    text = await render(
      `# mTLS Secrets for signalbox and the Envoys of Gateway ${gw.group} (private keys: do not commit)\n`,
      secrets(gw, certs),
    );
  } else {
    process.stderr.write(
      'usage: envoy-fleet.mjs manifests|secrets [--gateway-file f] [--certs dir] [-o file]\n',
    );
    process.exit(2);
  }
  if (out) writeFileSync(out, text, { mode: cmd === 'secrets' ? 0o600 : 0o644 });
  else process.stdout.write(text);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`envoy-fleet: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
