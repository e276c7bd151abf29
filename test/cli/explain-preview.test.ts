// Covers `roster explain` and `roster preview`: printed output and exit codes, run as the real command.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateMembershipsForProfiles } from '../../sql/group-membership.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { applyHighValueRule, seedProfiles } from '../sql/group-preview-fixture.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../../bin/roster.js');

describe('roster explain and roster preview', () => {
  let db: TestDatabase;
  let ids: number[];

  async function roster(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
        env: { ...process.env, DATABASE_URL: db.url, ROSTER_LOG_LEVEL: 'silent' },
      });

      return { code: 0, stdout, stderr };
    } catch (err) {
      const failed = err as { code: number; stdout: string; stderr: string };

      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    await applyHighValueRule(db.pool, { and: [{ '>': [{ var: 'ltv' }, 100] }, { '==': [{ var: 'country' }, 'Canada'] }] });
    ids = await seedProfiles(db.pool, [
      { email: 'ada@example.com', ltv: 200, country: 'Canada' },
      { email: 'bob@example.com', ltv: 80 },
    ]);
    await updateMembershipsForProfiles(db.pool, ids, 'data_change');
  });

  afterAll(async () => {
    await db.drop();
  });

  it('prints the rule tree with marks and values for a profile named by a unique value', async () => {
    const { code, stdout } = await roster('explain', 'high_value', 'email=Bob@Example.com');

    expect(code).toBe(0);
    expect(stdout.split('\n').slice(0, 5)).toEqual([
      `Group high_value: profile ${ids[1]} is not a member`,
      'Rule fails on the current values',
      '✗ and',
      '  ✗ {">":[{"var":"ltv"},100]}  (ltv = 80)',
      '  ✗ {"==":[{"var":"country"},"Canada"]}  (country = missing)',
    ]);
  });

  it('explains by profile id as JSON', async () => {
    const { code, stdout } = await roster('explain', 'high_value', '--profile', String(ids[0]), '--json');

    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ isMember: true, passes: true, tree: { operator: 'and', passed: true } });
  });

  it('exits non-zero with a code for an unknown group or profile', async () => {
    const group = await roster('explain', 'nope', '--profile', String(ids[0]));
    expect(group.code).not.toBe(0);
    expect(group.stderr).toContain('CDP_GROUP_NOT_FOUND');

    const profile = await roster('explain', 'high_value', 'email=nobody@example.com');
    expect(profile.code).not.toBe(0);
    expect(profile.stderr).toContain('CDP_PROFILE_NOT_FOUND');
  });

  it('previews a rule from an option or a file and writes nothing', async () => {
    const rule = JSON.stringify({ '>': [{ var: 'ltv' }, 50] });
    const inline = await roster('preview', 'high_value', '--rule', rule);

    expect(inline.code).toBe(0);
    expect(inline.stdout).toContain('Group high_value: 1 members now, 2 with the new rule');
    expect(inline.stdout).toContain(`profile ${ids[1]}  ltv=80`);
    expect(inline.stdout).toContain('Destination ads: 1 creates, 0 updates, 0 removes');

    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-preview-'));
    await fs.writeFile(path.join(dir, 'rule.json'), rule);
    const fromFile = await roster('preview', 'high_value', '--file', path.join(dir, 'rule.json'), '--json');
    await fs.rm(dir, { recursive: true, force: true });
    expect(fromFile.code).toBe(0);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({ entering: 1, leaving: 0 });
    const { rows } = await db.pool.query<{ count: number }>(`SELECT count(*)::int AS count FROM roster.group_members WHERE group_key = 'high_value'`);
    expect(rows[0].count).toBe(1);
  });

  it('exits non-zero with the rule code for an invalid rule', async () => {
    const unknown = await roster('preview', 'high_value', '--rule', '{"==": [{"var": "nope"}, 1]}');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('CDP_RULE_UNKNOWN_PROPERTY');

    const notJson = await roster('preview', 'high_value', '--rule', '{oops');
    expect(notJson.code).not.toBe(0);
    expect(notJson.stderr).toContain('CDP_CLI_INVALID_ARGUMENT');
  });
});
