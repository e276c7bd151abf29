import type { Queryable } from '../lib/db.js';
import { loadPropertyDefs } from '../sql/property-queries.js';
import type { PropertyDef } from '../sql/property-types.js';

/** Property definitions for checking traits, reloaded at most every `ttlMs` (default 5 s). */
export function createPropertyCache(db: Queryable, ttlMs = 5_000): () => Promise<Map<string, PropertyDef>> {
  let defs = new Map<string, PropertyDef>();
  let loadedAt = Number.NEGATIVE_INFINITY;
  let loading: Promise<Map<string, PropertyDef>> | undefined;

  return async () => {
    if (Date.now() - loadedAt < ttlMs) return defs;
    loading ??= loadPropertyDefs(db)
      .then((fresh) => {
        defs = fresh;
        loadedAt = Date.now();

        return fresh;
      })
      .finally(() => {
        loading = undefined;
      });

    return loading;
  };
}
