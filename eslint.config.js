// Lint: module boundaries of the house style (docs in docs/architecture.md) and no stray console.
import tseslint from 'typescript-eslint';

const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

export default tseslint.config(
  { ignores: ['node_modules/**', '.roster/**', 'bench/results/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    rules: { 'no-console': 'error' },
  },
  {
    // lib/ is the base: it imports nothing of ours.
    files: ['lib/**/*.ts'],
    rules: restrict([{ group: ['../sql/*', '../server/*', '../jobs/*', '../connectors/*', '../cli/*'], message: 'lib/ imports nothing of ours' }]),
  },
  {
    // jobs/ may use lib/, sql/ and the connector registry, never the HTTP server.
    files: ['jobs/**/*.ts'],
    rules: restrict([{ group: ['../server/*', '../cli/*'], message: 'jobs/ never imports server/ or cli/' }]),
  },
  {
    // The server enqueues work; it never runs a connector or a job handler itself.
    files: ['server/**/*.ts'],
    rules: restrict([
      { group: ['**/jobs/*', '!**/jobs/index.js'], message: 'server/ may import only jobs/index.ts' },
      { group: ['**/connectors/*/*', '!**/connectors/sdk/*'], message: 'server/ uses the connector registry only' },
      { group: ['**/cli/*'], message: 'server/ never imports cli/' },
    ]),
  },
  {
    // A connector talks to the outside through the sdk only.
    files: ['connectors/*/**/*.ts'],
    ignores: ['connectors/sdk/**'],
    rules: restrict([
      { group: ['../../lib/*', '../../sql/*', '../../server/*', '../../jobs/*', '../../cli/*'], message: 'connectors import only connectors/sdk and npm packages' },
      { group: ['../*/*', '!../sdk/*'], message: 'a connector never imports another connector' },
    ]),
  },
  {
    // Only lib/config.ts reads the environment.
    files: ['lib/**/*.ts', 'sql/**/*.ts', 'server/**/*.ts', 'jobs/**/*.ts', 'connectors/**/*.ts'],
    ignores: ['lib/config.ts'],
    rules: { 'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'read configuration through lib/config.ts' }] },
  },
);
