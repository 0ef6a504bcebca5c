/**
 * Serving a folder of Envoy resources: loaded per group, edits (in place or replaced by
 * rename, as editors and `sed -i` do) are picked up, bad files are reported and never
 * withdraw the last good snapshot, a removed group folder clears its snapshot.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { silentLogger } from '../src/log.js';
import { EnvoyFolderProvider } from '../src/provider/envoyfolder.js';
import { SnapshotCache } from '../src/xds/cache/cache.js';
import { protoRegistry } from '../src/xds/proto.js';
import { TypeUrl } from '../src/xds/resource.js';
import { cla, cluster } from '../e2e/harness/resources.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, fn: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(25);
  }
}

function yamlOf(...docs: Record<string, unknown>[]): string {
  return docs.map((d) => stringify(d)).join('---\n');
}

let dir: string;
let cache: SnapshotCache;
let provider: EnvoyFolderProvider;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'signalbox-folder-'));
  mkdirSync(join(dir, 'default', 'gw'), { recursive: true });
  writeFileSync(
    join(dir, 'default', 'gw', 'a.yaml'),
    yamlOf(
      { '@type': TypeUrl.Cluster, ...cluster('a') },
      { resources: [{ '@type': TypeUrl.Endpoint, ...cla('a', [{ host: '127.0.0.2', port: 1 }]) }] },
    ),
  );
  cache = new SnapshotCache();
  provider = new EnvoyFolderProvider(dir, cache, protoRegistry(), silentLogger());
  provider.start();
});

afterEach(() => {
  provider.stop();
  rmSync(dir, { recursive: true, force: true });
});

const clusters = (g = 'default/gw') => [...(cache.getGroup(g)?.get(TypeUrl.Cluster).keys() ?? [])];

test('each <namespace>/<gateway> folder is a group; several documents and resource lists per file', () => {
  expect(clusters()).toEqual(['a']);
  expect([...(cache.getGroup('default/gw')?.get(TypeUrl.Endpoint).keys() ?? [])]).toEqual(['a']);
  expect(provider.errors()).toEqual([]);
});

test('an edit in place and a replace-by-rename are both picked up, repeatedly', async () => {
  const file = join(dir, 'default', 'gw', 'a.yaml');
  for (let i = 0; i < 3; i++) {
    writeFileSync(file, yamlOf({ '@type': TypeUrl.Cluster, ...cluster(`inplace-${i}`) }));
    await until(`in-place edit ${i}`, () => clusters().join() === `inplace-${i}`);
    const tmp = join(dir, 'default', 'gw', `.a.yaml.tmp`);
    writeFileSync(tmp, yamlOf({ '@type': TypeUrl.Cluster, ...cluster(`renamed-${i}`) }));
    renameSync(tmp, file);
    await until(`rename edit ${i}`, () => clusters().join() === `renamed-${i}`);
  }
});

test('a new group folder appears; a removed one clears its snapshot', async () => {
  mkdirSync(join(dir, 'team', 'edge'), { recursive: true });
  writeFileSync(join(dir, 'team', 'edge', 'x.yaml'), yamlOf({ '@type': TypeUrl.Cluster, ...cluster('x') }));
  await until('new group', () => clusters('team/edge').join() === 'x');
  rmSync(join(dir, 'team', 'edge'), { recursive: true });
  await until('group cleared', () => !cache.hasGroup('team/edge'));
  expect(clusters()).toEqual(['a']);
});

test.each([
  ['broken YAML', 'name: [unclosed', /flow|collection|end/i],
  ['unknown @type', yamlOf({ '@type': 'type.googleapis.com/nope.Nope', name: 'z' }), /known "@type"/],
  [
    'a field the proto does not have',
    yamlOf({ '@type': TypeUrl.Cluster, name: 'z', colour: 'blue' }),
    /unknown field "colour"/,
  ],
  [
    'a bad duration',
    yamlOf({ '@type': TypeUrl.Cluster, name: 'z', connect_timeout: 'soon' }),
    /invalid duration/,
  ],
  [
    'a duplicate name',
    yamlOf({ '@type': TypeUrl.Cluster, ...cluster('a') }),
    /duplicate CDS resource name "a"/,
  ],
])('%s: reported, and the last good snapshot stays served', async (_what, content, msg) => {
  const before = cache.getGroup('default/gw');
  writeFileSync(join(dir, 'default', 'gw', 'b.yaml'), content);
  await until('error reported', () => provider.errors().length > 0);
  expect(provider.errors()[0].group).toBe('default/gw');
  expect(provider.errors()[0].error).toMatch(msg);
  expect(cache.getGroup('default/gw')).toBe(before);
  // fixing the file clears the error and serves the new content
  writeFileSync(join(dir, 'default', 'gw', 'b.yaml'), yamlOf({ '@type': TypeUrl.Cluster, ...cluster('b') }));
  await until('fixed', () => provider.errors().length === 0 && clusters().join() === 'a,b');
});
