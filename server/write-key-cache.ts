import type { Queryable } from '../lib/db.js';
import { hashWriteKey, loadActiveWriteKeys } from '../sql/write-keys.js';

export interface WriteKeyCache {
  /** The id of an active write key, or null. Usually answered from memory. */
  resolve(key: string): Promise<number | null>;
}

/**
 * Keeps every active key's hash in memory and reloads the set every `ttlMs`, so a request
 * costs no query and a revoked key stops working within `ttlMs`. An unknown key triggers an
 * early reload (a key created a moment ago works at once), at most once per `missReloadMs`,
 * so a stream of bad keys costs at most one query per interval.
 */
export function createWriteKeyCache(db: Queryable, options: { ttlMs?: number; missReloadMs?: number } = {}): WriteKeyCache {
  const ttlMs = options.ttlMs ?? 30_000;
  const missReloadMs = options.missReloadMs ?? 1_000;
  let keys = new Map<string, number>();
  let loadedAt = Number.NEGATIVE_INFINITY;
  let loading: Promise<void> | undefined;

  function reload(): Promise<void> {
    loading ??= loadActiveWriteKeys(db)
      .then((fresh) => {
        keys = fresh;
        loadedAt = Date.now();
      })
      .finally(() => {
        loading = undefined;
      });

    return loading;
  }

  return {
    async resolve(key) {
      const age = Date.now() - loadedAt;
      if (age >= ttlMs) await reload();
      const hash = hashWriteKey(key);
      const id = keys.get(hash);
      if (id !== undefined) return id;
      if (Date.now() - loadedAt >= missReloadMs) {
        await reload();

        return keys.get(hash) ?? null;
      }

      return null;
    },
  };
}
