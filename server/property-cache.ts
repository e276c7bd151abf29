import type { Queryable } from '../lib/db.js';
import { loadPropertyDefs } from '../sql/property-queries.js';
import type { PropertyDef } from '../sql/property-types.js';

export interface PropertyCache {
  /** Property definitions, reloaded when older than the cache's time to live. */
  (): Promise<Map<string, PropertyDef>>;
  /** The definitions when they are fresh, without waiting; undefined when a reload is due. */
  peek(): Map<string, PropertyDef> | undefined;
}

/** Property definitions for checking traits, reloaded at most every `ttlMs` (default 5 s). */
export function createPropertyCache(db: Queryable, ttlMs = 5_000): PropertyCache {
  let defs = new Map<string, PropertyDef>();
  let loadedAt = Number.NEGATIVE_INFINITY;
  let loading: Promise<Map<string, PropertyDef>> | undefined;

  const load = async (): Promise<Map<string, PropertyDef>> => {
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

  return Object.assign(load, {
    peek: () => (Date.now() - loadedAt < ttlMs ? defs : undefined),
  });
}
