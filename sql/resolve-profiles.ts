import type { Queryable } from '../lib/db.js';
import { coerceValue, identityText, type PropertyDef } from './property-types.js';
import { findIdentityOwners, identityMapKey, profilesWithIdentity, reserveProfileIds, type IdentityKey } from './identity-queries.js';
import type { ResolvedIdentities } from './profile-values.js';

export interface IncomingRecord {
  /** Where the record came from (e.g. the source row's key), for reports. */
  ref: string;
  /** Raw values by property key. */
  values: Record<string, unknown>;
}

export interface ResolveOptions {
  properties: Map<string, PropertyDef>;
  /** The unique property that decides which profile a record belongs to. */
  primaryKey: string;
  /** Only the source that owns an identifier creates profiles; others report unmatched rows. */
  createsProfiles: boolean;
}

export interface SkippedRecord {
  ref: string;
  code: string;
  message: string;
}

export interface ResolveResult {
  /** Profile id per record, in order; null for skipped or unmatched records. */
  profileIds: Array<number | null>;
  created: number;
  /** Ids of the profiles created for these records (reserved: see `identities`). */
  createdProfileIds: number[];
  unmatched: number;
  skipped: SkippedRecord[];
  /**
   * What writing the records needs to know, to be passed to `writeProfileValues`: the new
   * profiles' rows and their primary identities are stored there, with their values, so a new
   * profile is one INSERT rather than an empty INSERT and an UPDATE.
   */
  identities: ResolvedIdentities;
}

/**
 * Finds or creates the profile of each record. The primary identity decides; when it is new,
 * a record whose other unique values point at exactly one profile that has no primary value
 * yet joins that profile (someone first seen by e-mail, later by user id). Anything else that
 * disagrees is left to `writeProfileValues`, which keeps the profiles apart and reports it.
 * New profiles only get their ids here: pass `identities` on to `writeProfileValues` in the
 * same transaction, which inserts them. Call inside a transaction holding `lockIdentities`.
 */
export async function resolveProfiles(db: Queryable, records: IncomingRecord[], options: ResolveOptions): Promise<ResolveResult> {
  const { properties, primaryKey } = options;
  const primary = properties.get(primaryKey) as PropertyDef;
  const uniques = [...properties.values()].filter((p) => p.isUnique);
  const skipped: SkippedRecord[] = [];

  // Every unique value writeProfileValues will claim is looked up here, once: an empty string
  // identifies no record, but is still a value a text property can hold.
  const keys: IdentityKey[] = [];
  const identityValues = records.map((record) => {
    const found = new Map<number, string>();
    for (const property of uniques) {
      const result = coerceValue(property.type, record.values[property.key]);
      if (result.ok && result.value !== null && !Array.isArray(result.value)) {
        const value = identityText(result.value);
        keys.push({ propertyId: property.id, value });
        if (value !== '') found.set(property.id, value);
      }
    }

    return found;
  });
  const owners = await findIdentityOwners(db, keys);

  const secondaryOwners = new Set<number>();
  identityValues.forEach((found) => {
    for (const [propertyId, value] of found) {
      const owner = owners.get(identityMapKey(propertyId, value));
      if (propertyId !== primary.id && owner !== undefined) secondaryOwners.add(owner);
    }
  });
  const ownersWithPrimary = await profilesWithIdentity(db, primary.id, [...secondaryOwners]);

  // New profiles get negative placeholders until they are inserted in one statement.
  let nextPlaceholder = -1;
  let unmatched = 0;
  const assigned = identityValues.map((found, index): number | null => {
    const record = records[index];
    const primaryValue = found.get(primary.id);
    if (primaryValue === undefined) {
      skipped.push({ ref: record.ref, code: 'CDP_RECORD_MISSING_IDENTITY', message: `Record ${record.ref} has no valid value for its identity property ${primaryKey}` });
      return null;
    }
    const primaryMapKey = identityMapKey(primary.id, primaryValue);
    const owner = owners.get(primaryMapKey);
    if (owner !== undefined) {
      return owner;
    }
    const candidates = new Set<number>();
    for (const [propertyId, value] of found) {
      const other = owners.get(identityMapKey(propertyId, value));
      if (propertyId !== primary.id && other !== undefined) candidates.add(other);
    }
    let profileId: number | null = null;
    if (candidates.size === 1) {
      const [candidate] = candidates;
      if (candidate > 0 && !ownersWithPrimary.has(candidate)) {
        profileId = candidate;
        ownersWithPrimary.add(candidate);
      }
    }
    if (profileId === null) {
      if (!options.createsProfiles) {
        unmatched += 1;
        return null;
      }
      profileId = nextPlaceholder;
      nextPlaceholder -= 1;
    }
    owners.set(primaryMapKey, profileId);

    return profileId;
  });

  const created = -1 - nextPlaceholder;
  const newIds = await reserveProfileIds(db, created);
  const realId = (id: number) => (id < 0 ? newIds[-id - 1] : id);
  const profileIds = assigned.map((id) => (id === null ? null : realId(id)));
  for (const [mapKey, owner] of owners) {
    if (owner < 0) owners.set(mapKey, realId(owner));
  }
  const claims: Array<IdentityKey & { profileId: number }> = [];
  const claimed = new Set<string>();
  profileIds.forEach((profileId, index) => {
    const value = identityValues[index].get(primary.id);
    if (profileId === null || value === undefined) return;
    const mapKey = identityMapKey(primary.id, value);
    if (claimed.has(mapKey)) return;
    claimed.add(mapKey);
    claims.push({ propertyId: primary.id, value, profileId });
  });

  return {
    profileIds,
    created,
    createdProfileIds: newIds,
    unmatched,
    skipped,
    identities: { newProfileIds: new Set(newIds), owners, claims },
  };
}
