import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { CronExpressionParser } from 'cron-parser';
import { checkAgainstSchema, getConnector } from '../../connectors/index.js';
import type { Connector, ConnectorRole } from '../../connectors/sdk/index.js';
import { readSecretEnv } from '../../lib/config.js';
import { ConfigError, isAppError } from '../../lib/errors.js';
import type { PropertyDef, PropertyType } from '../property-types.js';
import { compileRule } from '../rules/compile-rule.js';
import { orderGroupsByDependency, ruleGroupDependencies } from '../rules/rule-dependencies.js';
import { hashWriteKey, writeKeyPrefix } from '../write-keys.js';
import { CONFIG_DOCUMENT_SCHEMA, DEFAULT_ANONYMOUS_IDS_PER_PROFILE, RESERVED_PROPERTY_KEYS } from './config-schema.js';
import {
  CONFIG_KINDS,
  LIST_OF_KIND,
  type AppConfig,
  type ConfigKind,
  type ConfigProblem,
  type DesiredConfig,
  type DestinationConfig,
  type EventFetchConfig,
  type EventsConfig,
  type GroupConfig,
  type LoadedConfig,
  type PropertyConfig,
  type PropertyFetchConfig,
  type SourceConfig,
  type WriteKeyConfig,
} from './config-types.js';

export interface ValidateConfigOptions {
  /**
   * When false, a secret whose environment variable is unset is a warning, not a problem, so
   * `roster validate` works on a machine without the secrets. Default true.
   */
  requireSecretEnvs?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface ConfigCheck {
  /** The desired state; only meaningful when `problems` is empty. */
  config: DesiredConfig;
  problems: ConfigProblem[];
  warnings: ConfigProblem[];
}

type Raw = Record<string, any>;

interface Entry {
  file: string;
  absolutePath: string;
  kind: ConfigKind;
  key: string;
  raw: Raw;
  /** False when the JSON Schema already rejected it: later checks skip it to avoid noise. */
  isShapeValid: boolean;
}

/** The top-level `events` object or a write key: settings rather than keyed objects. */
interface SettingEntry {
  file: string;
  kind: 'events' | 'writeKey';
  key: string;
  raw: Raw;
  isShapeValid: boolean;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PLACEHOLDER = /\{\{([^}]*)\}\}/g;
const PLACEHOLDER_BODY = /^\s*profile\.([a-z][a-z0-9_]*)\s*$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Stands in for a secret while the rest of an app's options are checked against its schema. */
function secretStandIn(schema: Raw, field: string): unknown {
  const type = isObject(schema.properties) && isObject(schema.properties[field]) ? schema.properties[field].type : 'string';
  if (type === 'object') return {};
  if (type === 'array') return [];
  if (type === 'integer' || type === 'number') return 1;

  return 'secret-from-env';
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateDocument = ajv.compile(CONFIG_DOCUMENT_SCHEMA);

const KIND_OF_LIST = Object.fromEntries(CONFIG_KINDS.map((kind) => [LIST_OF_KIND[kind], kind])) as Record<string, ConfigKind>;

function isObject(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function schemaField(error: ErrorObject, rest: string[]): string {
  const parts = [...rest];
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required' && typeof params.missingProperty === 'string') {
    parts.push(params.missingProperty);
  } else if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    parts.push(params.additionalProperty);
  }

  return parts.join('.');
}

function schemaMessage(error: ErrorObject, field: string): string {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') {
    return `Field ${field} is not allowed`;
  }
  if (error.keyword === 'required') {
    return `Field ${field} is required`;
  }
  if (error.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    return `Field ${field} must be one of ${params.allowedValues.join(', ')}`;
  }
  if (error.keyword === 'pattern') {
    return `Field ${field} must match ${String(params.pattern)}`;
  }

  return `Field ${field || '(document)'} ${error.message ?? 'is invalid'}`;
}

class ProblemList {
  readonly problems: ConfigProblem[] = [];
  readonly warnings: ConfigProblem[] = [];

  add(entry: Pick<ConfigProblem, 'file' | 'kind' | 'key'>, field: string, code: string, message: string): void {
    this.problems.push({ file: entry.file, kind: entry.kind, key: entry.key, field, code, message });
  }

