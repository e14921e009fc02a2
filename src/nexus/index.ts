// The consent as a Nexus operation: the service definition for callers, the handler for the worker.
export { AVATAR_CONSENT_NEXUS_SERVICE, avatarConsentNexusService } from './service.js';
export { createAvatarConsentNexusHandler } from './handler.js';
export type { AvatarConsentNexusOptions } from './handler.js';
