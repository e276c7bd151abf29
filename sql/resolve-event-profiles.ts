import type { Queryable } from '../lib/db.js';
import {
  describeProfileIdentities,
  findAnonymousIds,
  mergeProfileInto,
  upsertAnonymousIds,
  type ProfileMerge,
} from './event-identity-queries.js';
import { createProfiles, findIdentityOwners, identityMapKey, insertIdentityConflicts, type IdentityConflict, type IdentityKey } from './identity-queries.js';
import type { ProfileValuesRow } from './profile-values.js';
import { coerceValue, identityText, type PropertyDef } from './property-types.js';

/** What identity resolution needs of one stored event. */
export interface IdentityEvent {
  id: number;
  type: 'identify' | 'track' | 'page' | 'screen' | 'group' | 'alias';
  userId: string | null;
  anonymousId: string | null;
  previousId: string | null;
  traits: Record<string, unknown>;
  contextTraits: Record<string, unknown>;
}

export interface ResolveEventsOptions {
  properties: Map<string, PropertyDef>;
  /** The unique property a userId fills; null when no `events` setting names one. */
  userIdProperty: string | null;
  anonymousIdsPerProfile: number;
}

export interface EventIdentityCounts {
  profilesCreated: number;
  profilesMerged: number;
  anonymousIdsMoved: number;
  anonymousIdsNotLinked: number;
  junkIdentifiers: number;
  /** Events whose userId was ignored because no userIdProperty is set. */
  userIdsIgnored: number;
  keptApart: number;
}

export interface EventResolution {
  /** Profile per event, in order; null when an event names nobody. */
  profileIds: Array<number | null>;
  /** Defined traits (and the userId) to write with writeProfileValues. */
  valueRows: ProfileValuesRow[];
  counts: EventIdentityCounts;
  merges: ProfileMerge[];
  moves: IdentityConflict[];
  /** Profiles created for these events. */
  createdProfileIds: number[];
}

// Values SDKs send when they have no real identifier; Segment refuses the same kind.
const JUNK_IDENTIFIERS = new Set(['', 'null', 'undefined', 'anonymous', 'nil', 'none', 'unknown', 'n/a', 'nan', '[object object]']);
const ALL_ZEROS = /^[0-]+$/;

/** True for identifier values that must never link anything: '', 'null', '0', a zero UUID. */
export function isJunkIdentifier(value: unknown): boolean {
  if (typeof value !== 'string' && typeof value !== 'number') {
    return true;
  }
  const text = String(value).trim().toLowerCase();

  return JUNK_IDENTIFIERS.has(text) || ALL_ZEROS.test(text);
}

