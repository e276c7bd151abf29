// Covers in_group in config validation: unknown groups, cycles, and the recompute order.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.js';
import type { ConfigProblem } from '../../sql/config/config-types.js';
import { loadConfigDir } from '../../sql/config/load-config-dir.js';
import { checkConfig } from '../../sql/config/validate-config.js';
import { orderGroupsByDependency, ruleGroupDependencies } from '../../sql/rules/rule-dependencies.js';
import { SECRET_ENV, VALID_FILES, writeConfigDir } from './config-fixture.js';

async function check(groups: unknown[]): Promise<{ problems: ConfigProblem[]; keys: string[] }> {
  const dir = await writeConfigDir({ ...VALID_FILES, 'model/groups.json': JSON.stringify({ groups }) });
  const result = checkConfig(await loadConfigDir(dir), { env: SECRET_ENV });

  return { problems: result.problems.filter((problem) => problem.kind === 'group'), keys: result.config.groups.map((group) => group.key) };
}

describe('group dependencies', () => {
  it('accepts a rule that reads another group', async () => {
    const { problems, keys } = await check([
      { key: 'vip', type: 'manual' },
      { key: 'high_value', rule: { and: [{ in_group: 'vip' }, { '>': [{ var: 'ltv' }, 150] }] } },
    ]);

    expect(problems).toEqual([]);
    expect(keys).toEqual(['vip', 'high_value']);
  });

  it('rejects a rule that reads an unknown group', async () => {
    const { problems } = await check([{ key: 'high_value', rule: { or: [false, { in_group: 'ghost' }] } }]);

    expect(problems).toEqual([
      expect.objectContaining({ kind: 'group', key: 'high_value', field: 'rule.or[1].in_group', code: 'CDP_RULE_UNKNOWN_GROUP' }),
    ]);
  });

  it('rejects a cycle between groups and names its groups', async () => {
    const { problems, keys } = await check([
      { key: 'a', rule: { in_group: 'b' } },
      { key: 'b', rule: { and: [true, { in_group: 'c' }] } },
      { key: 'c', rule: { '!': { in_group: 'a' } } },
      { key: 'd', rule: { in_group: 'a' } },
    ]);

    expect(problems).toEqual([expect.objectContaining({ kind: 'group', key: 'a', field: 'rule.in_group', code: 'CDP_RULE_GROUP_CYCLE' })]);
    expect(problems[0].message).toContain('b');
    expect(problems[0].message).toContain('c');
    expect(keys).toEqual(['d']);
  });

  it('rejects a group that reads itself', async () => {
    const { problems } = await check([{ key: 'a', rule: { '!': [{ in_group: 'a' }] } }]);

    expect(problems).toEqual([expect.objectContaining({ key: 'a', field: 'rule.![0].in_group', code: 'CDP_RULE_GROUP_CYCLE' })]);
  });

  it('lists the groups a rule reads with their paths', () => {
    expect(ruleGroupDependencies({ and: [{ in_group: 'x' }, { '!': { in_group: ['y'] } }, { '==': [{ var: 'a' }, 1] }] })).toEqual([
      { group: 'x', path: 'and[0].in_group' },
      { group: 'y', path: 'and[1].![0].in_group' },
    ]);
    expect(ruleGroupDependencies(null)).toEqual([]);
  });

  it('orders groups after the groups they read', () => {
    const deps = (...keys: string[]) => keys.map((group) => ({ group, path: 'in_group' }));
    const order = orderGroupsByDependency(
      new Map([
        ['top', deps('mid', 'base')],
        ['mid', deps('base', 'unknown')],
        ['base', []],
        ['alone', []],
      ]),
    );

    expect(order).toEqual(['base', 'mid', 'top', 'alone']);
  });

  it('throws a cycle error with the groups of the cycle', () => {
    let error: unknown;
    try {
      orderGroupsByDependency(new Map([['a', [{ group: 'b', path: 'in_group' }]], ['b', [{ group: 'a', path: 'or[0].in_group' }]]]));
    } catch (err) {
      error = err;
    }

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CDP_RULE_GROUP_CYCLE');
    expect((error as ConfigError).details).toEqual({ group: 'a', path: 'in_group', groups: ['a', 'b', 'a'] });
  });
});
