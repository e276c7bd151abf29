import type { Queryable } from '../lib/db.js';
import { coerceValue, identityText, type PropertyDef } from './property-types.js';
import { createProfiles, findIdentityOwners, identityMapKey, insertIdentities, profilesWithIdentity, type IdentityKey } from './identity-queries.js';

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
  /** Ids of the profiles created for these records. */
  createdProfileIds: number[];
  unmatched: number;
  skipped: SkippedRecord[];
}

/**
 * Finds or creates the profile of each record. The primary identity decides; when it is new,
 * a record whose other unique values point at exactly one profile that has no primary value
 * yet joins that profile (someone first seen by e-mail, later by user id). Anything else that
 * disagrees is left to `writeProfileValues`, which keeps the profiles apart and reports it.
 * Call inside a transaction holding `lockIdentities`.
 */
export async function resolveProfiles(db: Queryable, records: IncomingRecord[], options: ResolveOptions): Promise<ResolveResult> {
  const { properties, primaryKey } = options;
  const primary = properties.get(primaryKey) as PropertyDef;
  const uniques = [...properties.values()].filter((p) => p.isUnique);
  const skipped: SkippedRecord[] = [];

  const identityValues = records.map((record) => {
    const found = new Map<number, string>();
    for (const property of uniques) {
      const result = coerceValue(property.type, record.values[property.key]);
      if (result.ok && result.value !== null && result.value !== '') {
        found.set(property.id, identityText(result.value));
      }
    }

    return found;
  });
  const keys: IdentityKey[] = identityValues.flatMap((found) => [...found].map(([propertyId, value]) => ({ propertyId, value })));
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
  const newIds = await createProfiles(db, created);
  const profileIds = assigned.map((id) => (id !== null && id < 0 ? newIds[-id - 1] : id));
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
  await insertIdentities(db, claims);

  return { profileIds, created, createdProfileIds: newIds, unmatched, skipped };
}
