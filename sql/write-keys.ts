import { createHash } from 'node:crypto';

/** Write keys are stored as their sha256 only. */
export function hashWriteKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The first characters of a key, stored so people can tell keys apart. */
export function writeKeyPrefix(key: string): string {
  return key.slice(0, 6);
}
