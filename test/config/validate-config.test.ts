// Covers loading and validating config folders: every kind of bad input and its reported location.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.js';
import type { ConfigProblem } from '../../sql/config/config-types.js';
import { loadConfigDir } from '../../sql/config/load-config-dir.js';
import { checkConfig, validateConfig } from '../../sql/config/validate-config.js';
import { EVENT_FILES, SECRET_ENV, VALID_FILES, WRITE_KEY_ENV, writeConfigDir } from './config-fixture.js';

async function problemsOf(changes: Record<string, string | undefined>, requireSecretEnvs = true): Promise<ConfigProblem[]> {
  const dir = await writeConfigDir({ ...VALID_FILES, ...changes });

  return checkConfig(await loadConfigDir(dir), { env: SECRET_ENV, requireSecretEnvs }).problems;
}

function replaced(file: string, from: string, to: string): Record<string, string> {
  const text = VALID_FILES[file];
  if (!text.includes(from)) {
    throw new Error(`Fixture ${file} has no "${from}"`);
  }

  return { [file]: text.replace(from, to) };
}

describe('validateConfig', () => {
  it('accepts the example folder and builds its desired state', async () => {
    const dir = await writeConfigDir(VALID_FILES);
    const { config, warnings } = validateConfig(await loadConfigDir(dir), { env: SECRET_ENV });

    expect(warnings).toEqual([]);
    expect(config.apps.map((app) => app.key)).toEqual(['warehouse', 'crm_db', 'files']);
    expect(config.apps[0].options).not.toHaveProperty('password');
    expect(config.apps[0].secretEnvs).toEqual({ password: 'WAREHOUSE_PASSWORD' });
    expect(config.sources[0].schedule).toEqual({ intervalMs: 600_000 });
    expect(config.sources[1].stream.path).toBe(`${dir}/data/leads.csv`);
    expect(config.groups.map((group) => [group.key, group.type])).toEqual([
      ['high_value', 'calculated'],
      ['vip', 'manual'],
    ]);
  });

  it('rejects a literal secret', async () => {
    const problems = await problemsOf(replaced('apps.yml', 'password: { env: WAREHOUSE_PASSWORD }', 'password: hunter2'));

    expect(problems).toEqual([expect.objectContaining({ file: 'apps.yml', kind: 'app', key: 'warehouse', field: 'options.password', code: 'CDP_CONFIG_LITERAL_SECRET' })]);
  });

  it('reports an unset secret variable as a problem, or as a warning when secrets are optional', async () => {
    const dir = await writeConfigDir(VALID_FILES);
    const loaded = await loadConfigDir(dir);
    const strict = checkConfig(loaded, { env: {} });
    const lenient = checkConfig(loaded, { env: {}, requireSecretEnvs: false });

    const expected = expect.objectContaining({ kind: 'app', key: 'warehouse', field: 'options.password', code: 'CDP_SECRET_ENV_MISSING' });
    expect(strict.problems).toEqual([expected]);
    expect(lenient.problems).toEqual([]);
    expect(lenient.warnings).toEqual([expected]);
  });

  it('rejects a source naming an unknown app', async () => {
    const problems = await problemsOf(replaced('sources.yml', 'app: warehouse', 'app: nowhere'));

    expect(problems).toEqual([expect.objectContaining({ file: 'sources.yml', kind: 'source', key: 'customers', field: 'app', code: 'CDP_CONFIG_UNKNOWN_REFERENCE' })]);
  });

  it('rejects a group rule that reads an unknown property', async () => {
    const problems = await problemsOf({
      'model/groups.json': JSON.stringify({ groups: [{ key: 'high_value', rule: { '>': [{ var: 'lifetime' }, 1] } }, { key: 'vip', type: 'manual' }] }),
    });

    expect(problems).toEqual([expect.objectContaining({ file: 'model/groups.json', kind: 'group', key: 'high_value', code: 'CDP_RULE_UNKNOWN_PROPERTY' })]);
    expect(problems[0].field).toMatch(/^rule/);
  });

  it('rejects a key defined twice, naming the second file', async () => {
    const problems = await problemsOf({ 'more.yml': 'properties:\n  - key: email\n    type: string\n' });

    expect(problems).toEqual([expect.objectContaining({ file: 'more.yml', kind: 'property', key: 'email', field: 'key', code: 'CDP_CONFIG_DUPLICATE_KEY' })]);
  });

  it('reports bad YAML with its line', async () => {
    const problems = await problemsOf({ 'broken.yml': 'groups:\n  - key: a\n    rule: { ">": [1, \n  - key: b: c\n' });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: 'broken.yml', kind: '', code: 'CDP_CONFIG_PARSE_ERROR' });
    expect(problems[0].line).toBeGreaterThan(1);
  });

  it('reports bad JSON with its line', async () => {
    const problems = await problemsOf({ 'broken.json': '{\n  "groups": [\n    { "key": "a", }\n  ]\n}' });

    expect(problems).toEqual([expect.objectContaining({ file: 'broken.json', code: 'CDP_CONFIG_PARSE_ERROR', line: 3 })]);
  });

  it('rejects a cron expression that does not parse', async () => {
    const problems = await problemsOf(replaced('sources.yml', 'cron: "*/5 * * * *"', 'cron: "61 * * * *"'));

    expect(problems).toEqual([expect.objectContaining({ file: 'sources.yml', kind: 'source', key: 'leads', field: 'schedule.cron', code: 'CDP_CONFIG_INVALID_SCHEDULE' })]);
  });

  it('rejects an interval without a unit', async () => {
    const problems = await problemsOf(replaced('sources.yml', 'every: 10m', 'every: "10"'));

    expect(problems).toEqual([expect.objectContaining({ kind: 'source', key: 'customers', field: 'schedule.every', code: 'CDP_CONFIG_SCHEMA' })]);
  });

  it('rejects a query placeholder naming an unknown property', async () => {
    const problems = await problemsOf(replaced('model/properties.yml', '{{profile.customer_id}}', '{{profile.customer_number}}'));

    expect(problems).toEqual([expect.objectContaining({ file: 'model/properties.yml', kind: 'property', key: 'country', field: 'query', code: 'CDP_CONFIG_UNKNOWN_REFERENCE' })]);
  });

  it('rejects a property query or source query that is not a SELECT or WITH', async () => {
    const deleting = '"/* hydrate */ DELETE FROM victim WHERE id = {{profile.customer_id}} RETURNING name"';
    const problems = await problemsOf({
      ...replaced('model/properties.yml', '"SELECT country FROM addresses WHERE customer_id = {{profile.customer_id}}"', deleting),
      ...replaced('sources.yml', 'table: customers', 'query: "UPDATE customers SET active = 0"'),
    });

    expect(problems).toEqual([
      expect.objectContaining({ kind: 'source', key: 'customers', field: 'query', code: 'CDP_CONFIG_QUERY_NOT_SELECT' }),
      expect.objectContaining({ kind: 'property', key: 'country', field: 'query', code: 'CDP_CONFIG_QUERY_NOT_SELECT' }),
    ]);
  });

  it('accepts queries starting with WITH or SELECT after comments and whitespace', async () => {
    const withQuery = '"-- the country\\n  WITH a AS (SELECT country FROM addresses WHERE customer_id = {{profile.customer_id}}) SELECT country FROM a"';
    const problems = await problemsOf(replaced('model/properties.yml', '"SELECT country FROM addresses WHERE customer_id = {{profile.customer_id}}"', withQuery));

    expect(problems).toEqual([]);
  });

  it('rejects hostile keys by the key pattern', async () => {
    const problems = await problemsOf({ 'hostile.json': JSON.stringify({ properties: [{ key: 'x"; drop table roster_core.profiles; --', type: 'string' }], groups: [{ key: "g'); drop", type: 'manual' }] }) });

    expect(problems).toEqual([
      expect.objectContaining({ file: 'hostile.json', kind: 'property', key: 'x"; drop table roster_core.profiles; --', field: 'key', code: 'CDP_CONFIG_SCHEMA' }),
      expect.objectContaining({ file: 'hostile.json', kind: 'group', key: "g'); drop", field: 'key', code: 'CDP_CONFIG_SCHEMA' }),
    ]);
  });

  it('rejects a reserved property key', async () => {
    const problems = await problemsOf({ 'reserved.yml': 'properties:\n  - key: revision\n    type: integer\n' });

    expect(problems).toEqual([expect.objectContaining({ kind: 'property', key: 'revision', field: 'key', code: 'CDP_CONFIG_RESERVED_KEY' })]);
  });

  it('rejects an identity property that is not unique', async () => {
    const problems = await problemsOf(replaced('sources.yml', 'property: customer_id', 'property: first_name'));

    expect(problems).toEqual([expect.objectContaining({ kind: 'source', key: 'customers', field: 'identity.property', code: 'CDP_CONFIG_IDENTITY_NOT_UNIQUE' })]);
  });

  it('rejects incremental reads from a connector without that sync mode', async () => {
    const problems = await problemsOf(replaced('sources.yml', 'createsProfiles: false', 'createsProfiles: false\n    incremental: { column: at, tieBreaker: id }'));

    expect(problems).toEqual([expect.objectContaining({ kind: 'source', key: 'leads', field: 'incremental', code: 'CDP_CONFIG_UNSUPPORTED' })]);
  });

  it('rejects connector options that fail the connector schema', async () => {
    const problems = await problemsOf(replaced('destinations.yml', 'options: { table: crm_contacts }', 'options: { tabel: crm_contacts }'));

    expect(problems.map((problem) => [problem.kind, problem.key, problem.code])).toContainEqual(['destination', 'crm', 'CDP_CONFIG_SCHEMA']);
  });

  it('rejects a mapping to an unknown property and a followed group that does not exist', async () => {
    const text = VALID_FILES['destinations.yml'].replace('[high_value, vip]', '[high_value, vips]').replace('first_name: first_name', 'mail: e_mail');
    const problems = await problemsOf({ 'destinations.yml': text });

    expect(problems).toEqual([
      expect.objectContaining({ kind: 'destination', key: 'crm', field: 'groups.1', code: 'CDP_CONFIG_UNKNOWN_REFERENCE' }),
      expect.objectContaining({ kind: 'destination', key: 'crm', field: 'mapping.mail', code: 'CDP_CONFIG_UNKNOWN_REFERENCE' }),
    ]);
  });

  it('rejects a property with two ways of fetching its value', async () => {
    const problems = await problemsOf(replaced('model/properties.yml', 'column: first_name', 'column: first_name\n    query: "SELECT 1"'));

    expect(problems).toEqual([expect.objectContaining({ kind: 'property', key: 'first_name', field: 'query', code: 'CDP_CONFIG_SCHEMA' })]);
  });

  it('raises one CDP_CONFIG_INVALID error carrying every problem', async () => {
    const dir = await writeConfigDir({
      ...VALID_FILES,
      ...replaced('apps.yml', 'password: { env: WAREHOUSE_PASSWORD }', 'password: hunter2'),
      'broken.yml': 'apps: [\n',
      'unknown.yml': 'widgets: []\n',
    });
    const loaded = await loadConfigDir(dir);

    let caught: unknown;
    try {
      validateConfig(loaded, { env: SECRET_ENV });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).code).toBe('CDP_CONFIG_INVALID');
    const codes = ((caught as ConfigError).details.problems as ConfigProblem[]).map((problem) => `${problem.file} ${problem.code}`);
    expect(codes.sort()).toEqual(['apps.yml CDP_CONFIG_LITERAL_SECRET', 'broken.yml CDP_CONFIG_PARSE_ERROR', 'unknown.yml CDP_CONFIG_SCHEMA']);
  });

  describe('events, write keys and event properties', () => {
    async function eventProblems(changes: Record<string, string | undefined>): Promise<ConfigProblem[]> {
      const dir = await writeConfigDir({ ...VALID_FILES, ...EVENT_FILES, ...changes });

      return checkConfig(await loadConfigDir(dir), { env: WRITE_KEY_ENV }).problems;
    }

    function eventsReplaced(from: string, to: string): Record<string, string> {
      if (!EVENT_FILES['events.yml'].includes(from)) {
        throw new Error(`Fixture events.yml has no "${from}"`);
      }

      return { 'events.yml': EVENT_FILES['events.yml'].replace(from, to) };
    }

    it('builds the events settings, write key hash, event properties and destination events', async () => {
      const dir = await writeConfigDir({ ...VALID_FILES, ...EVENT_FILES });
      const { config } = validateConfig(await loadConfigDir(dir), { env: WRITE_KEY_ENV });

      expect(config.events).toEqual({ file: 'events.yml', userIdProperty: 'customer_id', anonymousIdsPerProfile: 20, retentionDays: 90 });
      expect(config.writeKeys).toEqual([expect.objectContaining({ name: 'site', env: 'SITE_WRITE_KEY', keyPrefix: 'wk_sit' })]);
      expect(config.writeKeys?.[0].keyHash).toMatch(/^[0-9a-f]{64}$/);
      const fetches = Object.fromEntries(config.properties.map((property) => [property.key, property.fetch]));
      expect(fetches.rentals).toEqual({ kind: 'event', name: 'Film Rented', function: 'count' });
      expect(fetches.spend_last_30_days).toEqual({ kind: 'event', name: 'Film Rented', function: 'sum', field: 'properties.amount', days: 30 });
      expect(fetches.last_page_at).toEqual({ kind: 'event', type: 'page', function: 'last', field: 'occurred_at' });
      expect(config.destinations.find((d) => d.key === 'rentals_hook')?.events).toEqual(['Checkout', 'Film Rented']);
    });

    it('defaults the number of anonymous ids per profile to 50', async () => {
      const dir = await writeConfigDir({ ...VALID_FILES, ...EVENT_FILES, ...eventsReplaced('  anonymousIdsPerProfile: 20\n', '') });

      expect(validateConfig(await loadConfigDir(dir), { env: WRITE_KEY_ENV }).config.events?.anonymousIdsPerProfile).toBe(50);
    });

    it('rejects a second events object in another file', async () => {
      const problems = await eventProblems({ 'more.yml': 'events: { userIdProperty: email }' });

      expect(problems).toEqual([expect.objectContaining({ file: 'more.yml', kind: 'events', code: 'CDP_CONFIG_DUPLICATE_KEY' })]);
    });

    it('rejects a userIdProperty that is unknown or not unique', async () => {
      const unknown = await eventProblems(eventsReplaced('userIdProperty: customer_id', 'userIdProperty: nobody'));
      const notUnique = await eventProblems(eventsReplaced('userIdProperty: customer_id', 'userIdProperty: first_name'));

      expect(unknown).toEqual([expect.objectContaining({ kind: 'events', field: 'userIdProperty', code: 'CDP_CONFIG_UNKNOWN_REFERENCE' })]);
      expect(notUnique).toEqual([expect.objectContaining({ kind: 'events', field: 'userIdProperty', code: 'CDP_CONFIG_IDENTITY_NOT_UNIQUE' })]);
    });

    it('rejects an unknown field of the events object', async () => {
      const problems = await eventProblems(eventsReplaced('retentionDays: 90', 'retentionDayz: 90'));

      expect(problems).toEqual([expect.objectContaining({ file: 'events.yml', kind: 'events', field: 'retentionDayz', code: 'CDP_CONFIG_SCHEMA' })]);
    });

    it('rejects a literal write key and reports an unset one', async () => {
      const literal = await eventProblems(eventsReplaced('key: { env: SITE_WRITE_KEY }', 'key: wk_plain_text'));
      const dir = await writeConfigDir({ ...VALID_FILES, ...EVENT_FILES });
      const unset = checkConfig(await loadConfigDir(dir), { env: SECRET_ENV });

      expect(literal).toEqual([expect.objectContaining({ kind: 'writeKey', key: 'site', field: 'key', code: 'CDP_CONFIG_LITERAL_SECRET' })]);
      expect(unset.problems).toEqual([expect.objectContaining({ kind: 'writeKey', key: 'site', field: 'key', code: 'CDP_SECRET_ENV_MISSING' })]);
    });

    it('rejects an event field path with characters other than letters, digits, _ and dots', async () => {
      const problems = await eventProblems(eventsReplaced('field: properties.amount', "field: \"properties.amount'); DROP TABLE x; --\""));

      expect(problems).toEqual([expect.objectContaining({ kind: 'property', key: 'spend_last_30_days', field: 'event.field', code: 'CDP_CONFIG_SCHEMA' })]);
    });

    it('rejects a function that does not fit the property type', async () => {
      const sumOfText = await eventProblems(eventsReplaced('key: spend_last_30_days\n    type: float', 'key: spend_last_30_days\n    type: string'));
      const countAsFloat = await eventProblems(eventsReplaced('key: rentals\n    type: integer', 'key: rentals\n    type: float'));

      expect(sumOfText).toEqual([expect.objectContaining({ key: 'spend_last_30_days', field: 'type', code: 'CDP_CONFIG_SCHEMA' })]);
      expect(countAsFloat).toEqual([expect.objectContaining({ key: 'rentals', field: 'type', code: 'CDP_CONFIG_SCHEMA' })]);
    });

    it('rejects an event property with a source, without a field for sum, or a track event without a name', async () => {
      const withSource = await eventProblems(eventsReplaced('key: rentals\n    type: integer', 'key: rentals\n    type: integer\n    source: customers'));
      const noField = await eventProblems(eventsReplaced(', field: properties.amount', ''));
      const noName = await eventProblems(eventsReplaced('{ name: Film Rented, function: count }', '{ function: count }'));

      expect(withSource).toEqual([expect.objectContaining({ key: 'rentals', field: 'source', code: 'CDP_CONFIG_SCHEMA' })]);
      expect(noField).toEqual([expect.objectContaining({ key: 'spend_last_30_days', field: 'event.field', code: 'CDP_CONFIG_SCHEMA' })]);
      expect(noName).toEqual([expect.objectContaining({ key: 'rentals', field: 'event.name', code: 'CDP_CONFIG_SCHEMA' })]);
    });

    it('rejects destination events on a connector that cannot receive events', async () => {
      const problems = await eventProblems({ 'destinations.yml': VALID_FILES['destinations.yml'].replace('groups: [high_value, vip]', 'groups: [high_value, vip]\n    events: [Film Rented]') });

      expect(problems).toEqual([expect.objectContaining({ kind: 'destination', key: 'crm', field: 'events', code: 'CDP_CONFIG_UNSUPPORTED' })]);
    });
  });
});