  warn(entry: Pick<ConfigProblem, 'file' | 'kind' | 'key'>, field: string, code: string, message: string): void {
    this.warnings.push({ file: entry.file, kind: entry.kind, key: entry.key, field, code, message });
  }
}

/** Runs the JSON Schema over every document and lists the objects of each kind. */
function collectEntries(loaded: LoadedConfig, out: ProblemList, settings: SettingEntry[]): Entry[] {
  const entries: Entry[] = [];
  for (const doc of loaded.documents) {
    let isEventsValid = true;
    const invalidItems = new Set<string>();
    if (!validateDocument(doc.data)) {
      for (const error of validateDocument.errors ?? []) {
        // `if` only says that a `then` failed; the `then` error itself is reported.
        if (error.keyword === 'if') {
          continue;
        }
        const [list, index, ...rest] = error.instancePath.split('/').slice(1);
        if (list === 'events') {
          const field = schemaField(error, [index, ...rest].filter((part) => part !== undefined));
          isEventsValid = false;
          out.add({ file: doc.file, kind: 'events', key: '' }, field, 'CDP_CONFIG_SCHEMA', schemaMessage(error, field));
          continue;
        }
        if (list === 'writeKeys' && index !== undefined) {
          const item = ((doc.data as Raw).writeKeys as unknown[])[Number(index)];
          const key = isObject(item) && typeof item.name === 'string' ? item.name : '';
          const field = schemaField(error, rest);
          invalidItems.add(`writeKeys/${index}`);
          out.add({ file: doc.file, kind: 'writeKey', key }, field, 'CDP_CONFIG_SCHEMA', schemaMessage(error, field));
          continue;
        }
        const kind = list === undefined ? '' : (KIND_OF_LIST[list] ?? '');
        const item = kind && index !== undefined && isObject(doc.data) ? (doc.data[list] as unknown[])[Number(index)] : undefined;
        const key = isObject(item) && typeof item.key === 'string' ? item.key : '';
        const field = index === undefined ? schemaField(error, list ? [list] : []) : schemaField(error, rest);
        if (kind && index !== undefined) {
          invalidItems.add(`${list}/${index}`);
        }
        out.add({ file: doc.file, kind, key }, field, 'CDP_CONFIG_SCHEMA', schemaMessage(error, field));
      }
    }
    if (!isObject(doc.data)) {
      continue;
    }
    if (isObject(doc.data.events)) {
      settings.push({ file: doc.file, kind: 'events', key: '', raw: doc.data.events, isShapeValid: isEventsValid });
    }
    if (Array.isArray(doc.data.writeKeys)) {
      doc.data.writeKeys.forEach((raw: unknown, index: number) => {
        if (isObject(raw)) {
          const key = typeof raw.name === 'string' ? raw.name : '';
          settings.push({ file: doc.file, kind: 'writeKey', key, raw, isShapeValid: !invalidItems.has(`writeKeys/${index}`) });
        }
      });
    }
    for (const kind of CONFIG_KINDS) {
      const list = doc.data[LIST_OF_KIND[kind]];
      if (!Array.isArray(list)) {
        continue;
      }
      list.forEach((raw, index) => {
        if (!isObject(raw)) {
          return;
        }
        entries.push({
          file: doc.file,
          absolutePath: doc.absolutePath,
          kind,
          key: typeof raw.key === 'string' ? raw.key : '',
          raw,
          isShapeValid: !invalidItems.has(`${LIST_OF_KIND[kind]}/${index}`),
        });
      });
    }
  }

  return entries;
}

/** Keys per kind; a second object with the same key is a problem and is left out. */
function indexByKey(entries: Entry[], out: ProblemList): Record<ConfigKind, Map<string, Entry>> {
  const byKind = Object.fromEntries(CONFIG_KINDS.map((kind) => [kind, new Map<string, Entry>()])) as Record<ConfigKind, Map<string, Entry>>;
  for (const entry of entries) {
    if (!entry.key) {
      continue;
    }
    const first = byKind[entry.kind].get(entry.key);
    if (first) {
      out.add(entry, 'key', 'CDP_CONFIG_DUPLICATE_KEY', `The ${entry.kind} key ${entry.key} is already defined in ${first.file}`);
      entry.isShapeValid = false;
      continue;
    }
    byKind[entry.kind].set(entry.key, entry);
  }

  return byKind;
}

