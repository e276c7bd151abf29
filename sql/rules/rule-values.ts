/**
 * The value side of rule compilation: how property types group into comparable kinds, their
 * Postgres types, relative-date units, and the check of one literal against a property.
 */
import { coerceValue, type PropertyDef, type PropertyType } from '../property-types.js';

export type Kind = 'text' | 'integer' | 'float' | 'boolean' | 'date';

export const KINDS: Record<PropertyType, Kind> = {
  string: 'text',
  email: 'text',
  url: 'text',
  phone: 'text',
  integer: 'integer',
  float: 'float',
  boolean: 'boolean',
  date: 'date',
};

export const PG_TYPES: Record<Kind, string> = {
  text: 'text',
  integer: 'bigint',
  float: 'double precision',
  boolean: 'boolean',
  date: 'timestamptz',
};

// make_interval argument per unit, and the largest count allowed (about 1,000 years), which keeps
// `now() - interval` inside the range Postgres timestamps support.
export const UNITS: Record<string, { arg: string; max: number }> = {
  minute: { arg: 'mins', max: 525_960_000 },
  hour: { arg: 'hours', max: 8_766_000 },
  day: { arg: 'days', max: 365_250 },
  week: { arg: 'weeks', max: 52_178 },
  month: { arg: 'months', max: 12_000 },
  year: { arg: 'years', max: 1_000 },
};

// roster_core.clock() reads a setting on every call; as a subquery it runs once per statement
// (an InitPlan), which halves the cost of a relative-date rule over a million profiles and lets
// an index on the column be used.
export const CLOCK = '(SELECT roster_core.clock())';

export type RuleErrorCode =
  | 'CDP_RULE_UNKNOWN_PROPERTY'
  | 'CDP_RULE_UNKNOWN_OPERATOR'
  | 'CDP_RULE_MALFORMED'
  | 'CDP_RULE_TYPE_MISMATCH'
  | 'CDP_RULE_UNKNOWN_GROUP'
  | 'CDP_RULE_GROUP_CYCLE';

/** The unit of a relative date (`"days"` or `"day"`), or undefined for anything else. */
export function unitOf(name: unknown): { name: string; arg: string; max: number } | undefined {
  if (typeof name !== 'string') {
    return undefined;
  }
  const singular = name.endsWith('s') ? name.slice(0, -1) : name;

  return Object.hasOwn(UNITS, singular) ? { name: singular, ...UNITS[singular] } : undefined;
}

// A lone UTF-16 surrogate cannot be sent to Postgres (the driver would replace it with U+FFFD
// and match something else), and Postgres text cannot hold NUL.
const UNSENDABLE_TEXT = /[\u0000\p{Cs}]/u;

/** Why a text value from a rule cannot be bound, or undefined when it can. */
export function textProblem(value: string): string | undefined {
  return UNSENDABLE_TEXT.test(value) ? 'has a text value with a NUL character or a lone surrogate' : undefined;
}

/** A short JSON form of a rule value for error messages. */
export function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }

  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The single key of an operator node, or undefined when `node` is not one. */
export function operatorOf(node: unknown): string | undefined {
  if (!isPlainObject(node)) {
    return undefined;
  }
  const keys = Object.keys(node);

  return keys.length === 1 ? keys[0] : undefined;
}

export type LiteralCheck = { ok: true; value: unknown } | { ok: false; code: RuleErrorCode; problem: string };

/** Checks one literal against a property and returns the value to bind. */
export function checkLiteral(def: PropertyDef, value: unknown): LiteralCheck {
  const mismatch: LiteralCheck = {
    ok: false,
    code: 'CDP_RULE_TYPE_MISMATCH',
    problem: `compares ${def.type} property "${def.key}" with ${show(value)}`,
  };
  if (typeof value === 'number' && !Number.isFinite(value)) {
    return { ok: false, code: 'CDP_RULE_MALFORMED', problem: `has number ${show(String(value))}` };
  }
  if (typeof value === 'object' || value === undefined) {
    return { ok: false, code: 'CDP_RULE_MALFORMED', problem: `has ${show(value)} where a single value belongs` };
  }
  switch (KINDS[def.type]) {
    case 'text':
      if (typeof value !== 'string') return mismatch;
      if (textProblem(value) !== undefined) {
        return { ok: false, code: 'CDP_RULE_MALFORMED', problem: textProblem(value)! };
      }

      // Emails are stored lower-cased (see coerceValue), so compare in the same form.
      return { ok: true, value: def.type === 'email' ? value.toLowerCase() : value };
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return mismatch;
      if (!Number.isSafeInteger(value)) {
        return { ok: false, code: 'CDP_RULE_MALFORMED', problem: `has integer ${show(value)} outside ±${Number.MAX_SAFE_INTEGER}` };
      }

      return { ok: true, value };
    case 'float':
      return typeof value === 'number' ? { ok: true, value } : mismatch;
    case 'boolean':
      return typeof value === 'boolean' ? { ok: true, value } : mismatch;
    case 'date': {
      if (typeof value !== 'string') return mismatch;
      const result = coerceValue('date', value);

      return result.ok && result.value instanceof Date ? { ok: true, value: result.value.toISOString() } : mismatch;
    }
  }
}
