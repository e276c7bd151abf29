/**
 * The `performed` operator: how often a profile performed an event in the last D days,
 * optionally counting only events whose fields match a small condition language. It compiles
 * to a correlated subquery on roster_core.events that walks the (profile_id, event,
 * occurred_at) index and stops counting once the answer is known (LIMIT).
 *
 * Event fields are read as `properties #> $n::text[]`: the path is validated and bound, never
 * spliced into the SQL. A comparison matches only a field of the value's JSON type (a string
 * value matches string fields, a number value number fields), so a field holding `"5"` is not
 * equal to 5 and no cast can fail. Every node is true or false, never NULL (see docs/groups.md,
 * "Nulls").
 */
import { CLOCK, isPlainObject, operatorOf, show, textProblem, type RuleErrorCode } from './rule-values.js';

/** What the event compiler needs from the rule compiler. */
export interface RuleContext {
  bind(value: unknown, pgType: string): string;
  fail(code: RuleErrorCode, path: string, problem: string): never;
  maxDepth: number;
}

export interface PerformedSpec {
  event: string;
  days: number;
  atLeast?: number;
  atMost?: number;
  where?: unknown;
}

// Days back a window may reach: about 1,000 years, as for relative dates.
export const MAX_EVENT_DAYS = 365_250;
export const MAX_EVENT_COUNT = 1_000_000;
const MAX_PATH_SEGMENTS = 16;
const PATH_SEGMENT = /^[A-Za-z0-9_]+$/;
const ORDERINGS = new Set(['<', '<=', '>', '>=']);
const FLIPPED: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '==': '==', '!=': '!=' };
const SPEC_KEYS = new Set(['event', 'days', 'atLeast', 'atMost', 'where']);

/** The path segments of an event field var (`properties.plan.name` gives `plan`, `name`). */
export function eventFieldPath(name: unknown): string[] | undefined {
  if (typeof name !== 'string' || !name.startsWith('properties.')) {
    return undefined;
  }
  const segments = name.slice('properties.'.length).split('.');
  if (segments.length > MAX_PATH_SEGMENTS || !segments.every((segment) => PATH_SEGMENT.test(segment))) {
    return undefined;
  }

  return segments;
}

function isCount(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max;
}

/** Checks the argument of `performed` and returns it typed. */
export function checkPerformed(ctx: RuleContext, raw: unknown, path: string): PerformedSpec {
  const spec = Array.isArray(raw) && raw.length === 1 ? raw[0] : raw;
  if (!isPlainObject(spec)) {
    return ctx.fail('CDP_RULE_MALFORMED', path, `has ${show(spec)}; performed takes {"event": ..., "days": ..., "atLeast": ...}`);
  }
  const extra = Object.keys(spec).find((key) => !SPEC_KEYS.has(key));
  if (extra !== undefined) {
    ctx.fail('CDP_RULE_MALFORMED', path, `has unknown field ${show(extra)} in performed`);
  }
  const { event, days, atLeast, atMost, where } = spec;
  if (typeof event !== 'string' || event === '' || textProblem(event) !== undefined) {
    ctx.fail('CDP_RULE_MALFORMED', `${path}.event`, `has event ${show(event)}; use a non-empty event name`);
  }
  if (!isCount(days, MAX_EVENT_DAYS) || days < 1) {
    ctx.fail('CDP_RULE_MALFORMED', `${path}.days`, `has days ${show(days)}; use a whole number from 1 to ${MAX_EVENT_DAYS}`);
  }
  for (const [name, value] of [['atLeast', atLeast], ['atMost', atMost]] as const) {
    if (value !== undefined && !isCount(value, MAX_EVENT_COUNT)) {
      ctx.fail('CDP_RULE_MALFORMED', `${path}.${name}`, `has ${name} ${show(value)}; use a whole number from 0 to ${MAX_EVENT_COUNT}`);
    }
  }
  if (atLeast === undefined && atMost === undefined) {
    ctx.fail('CDP_RULE_MALFORMED', path, 'needs atLeast or atMost in performed');
  }

  return { event, days, atLeast: atLeast as number | undefined, atMost: atMost as number | undefined, where };
}