function findConnector(type: unknown, role?: ConnectorRole): { connector?: Connector; error?: { code: string; message: string } } {
  try {
    return { connector: getConnector(String(type), role) };
  } catch (err) {
    if (isAppError(err)) {
      return { error: { code: err.code, message: err.message } };
    }
    throw err;
  }
}

function checkApp(entry: Entry, options: ValidateConfigOptions, out: ProblemList): AppConfig | undefined {
  const { raw } = entry;
  const { connector, error } = findConnector(raw.type);
  if (!connector) {
    out.add(entry, 'type', error!.code, error!.message);
    return undefined;
  }

  const given: Raw = { ...(raw.options ?? {}) };
  const secretEnvs: Record<string, string> = {};
  const standIns: Raw = { ...given };
  let isValid = true;
  for (const field of connector.spec.secretFields) {
    const value = given[field];
    delete given[field];
    if (value === undefined) {
      continue;
    }
    standIns[field] = secretStandIn(connector.spec.configSchema, field);
    const isEnvRef = isObject(value) && Object.keys(value).length === 1 && typeof value.env === 'string';
    if (!isEnvRef) {
      isValid = false;
      out.add(entry, `options.${field}`, 'CDP_CONFIG_LITERAL_SECRET', `Option ${field} of app ${entry.key} is a secret and must be written as {env: NAME}`);
      continue;
    }
    if (!ENV_NAME.test(value.env)) {
      isValid = false;
      out.add(entry, `options.${field}.env`, 'CDP_CONFIG_SCHEMA', `Option ${field} of app ${entry.key} names an invalid environment variable`);
      continue;
    }
    secretEnvs[field] = value.env;
    try {
      readSecretEnv(value.env, options.env);
    } catch (err) {
      const code = isAppError(err) ? err.code : 'CDP_SECRET_ENV_MISSING';
      const message = `Environment variable ${value.env} for option ${field} of app ${entry.key} is not set`;
      if (options.requireSecretEnvs === false) {
        out.warn(entry, `options.${field}`, code, message);
      } else {
        isValid = false;
        out.add(entry, `options.${field}`, code, message);
      }
    }
  }
  for (const problem of checkAgainstSchema(connector.spec.configSchema, standIns)) {
    isValid = false;
    out.add(entry, `options${problem.field ? `.${problem.field}` : ''}`, 'CDP_CONFIG_SCHEMA', `Option ${problem.field || '(options)'} of app ${entry.key} ${problem.message}`);
  }

  return isValid ? { file: entry.file, key: entry.key, type: connector.spec.name, options: given, secretEnvs } : undefined;
}

/** The connector of an app entry in the wanted role, reporting a missing app or role. */
function connectorOfApp(entry: Entry, apps: Map<string, Entry>, role: ConnectorRole, out: ProblemList): Connector | undefined {
  const app = apps.get(entry.raw.app);
  if (!app) {
    out.add(entry, 'app', 'CDP_CONFIG_UNKNOWN_REFERENCE', `The ${entry.kind} ${entry.key} names app ${entry.raw.app}, which is not defined`);
    return undefined;
  }
  if (!app.isShapeValid) {
    return undefined;
  }
  const { connector, error } = findConnector(app.raw.type, role);
  // An unknown connector type is reported once, on the app itself.
  if (error && error.code !== 'CDP_CONNECTOR_UNKNOWN') {
    out.add(entry, 'app', error.code, `App ${app.key} (${String(app.raw.type)}) cannot be used as a ${role}`);
  }

  return connector;
}

function parseSchedule(entry: Entry, out: ProblemList): SourceConfig['schedule'] | false {
  const schedule = entry.raw.schedule as Raw | undefined;
  if (!schedule) {
    return null;
  }
  if (typeof schedule.every === 'string') {
    const unit = schedule.every.slice(-1);

    return { intervalMs: Number(schedule.every.slice(0, -1)) * UNIT_MS[unit] };
  }
  try {
    CronExpressionParser.parse(schedule.cron);
  } catch (err) {
    out.add(entry, 'schedule.cron', 'CDP_CONFIG_INVALID_SCHEDULE', `Schedule of source ${entry.key} is not a valid cron expression: ${(err as Error).message}`);
    return false;
  }

  return { cron: schedule.cron };
}