interface PreparedEvent {
  event: IdentityEvent;
  anonymousId: string | null;
  previousId: string | null;
  /** The userId as a value of userIdProperty, as identity text. */
  userKey: string | null;
  /** Other unique values, in property order, as identity map keys. */
  traitKeys: string[];
  values: Record<string, unknown>;
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * Resolves a batch of events to profiles, following docs/identity.md, and writes the identity
 * side of it: new profiles, merges of anonymous profiles, anonymous id links, and reports of
 * profiles kept apart. The events are walked in order in memory after a handful of set-based
 * reads, so a batch costs a few statements plus a few per merge. Call inside a transaction
 * holding `lockIdentities`; unique values are claimed afterwards by writeProfileValues.
 */
export async function resolveEventProfiles(db: Queryable, events: IdentityEvent[], options: ResolveEventsOptions): Promise<EventResolution> {
  const { properties, anonymousIdsPerProfile } = options;
  const primary = options.userIdProperty ? properties.get(options.userIdProperty) : undefined;
  const uniques = [...properties.values()].filter((property) => property.isUnique && property.id !== primary?.id);
  const counts: EventIdentityCounts = { profilesCreated: 0, profilesMerged: 0, anonymousIdsMoved: 0, anonymousIdsNotLinked: 0, junkIdentifiers: 0, userIdsIgnored: 0, keptApart: 0 };

  const cleanId = (value: string | null): string | null => {
    if (value === null) return null;
    if (isJunkIdentifier(value)) {
      counts.junkIdentifiers += 1;
      return null;
    }

    return value;
  };
  const primaryKeyOf = (raw: string | null): string | null => {
    if (raw === null || !primary) return null;
    const result = coerceValue(primary.type, raw);

    return result.ok && result.value !== null ? identityMapKey(primary.id, identityText(result.value)) : null;
  };

  const prepared: PreparedEvent[] = events.map((event) => {
    const traits = asObject(event.traits);
    const contextTraits = asObject(event.contextTraits);
    // Group traits describe the group (a company), so they never identify the person.
    const ownTraits = event.type === 'group' ? Object.fromEntries(Object.entries(traits).filter(([key]) => !properties.get(key)?.isUnique)) : traits;
    const merged = event.type === 'alias' ? {} : { ...contextTraits, ...ownTraits };
    const values: Record<string, unknown> = {};
    const traitKeys: string[] = [];
    for (const [key, raw] of Object.entries(merged)) {
      const property = properties.get(key);
      if (!property || property.id === primary?.id) continue;
      if (property.isUnique) {
        if (isJunkIdentifier(raw)) {
          counts.junkIdentifiers += raw === null ? 0 : 1;
          continue;
        }
        const result = coerceValue(property.type, raw);
        if (result.ok && result.value !== null) traitKeys.push(identityMapKey(property.id, identityText(result.value)));
      }
      values[key] = raw;
    }
    traitKeys.sort((a, b) => uniques.findIndex((p) => a.startsWith(`${p.id}:`)) - uniques.findIndex((p) => b.startsWith(`${p.id}:`)));
    const userId = cleanId(event.userId);
    if (userId !== null && !primary) counts.userIdsIgnored += 1;
    if (userId !== null && primary) values[primary.key] = userId;

    return { event, anonymousId: cleanId(event.anonymousId), previousId: cleanId(event.previousId), userKey: primaryKeyOf(userId), traitKeys, values };
  });

  // A few set-based reads give everything the walk below needs.
  const identityKeys: IdentityKey[] = [];
  const anonymousIds: string[] = [];
  for (const item of prepared) {
    for (const key of [item.userKey, primaryKeyOf(item.previousId), ...item.traitKeys]) {
      if (key === null) continue;
      const split = key.indexOf(':');
      identityKeys.push({ propertyId: Number(key.slice(0, split)), value: key.slice(split + 1) });
    }
    if (item.anonymousId) anonymousIds.push(item.anonymousId);
    if (item.previousId) anonymousIds.push(item.previousId);
  }
  const owners = await findIdentityOwners(db, identityKeys);
  const anonymous = await findAnonymousIds(db, [...new Set(anonymousIds)]);
  const involved = [...new Set([...owners.values(), ...anonymous.values()])];
  const described = await describeProfileIdentities(db, involved);
  const known = new Set(involved.filter((id) => described.get(id)?.isIdentified));
  const anonymousCount = new Map(involved.map((id) => [id, described.get(id)?.anonymousIds ?? 0]));
  const primaryHolders = new Set<number>();
  if (primary) {
    for (const [key, owner] of owners) if (key.startsWith(`${primary.id}:`)) primaryHolders.add(owner);
  }

  // New profiles get negative placeholders until they are inserted in one statement.
  let nextPlaceholder = -1;
  const newProfile = (): number => nextPlaceholder--;
  const redirects = new Map<number, number>();
  const follow = (id: number | undefined): number | undefined => {
    let current = id;
    while (current !== undefined && redirects.has(current)) current = redirects.get(current);

    return current;
  };
  const merges: ProfileMerge[] = [];
  const moves: IdentityConflict[] = [];
  const changedLinks = new Set<string>();

  const mergeInto = (from: number, into: number, reason: string, details: Record<string, unknown>) => {
    redirects.set(from, into);
    anonymousCount.set(into, (anonymousCount.get(into) ?? 0) + (anonymousCount.get(from) ?? 0));
    merges.push({ fromProfileId: from, intoProfileId: into, reason, details });
    counts.profilesMerged += 1;
  };

  /** Links an anonymous id to `target`: merges its profile if anonymous, else moves the id. */
  const linkAnonymousId = (anonymousId: string, target: number, eventId: number, reason: string) => {
    const current = follow(anonymous.get(anonymousId));
    if (current === target) return;
    if (current !== undefined && !known.has(current)) {
      mergeInto(current, target, reason, { anonymousId, eventId });
      return;
    }
    // A device already used by another known person is never a bridge to them (case C8):
    // the id follows the newest person, earlier events stay where they were.
    if ((anonymousCount.get(target) ?? 0) >= anonymousIdsPerProfile) {
      counts.anonymousIdsNotLinked += 1;
      return;
    }
    anonymous.set(anonymousId, target);
    changedLinks.add(anonymousId);
    anonymousCount.set(target, (anonymousCount.get(target) ?? 0) + 1);
    if (current !== undefined) {
      anonymousCount.set(current, (anonymousCount.get(current) ?? 1) - 1);
      moves.push({ propertyKey: 'anonymous_id', value: anonymousId, profileId: target, otherProfileId: current, resolution: 'anonymous_id_moved', recordRef: `event:${eventId}` });
      counts.anonymousIdsMoved += 1;
    }
  };

  const claim = (target: number, item: PreparedEvent) => {
    for (const key of [item.userKey, ...item.traitKeys]) {
      if (key !== null && !owners.has(key)) owners.set(key, target);
    }
    if (item.userKey !== null || item.traitKeys.length > 0) known.add(target);
    if (item.userKey !== null) primaryHolders.add(target);
  };

  const pickIdentified = (item: PreparedEvent, anonymousProfile: number | undefined): number => {
    const byUserId = follow(item.userKey === null ? undefined : owners.get(item.userKey));
    if (byUserId !== undefined) return byUserId;
    const byTraits = [...new Set(item.traitKeys.map((key) => follow(owners.get(key))).filter((id): id is number => id !== undefined))];
    if (item.userKey === null) {
      return byTraits[0] ?? anonymousProfile ?? newProfile();
    }
    // A new userId joins the one profile its other identifiers name, or the device's profile,
    // as long as that profile has no userId of its own yet.
    if (byTraits.length === 1 && !primaryHolders.has(byTraits[0])) return byTraits[0];
    if (byTraits.length === 0 && anonymousProfile !== undefined && !primaryHolders.has(anonymousProfile)) return anonymousProfile;

    return newProfile();
  };

  const assigned: Array<number | null> = prepared.map((item) => {
    const { event } = item;
    if (event.type === 'alias') {
      return resolveAlias(item);
    }
    const anonymousProfile = follow(item.anonymousId === null ? undefined : anonymous.get(item.anonymousId));
    let target: number;
    if (item.userKey !== null || item.traitKeys.length > 0) {
      target = pickIdentified(item, anonymousProfile);
    } else if (anonymousProfile !== undefined) {
      target = anonymousProfile;
    } else if (item.anonymousId !== null) {
      target = newProfile();
    } else {
      return null;
    }
    claim(target, item);
    if (item.anonymousId !== null) linkAnonymousId(item.anonymousId, target, event.id, 'identified');

    return target;
  });

  function resolveAlias(item: PreparedEvent): number | null {
    const previousKey = primaryKeyOf(item.previousId);
    const previousProfile = follow(previousKey !== null ? (owners.get(previousKey) ?? anonymous.get(item.previousId!)) : item.previousId ? anonymous.get(item.previousId) : undefined);
    if (item.userKey === null) {
      return previousProfile ?? null;
    }
    const target = follow(owners.get(item.userKey)) ?? previousProfile ?? newProfile();
    claim(target, item);
    if (previousProfile === undefined) {
      if (item.previousId !== null) linkAnonymousId(item.previousId, target, item.event.id, 'alias');
    } else if (previousProfile !== target) {
      if (!known.has(previousProfile)) {
        mergeInto(previousProfile, target, 'alias', { previousId: item.previousId, eventId: item.event.id });
      } else {
        // Two known people are never merged by an alias; the pair is reported instead.
        counts.keptApart += 1;
        moves.push({ propertyKey: primary!.key, value: item.previousId!, profileId: target, otherProfileId: previousProfile, resolution: 'kept_apart', recordRef: `event:${item.event.id}` });
      }
    }

    return target;
  }

  // Placeholders become real profiles, then every reference is rewritten to its final profile.
  const created = -1 - nextPlaceholder;
  const newIds = await createProfiles(db, created);
  counts.profilesCreated = created;
  const real = (id: number): number => {
    const final = follow(id) as number;

    return final < 0 ? newIds[-final - 1] : final;
  };
  for (const merge of merges) {
    const from = merge.fromProfileId < 0 ? newIds[-merge.fromProfileId - 1] : merge.fromProfileId;
    const into = real(merge.intoProfileId);
    await mergeProfileInto(db, { ...merge, fromProfileId: from, intoProfileId: into }, properties);
    merge.fromProfileId = from;
    merge.intoProfileId = into;
  }
  await upsertAnonymousIds(
    db,
    [...changedLinks].map((anonymousId) => ({ anonymousId, profileId: real(anonymous.get(anonymousId) as number) })),
  );
  for (const move of moves) {
    move.profileId = real(move.profileId);
    move.otherProfileId = real(move.otherProfileId);
  }
  await insertIdentityConflicts(db, { sourceId: null, runId: null }, moves);

  const profileIds = assigned.map((id) => (id === null ? null : real(id)));
  const valueRows: ProfileValuesRow[] = [];
  prepared.forEach((item, index) => {
    const profileId = profileIds[index];
    if (profileId !== null && Object.keys(item.values).length > 0) {
      valueRows.push({ profileId, values: item.values, ref: `event:${item.event.id}` });
    }
  });

  return { profileIds, valueRows, counts, merges, moves, createdProfileIds: newIds };
}
