#!/usr/bin/env node
// Puts the Envoy data-plane-api, cncf xds, googleapis and protoc-gen-validate proto trees
// under protos/vendor/ from the pinned npm package @grpc/grpc-js-xds (a registry package;
// nothing is hand-copied into git), then generates TypeScript types for the entry files
// listed in protos/roots.txt into src/generated/ (gitignored).
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const pkgJson = require.resolve('@grpc/grpc-js-xds/package.json', { paths: [root] });
const pkg = JSON.parse(readFileSync(pkgJson, 'utf8'));
const deps = join(dirname(pkgJson), 'deps');
const vendor = join(root, 'protos', 'vendor');
const stamp = join(vendor, 'VERSION');
const want = `@grpc/grpc-js-xds@${pkg.version}`;
const trees = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'];

if (!existsSync(stamp) || readFileSync(stamp, 'utf8').trim() !== want) {
  rmSync(vendor, { recursive: true, force: true });
  mkdirSync(vendor, { recursive: true });
  for (const t of trees) {
    if (!existsSync(join(deps, t))) {
      console.error(`protos: ${want} has no deps/${t}; cannot assemble the proto trees`);
      process.exit(1);
    }
    cpSync(join(deps, t), join(vendor, t), { recursive: true });
  }
  writeFileSync(stamp, want + '\n');
  console.log(`protos: proto trees from ${want} -> protos/vendor`);
}

const roots = readFileSync(join(root, 'protos', 'roots.txt'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const gen = join(root, 'src', 'generated');
const genStamp = join(gen, '.stamp');
const genWant = want + '\nv2\n' + roots.join('\n');
if (!existsSync(genStamp) || readFileSync(genStamp, 'utf8') !== genWant) {
  rmSync(gen, { recursive: true, force: true });
  const bin = join(root, 'node_modules', '.bin', 'proto-loader-gen-types');
  execFileSync(
    bin,
    [
      '--keepCase',
      '--longs=String',
      '--enums=String',
      '--defaults',
      '--oneofs',
      '--grpcLib=@grpc/grpc-js',
      '--importFileExtension=.js',
      `--outDir=${gen}`,
      ...roots,
      ...trees.map((t) => `--includeDirs=${join(vendor, t)}`),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  writeFileSync(genStamp, genWant);
  console.log(`protos: TypeScript types for ${roots.length} entry files -> src/generated`);
}
