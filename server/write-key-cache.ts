import type { Queryable } from '../lib/db.js';
import { hashWriteKey, loadActiveWriteKeys } from '../sql/write-keys.js';

/** Raw keys whose sha256 is remembered; past this the memo starts over. */
const MAX_REMEMBERED_HASHES = 1_000;

export interface WriteKeyCache {
  /** The id of an active write key, or null. Usually answered from memory. */
  resolve(key: string): Promise<number | null>;
  /**
   * The id of `key` when memory can answer without a reload, else undefined (then call
   * `resolve`). Never answers null: an unknown key may have been created a moment ago.
   */
  peek(key: string): number | undefined;
}

/**
 * Keeps every active key's hash in memory and reloads the set every `ttlMs`, so a request
 * costs no query and a revoked key stops working within `ttlMs`. An unknown key triggers an
 * early reload (a key created a moment ago works at once), at most once per `missReloadMs`,
 * so a stream of bad keys costs at most one query per interval. The sha256 of the keys seen
 * recently is remembered too: hashing was a measurable share of a single-event request.
 */
export function createWriteKeyCache(db: Queryable, options: { ttlMs?: number; missReloadMs?: number } = {}): WriteKeyCache {
  const ttlMs = options.ttlMs ?? 30_000;
  const missReloadMs = options.missReloadMs ?? 1_000;
  let keys = new Map<string, number>();
  let loadedAt = Number.NEGATIVE_INFINITY;
  let loading: Promise<void> | undefined;
  const hashes = new Map<string, string>();

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

  function hashOf(key: string): string {
    let hash = hashes.get(key);
    if (hash === undefined) {
      if (hashes.size >= MAX_REMEMBERED_HASHES) hashes.clear();
      hash = hashWriteKey(key);
      hashes.set(key, hash);
    }

    return hash;
  }

  return {
    async resolve(key) {
      const age = Date.now() - loadedAt;
      if (age >= ttlMs) await reload();
      const hash = hashOf(key);
      const id = keys.get(hash);
      if (id !== undefined) return id;
      if (Date.now() - loadedAt >= missReloadMs) {
        await reload();

        return keys.get(hash) ?? null;
      }

      return null;
    },
    peek(key) {
      if (Date.now() - loadedAt >= ttlMs) return undefined;

      return keys.get(hashOf(key));
    },
  };
}