/** SQL that is true when the profile `p` performed the event as `raw` asks. */
export function compilePerformed(ctx: RuleContext, raw: unknown, path: string, depth: number): string {
  const spec = checkPerformed(ctx, raw, path);
  const atLeast = spec.atLeast ?? 0;
  if (atLeast === 0 && spec.atMost === undefined) {
    // Still check the where, so a bad condition is reported even where it cannot matter.
    whereCondition({ bind: () => 'NULL', fail: ctx.fail.bind(ctx), maxDepth: ctx.maxDepth }, spec.where ?? true, `${path}.where`, depth + 1);

    return 'TRUE';
  }
  const filter = spec.where === undefined ? '' : `\n      AND ${whereCondition(ctx, spec.where, `${path}.where`, depth + 1)}`;
  // Counting stops at the first number of events that settles the answer.
  const limit = spec.atMost === undefined ? atLeast : Math.max(atLeast, spec.atMost + 1);
  const hits = `(SELECT count(*) FROM (
    SELECT 1
    FROM roster_core.events AS ev
    WHERE ev.profile_id = p.id
      AND ev.event = ${ctx.bind(spec.event, 'text')}
      AND ev.occurred_at > ${CLOCK} - make_interval(days => ${ctx.bind(spec.days, 'integer')})
      AND ev.occurred_at <= ${CLOCK}${filter}
    LIMIT ${ctx.bind(limit, 'bigint')}
  ) AS hit)`;
  if (spec.atMost === undefined) {
    return `(${hits} >= ${ctx.bind(atLeast, 'bigint')})`;
  }

  return atLeast === 0
    ? `(${hits} <= ${ctx.bind(spec.atMost, 'bigint')})`
    : `(${hits} BETWEEN ${ctx.bind(atLeast, 'bigint')} AND ${ctx.bind(spec.atMost, 'bigint')})`;
}

function field(ctx: RuleContext, node: unknown, path: string): string | undefined {
  if (operatorOf(node) !== 'var') {
    return undefined;
  }
  const raw = (node as Record<string, unknown>).var;
  const name = Array.isArray(raw) && raw.length === 1 ? raw[0] : raw;
  const segments = eventFieldPath(name);
  if (segments === undefined) {
    return ctx.fail('CDP_RULE_MALFORMED', `${path}.var`, `has event field ${show(name)}; use "properties.<name>" with letters, digits and _`);
  }

  return ctx.bind(segments, 'text[]');
}

function args(ctx: RuleContext, raw: unknown, path: string, count: number): unknown[] {
  if (!Array.isArray(raw) || raw.length !== count) {
    ctx.fail('CDP_RULE_MALFORMED', path, `needs ${count} arguments, got ${show(raw)}`);
  }

  return raw;
}

function present(pathSql: string): string {
  return `(ev.properties #> ${pathSql} IS NOT NULL AND jsonb_typeof(ev.properties #> ${pathSql}) <> 'null')`;
}

/** One comparison of an event field (bound path) with a value. */
function compareField(ctx: RuleContext, op: string, pathSql: string, value: unknown, path: string): string {
  if (value === null) {
    if (op !== '==' && op !== '!=') {
      ctx.fail('CDP_RULE_MALFORMED', path, 'orders an event field against null');
    }

    return op === '==' ? `(NOT ${present(pathSql)})` : present(pathSql);
  }
  if (op === '!=') {
    return `(NOT ${compareField(ctx, '==', pathSql, value, path)})`;
  }
  const sqlOp = op === '==' ? '=' : op;
  const fieldSql = `ev.properties #> ${pathSql}`;
  if (typeof value === 'string') {
    const problem = textProblem(value);
    if (problem !== undefined) {
      ctx.fail('CDP_RULE_MALFORMED', path, problem);
    }
    // Text is ordered by code point, as for profile properties.
    const collate = ORDERINGS.has(op) ? ' COLLATE "C"' : '';

    return `(${fieldSql} IS NOT NULL AND jsonb_typeof(${fieldSql}) = 'string' AND (ev.properties #>> ${pathSql})${collate} ${sqlOp} ${ctx.bind(value, 'text')})`;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      ctx.fail('CDP_RULE_MALFORMED', path, `has number ${show(String(value))}`);
    }

    // jsonb compares two numbers as numeric, exactly, and never casts a non-number.
    return `(${fieldSql} IS NOT NULL AND jsonb_typeof(${fieldSql}) = 'number' AND ${fieldSql} ${sqlOp} to_jsonb(${ctx.bind(value, 'numeric')}))`;
  }
  if (typeof value === 'boolean') {
    if (op !== '==') {
      ctx.fail('CDP_RULE_TYPE_MISMATCH', path, `uses ${op} on a true/false value`);
    }

    return `(${fieldSql} IS NOT NULL AND ${fieldSql} = to_jsonb(${ctx.bind(value, 'boolean')}))`;
  }

  return ctx.fail('CDP_RULE_MALFORMED', path, `has ${show(value)} where a single value belongs`);
}

