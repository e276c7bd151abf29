import { Ajv } from 'ajv';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import type {
  Connector,
  ConnectorContext,
  CursorState,
  ExportField,
  ExportRecord,
  JSONSchema,
  SourceMessage,
  StreamOptions,
} from './types.js';

/** A skipped check says why, so a reader knows whether the gap is by design. */
export interface Skip {
  skip: string;
}

/** A stream with known rows, read in small batches to cross batch boundaries. */
export interface ReadFixture {
  stream: StreamOptions;
  /** Column whose value identifies a row (for duplicate and gap checks). */
  idColumn: string;
  /** Every id the stream holds. */
  expectedIds: string[];
  batchSize?: number;
}

/** A write in which the destination must reject exactly `expectRejected`. */
export interface WriteFixture {
  options: Record<string, unknown>;
  fields: ExportField[];
  records: ExportRecord[];
  expectRejected: string[];
}

/** Values the suite needs once the test file's setup has run. */
export interface ConformanceFixtures {
  config: Record<string, unknown>;
  badCredentialsConfig: Record<string, unknown> | Skip;
  read?: ReadFixture | Skip;
  write?: WriteFixture | Skip;
}

export interface ConformanceSuite {
  connector: Connector;
  /** Called inside each test, after the file's beforeAll hooks. */
  fixtures: () => ConformanceFixtures;
  /** Checks skipped by design, known when tests are defined: check name -> reason. */
  skip?: Partial<Record<'badCredentials' | 'discover' | 'read' | 'resume' | 'write', string>>;
}

/** A context whose logger is silent and whose signal never aborts. */
export function createTestContext(): ConnectorContext {
  return { log: pino({ level: 'silent' }), signal: new AbortController().signal };
}

function isSkip(value: unknown): value is Skip {
  return typeof value === 'object' && value !== null && 'skip' in value;
}

async function collect(iterable: AsyncIterable<SourceMessage<CursorState>>): Promise<Array<SourceMessage<CursorState>>> {
  const messages: Array<SourceMessage<CursorState>> = [];
  for await (const message of iterable) {
    messages.push(message);
  }

  return messages;
}

function ids(messages: Array<SourceMessage<CursorState>>, idColumn: string): string[] {
  return messages.flatMap((m) => (m.type === 'records' ? m.records.map((r) => String(r[idColumn])) : []));
}

function defineCheck(name: string, reason: string | undefined, fn: () => Promise<void> | void): void {
  if (reason) {
    it.skip(`${name} (skipped: ${reason})`, () => {});
  } else {
    it(name, fn);
  }
}

/**
 * Defines the tests every connector must pass: a valid spec with its secrets in the config
 * schema, a ConfigError for bad credentials, discover, read with resumable state, and per-record
 * rejects on write. Call it inside a test file after setting up the services it needs.
 */