function checkSource(entry: Entry, index: Record<ConfigKind, Map<string, Entry>>, out: ProblemList): SourceConfig | undefined {
  const { raw } = entry;
  const problemsBefore = out.problems.length;
  const connector = connectorOfApp(entry, index.app, 'source', out);

  const streamKeys = (['table', 'query', 'path'] as const).filter((name) => raw[name] !== undefined);
  if (streamKeys.length !== 1) {
    out.add(entry, streamKeys[1] ?? 'table', 'CDP_CONFIG_SCHEMA', `Source ${entry.key} needs exactly one of table, query and path`);
  }
  if (typeof raw.query === 'string') {
    checkQueryIsSelect(entry, raw.query, out);
  }
  const stream: SourceConfig['stream'] = {};
  for (const name of streamKeys) {
    stream[name] = name === 'path' ? path.resolve(path.dirname(entry.absolutePath), raw.path) : raw[name];
  }
  if (connector?.spec.sourceOptionsSchema) {
    const extra: Raw = raw.options ?? {};
    for (const problem of checkAgainstSchema(connector.spec.sourceOptionsSchema, { ...structuredClone(extra), ...stream })) {
      const field = problem.field in extra ? `options.${problem.field}` : problem.field;
      out.add(entry, field, 'CDP_CONFIG_SCHEMA', `Field ${problem.field || '(source)'} of source ${entry.key} ${problem.message}`);
    }
  }
  if (raw.incremental && connector && !connector.spec.syncModes.includes('incremental')) {
    out.add(entry, 'incremental', 'CDP_CONFIG_UNSUPPORTED', `App type ${connector.spec.name} of source ${entry.key} cannot read incrementally`);
  }

  const identity = index.property.get(raw.identity.property);
  if (!identity) {
    out.add(entry, 'identity.property', 'CDP_CONFIG_UNKNOWN_REFERENCE', `Source ${entry.key} is identified by property ${raw.identity.property}, which is not defined`);
  } else if (identity.isShapeValid && identity.raw.unique !== true) {
    out.add(entry, 'identity.property', 'CDP_CONFIG_IDENTITY_NOT_UNIQUE', `Source ${entry.key} is identified by property ${identity.key}, which is not unique`);
  }

  const schedule = parseSchedule(entry, out);
  if (schedule === false || out.problems.length > problemsBefore) {
    return undefined;
  }

  return {
    file: entry.file,
    key: entry.key,
    app: raw.app,
    stream,
    options: raw.options ?? {},
    identity: { column: raw.identity.column, property: raw.identity.property },
    createsProfiles: raw.createsProfiles ?? true,
    incremental: raw.incremental ? { column: raw.incremental.column, tieBreaker: raw.incremental.tieBreaker } : null,
    schedule,
  };
}

/** Leading `--` and block comments and whitespace, then the first word of a statement. */
const FIRST_WORD = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*([a-z]*)/i;

/**
 * A first line of defence only: sources run every statement in a read-only transaction,
 * which is what actually stops a write hidden behind a SELECT (a writing function).
 */
function checkQueryIsSelect(entry: Entry, sql: string, out: ProblemList): void {
  const word = FIRST_WORD.exec(sql)?.[1].toUpperCase();
  if (word !== 'SELECT' && word !== 'WITH') {
    const owner = entry.kind === 'source' ? `source "${entry.key}"` : `property "${entry.key}"`;
    out.add(entry, 'query', 'CDP_CONFIG_QUERY_NOT_SELECT', `Query of ${owner} must start with SELECT or WITH, not "${word || '(nothing)'}"`);
  }
}

