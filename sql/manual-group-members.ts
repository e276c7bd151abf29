import type { Pool, Queryable } from '../lib/db.js';
import { withTransaction } from '../lib/db.js';
import { ConfigError, NotFoundError } from '../lib/errors.js';
import { addManualMembers, removeManualMembers, type MembershipChange } from './group-membership.js';
import { loadPropertyDefs } from './property-queries.js';
import { coerceValue, identityText, type PropertyDef } from './property-types.js';

/** A profile named by one of its unique values, e.g. `{ property: 'email', value: 'a@b.co' }`. */
export interface MemberRef {
  property: string;
  value: string;
}

export interface ChangeManualMembersOptions {
  groupKey: string;
  action: 'add' | 'remove';
  members: MemberRef[];
}

function uniqueProperty(defs: Map<string, PropertyDef>, key: string): PropertyDef {
  const def = defs.get(key);
  if (!def) {
    throw new NotFoundError('CDP_PROPERTY_NOT_FOUND', `Property ${key} is not defined`, { details: { property: key } });
  }
  if (!def.isUnique) {
    throw new ConfigError('CDP_PROPERTY_NOT_UNIQUE', `Property ${key} is not unique and cannot name a profile`, { details: { property: key } });
  }

  return def;
}

/**
 * The profile id behind each member reference, through roster_core.identities. Values are
 * normalized the way identities are stored (emails lower-cased, dates ISO). References that
 * match no profile are returned in `missing`, in input order.
 */
export async function findMemberProfiles(db: Queryable, members: MemberRef[]): Promise<{ profileIds: number[]; missing: MemberRef[] }> {
  const defs = await loadPropertyDefs(db);
  const keys = members.map((member) => {
    const def = uniqueProperty(defs, member.property);
    const coerced = coerceValue(def.type, member.value);

    return { member, propertyId: def.id, value: coerced.ok && coerced.value !== null ? identityText(coerced.value) : null };
  });
  const lookups = keys.filter((key) => key.value !== null);
  const { rows } = await db.query<{ propertyId: number; value: string; profileId: number }>(
    `SELECT
       i.property_id AS "propertyId",
       i.value,
       i.profile_id AS "profileId"
     FROM roster_core.identities AS i
     JOIN unnest($1::bigint[], $2::text[]) AS k (property_id, value)
       ON k.property_id = i.property_id
       AND k.value = i.value`,
    [lookups.map((key) => key.propertyId), lookups.map((key) => key.value)],
  );
  const owners = new Map(rows.map((row) => [`${row.propertyId}:${row.value}`, row.profileId]));
  const profileIds: number[] = [];
  const missing: MemberRef[] = [];
  for (const key of keys) {
    const owner = key.value === null ? undefined : owners.get(`${key.propertyId}:${key.value}`);
    if (owner === undefined) {
      missing.push(key.member);
    } else {
      profileIds.push(owner);
    }
  }

  return { profileIds, missing };
}

/**
 * Adds profiles to, or removes them from, a manual group by their unique values, in one
 * transaction. If any value matches no profile nothing is changed, and NotFoundError
 * `CDP_PROFILE_NOT_FOUND` lists every such value in `details.missing`.
 */
export async function changeManualMembers(pool: Pool, options: ChangeManualMembersOptions): Promise<MembershipChange> {
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<{ id: number }>('SELECT id FROM roster_core.groups WHERE key = $1', [options.groupKey]);
    if (rows.length === 0) {
      throw new NotFoundError('CDP_GROUP_NOT_FOUND', `Group ${options.groupKey} does not exist`, { details: { group: options.groupKey } });
    }
    const { profileIds, missing } = await findMemberProfiles(client, options.members);
    if (missing.length > 0) {
      throw new NotFoundError('CDP_PROFILE_NOT_FOUND', `${missing.length} of the given values match no profile`, { details: { missing } });
    }
    const change = options.action === 'add' ? addManualMembers : removeManualMembers;

    return change(client, rows[0].id, profileIds);
  });
}
