/**
 * Groups that read other groups (`in_group`): which groups a rule depends on, and an order in
 * which to recompute groups so that every group comes after the groups it reads. A cycle has
 * no such order and is refused with CDP_RULE_GROUP_CYCLE.
 */
import { ConfigError } from '../../lib/errors.js';
import { isPlainObject, operatorOf } from './rule-values.js';

export interface GroupDependency {
  /** The key of the group read. */
  group: string;
  /** The rule path of the `in_group` node, as in compile errors (`and[1].in_group`). */
  path: string;
}

/** Every `in_group` of `rule`, in rule order, with its path. Malformed nodes are skipped. */
export function ruleGroupDependencies(rule: unknown): GroupDependency[] {
  const found: GroupDependency[] = [];
  const walk = (node: unknown, path: string, depth: number): void => {
    const op = operatorOf(node);
    // Anything deeper is refused by the compiler; stop well before the stack would.
    if (op === undefined || depth > 200) {
      return;
    }
    const here = path ? `${path}.${op}` : op;
    const raw = (node as Record<string, unknown>)[op];
    if (op === 'in_group') {
      const key = Array.isArray(raw) && raw.length === 1 ? raw[0] : raw;
      if (typeof key === 'string') {
        found.push({ group: key, path: here });
      }

      return;
    }
    if (Array.isArray(raw)) {
      raw.forEach((arg, i) => walk(arg, `${here}[${i}]`, depth + 1));
    } else if (isPlainObject(raw)) {
      walk(raw, `${here}[0]`, depth + 1);
    }
  };
  walk(rule, '', 0);

  return found;
}

/**
 * Orders group keys so that each comes after the groups it depends on (keys that are not in
 * `dependencies` are ignored); ties keep the order of `dependencies`. Throws a ConfigError
 * CDP_RULE_GROUP_CYCLE naming the groups of the first cycle found, with `details.groups`.
 */
export function orderGroupsByDependency(dependencies: Map<string, GroupDependency[]>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: Array<{ key: string; via?: GroupDependency }> = [];

  const visit = (key: string, via?: GroupDependency): void => {
    if (state.get(key) === 'done') {
      return;
    }
    if (state.get(key) === 'visiting') {
      const start = stack.findIndex((entry) => entry.key === key);
      const cycle = [...stack.slice(start).map((entry) => entry.key), key];
      const first = stack[start + 1]?.via ?? via!;
      throw new ConfigError(
        'CDP_RULE_GROUP_CYCLE',
        `Group "${key}" rule depends on itself through ${cycle.join(' -> ')} at ${first.path}`,
        { details: { group: key, path: first.path, groups: cycle } },
      );
    }
    state.set(key, 'visiting');
    stack.push({ key, via });
    for (const dependency of dependencies.get(key) ?? []) {
      if (dependencies.has(dependency.group)) {
        visit(dependency.group, dependency);
      }
    }
    stack.pop();
    state.set(key, 'done');
    order.push(key);
  };
  for (const key of dependencies.keys()) {
    visit(key);
  }

  return order;
}
