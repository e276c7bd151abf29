/**
 * Turns a compiled rule into SQL text with its values inlined as quoted literals. View
 * definitions cannot take bound parameters, and `groups.compiled_sql` stores this form so
 * membership queries and the `roster."group_<key>"` views run the same predicate.
 */
import { quoteLiteral } from '../../lib/db.js';
import { InternalError } from '../../lib/errors.js';
import type { CompiledRule } from './compile-rule.js';

// Quoted identifiers and string literals are matched first and kept as they are, so a column
// named `a$1` is never mistaken for a placeholder.
const TOKENS = /"(?:[^"]|"")*"|'(?:[^']|'')*'|\$(\d+)(?!\d)/g;

function fail(message: string): never {
  throw new InternalError('CDP_RULE_RENDER_FAILED', message);
}

function renderScalar(value: unknown, pgType: string): string {
  switch (pgType) {
    case 'text':
    case 'timestamptz':
      return typeof value === 'string' ? quoteLiteral(value) : fail(`Expected text for a ${pgType} value`);
    case 'bigint':
    case 'integer':
      return Number.isSafeInteger(value) ? quoteLiteral(String(value)) : fail(`Expected a whole number for a ${pgType} value`);
    case 'double precision':
    case 'numeric':
      return typeof value === 'number' && Number.isFinite(value)
        ? quoteLiteral(String(value))
        : fail(`Expected a finite number for a ${pgType} value`);
    case 'boolean':
      return typeof value === 'boolean' ? String(value) : fail('Expected true or false for a boolean value');
    default:
      return fail(`Cannot inline a value of type ${pgType}`);
  }
}

function renderParam(value: unknown, pgType: string): string {
  if (!pgType.endsWith('[]')) {
    return renderScalar(value, pgType);
  }
  if (!Array.isArray(value)) {
    return fail(`Expected a list for a ${pgType} value`);
  }
  const elementType = pgType.slice(0, -2);

  // The cast after the placeholder (`::text[]`) still follows, so an empty list stays typed.
  return value.length === 0 ? `'{}'` : `ARRAY[${value.map((item) => renderScalar(item, elementType)).join(', ')}]`;
}

/** The predicate of `compiled` with every `$n` replaced by a safe, typed literal. */
export function renderInline(compiled: CompiledRule): string {
  return compiled.sql.replace(TOKENS, (token: string, index: string | undefined) => {
    if (index === undefined) {
      return token;
    }
    const position = Number(index) - 1;
    if (position >= compiled.params.length || position < 0) {
      return fail(`Placeholder $${index} has no parameter`);
    }

    return renderParam(compiled.params[position], compiled.paramTypes[position]);
  });
}
