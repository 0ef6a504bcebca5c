/** Jest runs TypeScript as native ESM (ts-jest ESM preset), because
 * @kubernetes/client-node is ESM-only. Two projects: fast unit tests, and e2e tests that
 * drive real Envoy (and later a real kube-apiserver) and run one file at a time. */
const common = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
};
export default {
  // e2e tests drive real processes; unit tests finish in milliseconds either way
  testTimeout: 120_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/**/*.test.ts'] },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/e2e/**/*.test.ts'],
      slowTestThreshold: 60,
      testTimeout: 120_000,
    },
  ],
};
