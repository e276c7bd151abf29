import type { Queryable } from '../lib/db.js';
import type { PropertyDef } from './property-types.js';

/** Every defined property by key. */
export async function loadPropertyDefs(db: Queryable): Promise<Map<string, PropertyDef>> {
  const { rows } = await db.query<PropertyDef>(
    `SELECT
       id,
       key,
       type,
       is_unique AS "isUnique",
       is_list AS "isList",
       column_name AS "columnName"
     FROM roster_core.properties
     ORDER BY id`,
  );

  return new Map(rows.map((row) => [row.key, row]));
}