function checkQueryPlaceholders(entry: Entry, sql: string, properties: Map<string, Entry>, out: ProblemList): void {
  for (const match of sql.matchAll(PLACEHOLDER)) {
    const body = PLACEHOLDER_BODY.exec(match[1]);
    if (!body) {
      out.add(entry, 'query', 'CDP_CONFIG_SCHEMA', `Query of property ${entry.key} has a placeholder that is not {{profile.<key>}}`);
    } else if (!properties.has(body[1])) {
      out.add(entry, 'query', 'CDP_CONFIG_UNKNOWN_REFERENCE', `Query of property ${entry.key} uses property ${body[1]}, which is not defined`);
    }
  }
}

const NUMERIC_TYPES: PropertyType[] = ['integer', 'float'];

/** The types an event property's function can produce, given the field it reads. */
function typesOfEventFunction(fn: EventFetchConfig['function'], field: string | undefined): PropertyType[] | null {
  if (fn === 'count') return ['integer'];
  if (fn === 'sum') return field === 'occurred_at' ? [] : NUMERIC_TYPES;
  if (fn === 'min' || fn === 'max') return field === 'occurred_at' ? ['date'] : [...NUMERIC_TYPES, 'date'];
  // first and last take the value as it is: any type, cast like any other value.
  return field === 'occurred_at' ? ['date'] : null;
}

/** An `event:` property: computed from the profile's events, so it has no source. */
function checkEventProperty(entry: Entry, otherKinds: string[], out: ProblemList): EventFetchConfig | null {
  const { raw } = entry;
  const event = raw.event as Raw;
  if (raw.source !== undefined) {
    out.add(entry, 'source', 'CDP_CONFIG_SCHEMA', `Property ${entry.key} is computed from events and cannot have a source`);
  }
  if (otherKinds.length > 0) {
    out.add(entry, otherKinds[0], 'CDP_CONFIG_SCHEMA', `Property ${entry.key} needs exactly one of column, aggregate, query and event`);
  }
  if (raw.unique === true || raw.list === true) {
    out.add(entry, raw.unique === true ? 'unique' : 'list', 'CDP_CONFIG_SCHEMA', `Property ${entry.key} is computed from events and cannot be unique or a list`);
  }
  const type = (event.type ?? 'track') as NonNullable<EventFetchConfig['type']>;
  if (type === 'track' && event.name === undefined) {
    out.add(entry, 'event.name', 'CDP_CONFIG_SCHEMA', `Property ${entry.key} counts track events and needs an event name`);
  }
  const fn = event.function as EventFetchConfig['function'];
  const field = fn === 'count' ? undefined : (event.field as string | undefined);
  if (fn !== 'count' && field === undefined) {
    out.add(entry, 'event.field', 'CDP_CONFIG_SCHEMA', `Property ${entry.key} uses ${fn} and needs a field`);
  }
  const types = typesOfEventFunction(fn, field);
  if (types !== null && !types.includes(raw.type)) {
    out.add(entry, 'type', 'CDP_CONFIG_SCHEMA', `Property ${entry.key} of type ${raw.type} cannot hold the ${fn} of ${field ?? 'events'}`);
  }

  return {
    kind: 'event',
    ...(type === 'track' ? {} : { type }),
    ...(event.name === undefined ? {} : { name: event.name }),
    function: fn,
    ...(field === undefined ? {} : { field }),
    ...(event.days === undefined ? {} : { days: event.days }),
  };
}

