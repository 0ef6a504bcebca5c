/**
 * A fake Kubernetes API server for unit tests of the Kubernetes provider: lists answer with
 * the items a test gives (typed core lists, the group's apiVersion, the others empty),
 * watches stay open without events, PATCHes (status writes) are answered with a fixed body;
 * a kubeconfig naming it is written to a temporary folder.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONTROLLER_NAME } from '../../src/provider/pipeline.js';

export const G = 'gateway.networking.k8s.io/v1';

/** The metadata of a listed object (no namespace: cluster-scoped). */
export const objectMeta = (
  name: string,
  o: { generation: number; resourceVersion: string; namespace?: string },
) => ({
  ...(o.namespace ? { namespace: o.namespace } : {}),
  name,
  uid: `uid-${name}`,
  resourceVersion: o.resourceVersion,
  generation: o.generation,
  creationTimestamp: '2026-01-01T00:00:00Z',
});

/** A GatewayClass of signalbox's default controller name, as listed. */
export const gatewayClassItem = (metadata: unknown) => ({
  apiVersion: G,
  kind: 'GatewayClass',
  metadata,
  spec: { controllerName: DEFAULT_CONTROLLER_NAME },
});

/** The kinds of the core and discovery lists, by path (the others answer `List`). */
const LIST_KIND: Record<string, string> = {
  '/api/v1/services': 'ServiceList',
  '/api/v1/secrets': 'SecretList',
  '/api/v1/namespaces': 'NamespaceList',
  '/apis/discovery.k8s.io/v1/endpointslices': 'EndpointSliceList',
};

export type Send = (code: number, body: unknown) => void;

export interface FakeKubeOptions {
  /** list path → items (every kind the provider lists; the others are empty) */
  items: Record<string, unknown[]>;
  /** what a PATCH (a status write) is answered with */
  patched: unknown;
  /** a list request the test answers itself: true once answered with `send` */
  list?: (url: URL, send: Send) => boolean;
  /** prefix of the temporary folder that holds the kubeconfig */
  tmpPrefix: string;
}

export interface FakeKube {
  server: Server;
  dir: string;
  /** path of a kubeconfig naming the server */
  kubeconfig: string;
  /** ends the open watches, closes the server, removes the folder */
  close(): Promise<void>;
}

export async function startFakeKube(o: FakeKubeOptions): Promise<FakeKube> {
  const watches = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    req.resume();
    const send: Send = (code, body) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'PATCH') return send(200, o.patched);
    if (url.searchParams.get('watch') === 'true') {
      // a watch that stays open without events
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      watches.add(res);
      res.on('close', () => watches.delete(res));
      return;
    }
    if (o.list?.(url, send)) return;
    // the shape of a real list: typed core lists, the group's apiVersion
    send(200, {
      apiVersion: url.pathname.startsWith('/apis/') ? url.pathname.split('/').slice(2, 4).join('/') : 'v1',
      kind: LIST_KIND[url.pathname] ?? 'List',
      metadata: { resourceVersion: '10' },
      items: o.items[url.pathname] ?? [],
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), o.tmpPrefix));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'c', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } },
      ],
      users: [{ name: 'u', user: {} }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  return {
    server,
    dir,
    kubeconfig,
    async close() {
      for (const w of watches) w.end();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
