// Pins that the row text prepareMessage writes by hand is exactly what eventRowJson (the layout
// the insert statement reads) gives for the same event, with and without a client messageId.
import { describe, expect, it } from 'vitest';
import { prepareMessage } from '../../server/segment-message.js';
import { eventRowJson } from '../../sql/event-queries.js';

describe('prepareMessage row layout', () => {
  const receivedAt = new Date('2026-12-03T10:00:05.123Z');
  const ctx = { writeKeyId: 7, receivedAt, properties: new Map() };

  it('writes the same row as eventRowJson, with clock-skew correction and nested JSON', () => {
    const raw = {
      type: 'track',
      event: 'Order "Completed"',
      userId: 'u-1',
      anonymousId: 'a-ü',
      messageId: 'm-1',
      properties: { total: 12.5, items: [{ sku: 'x' }] },
      context: { ip: '10.0.0.1' },
      timestamp: '2026-12-03T10:00:00.000Z',
      sentAt: '2026-12-03T10:00:02.000Z',
    };
    const prepared = prepareMessage(raw, 'track', ctx);

    expect(prepared.messageId).toBe('m-1');
    expect(JSON.parse(prepared.json)).toEqual(
      JSON.parse(
        eventRowJson({
          message_id: 'm-1',
          type: 'track',
          event: 'Order "Completed"',
          user_id: 'u-1',
          anonymous_id: 'a-ü',
          previous_id: null,
          group_id: null,
          properties: raw.properties,
          traits: {},
          context: raw.context,
          write_key_id: 7,
          occurred_at: '2026-12-03T10:00:03.123Z',
          received_at: receivedAt.toISOString(),
        }),
      ),
    );
  });

  it('marks a server-made messageId as not recorded for de-duplication, as eventRowJson does', () => {
    const prepared = prepareMessage({ type: 'identify', userId: 'u-2', traits: { plan: 'pro' } }, 'identify', ctx);
    const fields = JSON.parse(prepared.json) as unknown[];

    expect(prepared.messageId).toBeNull();
    expect(fields).toEqual(
      JSON.parse(
        eventRowJson({
          message_id: fields[0] as string,
          type: 'identify',
          event: null,
          user_id: 'u-2',
          anonymous_id: null,
          previous_id: null,
          group_id: null,
          properties: {},
          traits: { plan: 'pro' },
          context: {},
          write_key_id: 7,
          occurred_at: receivedAt.toISOString(),
          received_at: receivedAt.toISOString(),
          dedup: false,
        }),
      ),
    );
  });
});
