import { createHash, randomBytes } from 'node:crypto';
import { mapPgError, type Queryable } from '../lib/db.js';
import { ConflictError, NotFoundError } from '../lib/errors.js';

/** Write keys are stored as their sha256 only. */
export function hashWriteKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The first characters of a key, stored so people can tell keys apart. */
export function writeKeyPrefix(key: string): string {
  return key.slice(0, 6);
}

export interface WriteKeyInfo {
  id: number;
  name: string;
  keyPrefix: string;
  origin: 'cli' | 'config';
  createdAt: Date;
  revokedAt: Date | null;
}

/**
 * Creates a write key and returns its plaintext. This is the only time the key is seen:
 * only its sha256 is stored.
 */
export async function createWriteKey(db: Queryable, name: string): Promise<{ id: number; key: string }> {
  const key = `rk_${randomBytes(32).toString('base64url')}`;
  try {
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO roster_core.write_keys (name, key_hash, key_prefix, origin)
       VALUES ($1, $2, $3, 'cli')
       RETURNING id`,
      [name, hashWriteKey(key), writeKeyPrefix(key)],
    );

    return { id: rows[0].id, key };
  } catch (err) {
    const mapped = mapPgError(err);
    if (mapped instanceof ConflictError && mapped.details.constraint === 'write_keys_name_key') {
      throw new ConflictError('CDP_WRITE_KEY_EXISTS', `Write key "${name}" already exists`, { cause: err });
    }
    throw mapped;
  }
}

/** Revokes a key by name. Servers stop accepting it within their key cache time. */
export async function revokeWriteKey(db: Queryable, name: string): Promise<void> {
  const { rowCount } = await db.query(
    `UPDATE roster_core.write_keys
     SET revoked_at = COALESCE(revoked_at, now())
     WHERE name = $1`,
    [name],
  );
  if (!rowCount) {
    throw new NotFoundError('CDP_WRITE_KEY_NOT_FOUND', `No write key named "${name}"`);
  }
}

/** Every write key, revoked ones included; never the hash. */
export async function listWriteKeys(db: Queryable): Promise<WriteKeyInfo[]> {
  const { rows } = await db.query<WriteKeyInfo>(
    `SELECT
       id,
       name,
       key_prefix AS "keyPrefix",
       origin,
       created_at AS "createdAt",
       revoked_at AS "revokedAt"
     FROM roster_core.write_keys
     ORDER BY name`,
  );

  return rows;
}

/** The id of an unrevoked key with this plaintext, or null. */
export async function findActiveWriteKey(db: Queryable, key: string): Promise<number | null> {
  const { rows } = await db.query<{ id: number }>(
    `SELECT id
     FROM roster_core.write_keys
     WHERE key_hash = $1 AND revoked_at IS NULL`,
    [hashWriteKey(key)],
  );

  return rows[0]?.id ?? null;
}

/** Every unrevoked key as sha256 -> id, for servers that cache keys in memory. */
export async function loadActiveWriteKeys(db: Queryable): Promise<Map<string, number>> {
  const { rows } = await db.query<{ id: number; keyHash: string }>(
    `SELECT id, key_hash AS "keyHash"
     FROM roster_core.write_keys
     WHERE revoked_at IS NULL`,
  );

  return new Map(rows.map((row) => [row.keyHash, row.id]));
}
