/**
 * The reference semantics of group rules: json-logic-js with Roster's operations registered.
 * The SQL compiler (compile-rule.ts) must select exactly the profiles for which this returns
 * true; the differential tests check it, and the explain feature uses it to show why a profile
 * is in a group. The rules themselves are written down in docs/groups.md ("Nulls").
 *
 * Profile values are given by property key: text as strings, numbers as numbers, booleans,
 * dates as Date objects (as the pg driver returns them), lists as arrays. A string compared
 * with a Date is read as a date, as the compiler does for a date property.
 */
import jsonLogic, { type RulesLogic } from 'json-logic-js';
import { coerceValue } from '../property-types.js';
import { eventFieldPath } from './compile-events.js';
import { isPlainObject, operatorOf, unitOf } from './rule-values.js';

export interface ReferenceEvent {
  event: string;
  occurredAt: Date;
  properties: Record<string, unknown>;
}

export interface ReferenceContext {
  /** What roster_core.clock() returns. Calendar units are taken in UTC. */
  now: Date;
  /** The profile's events, for `performed`. */
  events?: ReferenceEvent[];
  /** Keys of the groups the profile is a stored member of, for `in_group`. */
  groups?: Iterable<string>;
}

const FIXED_UNIT_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000, week: 604_800_000 };

// json-logic-js calls operations with the current data as `this`, which inside `some` is the
// list element, so the evaluation context lives here for the length of one synchronous apply.
let current: { now: Date; events: ReferenceEvent[]; groups: Set<string> } | undefined;

function context(): NonNullable<typeof current> {
  if (current === undefined) {
    throw new Error('Roster operations run only inside evaluateReference');
  }

  return current;
}

/** `date` moved by `count` units (negative goes back), as Postgres adds an interval in UTC. */
export function shiftDate(date: Date, count: number, unitName: string): Date {
  const unit = unitOf(unitName);
  if (unit === undefined) {
    throw new Error(`Unknown unit ${unitName}`);
  }
  if (unit.name in FIXED_UNIT_MS) {
    return new Date(date.getTime() + count * FIXED_UNIT_MS[unit.name]);
  }
  // Months and years keep the day of month, clamped to the month's last day (31 March minus a
  // month is 28 or 29 February).
  const months = unit.name === 'year' ? count * 12 : count;
  const total = date.getUTCFullYear() * 12 + date.getUTCMonth() + months;
  const year = Math.floor(total / 12);
  const month = total - year * 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const shifted = new Date(date.getTime());
  shifted.setUTCFullYear(year, month, Math.min(date.getUTCDate(), lastDay));

  return shifted;
}

const present = (value: unknown): boolean => value !== null && value !== undefined;

/** Code point order, as Postgres's C collation (JavaScript's `<` orders UTF-16 units). */
function compareText(a: string, b: string): number {
  const left = [...a];
  const right = [...b];
  for (let i = 0; i < Math.min(left.length, right.length); i += 1) {
    const diff = left[i].codePointAt(0)! - right[i].codePointAt(0)!;
    if (diff !== 0) {
      return diff;
    }
  }

  return left.length - right.length;
}

function asDate(value: unknown): number | undefined {
  if (value instanceof Date) {
    return value.getTime();
  }
  const result = coerceValue('date', value);

  return result.ok && result.value instanceof Date ? result.value.getTime() : undefined;
}

/** Three-way comparison of two present scalars, or undefined when they do not compare. */
function order(a: unknown, b: unknown): number | undefined {
  if (a instanceof Date || b instanceof Date) {
    const [x, y] = [asDate(a), asDate(b)];

    return x === undefined || y === undefined ? undefined : x - y;
  }
  if (typeof a === 'string' && typeof b === 'string') {
    return compareText(a, b);
  }
  if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'boolean')) {
    return undefined;
  }

  return a === b ? 0 : (a as number) < (b as number) ? -1 : 1;
}

/** A test on two values where a list on either side matches when any element does. */
function anyPair(a: unknown, b: unknown, test: (x: unknown, y: unknown) => boolean): boolean {
  if (Array.isArray(a)) return a.some((x) => anyPair(x, b, test));
  if (Array.isArray(b)) return b.some((y) => anyPair(a, y, test));

  return present(a) && present(b) && test(a, b);
}

const isEqual = (a: unknown, b: unknown) => anyPair(a, b, (x, y) => order(x, y) === 0);
// `== null` asks whether the value is missing (or an empty list), as in the compiler.
const equalsOrMissing = (a: unknown, b: unknown) => (a === null ? !exists(b) : b === null ? !exists(a) : isEqual(a, b));
const ordered = (test: (diff: number) => boolean) => (x: unknown, y: unknown) => {
  const diff = order(x, y);

  return diff !== undefined && test(diff);
};
const ORDERINGS: Record<string, (diff: number) => boolean> = {
  '<': (d) => d < 0,
  '<=': (d) => d <= 0,
  '>': (d) => d > 0,
  '>=': (d) => d >= 0,
};

/** `a op b`, or with `c` the between `a op b op c` on one element of a list `b`. */
function compare(op: string, a: unknown, b: unknown, c?: unknown): boolean {
  const test = ordered(ORDERINGS[op]);
  if (c === undefined) {
    return anyPair(a, b, test);
  }
  const middle = Array.isArray(b) ? b : [b];

  return middle.some((x) => anyPair(a, x, test) && anyPair(x, c, test));
}

function exists(value: unknown): boolean {
  return present(value) && (!Array.isArray(value) || value.length > 0);
}

function textTest(value: unknown, needle: unknown, test: (text: string, needle: string) => boolean): boolean {
  return anyPair(value, needle, (x, y) => typeof x === 'string' && typeof y === 'string' && test(x, y));
}