function checkProperty(entry: Entry, index: Record<ConfigKind, Map<string, Entry>>, out: ProblemList): PropertyConfig | undefined {
  const { raw } = entry;
  const problemsBefore = out.problems.length;
  if (RESERVED_PROPERTY_KEYS.includes(entry.key)) {
    out.add(entry, 'key', 'CDP_CONFIG_RESERVED_KEY', `Property key ${entry.key} is reserved`);
  }
  if (raw.unique === true && raw.list === true) {
    out.add(entry, 'list', 'CDP_CONFIG_SCHEMA', `Property ${entry.key} cannot be both unique and a list`);
  }

  const fetchKinds = (['column', 'aggregate', 'query'] as const).filter((name) => raw[name] !== undefined);
  let fetch: PropertyFetchConfig | null = null;
  if (raw.event !== undefined) {
    fetch = checkEventProperty(entry, fetchKinds, out);
  } else if (raw.source === undefined) {
    if (fetchKinds.length > 0) {
      out.add(entry, 'source', 'CDP_CONFIG_SCHEMA', `Property ${entry.key} has a ${fetchKinds[0]} but no source`);
    }
  } else if (fetchKinds.length !== 1) {
    out.add(entry, fetchKinds[1] ?? 'column', 'CDP_CONFIG_SCHEMA', `Property ${entry.key} needs exactly one of column, aggregate and query`);
  } else {
    const kind = fetchKinds[0];
    const source = index.source.get(raw.source);
    if (!source) {
      out.add(entry, 'source', 'CDP_CONFIG_UNKNOWN_REFERENCE', `Property ${entry.key} names source ${raw.source}, which is not defined`);
    } else if (source.isShapeValid) {
      const app = index.app.get(source.raw.app);
      const { connector } = app?.isShapeValid ? findConnector(app.raw.type) : {};
      if (connector && !connector.spec.propertyKinds.includes(kind)) {
        out.add(entry, kind, 'CDP_CONFIG_UNSUPPORTED', `App type ${connector.spec.name} of source ${source.key} cannot compute a property by ${kind}`);
      }
    }
    if (kind === 'column') {
      fetch = { kind, column: raw.column };
    } else if (kind === 'aggregate') {
      const { table, matchColumn, function: fn, column, sortColumn } = raw.aggregate;
      fetch = { kind, table, matchColumn, function: fn, ...(column ? { column } : {}), ...(sortColumn ? { sortColumn } : {}) };
    } else {
      checkQueryIsSelect(entry, raw.query, out);
      checkQueryPlaceholders(entry, raw.query, index.property, out);
      fetch = { kind, sql: raw.query };
    }
  }
  if (out.problems.length > problemsBefore) {
    return undefined;
  }

  return {
    file: entry.file,
    key: entry.key,
    type: raw.type as PropertyType,
    unique: raw.unique ?? false,
    list: raw.list ?? false,
    source: raw.source ?? null,
    fetch,
  };
}

/** Property definitions as the rule compiler sees them, before they exist in the database. */
export function propertyDefsOf(properties: Array<Pick<PropertyConfig, 'key' | 'type' | 'unique' | 'list'>>): Map<string, PropertyDef> {
  return new Map(
    properties.map((property, position) => [
      property.key,
      { id: -(position + 1), key: property.key, type: property.type, isUnique: property.unique, isList: property.list, columnName: property.key },
    ]),
  );
}

function checkGroup(entry: Entry, defs: Map<string, PropertyDef>, groupKeys: string[], out: ProblemList): GroupConfig | undefined {
  const { raw } = entry;
  const type = raw.type ?? (raw.rule === undefined ? 'manual' : 'calculated');
  if (type === 'manual') {
    if (raw.rule !== undefined) {
      out.add(entry, 'rule', 'CDP_CONFIG_SCHEMA', `Group ${entry.key} is manual and cannot have a rule`);
      return undefined;
    }

    return { file: entry.file, key: entry.key, type, rule: null };
  }
  if (raw.rule === undefined) {
    out.add(entry, 'rule', 'CDP_CONFIG_SCHEMA', `Group ${entry.key} is calculated and needs a rule`);
    return undefined;
  }
  try {
    compileRule(entry.key, raw.rule, defs, { groupKeys });
  } catch (err) {
    if (!isAppError(err)) {
      throw err;
    }
    const at = typeof err.details.path === 'string' && err.details.path ? `rule.${err.details.path}` : 'rule';
    out.add(entry, at, err.code, err.message);
    return undefined;
  }

  return { file: entry.file, key: entry.key, type, rule: raw.rule };
}

// Groups that read each other through in_group could never settle; each cycle is reported
// once, on the group where it was found, and its groups are left out of the config.
function checkGroupCycles(config: DesiredConfig, entries: Map<string, Entry>, out: ProblemList): void {
  const dependencies = new Map(config.groups.map((group) => [group.key, ruleGroupDependencies(group.rule)]));
  for (;;) {
    try {
      orderGroupsByDependency(dependencies);

      return;
    } catch (err) {
      if (!isAppError(err) || err.code !== 'CDP_RULE_GROUP_CYCLE') {
        throw err;
      }
      const { group, path, groups } = err.details as { group: string; path: string; groups: string[] };
      out.add(entries.get(group)!, `rule.${path}`, err.code, err.message);
      for (const key of groups) {
        dependencies.delete(key);
      }
      config.groups = config.groups.filter((entry) => !groups.includes(entry.key));
    }
  }
}