/** The `where` of `performed`: and, or, !, exists, comparisons and `in` over event fields. */
export function whereCondition(ctx: RuleContext, node: unknown, path: string, depth: number): string {
  if (depth > ctx.maxDepth) {
    ctx.fail('CDP_RULE_MALFORMED', path, `nests deeper than ${ctx.maxDepth} levels`);
  }
  if (typeof node === 'boolean') {
    return node ? 'TRUE' : 'FALSE';
  }
  const op = operatorOf(node);
  if (op === undefined) {
    return ctx.fail('CDP_RULE_MALFORMED', path, `has ${show(node)} where an event condition belongs`);
  }
  const here = `${path}.${op}`;
  const raw = (node as Record<string, unknown>)[op];

  switch (op) {
    case 'and':
    case 'or': {
      if (!Array.isArray(raw) || raw.length === 0) {
        return ctx.fail('CDP_RULE_MALFORMED', here, `needs at least 1 argument, got ${show(raw)}`);
      }
      const parts = raw.map((arg, i) => whereCondition(ctx, arg, `${here}[${i}]`, depth + 1));

      return `(${parts.join(op === 'and' ? ' AND ' : ' OR ')})`;
    }
    case '!': {
      const [arg] = Array.isArray(raw) ? args(ctx, raw, here, 1) : [raw];

      return `(NOT ${whereCondition(ctx, arg, `${here}[0]`, depth + 1)})`;
    }
    case 'exists': {
      const [arg] = Array.isArray(raw) ? args(ctx, raw, here, 1) : [raw];
      const pathSql = field(ctx, arg, `${here}[0]`);

      return pathSql === undefined ? ctx.fail('CDP_RULE_MALFORMED', here, 'checks exists on something other than an event field') : present(pathSql);
    }
    case 'in': {
      const [needle, list] = args(ctx, raw, here, 2);
      const pathSql = field(ctx, needle, `${here}[0]`);
      if (pathSql === undefined || !Array.isArray(list)) {
        return ctx.fail('CDP_RULE_MALFORMED', here, 'needs {"in": [{"var": "properties.<name>"}, [values]]}');
      }
      const parts = list.map((item, i) => {
        if (item === null || typeof item === 'object') {
          ctx.fail('CDP_RULE_MALFORMED', `${here}[1][${i}]`, `has ${show(item)} in a list of values`);
        }

        return compareField(ctx, '==', pathSql, item, `${here}[1][${i}]`);
      });

      return parts.length === 0 ? 'FALSE' : `(${parts.join(' OR ')})`;
    }
    case '==':
    case '!=':
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const [left, right] = args(ctx, raw, here, 2);
      const leftPath = field(ctx, left, `${here}[0]`);
      const rightPath = leftPath === undefined ? field(ctx, right, `${here}[1]`) : undefined;
      if (leftPath !== undefined && operatorOf(right) === 'var') {
        return ctx.fail('CDP_RULE_MALFORMED', here, 'compares two event fields; compare a field with a value');
      }
      if (leftPath !== undefined) {
        return compareField(ctx, op, leftPath, right, `${here}[1]`);
      }
      if (rightPath !== undefined) {
        return compareField(ctx, FLIPPED[op], rightPath, left, `${here}[0]`);
      }

      return ctx.fail('CDP_RULE_MALFORMED', here, 'compares two values; one side must be {"var": "properties.<name>"}');
    }
    default:
      return ctx.fail('CDP_RULE_UNKNOWN_OPERATOR', here, `uses ${show(op)}, which event conditions do not support`);
  }
}