const asciiLower = (text: string) => text.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());

function window(value: unknown, from: Date, to: Date): boolean {
  return anyPair(value, from, (x) => {
    const time = asDate(x);

    return time !== undefined && time >= from.getTime() && time <= to.getTime();
  });
}

/** An event field by path, reading own keys only, and array positions as Postgres does. */
function eventField(properties: Record<string, unknown>, name: unknown): unknown {
  let node: unknown = properties;
  for (const segment of eventFieldPath(name) ?? []) {
    if (Array.isArray(node)) {
      const index = /^\d+$/.test(segment) ? Number(segment) : -1;
      node = index >= 0 && index < node.length ? node[index] : undefined;
    } else if (isPlainObject(node) && Object.hasOwn(node, segment)) {
      node = node[segment];
    } else {
      return undefined;
    }
  }

  return node;
}

/** The `where` of `performed` for one event (see compile-events.ts for the language). */
function matchesEvent(node: unknown, event: ReferenceEvent): boolean {
  if (typeof node === 'boolean') {
    return node;
  }
  const op = operatorOf(node)!;
  const raw = (node as Record<string, unknown>)[op];
  const args = Array.isArray(raw) ? raw : [raw];
  const read = (arg: unknown) => eventField(event.properties, (arg as { var: unknown }).var);
  const isField = (arg: unknown) => operatorOf(arg) === 'var';
  const equal = (field: unknown, value: unknown) =>
    value === null ? !present(field) : typeof field === typeof value && field === value;
  switch (op) {
    case 'and':
      return args.every((arg) => matchesEvent(arg, event));
    case 'or':
      return args.some((arg) => matchesEvent(arg, event));
    case '!':
      return !matchesEvent(args[0], event);
    case 'exists':
      return present(read(args[0]));
    case 'in':
      return (args[1] as unknown[]).some((value) => equal(read(args[0]), value));
    default: {
      const [field, value, flipped] = isField(args[0]) ? [read(args[0]), args[1], false] : [read(args[1]), args[0], true];
      if (op === '==' || op === '!=') {
        return equal(field, value) === (op === '==');
      }
      const diff = typeof field === typeof value && typeof value !== 'boolean' ? order(field, value) : undefined;

      return diff !== undefined && ORDERINGS[op](flipped ? -diff : diff);
    }
  }
}

function performed(spec: { event: string; days: number; atLeast?: number; atMost?: number; where?: unknown }): boolean {
  const { now, events } = context();
  const from = shiftDate(now, -spec.days, 'days').getTime();
  const count = events.filter(
    (event) =>
      event.event === spec.event &&
      event.occurredAt.getTime() > from &&
      event.occurredAt.getTime() <= now.getTime() &&
      (spec.where === undefined || matchesEvent(spec.where, event)),
  ).length;

  return count >= (spec.atLeast ?? 0) && (spec.atMost === undefined || count <= spec.atMost);
}

let isRegistered = false;

/** Registers Roster's operations with json-logic-js (once; later calls do nothing). */
export function registerReferenceOperations(): void {
  if (isRegistered) {
    return;
  }
  isRegistered = true;
  const add = (name: string, fn: (...args: any[]) => unknown) => jsonLogic.add_operation(name, fn);
  add('==', (a, b) => equalsOrMissing(a, b));
  add('!=', (a, b) => !equalsOrMissing(a, b));
  for (const op of Object.keys(ORDERINGS)) {
    add(op, (a, b, c) => compare(op, a, b, c));
  }
  add('between', (value, low, high) => compare('<=', low, value, high));
  add('before', (value, date) => compare('<', value, date));
  add('after', (value, date) => compare('>', value, date));
  add('in', (a, b) => {
    if (Array.isArray(b) && !Array.isArray(a)) return isEqual(b, a);
    if (Array.isArray(b)) return a.some((x: unknown) => isEqual(b, x));
    if (typeof b === 'string') return textTest(b, a, (text, part) => text.includes(part));

    return false;
  });
  add('exists', exists);
  add('not_exists', (value) => !exists(value));
  add('count', (value) => (Array.isArray(value) ? value.length : 0));
  add('contains', (value, part) => textTest(value, part, (text, needle) => text.includes(needle)));
  add('not_contains', (value, part) => !textTest(value, part, (text, needle) => text.includes(needle)));
  add('starts_with', (value, part) => textTest(value, part, (text, needle) => text.startsWith(needle)));
  add('ends_with', (value, part) => textTest(value, part, (text, needle) => text.endsWith(needle)));
  add('iequals', (value, other) => textTest(value, other, (text, needle) => asciiLower(text) === asciiLower(needle)));
  add('ago', (count, unit) => shiftDate(context().now, -count, unit));
  add('from_now', (count, unit) => shiftDate(context().now, count, unit));
  add('in_last', (value, count, unit) => window(value, shiftDate(context().now, -count, unit), context().now));
  add('in_next', (value, count, unit) => window(value, context().now, shiftDate(context().now, count, unit)));
  add('more_than_ago', (value, count, unit) => compare('<', value, shiftDate(context().now, -count, unit)));
  add('performed', (spec) => performed(spec));
  add('in_group', (key) => context().groups.has(key));
}

/** Whether a profile with `values` satisfies `rule` by the reference semantics. */
export function evaluateReference(rule: unknown, values: Record<string, unknown>, ctx: ReferenceContext): boolean {
  registerReferenceOperations();
  const outer = current;
  current = { now: ctx.now, events: ctx.events ?? [], groups: new Set(ctx.groups ?? []) };
  try {
    return jsonLogic.truthy(jsonLogic.apply(rule as RulesLogic, values));
  } finally {
    current = outer;
  }
}