export function describeConnectorConformance(suite: ConformanceSuite): void {
  const { connector, skip = {} } = suite;
  const { spec } = connector;
  const isSource = spec.roles.includes('source');
  const isDestination = spec.roles.includes('destination');
  const isIncremental = spec.syncModes.includes('incremental');

  describe(`${spec.name} connector conformance`, () => {
    it('declares a spec whose schemas compile and whose secret fields are in the config schema', () => {
      const ajv = new Ajv({ strict: false });
      const schemas: JSONSchema[] = [spec.configSchema];
      if (isSource) {
        expect(spec.sourceOptionsSchema).toBeDefined();
        schemas.push(spec.sourceOptionsSchema!);
      }
      if (isDestination) {
        expect(spec.destinationOptionsSchema).toBeDefined();
        schemas.push(spec.destinationOptionsSchema!);
      }
      for (const schema of schemas) {
        expect(ajv.validateSchema(schema)).toBe(true);
        expect(() => ajv.compile(schema)).not.toThrow();
      }
      const properties = Object.keys((spec.configSchema.properties ?? {}) as Record<string, unknown>);
      for (const field of spec.secretFields) {
        expect(properties).toContain(field);
      }
      expect(Boolean(connector.source)).toBe(isSource);
      expect(Boolean(connector.destination)).toBe(isDestination);
    });

    it('accepts its valid config', () => {
      const ajv = new Ajv({ strict: false });
      expect(ajv.validate(spec.configSchema, suite.fixtures().config)).toBe(true);
    });

    defineCheck('rejects bad credentials with a ConfigError', skip.badCredentials, async () => {
      const { badCredentialsConfig } = suite.fixtures();
      if (isSkip(badCredentialsConfig)) {
        throw new Error(`Fixture skips bad credentials (${badCredentialsConfig.skip}); declare it in suite.skip instead`);
      }
      const check = (connector.source ?? connector.destination)!.check(createTestContext(), badCredentialsConfig);
      await expect(check).rejects.toBeInstanceOf(ConfigError);
    });

    defineCheck('discovers at least one stream', isSource ? skip.discover : 'the connector is not a source', async () => {
      const catalog = await connector.source!.discover(createTestContext(), suite.fixtures().config);
      expect(catalog.streams.length).toBeGreaterThan(0);
      for (const stream of catalog.streams) {
        expect(stream.name).toEqual(expect.any(String));
        expect(Array.isArray(stream.columns)).toBe(true);
      }
    });

    defineCheck('reads every row once, in batches', isSource ? skip.read : 'the connector is not a source', async () => {
      const { config, read } = suite.fixtures();
      if (!read || isSkip(read)) {
        throw new Error('Read fixture missing; declare skip.read with a reason instead');
      }
      const stream = isIncremental ? read.stream : { ...read.stream, cursor: undefined };
      const batchSize = read.batchSize ?? 2;
      const messages = await collect(connector.source!.read(createTestContext(), { config, stream, state: null, batchSize }));
      const seen = ids(messages, read.idColumn);
      expect([...seen].sort()).toEqual([...read.expectedIds].sort());
      for (const message of messages) {
        if (message.type === 'records') {
          expect(message.records.length).toBeLessThanOrEqual(batchSize);
        }
      }
    });

    const resumeReason = !isSource ? 'the connector is not a source' : !isIncremental ? 'the connector supports full syncs only, which carry no state' : skip.resume;
    defineCheck('emits records then state, and resumes from a state with no duplicate and no gap', resumeReason, async () => {
      const { config, read } = suite.fixtures();
      if (!read || isSkip(read)) {
        throw new Error('Read fixture missing; declare skip.resume with a reason instead');
      }
      expect(read.stream.cursor).toBeDefined();
      const batchSize = read.batchSize ?? 2;
      const ctx = createTestContext();
      const messages = await collect(connector.source!.read(ctx, { config, stream: read.stream, state: null, batchSize }));
      messages.forEach((message, i) => {
        // Records always come first, and each batch is followed by its state.
        expect(message.type).toBe(i % 2 === 0 ? 'records' : 'state');
      });
      const firstState = messages.find((m) => m.type === 'state');
      expect(firstState).toBeDefined();
      const firstBatch = ids(messages.slice(0, 1), read.idColumn);

      // Resume as the core would after storing only the first batch; JSON mimics storing state.
      const state = JSON.parse(JSON.stringify((firstState as { state: CursorState }).state)) as CursorState;
      const resumed = await collect(connector.source!.read(ctx, { config, stream: read.stream, state, batchSize }));
      const combined = [...firstBatch, ...ids(resumed, read.idColumn)];
      expect(combined.length).toBe(new Set(combined).size);
      expect([...combined].sort()).toEqual([...read.expectedIds].sort());

      const lastState = [...messages].reverse().find((m) => m.type === 'state') as { state: CursorState };
      const finalState = JSON.parse(JSON.stringify(lastState.state)) as CursorState;
      const after = await collect(connector.source!.read(ctx, { config, stream: read.stream, state: finalState, batchSize }));
      expect(ids(after, read.idColumn)).toEqual([]);
    });

    defineCheck('reports per-record rejects and accepts the rest', isDestination ? skip.write : 'the connector is not a destination', async () => {
      const { config, write } = suite.fixtures();
      if (!write || isSkip(write)) {
        throw new Error('Write fixture missing; declare skip.write with a reason instead');
      }
      const result = await connector.destination!.write(createTestContext(), { config, ...write });
      expect(result.rejected.map((r) => r.recordId).sort()).toEqual([...write.expectRejected].sort());
      for (const reject of result.rejected) {
        expect(reject.code).toMatch(/^[A-Z][A-Z0-9_]+$/);
        expect(typeof reject.retryable).toBe('boolean');
      }
      const expectedAccepted = write.records.map((r) => r.recordId).filter((id) => !write.expectRejected.includes(id));
      expect([...result.accepted].sort()).toEqual([...new Set(expectedAccepted)].sort());
    });
  });
}
