import type { JobDeps } from './index.js';

// TODO: placeholder until event processing lands: pending events are not yet resolved to
// profiles, so they stay pending.
export async function processPendingEvents(_deps: JobDeps): Promise<{ events: number }> {
  return { events: 0 };
}
