// Covers how raw source values are checked and converted per property type.
import { describe, expect, it } from 'vitest';
import { coerceValue, pgColumnType } from '../../sql/property-types.js';

describe('coerceValue', () => {
  it('keeps integers and refuses text that is not one', () => {
    expect(coerceValue('integer', '42')).toEqual({ ok: true, value: 42 });
    expect(coerceValue('integer', 7)).toEqual({ ok: true, value: 7 });
    expect(coerceValue('integer', '12abc').ok).toBe(false);
    expect(coerceValue('integer', '4.0').ok).toBe(false);
    expect(coerceValue('integer', '99999999999999999999').ok).toBe(false);
  });

  it('reads an empty field as no value for every type but text', () => {
    expect(coerceValue('integer', '')).toEqual({ ok: true, value: null });
    expect(coerceValue('date', '  ')).toEqual({ ok: true, value: null });
    expect(coerceValue('boolean', '')).toEqual({ ok: true, value: null });
    expect(coerceValue('string', '')).toEqual({ ok: true, value: '' });
  });

  it('lower-cases e-mails and refuses malformed ones', () => {
    expect(coerceValue('email', ' Ann@Example.COM ')).toEqual({ ok: true, value: 'ann@example.com' });
    expect(coerceValue('email', 'not-an-email').ok).toBe(false);
  });

  it('reads a date without a zone as UTC', () => {
    const result = coerceValue('date', '2005-05-24 22:53:30');

    expect(result.ok && result.value instanceof Date && result.value.toISOString()).toBe('2005-05-24T22:53:30.000Z');
    expect(coerceValue('date', 'yesterday').ok).toBe(false);
  });

  it('accepts the usual spellings of booleans only', () => {
    expect(coerceValue('boolean', 'yes')).toEqual({ ok: true, value: true });
    expect(coerceValue('boolean', '0')).toEqual({ ok: true, value: false });
    expect(coerceValue('boolean', 'maybe').ok).toBe(false);
  });

  it('refuses non-finite floats', () => {
    expect(coerceValue('float', '1e3')).toEqual({ ok: true, value: 1000 });
    expect(coerceValue('float', Number.NaN).ok).toBe(false);
    expect(coerceValue('float', '1e999').ok).toBe(false);
  });

  it('maps types and lists to Postgres column types', () => {
    expect(pgColumnType('integer', false)).toBe('bigint');
    expect(pgColumnType('date', true)).toBe('timestamptz[]');
  });
});
