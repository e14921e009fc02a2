export { startSandbox } from './server.js';
export { consentLinkIn } from './consent-link.js';
export { DEFAULT_API_KEY } from './core.js';
export { faultSpecSchema } from './faults.js';
export { IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_TTL_MS } from './idempotency.js';
export type * from './types.js';
export { sandboxSnapshotSchema } from './snapshot.js';
export type { SandboxSnapshot } from './snapshot.js';
