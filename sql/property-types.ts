/**
 * Property types: how each is stored in Postgres and how raw values from sources are checked
 * and converted. A value that fails is never coerced into something else; the caller keeps it
 * aside with the reason.
 */
export const PROPERTY_TYPES = ['string', 'email', 'integer', 'float', 'boolean', 'date', 'url', 'phone'] as const;
export type PropertyType = (typeof PROPERTY_TYPES)[number];

/** What the rest of Roster needs to know about a defined property. */
export interface PropertyDef {
  id: number;
  key: string;
  type: PropertyType;
  isUnique: boolean;
  isList: boolean;
  /** Column of roster_core.profiles holding the value. */
  columnName: string;
}

const PG_TYPES: Record<PropertyType, string> = {
  string: 'text',
  email: 'text',
  url: 'text',
  phone: 'text',
  integer: 'bigint',
  float: 'double precision',
  boolean: 'boolean',
  date: 'timestamptz',
};

/** The Postgres column type of a property, e.g. `bigint` or `text[]` for a list. */
export function pgColumnType(type: PropertyType, isList: boolean): string {
  return isList ? `${PG_TYPES[type]}[]` : PG_TYPES[type];
}

export type CoerceResult = { ok: true; value: string | number | boolean | Date | null } | { ok: false; reason: string };

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE = /^\+?[0-9 ().-]{4,}$/;
const INTEGER_TEXT = /^[+-]?\d+$/;
const FLOAT_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TRUE_TEXT = new Set(['true', 't', '1', 'yes', 'y']);
const FALSE_TEXT = new Set(['false', 'f', '0', 'no', 'n']);
// A date without a zone is read as UTC, so the same source gives the same instant everywhere.
const NAIVE_DATE_TIME = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/;

function fail(type: PropertyType, raw: unknown): CoerceResult {
  const shown = typeof raw === 'string' ? `"${raw.slice(0, 40)}"` : String(raw);

  return { ok: false, reason: `${shown} is not a valid ${type}` };
}

/** Checks and converts one raw value for a property of `type`. null and undefined stay null. */
export function coerceValue(type: PropertyType, raw: unknown): CoerceResult {
  if (raw === null || raw === undefined) {
    return { ok: true, value: null };
  }
  if (typeof raw === 'bigint') {
    raw = raw.toString();
  }
  // An empty field (a CSV cell, an empty form value) means "no value" for every type but text.
  if (typeof raw === 'string' && raw.trim() === '' && type !== 'string') {
    return { ok: true, value: null };
  }
  switch (type) {
    case 'string':
    case 'url':
    case 'phone':
    case 'email': {
      const text = raw instanceof Date ? raw.toISOString() : typeof raw === 'object' ? JSON.stringify(raw) : String(raw);
      if (type === 'email') {
        const email = text.trim();
        return EMAIL.test(email) ? { ok: true, value: email.toLowerCase() } : fail(type, raw);
      }
      if (type === 'url') {
        return URL.canParse(text.trim()) ? { ok: true, value: text.trim() } : fail(type, raw);
      }
      if (type === 'phone') {
        return PHONE.test(text.trim()) ? { ok: true, value: text.trim() } : fail(type, raw);
      }

      return { ok: true, value: text };
    }
    case 'integer': {
      if (typeof raw === 'number') {
        return Number.isSafeInteger(raw) ? { ok: true, value: raw } : fail(type, raw);
      }
      const text = String(raw).trim();
      if (!INTEGER_TEXT.test(text) || !Number.isSafeInteger(Number(text))) {
        return fail(type, raw);
      }

      return { ok: true, value: Number(text) };
    }
    case 'float': {
      if (typeof raw === 'number') {
        return Number.isFinite(raw) ? { ok: true, value: raw } : fail(type, raw);
      }
      const text = String(raw).trim();

      return FLOAT_TEXT.test(text) && Number.isFinite(Number(text)) ? { ok: true, value: Number(text) } : fail(type, raw);
    }
    case 'boolean': {
      if (typeof raw === 'boolean') {
        return { ok: true, value: raw };
      }
      const text = String(raw).trim().toLowerCase();
      if (TRUE_TEXT.has(text)) return { ok: true, value: true };
      if (FALSE_TEXT.has(text)) return { ok: true, value: false };

      return fail(type, raw);
    }
    case 'date': {
      if (raw instanceof Date) {
        return Number.isNaN(raw.getTime()) ? fail(type, raw) : { ok: true, value: raw };
      }
      if (typeof raw === 'number') {
        return fail(type, raw);
      }
      const text = String(raw).trim();
      const date = new Date(NAIVE_DATE_TIME.test(text) ? `${text.replace(' ', 'T')}${text.length === 10 ? 'T00:00:00' : ''}Z` : text);

      return Number.isNaN(date.getTime()) ? fail(type, raw) : { ok: true, value: date };
    }
  }
}

/** The text form of a unique value used for identity lookups (emails lower-cased, dates ISO). */
export function identityText(value: string | number | boolean | Date): string {
  return value instanceof Date ? value.toISOString() : String(value);
}