function checkDestination(entry: Entry, index: Record<ConfigKind, Map<string, Entry>>, out: ProblemList): DestinationConfig | undefined {
  const { raw } = entry;
  const problemsBefore = out.problems.length;
  const connector = connectorOfApp(entry, index.app, 'destination', out);
  const options: Raw = raw.options ?? {};
  if (connector?.spec.destinationOptionsSchema) {
    for (const problem of checkAgainstSchema(connector.spec.destinationOptionsSchema, structuredClone(options))) {
      out.add(entry, `options${problem.field ? `.${problem.field}` : ''}`, 'CDP_CONFIG_SCHEMA', `Option ${problem.field || '(options)'} of destination ${entry.key} ${problem.message}`);
    }
  }
  const groups: string[] = raw.groups ?? [];
  groups.forEach((group, position) => {
    if (!index.group.has(group)) {
      out.add(entry, `groups.${position}`, 'CDP_CONFIG_UNKNOWN_REFERENCE', `Destination ${entry.key} follows group ${group}, which is not defined`);
    }
  });
  const mapping: Record<string, string> = raw.mapping ?? {};
  for (const [field, property] of Object.entries(mapping)) {
    if (!index.property.has(property)) {
      out.add(entry, `mapping.${field}`, 'CDP_CONFIG_UNKNOWN_REFERENCE', `Destination ${entry.key} maps property ${property}, which is not defined`);
    }
  }
  const events = [...new Set<string>(raw.events ?? [])].sort();
  if (events.length > 0 && connector && !connector.spec.eventDelivery) {
    out.add(entry, 'events', 'CDP_CONFIG_UNSUPPORTED', `App type ${connector.spec.name} of destination ${entry.key} cannot receive events`);
  }
  if (out.problems.length > problemsBefore) {
    return undefined;
  }

  return { file: entry.file, key: entry.key, app: raw.app, options, groups: [...new Set(groups)], mapping, events };
}

function checkEvents(settings: SettingEntry[], properties: Map<string, Entry>, out: ProblemList): EventsConfig | null {
  const all = settings.filter((entry) => entry.kind === 'events');
  for (const extra of all.slice(1)) {
    out.add(extra, '', 'CDP_CONFIG_DUPLICATE_KEY', `The events settings are already defined in ${all[0].file}`);
  }
  const entry = all[0];
  if (!entry?.isShapeValid) {
    return null;
  }
  const { raw } = entry;
  const property = properties.get(raw.userIdProperty);
  if (!property) {
    out.add(entry, 'userIdProperty', 'CDP_CONFIG_UNKNOWN_REFERENCE', `Events name profiles by property ${raw.userIdProperty}, which is not defined`);
    return null;
  }
  if (property.isShapeValid && property.raw.unique !== true) {
    out.add(entry, 'userIdProperty', 'CDP_CONFIG_IDENTITY_NOT_UNIQUE', `Events name profiles by property ${property.key}, which is not unique`);
    return null;
  }

  return {
    file: entry.file,
    userIdProperty: raw.userIdProperty,
    anonymousIdsPerProfile: raw.anonymousIdsPerProfile ?? DEFAULT_ANONYMOUS_IDS_PER_PROFILE,
    ...(raw.retentionDays === undefined ? {} : { retentionDays: raw.retentionDays }),
    ...(raw.dedupWindowDays === undefined ? {} : { dedupWindowDays: raw.dedupWindowDays }),
  };
}

