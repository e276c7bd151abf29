import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FastifyError, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Pool } from '../../lib/db.js';
import { ConfigError, isAppError, TransientError } from '../../lib/errors.js';
import type { PreparedEvent } from '../../sql/event-queries.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { createEventWriter } from '../event-writer.js';
import { createPropertyCache } from '../property-cache.js';
import { SEGMENT_BATCH_BODY, SEGMENT_BATCH_RESPONSES, SEGMENT_BODIES, SEGMENT_SINGLE_RESPONSES } from '../schemas/segment.js';
import {
  EVENT_TYPES,
  MAX_BATCH_BYTES,
  MAX_EVENT_BYTES,
  PayloadTooLargeError,
  prepareMessage,
  type EventType,
  type MessageContext,
} from '../segment-message.js';
import { createWriteKeyCache } from '../write-key-cache.js';

export interface SegmentRoutesOptions {
  pool: Pool;
  /** Called after each committed write with the number of events stored. */
  onEventsStored?: (count: number) => void;
  /** How long a write key lookup is trusted; a revoked key works at most this long. */
  writeKeyCacheMs?: number;
}

const gunzipAsync = promisify(gunzip);
/** Authorization headers whose decoded key is remembered; past this the memo starts over. */
const MAX_REMEMBERED_HEADERS = 1_000;

/** Write-key problems answer 401, like Segment. */
class WriteKeyError extends ConfigError {
  override readonly httpStatus = 401;
}

const BAD_KEY = () => new WriteKeyError('CDP_WRITE_KEY_INVALID', 'Write key is missing, unknown or revoked');

