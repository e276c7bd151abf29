import type { JobDeps } from './index.js';

// TODO: placeholder until outbound delivery lands: no event is forwarded to destinations yet.
export async function sendOutboundEvents(_deps: JobDeps): Promise<{ sent: number }> {
  return { sent: 0 };
}
