/** The committed bootstrap examples are what `signalbox bootstrap` prints, and Envoy accepts them. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { bootstrapYaml } from '../src/bootstrap.js';
import { ENVOY_BIN, requireEnvoy } from './harness/envoy.js';

test.each([
  ['envoy-bootstrap/bootstrap-sotw.yaml', false, 'GRPC'],
  ['envoy-bootstrap/bootstrap-delta.yaml', true, 'DELTA_GRPC'],
])('%s = signalbox bootstrap output, and envoy --mode validate accepts it', (file, delta, apiType) => {
  const y = bootstrapYaml({
    nodeId: 'envoy-1',
    group: 'default/gw',
    xdsPort: 18000,
    adminPort: 19000,
    delta,
  });
  expect(readFileSync(file, 'utf8')).toBe(y);
  expect(y).toContain(`api_type: ${apiType}`);
  expect(y).toContain('cluster: default/gw');
  requireEnvoy();
  const out = execFileSync(
    ENVOY_BIN,
    ['--mode', 'validate', '-c', file, '--disable-hot-restart', '-l', 'error'],
    {
      encoding: 'utf8',
    },
  );
  expect(out).toContain('OK');
});