/** The write key from HTTP Basic auth: the user name, with an empty password. */
function basicAuthUser(header: string | undefined): string | undefined {
  if (!header || !header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');

  return (colon === -1 ? decoded : decoded.slice(0, colon)) || undefined;
}

function unavailable(err: unknown): TransientError {
  return new TransientError('CDP_EVENT_STORE_UNAVAILABLE', 'The event store is unreachable; send the events again', { cause: err });
}

/**
 * Segment-compatible ingestion: identify, track, page, screen, group, alias and batch. Events are
 * checked here, then committed through the event writer (group commit) before the answer.
 */
const segmentRoutes: FastifyPluginAsync<SegmentRoutesOptions> = async (app, options) => {
  const writer = createEventWriter({ pool: options.pool, log: app.log, onEventsStored: options.onEventsStored });
  const writeKeys = createWriteKeyCache(options.pool, { ttlMs: options.writeKeyCacheMs });
  const propertyDefs = createPropertyCache(options.pool);
  const headerKeyIds = new WeakMap<FastifyRequest, number>();
  app.addHook('onClose', () => writer.close());

  // Our own body parser: plain JSON.parse (these bodies are never merged into objects by
  // assignment, so prototype keys are harmless), gzip as the RudderStack SDK sends it, and
  // stable codes for bad JSON and oversized bodies. Every body is read as JSON whatever its
  // content type, as SDKs differ (RudderStack's sends application/x-www-form-urlencoded).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, async (request: FastifyRequest, raw: Buffer) => {
    let body = raw;
    if (request.headers['content-encoding'] === 'gzip') {
      // routeOptions builds a new object on each read, so it is read only when needed.
      const limit = request.routeOptions.bodyLimit ?? MAX_EVENT_BYTES;
      try {
        body = await gunzipAsync(raw, { maxOutputLength: limit });
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new PayloadTooLargeError('CDP_EVENT_TOO_LARGE', `Body is larger than ${limit / 1024} KB`, { cause: err });
        }
        throw new ConfigError('CDP_EVENT_INVALID_JSON', 'Body is not valid gzip', { cause: err });
      }
    }
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch (err) {
      throw new ConfigError('CDP_EVENT_INVALID_JSON', 'Body is not valid JSON', { cause: err });
    }
  });

  app.setErrorHandler((err, _request, reply) => {
    if ((err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send({ code: 'CDP_EVENT_TOO_LARGE', message: 'Body is larger than the limit of this route' });
    }
    // Everything else gets the server-wide answer.
    throw err;
  });

  // Decoded Authorization headers: traffic repeats a few keys, and decoding showed in profiles.
  const headerKeys = new Map<string, string>();
  function keyOfHeader(header: string | undefined): string | undefined {
    if (header === undefined) return undefined;
    let key = headerKeys.get(header);
    if (key === undefined) {
      key = basicAuthUser(header);
      if (key === undefined) return undefined;
      if (headerKeys.size >= MAX_REMEMBERED_HEADERS) headerKeys.clear();
      headerKeys.set(header, key);
    }

    return key;
  }

  // A key in the Authorization header is checked before the body is read. A callback hook, so a
  // key known in memory costs no promise.
  app.addHook('onRequest', (request, _reply, done) => {
    const key = keyOfHeader(request.headers.authorization);
    if (key === undefined) return done();
    const known = writeKeys.peek(key);
    if (known !== undefined) {
      headerKeyIds.set(request, known);

      return done();
    }
    writeKeys.resolve(key).then(
      (id) => {
        if (id === null) return done(BAD_KEY() as unknown as FastifyError);
        headerKeyIds.set(request, id);
        done();
      },
      (err: unknown) => done(unavailable(err) as unknown as FastifyError),
    );
  });

  function newContext(writeKeyId: number, properties: Map<string, PropertyDef>): Omit<MessageContext, 'defaults'> {
    return { writeKeyId, receivedAt: new Date(), properties };
  }

  async function contextFor(request: FastifyRequest, body: unknown): Promise<Omit<MessageContext, 'defaults'>> {
    let writeKeyId = headerKeyIds.get(request);
    const fresh = propertyDefs.peek();
    if (writeKeyId !== undefined && fresh !== undefined) return newContext(writeKeyId, fresh);
    let properties: Map<string, PropertyDef>;
    try {
      if (writeKeyId === undefined) {
        const key = (body as { writeKey?: unknown } | null)?.writeKey;
        const id = typeof key === 'string' && key !== '' ? await writeKeys.resolve(key) : null;
        if (id === null) throw BAD_KEY();
        writeKeyId = id;
      }
      properties = fresh ?? (await propertyDefs());
    } catch (err) {
      throw isAppError(err) ? err : unavailable(err);
    }

    return newContext(writeKeyId, properties);
  }

  const noValidation = () => () => true;

  for (const type of EVENT_TYPES) {
    app.post(
      `/v1/${type}`,
      {
        bodyLimit: MAX_EVENT_BYTES,
        validatorCompiler: noValidation,
        schema: {
          description: `Records one ${type} event (Segment HTTP tracking API). Needs a write key as the HTTP Basic user name (or writeKey in the body). Answers after the event is committed.`,
          tags: ['events'],
          body: { type: 'object', properties: SEGMENT_BODIES[type as EventType] },
          response: SEGMENT_SINGLE_RESPONSES,
        },
      },
      async (request) => {
        const ctx = await contextFor(request, request.body);
        await writer.write([prepareMessage(request.body, type, ctx)]);

        return { success: true };
      },
    );
  }

  app.post(
    '/v1/batch',
    {
      bodyLimit: MAX_BATCH_BYTES,
      validatorCompiler: noValidation,
      schema: {
        description:
          'Records many events of any type at once; needs a write key like the single-event routes. Good events are committed even when others are rejected; the answer lists the rejected ones by index.',
        tags: ['events'],
        body: SEGMENT_BATCH_BODY,
        response: SEGMENT_BATCH_RESPONSES,
      },
    },
    async (request, reply) => {
      const body = request.body as { batch?: unknown; context?: unknown; sentAt?: unknown } | null;
      const base = await contextFor(request, body);
      if (typeof body !== 'object' || body === null || !Array.isArray(body.batch) || body.batch.length === 0) {
        throw new ConfigError('CDP_EVENT_INVALID', 'Body needs a non-empty batch array');
      }
      const batchContext = typeof body.context === 'object' && body.context !== null && !Array.isArray(body.context) ? (body.context as Record<string, unknown>) : undefined;
      const ctx: MessageContext = { ...base, defaults: { context: batchContext, sentAt: body.sentAt } };
      const rows: PreparedEvent[] = [];
      const rejected: Array<{ index: number; code: string; message: string }> = [];
      body.batch.forEach((item, index) => {
        try {
          rows.push(prepareMessage(item, undefined, ctx));
        } catch (err) {
          if (!isAppError(err)) throw err;
          rejected.push({ index, code: err.code, message: err.message });
        }
      });
      if (rows.length === 0) {
        return reply.status(400).send({ code: 'CDP_EVENT_BATCH_REJECTED', message: `All ${rejected.length} events of the batch were rejected`, rejected });
      }
      await writer.write(rows);

      return { success: true, accepted: rows.length, rejected };
    },
  );
};

export default segmentRoutes;