function checkWriteKeys(settings: SettingEntry[], options: ValidateConfigOptions, out: ProblemList): WriteKeyConfig[] {
  const keys: WriteKeyConfig[] = [];
  const seen = new Map<string, string>();
  for (const entry of settings.filter((item) => item.kind === 'writeKey' && item.isShapeValid)) {
    const first = seen.get(entry.key);
    if (first !== undefined) {
      out.add(entry, 'name', 'CDP_CONFIG_DUPLICATE_KEY', `The write key ${entry.key} is already defined in ${first}`);
      continue;
    }
    seen.set(entry.key, entry.file);
    const value = entry.raw.key;
    if (!isObject(value) || Object.keys(value).length !== 1 || typeof value.env !== 'string') {
      out.add(entry, 'key', 'CDP_CONFIG_LITERAL_SECRET', `Write key ${entry.key} is a secret and must be written as {env: NAME}`);
      continue;
    }
    if (!ENV_NAME.test(value.env)) {
      out.add(entry, 'key.env', 'CDP_CONFIG_SCHEMA', `Write key ${entry.key} names an invalid environment variable`);
      continue;
    }
    let secret: string | null = null;
    try {
      secret = readSecretEnv(value.env, options.env);
    } catch (err) {
      const code = isAppError(err) ? err.code : 'CDP_SECRET_ENV_MISSING';
      const message = `Environment variable ${value.env} for write key ${entry.key} is not set`;
      if (options.requireSecretEnvs === false) {
        out.warn(entry, 'key', code, message);
      } else {
        out.add(entry, 'key', code, message);
        continue;
      }
    }
    keys.push({
      file: entry.file,
      name: entry.key,
      env: value.env,
      keyHash: secret === null ? null : hashWriteKey(secret),
      keyPrefix: secret === null ? null : writeKeyPrefix(secret),
    });
  }

  return keys;
}

/**
 * Checks a loaded config folder and builds its desired state, collecting every problem
 * instead of stopping at the first: shapes, connector options, secrets, references between
 * objects, schedules and group rules.
 */
export function checkConfig(loaded: LoadedConfig, options: ValidateConfigOptions = {}): ConfigCheck {
  const out = new ProblemList();
  out.problems.push(...loaded.problems);
  const settings: SettingEntry[] = [];
  const entries = collectEntries(loaded, out, settings);
  const index = indexByKey(entries, out);
  const valid = (kind: ConfigKind) => [...index[kind].values()].filter((entry) => entry.isShapeValid);

  const config: DesiredConfig = { apps: [], sources: [], properties: [], groups: [], destinations: [], events: null, writeKeys: [] };
  for (const entry of valid('app')) {
    const app = checkApp(entry, options, out);
    if (app) config.apps.push(app);
  }
  for (const entry of valid('source')) {
    const source = checkSource(entry, index, out);
    if (source) config.sources.push(source);
  }
  for (const entry of valid('property')) {
    const property = checkProperty(entry, index, out);
    if (property) config.properties.push(property);
  }
  // Rules see every property whose key and type are sound, so one bad property elsewhere
  // does not also make every rule that mentions it fail.
  const defs = propertyDefsOf(
    valid('property')
      .filter((entry) => !RESERVED_PROPERTY_KEYS.includes(entry.key))
      .map((entry) => ({ key: entry.key, type: entry.raw.type, unique: entry.raw.unique ?? false, list: entry.raw.list ?? false })),
  );
  const groupKeys = [...index.group.keys()];
  for (const entry of valid('group')) {
    const group = checkGroup(entry, defs, groupKeys, out);
    if (group) config.groups.push(group);
  }
  checkGroupCycles(config, index.group, out);
  for (const entry of valid('destination')) {
    const destination = checkDestination(entry, index, out);
    if (destination) config.destinations.push(destination);
  }
  config.events = checkEvents(settings, index.property, out);
  config.writeKeys = checkWriteKeys(settings, options, out);

  return { config, problems: out.problems, warnings: out.warnings };
}

/**
 * Checks a loaded config folder and returns its desired state, or throws one ConfigError
 * `CDP_CONFIG_INVALID` with every problem in `details.problems`.
 */
export function validateConfig(loaded: LoadedConfig, options: ValidateConfigOptions = {}): { config: DesiredConfig; warnings: ConfigProblem[] } {
  const { config, problems, warnings } = checkConfig(loaded, options);
  if (problems.length > 0) {
    throw new ConfigError('CDP_CONFIG_INVALID', `Config in ${loaded.dir} has ${problems.length} problem${problems.length === 1 ? '' : 's'}`, {
      details: { problems, warnings },
    });
  }

  return { config, warnings };
}
